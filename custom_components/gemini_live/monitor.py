"""What Home Assistant makes of an assistant's Live activity.

Each answered turn fires `gemini_live_conversation` (for automations and the
logbook); a quota or spending-cap refusal raises the assistant's Repairs
issue, and its next fully answered turn clears it.
"""

from __future__ import annotations

from typing import Final

from homeassistant.config_entries import ConfigEntry, ConfigSubentry
from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback

from .issues import async_create_quota_issue, async_delete_quota_issue
from .live import LiveQuotaError
from .voice import VoiceManager
from .voice.activity import ActivityEvent, TurnReport

EVENT_CONVERSATION: Final = "gemini_live_conversation"
"""Fired once per turn an assistant answered."""


@callback
def async_watch_assistant(
    hass: HomeAssistant,
    entry: ConfigEntry,
    subentry: ConfigSubentry,
    manager: VoiceManager,
) -> CALLBACK_TYPE:
    """Act on an assistant's Live activity; returns the function that stops it."""

    @callback
    def on_activity(event: ActivityEvent) -> None:
        if isinstance(event, LiveQuotaError):
            async_create_quota_issue(hass, entry, subentry, event)
        elif isinstance(event, TurnReport):
            hass.bus.async_fire(EVENT_CONVERSATION, event_data(event))
            if event.error is None:
                async_delete_quota_issue(hass, entry, subentry)

    return manager.activity.subscribe(on_activity)


def event_data(report: TurnReport) -> dict[str, object]:
    """Return the data of the turn's `gemini_live_conversation` event."""
    return {
        ATTR_ENTITY_ID: report.agent_id,
        "conversation_id": report.conversation_id,
        "voice": report.voice,
        "user_text": report.user_text,
        "answer_text": report.answer_text,
        "tool_calls": [
            {
                "name": call.name,
                "arguments": dict(call.arguments),
                "status": call.status,
            }
            for call in report.tool_calls
        ],
        "usage": report.tokens.as_dict(),
    }
