"""Gemini Live for Home Assistant: a native-audio Gemini Live model for Assist."""

from __future__ import annotations

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import (
    ConfigEntryAuthFailed,
    ConfigEntryError,
    ConfigEntryNotReady,
)

from .const import CONF_LOCATION, CONF_MODEL, DOMAIN, LOGGER
from .live import (
    InvalidLocationError,
    InvalidServiceAccountError,
    LiveAuthError,
    LiveError,
    LiveInvalidArgumentError,
    LiveModelNotFoundError,
    LivePermissionError,
    LiveQuotaError,
)
from .runtime import (
    GeminiLiveConfigEntry,
    GeminiLiveRuntimeData,
    async_create_live_client,
)
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
    except (LiveAuthError, InvalidServiceAccountError) as err:
        raise ConfigEntryAuthFailed(
            translation_domain=DOMAIN, translation_key="invalid_auth"
        ) from err
    except LivePermissionError as err:
        raise ConfigEntryAuthFailed(
            translation_domain=DOMAIN,
            translation_key="permission_denied",
            translation_placeholders={"model": model},
        ) from err
    except LiveModelNotFoundError as err:
        raise ConfigEntryError(
            translation_domain=DOMAIN,
            translation_key="model_not_found",
            translation_placeholders={"model": model},
        ) from err
    except LiveInvalidArgumentError as err:
        raise ConfigEntryError(
            translation_domain=DOMAIN,
            translation_key="model_not_supported",
            translation_placeholders={"model": model},
        ) from err
    except InvalidLocationError as err:
        raise ConfigEntryError(
            translation_domain=DOMAIN,
            translation_key="invalid_location",
            translation_placeholders={"location": str(entry.data.get(CONF_LOCATION))},
        ) from err
    except LiveQuotaError as err:
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="quota_exceeded",
            translation_placeholders={"reason": err.reason},
        ) from err
    except LiveError as err:
        # Connection, timeout and service errors: retry later.
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="cannot_connect",
            translation_placeholders={"reason": err.reason or type(err).__name__},
        ) from err

    LOGGER.debug("Live session check passed for model %s", model)
    entry.runtime_data = GeminiLiveRuntimeData(
        client=client, voice=create_voice_manager(hass, entry, client)
    )
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: GeminiLiveConfigEntry) -> bool:
    """Unload a config entry (its Live sessions are closed first)."""
    await entry.runtime_data.voice.async_close()
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
