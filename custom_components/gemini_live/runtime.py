"""Runtime data of a Gemini Live config entry and the client factory."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_API_KEY
from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from .const import (
    CONF_BASE_URL,
    CONF_LOCATION,
    CONF_MODEL,
    CONF_PROJECT_ID,
    CONF_PROVIDER,
    CONF_SERVICE_ACCOUNT,
    PROVIDER_VERTEX_AI,
    RECOMMENDED_MODEL,
    SUBENTRY_AGENT,
)
from .live import (
    ApiKeyCredentials,
    Credentials,
    LiveClient,
    LiveEndpoint,
    Provider,
    ServiceAccount,
    ServiceAccountCredentials,
)
from .satellites import SatelliteRuns
from .voice import VoiceManager

type GeminiLiveConfigEntry = ConfigEntry[GeminiLiveRuntimeData]


@dataclass(slots=True, kw_only=True)
class GeminiLiveRuntimeData:
    """Objects shared by the platforms of one Gemini Live config entry."""

    client: LiveClient
    """Live client bound to Home Assistant's shared aiohttp session."""
    agents: dict[str, VoiceManager]
    """Live sessions of each assistant's voice entities, by subentry id."""
    satellites: SatelliteRuns
    """The satellite of each pipeline run, for the STT entities."""


def validation_model(entry: ConfigEntry) -> str:
    """Return the model whose handshake checks the entry's credentials.

    The first assistant's model, or the provider's recommended one when the
    entry has no assistant.
    """
    for subentry in entry.get_subentries_of_type(SUBENTRY_AGENT):
        return str(subentry.data[CONF_MODEL])
    return RECOMMENDED_MODEL[entry.data[CONF_PROVIDER]]


async def async_create_live_client(
    hass: HomeAssistant, data: Mapping[str, Any]
) -> LiveClient:
    """Return a Live client for config entry data (or config flow input).

    The client uses Home Assistant's shared aiohttp session. Raises
    InvalidServiceAccountError for an unusable service-account key.
    """
    credentials: Credentials
    if data[CONF_PROVIDER] == PROVIDER_VERTEX_AI:
        # Loading the RSA key is CPU work: keep it off the event loop.
        account = await hass.async_add_executor_job(
            ServiceAccount.from_json, data[CONF_SERVICE_ACCOUNT]
        )
        credentials = ServiceAccountCredentials(account)
        endpoint = LiveEndpoint(
            provider=Provider.VERTEX_AI,
            base_url=data.get(CONF_BASE_URL),
            project_id=data[CONF_PROJECT_ID],
            location=data[CONF_LOCATION],
        )
    else:
        credentials = ApiKeyCredentials(data[CONF_API_KEY])
        endpoint = LiveEndpoint(
            provider=Provider.GEMINI_API, base_url=data.get(CONF_BASE_URL)
        )
    return LiveClient(async_get_clientsession(hass), endpoint, credentials)
