"""Diagnostics support for Gemini Live."""

from __future__ import annotations

import re
from typing import Any

from homeassistant.components.diagnostics import REDACTED, async_redact_data
from homeassistant.config_entries import ConfigEntryState, ConfigSubentry
from homeassistant.const import CONF_API_KEY
from homeassistant.core import HomeAssistant
from yarl import URL

from .const import (
    CONF_BASE_URL,
    CONF_LOCATION,
    CONF_MODEL,
    CONF_PROJECT_ID,
    CONF_PROVIDER,
    CONF_SERVICE_ACCOUNT,
    SUBENTRY_AGENT,
)
from .live import LiveError
from .runtime import GeminiLiveConfigEntry
from .voice.activity import Activity

TO_REDACT = {
    CONF_API_KEY,
    CONF_SERVICE_ACCOUNT,
    CONF_BASE_URL,
    "access_token",
    "client_email",
    "private_key",
    "private_key_id",
    "refresh_token",
    "token",
}


_SECRET_PATTERNS = (
    re.compile(r"()AIza[0-9A-Za-z_-]{20,}()"),  # Google API keys
    re.compile(r"(auth_tokens/)[0-9A-Za-z_-]+()"),  # ephemeral tokens
    re.compile(r"(?i)(\bbearer\s+)[^\s,;]+()"),
    re.compile(r"(?i)([?&](?:key|access_token|token)=)[^&\s)\"']+()"),
    re.compile(r"(//)[^/@\s]+(@)"),  # URL credentials
)
"""Secrets a Live error text might quote: kept parts in groups 1 and 2."""


def redact_text(text: str, secrets: list[str]) -> str:
    """Return `text` without `secrets`, keys, tokens or URL credentials."""
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(rf"\g<1>{REDACTED}\g<2>", text)
    return text


def _host(base_url: str | None) -> str | None:
    """Return the host of a service endpoint, without credentials or path."""
    return URL(base_url).host if base_url else None


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: GeminiLiveConfigEntry
) -> dict[str, Any]:
    """Return diagnostics for a config entry."""
    data = entry.data
    return {
        "title": entry.title,
        "state": entry.state.value,
        "provider": data.get(CONF_PROVIDER),
        "project_id": data.get(CONF_PROJECT_ID),
        "location": data.get(CONF_LOCATION),
        "base_url_host": _host(data.get(CONF_BASE_URL)),
        "data": async_redact_data(data, TO_REDACT),
        "assistants": [
            _assistant(entry, subentry)
            for subentry in entry.get_subentries_of_type(SUBENTRY_AGENT)
        ],
    }


def _assistant(
    entry: GeminiLiveConfigEntry, subentry: ConfigSubentry
) -> dict[str, Any]:
    """Return an assistant's settings and, while loaded, its Live sessions."""
    result: dict[str, Any] = {
        "title": subentry.title,
        "model": subentry.data.get(CONF_MODEL),
        "options": async_redact_data(subentry.data, TO_REDACT),
    }
    if entry.state is ConfigEntryState.LOADED:
        activity = entry.runtime_data.agents[subentry.subentry_id].activity
        result["sessions"] = _sessions(activity, [entry.data.get(CONF_API_KEY, "")])
    return result


def _sessions(activity: Activity, secrets: list[str]) -> dict[str, Any]:
    """Return the session counters and the last Live error, redacted."""
    error: LiveError | None = activity.last_error
    return {
        "opened": activity.opened,
        "resumed": activity.resumed,
        "failed": activity.failed,
        "turns": activity.turns,
        "last_error": None
        if error is None
        else {
            "type": type(error).__name__,
            "close_code": error.close_code,
            "message": redact_text(str(error), [s for s in secrets if s]),
        },
    }
