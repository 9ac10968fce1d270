"""A quota or spending-cap refusal: its cause, where to act, what the user hears.

The Live service closes with a quota text for both (live-api.md §5): rate
limits and daily quotas ("You exceeded your current quota ...", "Resource has
been exhausted ...") and, on the Developer API, the project's monthly
spending cap ("... exceeded its monthly spending cap ...").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.components import conversation
from homeassistant.helpers import intent, translation

from .const import CONF_PROJECT_ID, CONF_PROVIDER, DOMAIN, PROVIDER_VERTEX_AI
from .live import LiveError

AI_STUDIO_USAGE_URL = "https://aistudio.google.com/usage"
"""AI Studio's usage and rate-limit dashboard (Developer API)."""
AI_STUDIO_SPEND_URL = "https://ai.studio/spend"
"""AI Studio's spend page, where the monthly cap is set (the close reason's)."""
CLOUD_QUOTAS_URL = "https://console.cloud.google.com/iam-admin/quotas?project={project}"
CLOUD_BUDGETS_URL = "https://console.cloud.google.com/billing/budgets?project={project}"


def is_spending_cap(err: LiveError) -> bool:
    """Whether the refusal is the spending cap, not a quota or rate limit."""
    return "spending cap" in f"{err.reason} {err}".lower()


def console_url(data: Mapping[str, Any], err: LiveError) -> str:
    """Return the provider's console page for the refusal (entry `data`)."""
    spending_cap = is_spending_cap(err)
    if data.get(CONF_PROVIDER) == PROVIDER_VERTEX_AI:
        page = CLOUD_BUDGETS_URL if spending_cap else CLOUD_QUOTAS_URL
        return page.format(project=data.get(CONF_PROJECT_ID, ""))
    return AI_STUDIO_SPEND_URL if spending_cap else AI_STUDIO_USAGE_URL


async def async_refusal_result(
    user_input: conversation.ConversationInput,
    chat_log: conversation.ChatLog,
    agent_id: str,
    err: LiveError,
) -> conversation.ConversationResult:
    """Answer with a short sentence in the user's language, and log it.

    The answer is an error response (nothing was done), spoken by the
    pipeline like any answer.
    """
    key = "spending_cap_answer" if is_spending_cap(err) else "quota_answer"
    strings = await translation.async_get_translations(
        chat_log.hass, user_input.language, "exceptions", [DOMAIN]
    )
    sentence = strings.get(f"component.{DOMAIN}.exceptions.{key}.message", str(err))
    chat_log.async_add_assistant_content_without_tools(
        conversation.AssistantContent(agent_id=agent_id, content=sentence)
    )
    response = intent.IntentResponse(language=user_input.language)
    response.async_set_error(intent.IntentResponseErrorCode.UNKNOWN, sentence)
    return conversation.ConversationResult(
        response=response, conversation_id=chat_log.conversation_id
    )
