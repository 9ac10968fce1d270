"""Repairs issues of the integration (none is fixable: no repairs platform)."""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from .const import DOMAIN
from .voice.tools import MAX_FUNCTIONS

ISSUE_TOO_MANY_TOOLS = "too_many_tools"


def _too_many_tools_id(entry: ConfigEntry) -> str:
    return f"{ISSUE_TOO_MANY_TOOLS}_{entry.entry_id}"


@callback
def async_delete_issues(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Delete the entry's issues (it was removed)."""
    ir.async_delete_issue(hass, DOMAIN, _too_many_tools_id(entry))


@callback
def async_update_too_many_tools(
    hass: HomeAssistant, entry: ConfigEntry, tools: int
) -> None:
    """Raise the issue while the entry's LLM APIs expose more tools than fit.

    ``tools``: how many valid tools a session would declare. The issue is
    deleted once they fit again.
    """
    issue_id = _too_many_tools_id(entry)
    if tools <= MAX_FUNCTIONS:
        ir.async_delete_issue(hass, DOMAIN, issue_id)
        return
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id,
        is_fixable=False,
        severity=ir.IssueSeverity.WARNING,
        translation_key=ISSUE_TOO_MANY_TOOLS,
        translation_placeholders={
            "entry": entry.title,
            "tools": str(tools),
            "limit": str(MAX_FUNCTIONS),
        },
    )
