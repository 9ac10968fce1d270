"""Migration of version-1 entries (one assistant in the entry's options).

The previous release kept the model in the entry's data and the settings in
its options; its device was identified by the entry id and its entities had
the unique ids `{entry_id}-conversation|stt|tts`. Such an entry migrates at
setup, with no user action, into an account with one assistant subentry,
keeping its entity ids, so that the pipelines naming them keep working.
"""

from __future__ import annotations

import hashlib
from types import MappingProxyType

from homeassistant.components.assist_pipeline import PipelineStage
from homeassistant.config_entries import ConfigEntryState, ConfigSubentry
from homeassistant.const import CONF_API_KEY
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.gemini_live.const import (
    CONF_AFFECTIVE_DIALOG,
    CONF_BASE_URL,
    CONF_MODEL,
    CONF_PROVIDER,
    CONF_VOICE,
    DOMAIN,
    PROVIDER_GEMINI_API,
    RECOMMENDED_OPTIONS,
    SUBENTRY_AGENT,
)
from tests.entries import agent
from tests.fake_live import FakeLiveServer, Reply
from tests.voice.conftest import Voice, create_pipeline

TITLE = "Gemini Live (Gemini API)"
MODEL = "gemini-2.5-flash-native-audio-preview-12-2025"
OPTIONS = {**RECOMMENDED_OPTIONS, CONF_VOICE: "Puck", CONF_AFFECTIVE_DIALOG: True}
KEYS = ("conversation", "stt", "tts")
"""The entity keys (and domains) of the previous release."""


@pytest.fixture(autouse=True)
async def setup_components(hass: HomeAssistant) -> None:
    """Set up what a voice pipeline needs."""
    for domain in ("homeassistant", "conversation", "assist_pipeline", "stt", "tts"):
        assert await async_setup_component(hass, domain, {})


def _old_entry(
    hass: HomeAssistant, server: FakeLiveServer, version: int = 1
) -> MockConfigEntry:
    """Add an entry of the previous release's shape."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=TITLE,
        version=version,
        minor_version=1,
        unique_id=hashlib.sha256(server.api_key.encode()).hexdigest(),
        data={
            CONF_PROVIDER: PROVIDER_GEMINI_API,
            CONF_API_KEY: server.api_key,
            CONF_MODEL: MODEL,
            CONF_BASE_URL: server.base_url,
        },
        options=OPTIONS,
    )
    entry.add_to_hass(hass)
    return entry


def _old_registry(
    hass: HomeAssistant, entry: MockConfigEntry
) -> tuple[dr.DeviceEntry, dict[str, er.RegistryEntry]]:
    """Register the device and entities as the previous release did.

    One service device identified by the entry id, named after the entry,
    and its entities named after it; the user renamed the STT entity.
    """
    device = dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id,
        identifiers={(DOMAIN, entry.entry_id)},
        name=entry.title,
        manufacturer="Google",
        model=MODEL,
        entry_type=dr.DeviceEntryType.SERVICE,
    )
    registry = er.async_get(hass)
    entities = {
        key: registry.async_get_or_create(
            key,
            DOMAIN,
            f"{entry.entry_id}-{key}",
            config_entry=entry,
            device_id=device.id,
            has_entity_name=True,
            suggested_object_id="gemini_live_gemini_api",
        )
        for key in KEYS
    }
    entities["stt"] = registry.async_update_entity(
        entities["stt"].entity_id, new_entity_id="stt.kitchen_ears"
    )
    return device, entities


async def test_old_entry_migrates_at_setup(
    hass: HomeAssistant, fake_live: FakeLiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The model and options become one assistant; device and entities follow.

    Same device, same entity registry entries (so the same entity ids, the
    user's name included), now on the subentry with its unique ids; no
    entity is created beside them, and no deprecated registry call is made.
    """
    entry = _old_entry(hass, fake_live)
    old_device, old_entities = _old_registry(hass, entry)

    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    assert entry.state is ConfigEntryState.LOADED
    assert (entry.version, entry.minor_version) == (2, 1)
    assert entry.data == {
        CONF_PROVIDER: PROVIDER_GEMINI_API,
        CONF_API_KEY: fake_live.api_key,
        CONF_BASE_URL: fake_live.base_url,
    }
    assert entry.options == {}
    assert entry.title == TITLE
    (subentry,) = entry.subentries.values()
    assert subentry.subentry_type == SUBENTRY_AGENT
    assert subentry.title == TITLE
    assert dict(subentry.data) == {CONF_MODEL: MODEL, **OPTIONS}

    device = dr.async_get(hass).async_get(old_device.id)
    assert device is not None
    assert device.identifiers == {(DOMAIN, subentry.subentry_id)}
    assert device.config_entry_id == entry.entry_id
    assert device.config_subentry_id == subentry.subentry_id
    assert device.name == TITLE

    registry = er.async_get(hass)
    for key, old in old_entities.items():
        entity = registry.async_get(old.entity_id)
        assert entity is not None
        assert entity.id == old.id
        assert entity.unique_id == f"{subentry.subentry_id}-{key}"
        assert entity.config_subentry_id == subentry.subentry_id
        assert entity.device_id == device.id
        assert hass.states.get(old.entity_id) is not None
    voice_entities = [
        e.entity_id
        for e in er.async_entries_for_config_entry(registry, entry.entry_id)
        if e.domain in KEYS
    ]
    assert sorted(voice_entities) == sorted(e.entity_id for e in old_entities.values())
    # The assistant's sessions use its settings.
    setup = fake_live.connections[0].setup
    assert setup is not None
    assert setup["model"] == f"models/{MODEL}"
    assert "Detected that custom integration" not in caplog.text
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_pipeline_of_the_old_entities_still_runs(
    hass: HomeAssistant, fake_live: FakeLiveServer
) -> None:
    """A pipeline made before the migration runs a voice turn end to end."""
    entry = _old_entry(hass, fake_live)
    _, old_entities = _old_registry(hass, entry)
    entity_ids = {key: entity.entity_id for key, entity in old_entities.items()}
    pipeline_id = await create_pipeline(hass, entity_ids, "en")

    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    voice = Voice(
        hass=hass,
        server=fake_live,
        entry=entry,
        pipeline_id=pipeline_id,
        stt_entity=entity_ids["stt"],
        conversation_entity=entity_ids["conversation"],
        tts_entity=entity_ids["tts"],
    )
    fake_live.queue_reply(Reply(text="The kitchen light is on."))

    run = await voice.run("turn on the kitchen light", end_stage=PipelineStage.TTS)

    assert run.error is None
    assert run.heard == "turn on the kitchen light"
    assert run.speech == "The kitchen light is on."
    assert run.tts_token
    connection = fake_live.connections[-1]
    config = connection.config["generationConfig"]
    assert config["speechConfig"]["voiceConfig"]["prebuiltVoiceConfig"] == {
        "voiceName": "Puck"
    }
    assert config["enableAffectiveDialog"] is True
    assert agent(entry).data[CONF_VOICE] == "Puck"
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_migration_without_registry_entries(
    hass: HomeAssistant, fake_live: FakeLiveServer
) -> None:
    """An old entry that never created its entities migrates all the same."""
    entry = _old_entry(hass, fake_live)

    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    assert entry.version == 2
    subentry = agent(entry)
    registry = er.async_get(hass)
    unique_ids = {
        e.unique_id
        for e in er.async_entries_for_config_entry(registry, entry.entry_id)
        if e.domain in KEYS
    }
    assert unique_ids == {f"{subentry.subentry_id}-{key}" for key in KEYS}
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_interrupted_migration_runs_again(
    hass: HomeAssistant, fake_live: FakeLiveServer
) -> None:
    """A migration cut off after it added the assistant finishes with that one."""
    entry = _old_entry(hass, fake_live)
    device, entities = _old_registry(hass, entry)
    hass.config_entries.async_add_subentry(
        entry,
        ConfigSubentry(
            data=MappingProxyType({CONF_MODEL: MODEL, **OPTIONS}),
            subentry_type="conversation",
            title=TITLE,
            unique_id=None,
        ),
    )

    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    assert entry.version == 2
    assert len(entry.subentries) == 1
    subentry = agent(entry)
    registry = er.async_get(hass)
    for key, old in entities.items():
        moved = registry.async_get(old.entity_id)
        assert moved is not None
        assert moved.unique_id == f"{subentry.subentry_id}-{key}"
    assert dr.async_get(hass).async_get_device_by_identifier(
        (DOMAIN, subentry.subentry_id), entry.entry_id
    ) == dr.async_get(hass).async_get(device.id)
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_newer_version_refuses_to_load(
    hass: HomeAssistant, fake_live: FakeLiveServer
) -> None:
    """An entry written by a newer release is left alone and not loaded."""
    entry = _old_entry(hass, fake_live, version=3)

    assert not await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    assert entry.state is ConfigEntryState.MIGRATION_ERROR
    assert entry.version == 3
    assert CONF_MODEL in entry.data
    assert entry.subentries == {}
    assert fake_live.connections == []
