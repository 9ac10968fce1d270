"""Tests for Gemini Live diagnostics."""

from __future__ import annotations

import json

from homeassistant.components import conversation
from homeassistant.components.diagnostics import REDACTED
from homeassistant.const import CONF_API_KEY
from homeassistant.core import Context, HomeAssistant
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.gemini_live.const import (
    CONF_BASE_URL,
    CONF_LOCATION,
    CONF_MODEL,
    CONF_PROJECT_ID,
    CONF_PROVIDER,
    CONF_SERVICE_ACCOUNT,
    GEMINI_API_MODELS,
    PROVIDER_GEMINI_API,
    PROVIDER_VERTEX_AI,
    RECOMMENDED_OPTIONS,
    VERTEX_AI_MODELS,
)
from tests.entries import account_entry, agent_data
from tests.fake_live import Close, GoAway, Reply
from tests.fake_live.server import FakeLiveServer

PROJECT = "test-project"


@pytest.fixture(autouse=True)
async def setup_homeassistant(hass: HomeAssistant) -> None:
    """Set up Home Assistant's core integration, which conversation needs."""
    assert await async_setup_component(hass, "homeassistant", {})


async def _download(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, entry: MockConfigEntry
) -> str:
    """Return the whole diagnostics file a user would download."""
    assert await async_setup_component(hass, "diagnostics", {})
    client = await hass_client()
    response = await client.get(f"/api/diagnostics/config_entry/{entry.entry_id}")
    assert response.status == 200
    return await response.text()


async def test_diagnostics_vertex_ai(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    fake_live: FakeLiveServer,
) -> None:
    """Service-account secrets and access tokens never reach diagnostics."""
    key_file = fake_live.service_account_json(PROJECT)
    account = json.loads(key_file)
    entry = account_entry(
        {
            CONF_PROVIDER: PROVIDER_VERTEX_AI,
            CONF_SERVICE_ACCOUNT: key_file,
            CONF_PROJECT_ID: PROJECT,
            CONF_LOCATION: "us-central1",
            CONF_BASE_URL: fake_live.base_url,
        },
        agent_data(VERTEX_AI_MODELS[0]),
        title=f"Gemini Live (Vertex AI, {PROJECT})",
        unique_id=f"{account['client_email']}/{PROJECT}",
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    tokens = list(fake_live.authority.tokens)
    assert tokens
    # A proxy endpoint may carry credentials: only its host is shown.
    hass.config_entries.async_update_entry(
        entry,
        data={
            **entry.data,
            CONF_BASE_URL: fake_live.base_url.replace(
                "http://", "https://proxy-user:s3cr3t@"
            ),
        },
    )
    await hass.async_block_till_done()  # the entry reloads (and fails to set up)

    result = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    assert result == {
        "title": f"Gemini Live (Vertex AI, {PROJECT})",
        "state": entry.state.value,
        "provider": PROVIDER_VERTEX_AI,
        "project_id": PROJECT,
        "location": "us-central1",
        "base_url_host": "127.0.0.1",
        "data": {
            CONF_PROVIDER: PROVIDER_VERTEX_AI,
            CONF_SERVICE_ACCOUNT: REDACTED,
            CONF_PROJECT_ID: PROJECT,
            CONF_LOCATION: "us-central1",
            CONF_BASE_URL: REDACTED,
        },
        "assistants": [
            {
                "title": "Gemini Live",
                "model": VERTEX_AI_MODELS[0],
                "options": json.loads(
                    json.dumps({CONF_MODEL: VERTEX_AI_MODELS[0], **RECOMMENDED_OPTIONS})
                ),
            }
        ],
    }

    text = await _download(hass, hass_client, entry)
    secrets = [
        key_file,
        account["private_key"],
        account["private_key_id"],
        account["client_email"],
        "s3cr3t",
        *tokens,
    ]
    # The private key as JSON-escaped text too.
    secrets.append(json.dumps(account["private_key"])[1:-1])
    secrets.extend(line for line in account["private_key"].splitlines()[1:-1])
    for secret in secrets:
        assert secret not in text


async def test_diagnostics_gemini_api(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    fake_live: FakeLiveServer,
) -> None:
    """The API key never reaches diagnostics, nor does the Google endpoint."""
    entry = account_entry(
        {
            CONF_PROVIDER: PROVIDER_GEMINI_API,
            CONF_API_KEY: fake_live.api_key,
            CONF_BASE_URL: fake_live.base_url,
        },
        agent_data(GEMINI_API_MODELS[0]),
        title="Gemini Live (Gemini API)",
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    # Google's own endpoint: no base URL stored.
    hass.config_entries.async_update_entry(
        entry, data={k: v for k, v in entry.data.items() if k != CONF_BASE_URL}
    )
    await hass.async_block_till_done()  # the entry reloads

    result = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    assert result["data"] == {
        CONF_PROVIDER: PROVIDER_GEMINI_API,
        CONF_API_KEY: REDACTED,
    }
    assert result["base_url_host"] is None
    assert result["project_id"] is None

    text = await _download(hass, hass_client, entry)
    assert fake_live.api_key not in text


async def test_diagnostics_session_counters_and_last_error(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    fake_live: FakeLiveServer,
    live_model: str,
) -> None:
    """Each assistant shows its session counters and its last Live error.

    The error's text quoted the API key and a URL with credentials: neither
    reaches diagnostics.
    """
    assert await async_setup_component(hass, "conversation", {})
    entry = account_entry(
        {
            CONF_PROVIDER: PROVIDER_GEMINI_API,
            CONF_API_KEY: fake_live.api_key,
            CONF_BASE_URL: fake_live.base_url,
        },
        agent_data(live_model),
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    agent_id = "conversation.gemini_live"
    reason = (
        f"Quota exceeded (?key={fake_live.api_key}) see https://bob:s3cr3t@x.example/"
    )
    fake_live.queue_reply(
        Reply(text="Hi.", go_away=GoAway(time_left=0.5)),
        Reply(close=Close(code=1011, reason=reason)),
    )

    first = await conversation.async_converse(
        hass, "hello", None, Context(), agent_id=agent_id
    )
    assert first.response.speech["plain"]["speech"] == "Hi."
    await fake_live.wait_for(
        lambda: fake_live.connections[-1].resumed, timeout=5, what="a resumption"
    )
    await conversation.async_converse(
        hass, "again", first.conversation_id, Context(), agent_id=agent_id
    )
    assert fake_live.connections[-1].close_reason == reason

    result = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    (assistant,) = result["assistants"]
    sessions = assistant["sessions"]
    last_error = sessions.pop("last_error")
    assert sessions == {"opened": 1, "resumed": 1, "failed": 1, "turns": 2}
    assert last_error["type"] == "LiveQuotaError"
    assert last_error["close_code"] == 1011
    assert REDACTED in last_error["message"]
    assert "x.example" in last_error["message"]
    text = await _download(hass, hass_client, entry)
    for secret in (fake_live.api_key, "s3cr3t", "bob:"):
        assert secret not in text
