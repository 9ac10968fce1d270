"""Google Search next to Home Assistant's tools, and the sources it gives."""

from __future__ import annotations

from typing import Any

from homeassistant.components import conversation
import pytest

from custom_components.gemini_live.const import CONF_GOOGLE_SEARCH, RECOMMENDED_OPTIONS
from tests.fake_live import Grounding, Reply

from .conftest import Voice
from .test_pipeline import _kitchen_light

ANSWER = "It will be sunny in Paris tomorrow."


@pytest.fixture
def live_model() -> str:
    """3.8 Live: Search and function calling in one session."""
    return "gemini-3.8-live"


@pytest.fixture
def entry_options() -> dict[str, Any]:
    """Search on, with the Assist API."""
    return {**RECOMMENDED_OPTIONS, CONF_GOOGLE_SEARCH: True}


async def test_search_sources_in_the_chat_log(voice: Voice) -> None:
    """The setup has Search and the functions; the answer's sources are kept."""
    await _kitchen_light(voice.hass)
    voice.server.queue_reply(
        Reply(
            text=ANSWER,
            grounding=Grounding(
                queries=("weather Paris tomorrow",),
                chunks=(("https://weather.example/paris", "Paris forecast"),),
                after_chunks=1,
            ),
        )
    )

    run = await voice.run("what is the weather in Paris tomorrow")

    assert run.speech == ANSWER
    tools = voice.server.connections[-1].tools
    assert {"googleSearch": {}} in tools
    assert any(tool.get("functionDeclarations") for tool in tools)
    *_, answer = voice.chat_log(run.conversation_id)
    assert isinstance(answer, conversation.AssistantContent)
    assert answer.content == ANSWER
    (call,) = answer.tool_calls or ()
    assert (call.tool_name, call.tool_args) == (
        "google_search",
        {
            "queries": ["weather Paris tomorrow"],
            "sources": [
                {"title": "Paris forecast", "uri": "https://weather.example/paris"}
            ],
        },
    )
