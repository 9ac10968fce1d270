"""Config entry migration: version 1 (one assistant in the entry's options).

Version 2 keeps the account in the entry and each assistant in a subentry.
A version-1 entry's model and options become its one assistant, and its
device and entities move onto that subentry with their entity ids (and so
the pipelines that name them) unchanged.
"""

from __future__ import annotations

from types import MappingProxyType

from homeassistant.config_entries import ConfigEntry, ConfigSubentry
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er

from .const import CONF_MODEL, DEFAULT_AGENT_TITLE, DOMAIN, LOGGER, SUBENTRY_AGENT
from .entity import unique_id

ENTITY_KEYS = ("conversation", "stt", "tts")
"""The `unique_id` keys of an assistant's entities."""


async def async_migrate_entry(hass: HomeAssistant, entry: ConfigEntry) -> bool:
    """Migrate an entry to the current version; False for a newer one."""
    if entry.version > 2:
        return False
    if entry.version == 1:
        _migrate_to_subentries(hass, entry)
    LOGGER.debug("Entry %s is at version %s", entry.entry_id, entry.version)
    return True


def _migrate_to_subentries(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Move the entry's model and options into one assistant subentry.

    Safe to run again after an interrupted run: the subentry it added is
    reused, and moved registry entries are no longer found by their old ids.
    """
    data = dict(entry.data)
    model = data.pop(CONF_MODEL)
    if added := entry.get_subentries_of_type(SUBENTRY_AGENT):
        subentry = added[0]
    else:
        subentry = ConfigSubentry(
            data=MappingProxyType({CONF_MODEL: model, **entry.options}),
            subentry_type=SUBENTRY_AGENT,
            title=entry.title or DEFAULT_AGENT_TITLE,
            unique_id=None,
        )
        hass.config_entries.async_add_subentry(entry, subentry)

    entities = er.async_get(hass)
    for key in ENTITY_KEYS:
        # The key is also the entity's platform.
        old_id = f"{entry.entry_id}-{key}"
        if entity_id := entities.async_get_entity_id(key, DOMAIN, old_id):
            entities.async_update_entity(
                entity_id,
                config_subentry_id=subentry.subentry_id,
                new_unique_id=unique_id(subentry, key),
            )
    devices = dr.async_get(hass)
    if device := devices.async_get_device_by_identifier(
        (DOMAIN, entry.entry_id), entry.entry_id
    ):
        devices.async_update_device(
            device.id,
            new_identifiers={(DOMAIN, subentry.subentry_id)},
            new_config_subentry_id=subentry.subentry_id,
        )
    hass.config_entries.async_update_entry(
        entry, data=data, options={}, version=2, minor_version=1
    )
