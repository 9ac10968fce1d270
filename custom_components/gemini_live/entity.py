"""Base entity of the Gemini Live entities (one device per assistant)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from homeassistant.config_entries import ConfigSubentry
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import CONF_MODEL, DOMAIN, SUBENTRY_AGENT
from .runtime import GeminiLiveConfigEntry
from .voice import VoiceManager


def unique_id(subentry: ConfigSubentry, key: str) -> str:
    """Return the unique id of the assistant's entity `key` ("stt", "tts", ...)."""
    return f"{subentry.subentry_id}-{key}"


def add_assistant_entities(
    entry: GeminiLiveConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    create: Callable[[ConfigSubentry], Iterable[Entity]],
) -> None:
    """Add the entities `create` makes for each assistant, on its subentry."""
    for subentry in entry.get_subentries_of_type(SUBENTRY_AGENT):
        async_add_entities(create(subentry), config_subentry_id=subentry.subentry_id)


class GeminiLiveEntity(Entity):
    """An entity of a Gemini Live assistant, on the assistant's device."""

    _attr_has_entity_name = True

    def __init__(
        self, entry: GeminiLiveConfigEntry, subentry: ConfigSubentry, key: str
    ) -> None:
        """Bind the entity to an assistant; `key` tells its entities apart."""
        self.entry = entry
        self.subentry = subentry
        self._attr_unique_id = unique_id(subentry, key)
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, subentry.subentry_id)},
            name=subentry.title,
            manufacturer="Google",
            model=subentry.data[CONF_MODEL],
            entry_type=DeviceEntryType.SERVICE,
        )

    @property
    def settings(self) -> Mapping[str, Any]:
        """The assistant's settings (its subentry's data)."""
        return self.subentry.data

    @property
    def voice_manager(self) -> VoiceManager:
        """The assistant's Live sessions."""
        return self.entry.runtime_data.agents[self.subentry.subentry_id]
