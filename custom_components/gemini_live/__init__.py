"""Gemini Live for Home Assistant: a native-audio Gemini Live model for Assist."""

from __future__ import annotations

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import (
    ConfigEntryAuthFailed,
    ConfigEntryError,
    ConfigEntryNotReady,
    HomeAssistantError,
)

from .const import CONF_LOCATION, CONF_MODEL, DOMAIN, LOGGER
from .errors import CREDENTIAL_ERRORS, TRANSIENT_ERRORS, error_key
from .issues import async_delete_issues
from .live import LiveError
from .runtime import (
    GeminiLiveConfigEntry,
    GeminiLiveRuntimeData,
    async_create_live_client,
)
from .satellites import SatelliteRuns
from .voice.config import create_voice_manager

__all__ = ["GeminiLiveConfigEntry", "GeminiLiveRuntimeData"]

PLATFORMS: tuple[Platform, ...] = (
    Platform.CONVERSATION,
    Platform.STT,
    Platform.TTS,
)


async def async_setup_entry(hass: HomeAssistant, entry: GeminiLiveConfigEntry) -> bool:
    """Set up Gemini Live from a config entry."""
    model: str = entry.data[CONF_MODEL]
    try:
        client = await async_create_live_client(hass, entry.data)
        await client.validate(model)
    except LiveError as err:
        key = error_key(err)
        error_type: type[HomeAssistantError] = ConfigEntryError
        if key in CREDENTIAL_ERRORS:
            error_type = ConfigEntryAuthFailed
        elif key in TRANSIENT_ERRORS:
            error_type = ConfigEntryNotReady
        raise error_type(
            translation_domain=DOMAIN,
            translation_key=key,
            translation_placeholders={
                "model": model,
                "location": str(entry.data.get(CONF_LOCATION)),
                "reason": err.reason or type(err).__name__,
            },
        ) from err

    LOGGER.debug("Live session check passed for model %s", model)
    satellites = SatelliteRuns(hass)
    entry.async_on_unload(satellites.async_start())
    entry.runtime_data = GeminiLiveRuntimeData(
        client=client,
        voice=create_voice_manager(hass, entry, client),
        satellites=satellites,
    )
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: GeminiLiveConfigEntry) -> bool:
    """Unload a config entry (its Live sessions are closed first)."""
    await entry.runtime_data.voice.async_close()
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: GeminiLiveConfigEntry) -> None:
    """Remove what outlives a removed entry: its Repairs issues."""
    async_delete_issues(hass, entry)
