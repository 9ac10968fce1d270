"""Base entity of the Gemini Live entities (one device per config entry)."""

from __future__ import annotations

from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import Entity

from .const import CONF_MODEL, DOMAIN
from .runtime import GeminiLiveConfigEntry


def unique_id(entry: GeminiLiveConfigEntry, key: str) -> str:
    """Return the unique id of the entry's entity `key` ("stt", "tts", ...)."""
    return f"{entry.entry_id}-{key}"


class GeminiLiveEntity(Entity):
    """An entity of a Gemini Live entry, named after its device."""

    _attr_has_entity_name = True
    _attr_name = None

    def __init__(self, entry: GeminiLiveConfigEntry, key: str) -> None:
        """Bind the entity to `entry`; `key` tells the entry's entities apart."""
        self.entry = entry
        self._attr_unique_id = unique_id(entry, key)
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, entry.entry_id)},
            name=entry.title,
            manufacturer="Google",
            model=entry.data[CONF_MODEL],
            entry_type=DeviceEntryType.SERVICE,
        )
