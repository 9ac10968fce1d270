"""Quota and spending-cap refusals: what the user hears, and the Repairs issue.

The fake server closes with the production reasons (live-api.md §5): 1011
"You exceeded your current quota, ..." and "... monthly spending cap ...".
"""

from __future__ import annotations

from homeassistant.components import conversation
from homeassistant.components.assist_pipeline import PipelineEventType, PipelineStage
from homeassistant.core import Context
from homeassistant.helpers import issue_registry as ir

from custom_components.gemini_live.const import (
    CONF_PROJECT_ID,
    CONF_PROVIDER,
    DOMAIN,
    PROVIDER_GEMINI_API,
    PROVIDER_VERTEX_AI,
)
from custom_components.gemini_live.live import error_from_close
from custom_components.gemini_live.quota import console_url
from tests.entries import agent
from tests.fake_live import QUOTA_EXCEEDED, SPENDING_CAP, Close, Reply

from .conftest import Voice

QUOTA_SENTENCE = (
    "Sorry, the Gemini quota is used up, so I cannot answer right now. "
    "Home Assistant's repairs say what to do."
)
SPENDING_CAP_SENTENCE_VI = (
    "Xin lỗi, Gemini đã chạm giới hạn chi tiêu nên tôi chưa thể trả lời lúc này. "
    "Mục Sửa chữa của Home Assistant có hướng dẫn."
)


def _issue(voice: Voice) -> ir.IssueEntry | None:
    return ir.async_get(voice.hass).async_get_issue(
        DOMAIN,
        f"quota_exceeded_{voice.entry.entry_id}_{agent(voice.entry).subentry_id}",
    )


async def test_quota_close_in_a_voice_run(voice: Voice) -> None:
    """The user was heard, the reply refused: the pipeline speaks the reason.

    The chat log holds it as the answer; the Repairs issue links AI Studio's
    usage page and goes away after the next answered turn.
    """
    voice.server.queue_reply(Reply(text="It is sunny.", close=Close.quota()))

    run = await voice.run("what is the weather like", end_stage=PipelineStage.TTS)

    assert run.heard == "what is the weather like"
    output = run.of(PipelineEventType.INTENT_END)[0]["intent_output"]
    assert output["response"]["response_type"] == "error"
    assert run.speech == QUOTA_SENTENCE
    assert run.of(PipelineEventType.TTS_START)[0]["tts_input"] == QUOTA_SENTENCE
    log = voice.chat_log(run.conversation_id)
    assert [(type(c).__name__, c.content) for c in log[1:]] == [
        ("UserContent", "what is the weather like"),
        ("AssistantContent", QUOTA_SENTENCE),
    ]
    assert voice.server.connections[-1].close_reason == QUOTA_EXCEEDED
    issue = _issue(voice)
    assert issue is not None
    assert issue.translation_key == "quota_exceeded"
    assert issue.severity is ir.IssueSeverity.ERROR
    assert issue.learn_more_url == "https://aistudio.google.com/usage"
    assert issue.translation_placeholders == {
        "entry": voice.entry.title,
        "url": "https://aistudio.google.com/usage",
    }

    voice.server.queue_reply(Reply(text="Still here."))
    again = await voice.run("are you there", conversation_id=run.conversation_id)

    assert again.speech == "Still here."
    assert _issue(voice) is None


async def test_spending_cap_in_the_users_language(voice: Voice) -> None:
    """A typed request refused at setup gets the Vietnamese sentence.

    The issue is the spending cap's, with AI Studio's spend page; a failed
    retry keeps it, the next answer clears it.
    """
    voice.server.add_fault(Close.spending_cap(), times=2)

    result = await conversation.async_converse(
        voice.hass,
        "bật đèn bếp",
        None,
        Context(),
        language="vi",
        agent_id=voice.conversation_entity,
    )

    assert result.response.speech["plain"]["speech"] == SPENDING_CAP_SENTENCE_VI
    assert voice.server.connections[-1].close_reason == SPENDING_CAP
    issue = _issue(voice)
    assert issue is not None
    assert issue.translation_key == "spending_cap"
    assert issue.learn_more_url == "https://ai.studio/spend"

    retry = await conversation.async_converse(
        voice.hass,
        "bật đèn bếp",
        result.conversation_id,
        Context(),
        language="vi",
        agent_id=voice.conversation_entity,
    )
    assert retry.response.speech["plain"]["speech"] == SPENDING_CAP_SENTENCE_VI
    assert _issue(voice) is not None

    voice.server.queue_reply(Reply(text="Đã bật đèn bếp."))
    answered = await conversation.async_converse(
        voice.hass,
        "bật đèn bếp",
        result.conversation_id,
        Context(),
        language="vi",
        agent_id=voice.conversation_entity,
    )
    assert answered.response.speech["plain"]["speech"] == "Đã bật đèn bếp."
    assert _issue(voice) is None


def test_vertex_ai_links_the_cloud_console() -> None:
    """On Vertex AI the issue links the project's quotas or budgets."""
    vertex = {CONF_PROVIDER: PROVIDER_VERTEX_AI, CONF_PROJECT_ID: "my-project"}
    quota = error_from_close(1011, QUOTA_EXCEEDED)
    cap = error_from_close(1011, SPENDING_CAP)
    assert console_url(vertex, quota) == (
        "https://console.cloud.google.com/iam-admin/quotas?project=my-project"
    )
    assert console_url(vertex, cap) == (
        "https://console.cloud.google.com/billing/budgets?project=my-project"
    )
    assert console_url({CONF_PROVIDER: PROVIDER_GEMINI_API}, quota) == (
        "https://aistudio.google.com/usage"
    )
