"""Tests for setting up and unloading Gemini Live config entries."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import CONF_API_KEY
from homeassistant.core import HomeAssistant
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
    DOMAIN,
    GEMINI_API_MODELS,
    PROVIDER_GEMINI_API,
    PROVIDER_VERTEX_AI,
    RECOMMENDED_OPTIONS,
    VERTEX_AI_MODELS,
)
from custom_components.gemini_live.live import LiveClient, Provider
from tests.fake_live.scenario import INVALID_ARGUMENT, Close, Fault, Refuse
from tests.fake_live.server import FakeLiveServer

PROJECT = "test-project"
UNREACHABLE = "http://127.0.0.1:9"


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


def _entry(hass: HomeAssistant, data: dict[str, Any]) -> MockConfigEntry:
    if data[CONF_PROVIDER] == PROVIDER_VERTEX_AI:
        title = f"Gemini Live (Vertex AI, {data[CONF_PROJECT_ID]})"
        email = json.loads(data[CONF_SERVICE_ACCOUNT]).get("client_email", "unknown")
        unique_id = f"{email}/{data[CONF_PROJECT_ID]}"
    else:
        title = "Gemini Live (Gemini API)"
        unique_id = hashlib.sha256(data[CONF_API_KEY].encode()).hexdigest()
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=title,
        unique_id=unique_id,
        data=data,
        options=RECOMMENDED_OPTIONS,
    )
    entry.add_to_hass(hass)
    return entry


def _gemini_data(server: FakeLiveServer, **changes: Any) -> dict[str, Any]:
    return {
        CONF_PROVIDER: PROVIDER_GEMINI_API,
        CONF_API_KEY: server.api_key,
        CONF_MODEL: GEMINI_API_MODELS[0],
        CONF_BASE_URL: server.base_url,
        **changes,
    }


def _vertex_data(server: FakeLiveServer, **changes: Any) -> dict[str, Any]:
    return {
        CONF_PROVIDER: PROVIDER_VERTEX_AI,
        CONF_SERVICE_ACCOUNT: server.service_account_json(PROJECT),
        CONF_PROJECT_ID: PROJECT,
        CONF_LOCATION: "us-central1",
        CONF_MODEL: VERTEX_AI_MODELS[0],
        CONF_BASE_URL: server.base_url,
        **changes,
    }


async def test_setup_and_unload_gemini_api(
    hass: HomeAssistant, fake_live: FakeLiveServer
) -> None:
    """The entry checks a Live session, keeps a client, and unloads."""
    entry = _entry(hass, _gemini_data(fake_live))
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    assert entry.state is ConfigEntryState.LOADED
    assert isinstance(entry.runtime_data, GeminiLiveRuntimeData)
    client = entry.runtime_data.client
    assert isinstance(client, LiveClient)
    assert client.endpoint.provider is Provider.GEMINI_API
    assert client.endpoint.base_url == fake_live.base_url
    # The check was one Live session that was closed again.
    assert len(fake_live.connections) == 1
    connection = fake_live.connections[0]
    assert connection.setup_complete_sent
    await fake_live.wait_for(lambda: connection.closed)

    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.NOT_LOADED


async def test_setup_vertex_ai(hass: HomeAssistant, fake_live: FakeLiveServer) -> None:
    """A Vertex AI entry signs in with its service account."""
    entry = _entry(hass, _vertex_data(fake_live, **{CONF_LOCATION: "europe-west4"}))
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
    data = (
        _gemini_data(fake_live, **changes)
        if provider == PROVIDER_GEMINI_API
        else _vertex_data(fake_live, **changes)
    )
    entry = _entry(hass, data)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    assert entry.state is ConfigEntryState.SETUP_ERROR
    assert entry.error_reason_translation_key == translation_key
    flows = hass.config_entries.flow.async_progress()
    assert len(flows) == 1
    assert flows[0]["step_id"] == "reauth_confirm"
    assert flows[0]["context"]["source"] == SOURCE_REAUTH
    assert flows[0]["context"]["entry_id"] == entry.entry_id


@pytest.mark.parametrize(
    ("changes", "fault", "translation_key", "placeholders"),
    [
        (
            {CONF_MODEL: "gemini-unknown"},
            None,
            "model_not_found",
            {"model": "gemini-unknown"},
        ),
        (
            {},
            Close(code=1007, reason=INVALID_ARGUMENT),
            "model_not_supported",
            {"model": VERTEX_AI_MODELS[0]},
        ),
        (
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
    changes: dict[str, Any],
    fault: Fault | None,
    translation_key: str,
    placeholders: dict[str, str],
) -> None:
    """Settings the service refuses fail the setup for good (reconfigure fixes)."""
    if fault is not None:
        fake_live.add_fault(fault)
    entry = _entry(hass, _vertex_data(fake_live, **changes))
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
        hass, _gemini_data(fake_live, **{CONF_BASE_URL: base_url or fake_live.base_url})
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
