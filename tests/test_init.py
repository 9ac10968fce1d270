"""Tests for setting up, reloading and unloading Gemini Live config entries."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from homeassistant.components import conversation
from homeassistant.config_entries import (
    SOURCE_REAUTH,
    SOURCE_USER,
    ConfigEntryState,
    ConfigSubentry,
)
from homeassistant.const import CONF_API_KEY, CONF_NAME
from homeassistant.core import Context, HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr, entity_registry as er, intent
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.gemini_live import PLATFORMS, GeminiLiveRuntimeData
from custom_components.gemini_live.const import (
    CONF_BASE_URL,
    CONF_LOCATION,
    CONF_MODEL,
    CONF_PROJECT_ID,
    CONF_PROVIDER,
    CONF_SERVICE_ACCOUNT,
    CONF_VOICE,
    DOMAIN,
    GEMINI_API_MODELS,
    PROVIDER_GEMINI_API,
    PROVIDER_VERTEX_AI,
    RECOMMENDED_MODEL,
    RECOMMENDED_OPTIONS,
    SUBENTRY_AGENT,
    VERTEX_AI_MODELS,
)
from custom_components.gemini_live.live import LiveClient, Provider
from tests.entries import account_entry, agent, agent_data
from tests.fake_live.scenario import INVALID_ARGUMENT, Close, Fault, Refuse
from tests.fake_live.server import FakeLiveServer

PROJECT = "test-project"
UNREACHABLE = "http://127.0.0.1:9"
VOICE_DOMAINS = {"conversation", "stt", "tts"}
"""The domains of an assistant's voice entities."""


@pytest.fixture(autouse=True)
async def setup_homeassistant(hass: HomeAssistant) -> None:
    """Set up Home Assistant's core integration, which conversation needs."""
    assert await async_setup_component(hass, "homeassistant", {})


def _foreign_key(server: FakeLiveServer) -> str:
    """Return a key file of a known account signed with a key never registered."""
    data = json.loads(server.service_account_json(PROJECT))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    data["private_key"] = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return json.dumps(data)


def _entry(hass: HomeAssistant, data: dict[str, Any], *models: str) -> MockConfigEntry:
    """Add an entry of the account `data` with an assistant per model."""
    if data[CONF_PROVIDER] == PROVIDER_VERTEX_AI:
        title = f"Gemini Live (Vertex AI, {data[CONF_PROJECT_ID]})"
        email = json.loads(data[CONF_SERVICE_ACCOUNT]).get("client_email", "unknown")
        unique_id = f"{email}/{data[CONF_PROJECT_ID]}"
    else:
        title = "Gemini Live (Gemini API)"
        unique_id = hashlib.sha256(data[CONF_API_KEY].encode()).hexdigest()
    entry = account_entry(
        data,
        *(agent_data(model, title=f"Assistant {n}") for n, model in enumerate(models)),
        title=title,
        unique_id=unique_id,
    )
    entry.add_to_hass(hass)
    return entry


def _gemini_data(server: FakeLiveServer, **changes: Any) -> dict[str, Any]:
    return {
        CONF_PROVIDER: PROVIDER_GEMINI_API,
        CONF_API_KEY: server.api_key,
        CONF_BASE_URL: server.base_url,
        **changes,
    }


def _vertex_data(server: FakeLiveServer, **changes: Any) -> dict[str, Any]:
    return {
        CONF_PROVIDER: PROVIDER_VERTEX_AI,
        CONF_SERVICE_ACCOUNT: server.service_account_json(PROJECT),
        CONF_PROJECT_ID: PROJECT,
        CONF_LOCATION: "us-central1",
        CONF_BASE_URL: server.base_url,
        **changes,
    }


def voice_entities(hass: HomeAssistant, subentry: ConfigSubentry) -> dict[str, str]:
    """Return an assistant's voice entity ids by domain."""
    registry = er.async_get(hass)
    return {
        e.domain: e.entity_id
        for e in registry.entities.values()
        if e.config_subentry_id == subentry.subentry_id and e.domain in VOICE_DOMAINS
    }


async def test_setup_and_unload_gemini_api(
    hass: HomeAssistant, fake_live: FakeLiveServer
) -> None:
    """The entry checks a Live session, keeps a client, and unloads."""
    entry = _entry(hass, _gemini_data(fake_live), GEMINI_API_MODELS[0])
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    assert entry.state is ConfigEntryState.LOADED
    assert isinstance(entry.runtime_data, GeminiLiveRuntimeData)
    client = entry.runtime_data.client
    assert isinstance(client, LiveClient)
    assert client.endpoint.provider is Provider.GEMINI_API
    assert client.endpoint.base_url == fake_live.base_url
    # The check was one Live session on the assistant's model, closed again.
    assert len(fake_live.connections) == 1
    connection = fake_live.connections[0]
    assert connection.setup is not None
    assert connection.setup["model"] == f"models/{GEMINI_API_MODELS[0]}"
    assert connection.setup_complete_sent
    await fake_live.wait_for(lambda: connection.closed)

    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.NOT_LOADED


async def test_setup_vertex_ai(hass: HomeAssistant, fake_live: FakeLiveServer) -> None:
    """A Vertex AI entry signs in with its service account."""
    entry = _entry(
        hass,
        _vertex_data(fake_live, **{CONF_LOCATION: "europe-west4"}),
        VERTEX_AI_MODELS[0],
    )
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    assert entry.state is ConfigEntryState.LOADED
    endpoint = entry.runtime_data.client.endpoint
    assert endpoint.provider is Provider.VERTEX_AI
    assert endpoint.project_id == PROJECT
    assert endpoint.location == "europe-west4"
    assert fake_live.tokens_issued == 1
    assert fake_live.connections[0].headers["Authorization"].startswith("Bearer ")
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_each_assistant_has_its_device_and_entities(
    hass: HomeAssistant, fake_live: FakeLiveServer
) -> None:
    """Two assistants: a device each, named after it, with its three entities."""
    entry = _entry(
        hass, _gemini_data(fake_live), GEMINI_API_MODELS[0], GEMINI_API_MODELS[-1]
    )
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    devices = dr.async_get(hass)
    entities = er.async_get(hass)
    assert set(entry.runtime_data.agents) == set(entry.subentries)
    for subentry in entry.get_subentries_of_type(SUBENTRY_AGENT):
        device = devices.async_get_device_by_identifier(
            (DOMAIN, subentry.subentry_id), entry.entry_id
        )
        assert device is not None
        assert device.name == subentry.title
        assert device.model == subentry.data[CONF_MODEL]
        assert device.config_subentry_id == subentry.subentry_id
        ids = voice_entities(hass, subentry)
        assert set(ids) == VOICE_DOMAINS
        for entity_id in ids.values():
            registered = entities.async_get(entity_id)
            assert registered is not None
            assert registered.device_id == device.id
            assert hass.states.get(entity_id) is not None
    # One check of the credentials, whatever the number of assistants.
    assert len(fake_live.connections) == 1
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_setup_without_assistants(
    hass: HomeAssistant, fake_live: FakeLiveServer
) -> None:
    """An entry whose assistants were all removed loads on the recommended model."""
    entry = _entry(hass, _gemini_data(fake_live))
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data.agents == {}
    setup = fake_live.connections[0].setup
    assert setup is not None
    assert setup["model"] == f"models/{RECOMMENDED_MODEL[PROVIDER_GEMINI_API]}"
    assert er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id) == []
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_adding_an_assistant_reloads_the_entry(
    hass: HomeAssistant, fake_live: FakeLiveServer
) -> None:
    """A new assistant (subentry flow) reloads the entry: its device and entities.

    The first assistant's entities stay as they were.
    """
    entry = _entry(hass, _gemini_data(fake_live), GEMINI_API_MODELS[0])
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    first = agent(entry)
    first_entities = voice_entities(hass, first)

    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_AGENT), context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_NAME: "Office", CONF_MODEL: GEMINI_API_MODELS[-1]}
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {**RECOMMENDED_OPTIONS, CONF_VOICE: "Puck"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()

    assert entry.state is ConfigEntryState.LOADED
    office = agent(entry, 1)
    assert set(entry.runtime_data.agents) == {first.subentry_id, office.subentry_id}
    device = dr.async_get(hass).async_get_device_by_identifier(
        (DOMAIN, office.subentry_id), entry.entry_id
    )
    assert device is not None
    assert device.name == "Office"
    office_entities = voice_entities(hass, office)
    assert set(office_entities) == VOICE_DOMAINS
    assert all(hass.states.get(e) for e in office_entities.values())
    assert voice_entities(hass, first) == first_entities
    # Setup check, the flow's model and settings checks, the reload's check.
    assert len(fake_live.connections) == 4
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_reauth_at_the_first_refusal_while_running(
    hass: HomeAssistant,
    fake_live: FakeLiveServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A key revoked while running starts reauthentication at the next turn.

    No restart: the entry stays loaded, the refused turn answers with the
    error, and a new key makes the next turn work (the entry reloads once).
    """
    assert await async_setup_component(hass, "conversation", {})
    entry = _entry(hass, _gemini_data(fake_live), GEMINI_API_MODELS[0])
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    agent_id = voice_entities(hass, agent(entry))["conversation"]
    assert hass.config_entries.flow.async_progress() == []

    # Google no longer accepts the entry's key; a new one is issued.
    revoked = fake_live.api_key
    fake_live.api_key = "AIzaSyFAKE-new-key-0000000000000000"
    refused = await conversation.async_converse(
        hass, "hello", None, Context(), agent_id=agent_id
    )
    assert refused.response.response_type is intent.IntentResponseType.ERROR
    assert "API key not valid" in refused.response.speech["plain"]["speech"]
    await hass.async_block_till_done()

    assert entry.state is ConfigEntryState.LOADED
    (flow,) = hass.config_entries.flow.async_progress()
    assert flow["context"]["source"] == SOURCE_REAUTH
    assert flow["context"]["entry_id"] == entry.entry_id
    assert flow["step_id"] == "reauth_confirm"
    assert revoked not in caplog.text

    connections = len(fake_live.connections)
    result = await hass.config_entries.flow.async_configure(
        flow["flow_id"], {CONF_API_KEY: fake_live.api_key}
    )
    await hass.async_block_till_done()
    assert result["reason"] == "reauth_successful"
    assert entry.state is ConfigEntryState.LOADED
    assert entry.data[CONF_API_KEY] == fake_live.api_key
    # The flow's check and one reload's check (the update listener reloads).
    assert len(fake_live.connections) == connections + 2
    assert "should use it for scheduling a reload" not in caplog.text

    response = await conversation.async_converse(
        hass, "hello", None, Context(), agent_id=agent_id
    )
    assert response.response.speech["plain"]["speech"] == "OK."
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_reconfigure_reloads_once(
    hass: HomeAssistant, fake_live: FakeLiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A loaded entry reconfigured reloads once, on its new endpoint."""
    entry = _entry(hass, _gemini_data(fake_live), GEMINI_API_MODELS[0])
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {"advanced_settings": {CONF_BASE_URL: f"{fake_live.base_url}/"}},
    )
    await hass.async_block_till_done()

    assert result["reason"] == "reconfigure_successful"
    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data.client.endpoint.base_url == f"{fake_live.base_url}/"
    # Setup, the flow's check, one reload.
    assert len(fake_live.connections) == 3
    assert "should use it for scheduling a reload" not in caplog.text
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_reconfigured_assistant_speaks_with_its_new_voice(
    hass: HomeAssistant, fake_live: FakeLiveServer
) -> None:
    """An assistant's new settings reach its next conversation (the entry reloads)."""
    assert await async_setup_component(hass, "conversation", {})
    entry = _entry(hass, _gemini_data(fake_live), GEMINI_API_MODELS[0])
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    subentry = agent(entry)
    agent_id = voice_entities(hass, subentry)["conversation"]

    result = await entry.start_subentry_reconfigure_flow(hass, subentry.subentry_id)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_MODEL: GEMINI_API_MODELS[0]}
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {**RECOMMENDED_OPTIONS, CONF_VOICE: "Puck"}
    )
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED

    response = await conversation.async_converse(
        hass, "hello", None, Context(), agent_id=agent_id
    )
    assert response.response.speech["plain"]["speech"] == "OK."
    speech = fake_live.connections[-1].config["generationConfig"]["speechConfig"]
    assert speech["voiceConfig"]["prebuiltVoiceConfig"]["voiceName"] == "Puck"
    # Same entity, now with the new settings.
    assert voice_entities(hass, agent(entry))["conversation"] == agent_id
    assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize(
    ("provider", "changes", "fault", "translation_key"),
    [
        (PROVIDER_GEMINI_API, {CONF_API_KEY: "AIzaSyREVOKED"}, None, "invalid_auth"),
        (
            PROVIDER_GEMINI_API,
            {},
            Close(code=1008, reason="Permission denied on resource project x."),
            "permission_denied",
        ),
        (PROVIDER_VERTEX_AI, {"foreign_key": True}, None, "invalid_auth"),
        (
            PROVIDER_VERTEX_AI,
            {CONF_SERVICE_ACCOUNT: '{"type": "service_account"}'},
            None,
            "invalid_service_account",
        ),
    ],
    ids=["invalid_key", "permission_denied", "foreign_key", "broken_key_file"],
)
async def test_setup_auth_failed_starts_reauth(
    hass: HomeAssistant,
    *,
    fake_live: FakeLiveServer,
    provider: str,
    changes: dict[str, Any],
    fault: Fault | None,
    translation_key: str,
) -> None:
    """Refused credentials fail the setup and start a reauthentication flow."""
    if changes.pop("foreign_key", False):
        changes[CONF_SERVICE_ACCOUNT] = _foreign_key(fake_live)
    if fault is not None:
        fake_live.add_fault(fault)
    if provider == PROVIDER_GEMINI_API:
        entry = _entry(hass, _gemini_data(fake_live, **changes), GEMINI_API_MODELS[0])
    else:
        entry = _entry(hass, _vertex_data(fake_live, **changes), VERTEX_AI_MODELS[0])
    assert not await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    assert entry.state is ConfigEntryState.SETUP_ERROR
    assert entry.error_reason_translation_key == translation_key
    flows = hass.config_entries.flow.async_progress()
    assert len(flows) == 1
    assert flows[0]["step_id"] == "reauth_confirm"
    assert flows[0]["context"]["source"] == SOURCE_REAUTH
    assert flows[0]["context"]["entry_id"] == entry.entry_id


async def test_reauth_after_failed_setup_loads_the_entry(
    hass: HomeAssistant, fake_live: FakeLiveServer
) -> None:
    """An entry that failed on its key loads once the new key is entered."""
    entry = _entry(
        hass, _gemini_data(fake_live, **{CONF_API_KEY: "AIzaSyREVOKED"}), "x"
    )
    hass.config_entries.async_update_subentry(
        entry, agent(entry), data={CONF_MODEL: GEMINI_API_MODELS[0]}
    )
    assert not await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    (flow,) = hass.config_entries.flow.async_progress()

    result = await hass.config_entries.flow.async_configure(
        flow["flow_id"], {CONF_API_KEY: fake_live.api_key}
    )
    await hass.async_block_till_done()
    assert result["reason"] == "reauth_successful"
    assert entry.state is ConfigEntryState.LOADED
    assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize(
    ("model", "changes", "fault", "translation_key", "placeholders"),
    [
        (
            "gemini-unknown",
            {},
            None,
            "model_not_found",
            {"model": "gemini-unknown"},
        ),
        (
            VERTEX_AI_MODELS[0],
            {},
            Close(code=1007, reason=INVALID_ARGUMENT),
            "model_not_supported",
            {"model": VERTEX_AI_MODELS[0]},
        ),
        (
            VERTEX_AI_MODELS[0],
            {CONF_LOCATION: "global"},
            None,
            "invalid_location",
            {"location": "global"},
        ),
    ],
    ids=["unknown_model", "invalid_argument", "global_location"],
)
async def test_setup_error(
    hass: HomeAssistant,
    *,
    fake_live: FakeLiveServer,
    model: str,
    changes: dict[str, Any],
    fault: Fault | None,
    translation_key: str,
    placeholders: dict[str, str],
) -> None:
    """Settings the service refuses fail the setup for good (reconfigure fixes)."""
    if fault is not None:
        fake_live.add_fault(fault)
    entry = _entry(hass, _vertex_data(fake_live, **changes), model)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    assert entry.state is ConfigEntryState.SETUP_ERROR
    assert entry.error_reason_translation_key == translation_key
    assert placeholders.items() <= entry.error_reason_translation_placeholders.items()
    assert hass.config_entries.flow.async_progress() == []


@pytest.mark.parametrize(
    ("base_url", "fault", "translation_key"),
    [
        (None, Refuse(status=503), "cannot_connect"),
        (None, Close.internal(), "cannot_connect"),
        (UNREACHABLE, None, "cannot_connect"),
        (None, Close.quota(), "quota_exceeded"),
    ],
    ids=["refused_upgrade", "internal_error", "unreachable", "quota"],
)
async def test_setup_not_ready(
    hass: HomeAssistant,
    fake_live: FakeLiveServer,
    base_url: str | None,
    fault: Fault | None,
    translation_key: str,
) -> None:
    """Connection, service and quota failures retry the setup later."""
    if fault is not None:
        fake_live.add_fault(fault)
    entry = _entry(
        hass,
        _gemini_data(fake_live, **{CONF_BASE_URL: base_url or fake_live.base_url}),
        GEMINI_API_MODELS[0],
    )
    assert not await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert entry.error_reason_translation_key == translation_key
    assert entry.error_reason_translation_placeholders is not None
    assert entry.error_reason_translation_placeholders["reason"]
    assert hass.config_entries.flow.async_progress() == []
    await hass.config_entries.async_unload(entry.entry_id)


def test_platforms_extendable() -> None:
    """PLATFORMS is a tuple the voice entities extend."""
    assert isinstance(PLATFORMS, tuple)
