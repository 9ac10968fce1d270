"""Describe the `gemini_live_conversation` events in the logbook."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from homeassistant.components.logbook.const import (
    LOGBOOK_ENTRY_ENTITY_ID,
    LOGBOOK_ENTRY_MESSAGE,
    LOGBOOK_ENTRY_NAME,
)
from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.core import Event, HomeAssistant, callback

from .const import DOMAIN
from .monitor import EVENT_CONVERSATION


@callback
def async_describe_events(
    hass: HomeAssistant,
    async_describe_event: Callable[[str, str, Callable[[Event], dict[str, str]]], None],
) -> None:
    """Describe the conversation event: who answered what, with which tools."""

    @callback
    def async_describe_conversation(event: Event) -> dict[str, str]:
        data: Mapping[str, Any] = event.data
        entity_id = str(data.get(ATTR_ENTITY_ID, ""))
        state = hass.states.get(entity_id)
        message = (
            f'answered "{data.get("user_text", "")}": "{data.get("answer_text", "")}"'
        )
        if tools := [str(call.get("name")) for call in data.get("tool_calls", ())]:
            message += f" (using {', '.join(tools)})"
        return {
            LOGBOOK_ENTRY_NAME: state.name if state else entity_id,
            LOGBOOK_ENTRY_MESSAGE: message,
            LOGBOOK_ENTRY_ENTITY_ID: entity_id,
        }

    async_describe_event(DOMAIN, EVENT_CONVERSATION, async_describe_conversation)
