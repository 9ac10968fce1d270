"""Diagnostics support for Gemini Live."""

from __future__ import annotations

from typing import Any

from homeassistant.components.diagnostics import async_redact_data
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
from .runtime import GeminiLiveConfigEntry

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
            {
                "title": subentry.title,
                "model": subentry.data.get(CONF_MODEL),
                "options": async_redact_data(subentry.data, TO_REDACT),
            }
            for subentry in entry.get_subentries_of_type(SUBENTRY_AGENT)
        ],
    }
