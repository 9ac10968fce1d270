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
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.typing import ConfigType

from .actions import async_setup_actions
from .const import CONF_LOCATION, DOMAIN, LOGGER, SUBENTRY_AGENT
from .errors import CREDENTIAL_ERRORS, TRANSIENT_ERRORS, error_key
from .issues import async_delete_issues
from .live import LiveError
from .migration import async_migrate_entry
from .monitor import async_watch_assistant
from .runtime import (
    GeminiLiveConfigEntry,
    GeminiLiveRuntimeData,
    async_create_live_client,
    validation_model,
)
from .satellites import SatelliteRuns
from .voice.config import create_voice_manager

__all__ = ["GeminiLiveConfigEntry", "GeminiLiveRuntimeData", "async_migrate_entry"]

PLATFORMS: tuple[Platform, ...] = (
    Platform.CONVERSATION,
    Platform.STT,
    Platform.TTS,
    Platform.SENSOR,
)
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the integration's actions (they work with any loaded entry)."""
    async_setup_actions(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: GeminiLiveConfigEntry) -> bool:
    """Set up Gemini Live from a config entry and its assistants."""
    model = validation_model(entry)
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
        agents={
            subentry.subentry_id: create_voice_manager(hass, entry, subentry, client)
            for subentry in entry.get_subentries_of_type(SUBENTRY_AGENT)
        },
        satellites=satellites,
    )
    async_delete_issues(hass, entry, keep=set(entry.runtime_data.agents))
    for subentry_id, manager in entry.runtime_data.agents.items():
        entry.async_on_unload(
            async_watch_assistant(hass, entry, entry.subentries[subentry_id], manager)
        )
    entry.async_on_unload(entry.add_update_listener(_async_reload))
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def _async_reload(hass: HomeAssistant, entry: GeminiLiveConfigEntry) -> None:
    """Reload the entry when it or its assistants changed."""
    await hass.config_entries.async_reload(entry.entry_id)


async def async_unload_entry(hass: HomeAssistant, entry: GeminiLiveConfigEntry) -> bool:
    """Unload a config entry (its Live sessions are closed first)."""
    for manager in entry.runtime_data.agents.values():
        await manager.async_close()
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: GeminiLiveConfigEntry) -> None:
    """Remove what outlives a removed entry: its Repairs issues."""
    async_delete_issues(hass, entry)
