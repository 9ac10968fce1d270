"""Tests for the Gemini Live config flows, against the fake Live server.

The entry flows (user, reauth, reconfigure) hold the account; the subentry
flow adds and changes an assistant (its model, then its settings). Every
check is a real Live handshake with the fake server.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
import hashlib
import json
from pathlib import Path
import re
from typing import Any
from unittest.mock import AsyncMock, patch

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from homeassistant import config_entries
from homeassistant.config_entries import (
    ConfigEntryState,
    ConfigSubentry,
    SubentryFlowResult,
)
from homeassistant.const import CONF_API_KEY, CONF_LLM_HASS_API, CONF_NAME, CONF_PROMPT
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import (
    FlowResult,
    FlowResultType,
    InvalidData,
    section,
)
from homeassistant.helpers import device_registry as dr, entity_registry as er, llm
from homeassistant.setup import async_setup_component
import probatio
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.gemini_live.const import (
    CONF_ACTIVITY_DETECTION,
    CONF_AFFECTIVE_DIALOG,
    CONF_BASE_URL,
    CONF_GOOGLE_SEARCH,
    CONF_IDLE_TIMEOUT,
    CONF_LANGUAGE,
    CONF_LOCATION,
    CONF_MODEL,
    CONF_PROACTIVE_AUDIO,
    CONF_PROJECT_ID,
    CONF_PROVIDER,
    CONF_SERVICE_ACCOUNT,
    CONF_TEMPERATURE,
    CONF_THINKING_BUDGET,
    CONF_THINKING_LEVEL,
    CONF_VOICE,
    DEFAULT_AGENT_TITLE,
    DOMAIN,
    GEMINI_API_MODELS,
    PROVIDER_GEMINI_API,
    PROVIDER_VERTEX_AI,
    RECOMMENDED_MODEL,
    RECOMMENDED_OPTIONS,
    SUBENTRY_AGENT,
    VERTEX_AI_MODELS,
    VOICES,
)
from custom_components.gemini_live.live import models
from custom_components.gemini_live.voice.config import speech_config
from tests.entries import account_entry, agent, agent_data
from tests.fake_live.scenario import INVALID_ARGUMENT, Close, Refuse
from tests.fake_live.server import FakeLiveServer

STRINGS: dict[str, Any] = json.loads(
    (
        Path(__file__).parent.parent / "custom_components" / DOMAIN / "strings.json"
    ).read_text(encoding="utf-8")
)
ENTRY_STRINGS: dict[str, Any] = STRINGS["config"]
AGENT_STRINGS: dict[str, Any] = STRINGS["config_subentries"][SUBENTRY_AGENT]
PLACEHOLDER = re.compile(r"\{(\w+)\}")

ADVANCED = "advanced_settings"
GEMINI_MODEL = GEMINI_API_MODELS[0]
VERTEX_MODEL = VERTEX_AI_MODELS[0]
NATIVE_2_5 = "gemini-2.5-flash-native-audio-preview-12-2025"
PROJECT = "test-project"
# A port nothing listens on: connecting is refused at once.
UNREACHABLE = "http://127.0.0.1:9"


@pytest.fixture(autouse=True)
async def setup_homeassistant(hass: HomeAssistant) -> None:
    """Set up Home Assistant's core integration, which conversation needs."""
    assert await async_setup_component(hass, "homeassistant", {})


def sha256(text: str) -> str:
    """Return the hex SHA-256 of a string."""
    return hashlib.sha256(text.encode()).hexdigest()


def assert_translated(
    result: Mapping[str, Any], strings: Mapping[str, Any] = ENTRY_STRINGS
) -> None:
    """Check a flow result against strings.json, like core's check_translations.

    `strings`: the flow's section (ENTRY_STRINGS, or AGENT_STRINGS for the
    assistant subentry flow).
    """
    if result["type"] is FlowResultType.ABORT:
        if result.get("translation_domain") != "homeassistant":
            assert result["reason"] in strings["abort"]
        return
    if result["type"] is not FlowResultType.FORM:
        return
    step = strings["step"][result["step_id"]]
    for error in (result["errors"] or {}).values():
        assert error in strings["error"], error
    placeholders = set(result.get("description_placeholders") or {})
    texts = [
        step.get("title", ""),
        step.get("description", ""),
        *step.get("data_description", {}).values(),
    ]
    schema: probatio.Schema = result["data_schema"]
    for marker, validator in schema.schema.items():
        key = str(marker)
        if isinstance(validator, section):
            sect = step["sections"][key]
            assert sect["name"]
            for inner in validator.schema.schema:
                assert str(inner) in sect["data"], f"{key}.{inner}"
            texts.extend(sect.get("data_description", {}).values())
        else:
            assert key in step["data"], key
    for text in texts:
        assert set(PLACEHOLDER.findall(text)) <= placeholders, text


def suggested(result: Mapping[str, Any], key: str) -> Any:
    """Return the suggested value of a form field ("section.field" inside one)."""
    schema: probatio.Schema = result["data_schema"]
    *sections, name = key.split(".")
    for section_name in sections:
        schema = next(
            validator.schema
            for marker, validator in schema.schema.items()
            if str(marker) == section_name
        )
    for marker in schema.schema:
        if str(marker) == name:
            return (marker.description or {}).get("suggested_value")
    raise KeyError(key)


def foreign_service_account(server: FakeLiveServer) -> str:
    """Return a key file of a known account signed with a key Google never saw."""
    data = json.loads(server.service_account_json(PROJECT))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    data["private_key"] = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return json.dumps(data)


@contextmanager
def _validations() -> Iterator[list[tuple[dict[str, Any], dict[str, Any]]]]:
    """Record the (data, settings) of each Live check, without a handshake."""
    checked: list[tuple[dict[str, Any], dict[str, Any]]] = []

    async def record(
        hass: HomeAssistant, data: Mapping[str, Any], options: Mapping[str, Any]
    ) -> None:
        checked.append((dict(data), dict(options)))

    with patch(
        "custom_components.gemini_live.config_flow.async_validate_input", record
    ):
        yield checked


@pytest.fixture
def mock_setup_entry() -> Iterator[AsyncMock]:
    """Keep created entries from being set up (tested in test_init)."""
    with (
        patch(
            "custom_components.gemini_live.async_setup_entry", return_value=True
        ) as mock,
        patch("custom_components.gemini_live.async_unload_entry", return_value=True),
    ):
        yield mock


async def _start(hass: HomeAssistant, provider: str) -> FlowResult:
    """Start a user flow and pick the provider."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert_translated(result)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_PROVIDER: provider}
    )
    assert result["type"] is FlowResultType.FORM
    assert_translated(result)
    return result


def _gemini_input(
    api_key: str, base_url: str | None, model: str = GEMINI_MODEL
) -> dict[str, Any]:
    return {
        CONF_API_KEY: api_key,
        CONF_MODEL: model,
        ADVANCED: {CONF_BASE_URL: base_url} if base_url else {},
    }


def _vertex_input(
    base_url: str | None,
    location: str = "us-central1",
    model: str = VERTEX_MODEL,
    project_id: str = PROJECT,
) -> dict[str, Any]:
    return {
        CONF_PROJECT_ID: project_id,
        CONF_LOCATION: location,
        CONF_MODEL: model,
        ADVANCED: {CONF_BASE_URL: base_url} if base_url else {},
    }


def assert_first_agent(subentries: Mapping[str, ConfigSubentry], model: str) -> None:
    """Check that a new entry has one assistant: `model`, recommended settings."""
    (subentry,) = subentries.values()
    assert subentry.subentry_type == SUBENTRY_AGENT
    assert subentry.title == DEFAULT_AGENT_TITLE
    assert subentry.unique_id is None
    assert dict(subentry.data) == {CONF_MODEL: model, **RECOMMENDED_OPTIONS}


# -- user step ---------------------------------------------------------------


async def test_user_step_offers_providers(hass: HomeAssistant) -> None:
    """The first step asks for the provider with a translated selector."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    selector = result["data_schema"].schema[CONF_PROVIDER]
    assert selector.config["options"] == [PROVIDER_GEMINI_API, PROVIDER_VERTEX_AI]
    assert selector.config["translation_key"] == CONF_PROVIDER
    assert_translated(result)


# -- Gemini API --------------------------------------------------------------


async def test_gemini_api_flow(
    hass: HomeAssistant, fake_live: FakeLiveServer, mock_setup_entry: AsyncMock
) -> None:
    """A valid key and model create the account and its first assistant.

    The entry's data is the account only; the model goes to the assistant
    subentry, with the recommended settings, after a real Live handshake.
    """
    result = await _start(hass, PROVIDER_GEMINI_API)
    assert result["step_id"] == "gemini_api"
    assert suggested(result, CONF_MODEL) == GEMINI_MODEL
    model_selector = result["data_schema"].schema[CONF_MODEL]
    assert [o["value"] for o in model_selector.config["options"]] == list(
        GEMINI_API_MODELS
    )
    assert {o["label"] for o in model_selector.config["options"]} >= {
        "gemini-3.1-flash-live-preview (legacy)"
    }
    assert model_selector.config["custom_value"] is True

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        _gemini_input(f"  {fake_live.api_key}\n", fake_live.base_url),
    )
    await hass.async_block_till_done()

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Gemini Live (Gemini API)"
    assert result["data"] == {
        CONF_PROVIDER: PROVIDER_GEMINI_API,
        CONF_API_KEY: fake_live.api_key,
        CONF_BASE_URL: fake_live.base_url,
    }
    assert result["options"] == {}
    entry = result["result"]
    assert entry.version == 2
    assert entry.unique_id == sha256(fake_live.api_key)
    assert fake_live.api_key not in entry.unique_id
    assert_first_agent(entry.subentries, GEMINI_MODEL)
    assert len(mock_setup_entry.mock_calls) == 1
    # The validation was a real Live session: setup sent, then closed.
    assert len(fake_live.connections) == 1
    connection = fake_live.connections[0]
    assert connection.headers["x-goog-api-key"] == fake_live.api_key
    assert "key" not in connection.query
    assert connection.setup is not None
    assert connection.setup["model"] == f"models/{GEMINI_MODEL}"
    assert connection.setup_complete_sent
    await fake_live.wait_for(lambda: connection.closed)


@pytest.mark.parametrize(
    ("api_key", "model", "fault", "base_url", "error"),
    [
        ("AIzaSyWRONG-key", GEMINI_MODEL, None, None, {"base": "invalid_auth"}),
        (None, "gemini-unknown-model", None, None, {CONF_MODEL: "model_not_found"}),
        (None, "bad model name!", None, None, {CONF_MODEL: "model_not_supported"}),
        (
            None,
            GEMINI_MODEL,
            Close(code=1007, reason=INVALID_ARGUMENT),
            None,
            {CONF_MODEL: "model_not_supported"},
        ),
        (
            None,
            GEMINI_MODEL,
            Close(
                code=1008,
                reason="Operation is not implemented, or supported, or enabled.",
            ),
            None,
            {"base": "permission_denied"},
        ),
        (None, GEMINI_MODEL, Close.quota(), None, {"base": "quota_exceeded"}),
        (None, GEMINI_MODEL, Close.internal(), None, {"base": "cannot_connect"}),
        (None, GEMINI_MODEL, Refuse(status=503), None, {"base": "cannot_connect"}),
        (None, GEMINI_MODEL, None, UNREACHABLE, {"base": "cannot_connect"}),
        (None, GEMINI_MODEL, None, "ftp://127.0.0.1/", {"base": "invalid_url"}),
        (None, GEMINI_MODEL, None, "not a url", {"base": "invalid_url"}),
        (None, GEMINI_MODEL, None, "http://[::1", {"base": "invalid_url"}),
    ],
    ids=[
        "invalid_key",
        "unknown_model",
        "malformed_model",
        "invalid_argument",
        "permission_denied",
        "quota",
        "internal_error",
        "refused_upgrade",
        "unreachable",
        "ftp_url",
        "not_a_url",
        "malformed_url",
    ],
)
async def test_gemini_api_errors(
    hass: HomeAssistant,
    *,
    fake_live: FakeLiveServer,
    mock_setup_entry: AsyncMock,
    api_key: str | None,
    model: str,
    fault: Close | Refuse | None,
    base_url: str | None,
    error: dict[str, str],
) -> None:
    """Each failure shows its error; correcting the input creates the entry."""
    if fault is not None:
        fake_live.add_fault(fault)
    result = await _start(hass, PROVIDER_GEMINI_API)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        _gemini_input(
            api_key or fake_live.api_key, base_url or fake_live.base_url, model
        ),
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "gemini_api"
    assert result["errors"] == error
    assert_translated(result)
    # The form keeps what was entered.
    assert suggested(result, CONF_MODEL) == model

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _gemini_input(fake_live.api_key, fake_live.base_url)
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert len(mock_setup_entry.mock_calls) == 1


async def test_gemini_api_unexpected_error(
    hass: HomeAssistant,
    fake_live: FakeLiveServer,
    mock_setup_entry: AsyncMock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An unexpected exception shows "unknown", is logged, and never the key."""
    result = await _start(hass, PROVIDER_GEMINI_API)
    with patch(
        "custom_components.gemini_live.config_flow.async_create_live_client",
        side_effect=RuntimeError("boom"),
    ):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], _gemini_input(fake_live.api_key, fake_live.base_url)
        )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "unknown"}
    assert "Unexpected exception" in caplog.text
    assert fake_live.api_key not in caplog.text

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _gemini_input(fake_live.api_key, fake_live.base_url)
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_gemini_api_already_configured(
    hass: HomeAssistant, fake_live: FakeLiveServer, mock_setup_entry: AsyncMock
) -> None:
    """The same key cannot be added twice, and is not even tried again.

    Another assistant on the same key is a subentry of the existing entry.
    """
    result = await _start(hass, PROVIDER_GEMINI_API)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _gemini_input(fake_live.api_key, fake_live.base_url)
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert len(fake_live.connections) == 1

    result = await _start(hass, PROVIDER_GEMINI_API)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        _gemini_input(f" {fake_live.api_key} ", fake_live.base_url, NATIVE_2_5),
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert_translated(result)
    assert len(fake_live.connections) == 1
    assert len(hass.config_entries.async_entries(DOMAIN)) == 1


async def test_gemini_api_google_endpoint_by_default(
    hass: HomeAssistant, mock_setup_entry: AsyncMock
) -> None:
    """Without a base URL the entry stores none (Google's endpoint is used)."""
    result = await _start(hass, PROVIDER_GEMINI_API)
    with _validations() as checked:
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"],
            {CONF_API_KEY: "AIzaSyKEY", CONF_MODEL: GEMINI_MODEL},
        )
        await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert CONF_BASE_URL not in result["data"]
    # The handshake was of the account with the first assistant's setup.
    assert checked == [
        ({**result["data"], CONF_MODEL: GEMINI_MODEL}, RECOMMENDED_OPTIONS)
    ]


# -- Vertex AI ---------------------------------------------------------------


async def test_vertex_ai_flow(
    hass: HomeAssistant, fake_live: FakeLiveServer, mock_setup_entry: AsyncMock
) -> None:
    """The JSON key first, then project (prefilled), location and model."""
    key_file = fake_live.service_account_json(PROJECT)
    client_email = json.loads(key_file)["client_email"]
    result = await _start(hass, PROVIDER_VERTEX_AI)
    assert result["step_id"] == "vertex_ai"
    assert result["data_schema"].schema[CONF_SERVICE_ACCOUNT].config["multiline"]

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_SERVICE_ACCOUNT: key_file}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "vertex_ai_project"
    assert_translated(result)
    assert result["description_placeholders"]["client_email"] == client_email
    assert suggested(result, CONF_PROJECT_ID) == PROJECT
    assert suggested(result, CONF_LOCATION) == "us-central1"
    assert suggested(result, CONF_MODEL) == VERTEX_MODEL
    options = result["data_schema"].schema[CONF_MODEL].config["options"]
    assert [o["value"] for o in options] == list(VERTEX_AI_MODELS)

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _vertex_input(fake_live.base_url, location="europe-west4")
    )
    await hass.async_block_till_done()

    assert result["type"] is FlowResultType.CREATE_ENTRY, result.get("errors")
    assert result["title"] == f"Gemini Live (Vertex AI, {PROJECT})"
    assert result["data"] == {
        CONF_PROVIDER: PROVIDER_VERTEX_AI,
        CONF_SERVICE_ACCOUNT: key_file,
        CONF_PROJECT_ID: PROJECT,
        CONF_LOCATION: "europe-west4",
        CONF_BASE_URL: fake_live.base_url,
    }
    assert result["options"] == {}
    assert result["result"].unique_id == f"{client_email}/{PROJECT}"
    assert_first_agent(result["result"].subentries, VERTEX_MODEL)
    assert len(mock_setup_entry.mock_calls) == 1
    connection = fake_live.connections[0]
    assert connection.headers["Authorization"].startswith("Bearer ")
    assert connection.setup is not None
    assert connection.setup["model"] == (
        f"projects/{PROJECT}/locations/europe-west4/publishers/google/models/"
        f"{VERTEX_MODEL}"
    )


@pytest.mark.parametrize(
    "key_file",
    [
        "not json",
        "[]",
        '{"type": "authorized_user", "client_id": "x"}',
        '{"type": "service_account", "project_id": "p"}',
        json.dumps(
            {
                "type": "service_account",
                "project_id": "p",
                "client_email": "a@p.iam.gserviceaccount.com",
                "private_key": "-----BEGIN PRIVATE KEY-----\nnope\n"
                "-----END PRIVATE KEY-----\n",
            }
        ),
    ],
    ids=["not_json", "not_object", "wrong_type", "missing_fields", "bad_key"],
)
async def test_vertex_ai_invalid_service_account(
    hass: HomeAssistant,
    fake_live: FakeLiveServer,
    mock_setup_entry: AsyncMock,
    key_file: str,
) -> None:
    """A key file that is not a service-account key is refused at once."""
    result = await _start(hass, PROVIDER_VERTEX_AI)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_SERVICE_ACCOUNT: key_file}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "vertex_ai"
    assert result["errors"] == {CONF_SERVICE_ACCOUNT: "invalid_service_account"}
    assert_translated(result)

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_SERVICE_ACCOUNT: fake_live.service_account_json()}
    )
    assert result["step_id"] == "vertex_ai_project"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _vertex_input(fake_live.base_url)
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY


@pytest.mark.parametrize(
    ("location", "model", "foreign_key", "base_url", "error"),
    [
        ("global", VERTEX_MODEL, False, None, {CONF_LOCATION: "invalid_location"}),
        ("", VERTEX_MODEL, False, None, {CONF_LOCATION: "invalid_location"}),
        (
            "us-central1",
            "gemini-2.5-flash-native-audio-preview-12-2025",  # a Developer API id
            False,
            None,
            {CONF_MODEL: "model_not_found"},
        ),
        ("us-central1", VERTEX_MODEL, True, None, {"base": "invalid_auth"}),
        ("us-central1", VERTEX_MODEL, False, UNREACHABLE, {"base": "cannot_connect"}),
    ],
    ids=["global", "empty", "developer_model", "foreign_key", "unreachable"],
)
async def test_vertex_ai_errors(
    hass: HomeAssistant,
    *,
    fake_live: FakeLiveServer,
    mock_setup_entry: AsyncMock,
    location: str,
    model: str,
    foreign_key: bool,
    base_url: str | None,
    error: dict[str, str],
) -> None:
    """Each Vertex AI failure shows its error; correcting it creates the entry."""
    key_file = (
        foreign_service_account(fake_live)
        if foreign_key
        else fake_live.service_account_json(PROJECT)
    )
    result = await _start(hass, PROVIDER_VERTEX_AI)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_SERVICE_ACCOUNT: key_file}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        _vertex_input(base_url or fake_live.base_url, location=location, model=model),
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "vertex_ai_project"
    assert result["errors"] == error
    assert_translated(result)

    if foreign_key:
        # Another key cannot be entered at this step: start over.
        return
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _vertex_input(fake_live.base_url)
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_LOCATION] == "us-central1"


async def test_vertex_ai_invalid_url(
    hass: HomeAssistant, fake_live: FakeLiveServer, mock_setup_entry: AsyncMock
) -> None:
    """The service endpoint must be an http(s) or ws(s) URL."""
    result = await _start(hass, PROVIDER_VERTEX_AI)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_SERVICE_ACCOUNT: fake_live.service_account_json()}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _vertex_input("http://")
    )
    assert result["errors"] == {"base": "invalid_url"}
    ws_url = fake_live.base_url.replace("http://", "ws://")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _vertex_input(ws_url)
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_BASE_URL] == ws_url


async def test_vertex_ai_google_endpoint_by_default(
    hass: HomeAssistant, fake_live: FakeLiveServer, mock_setup_entry: AsyncMock
) -> None:
    """Without a base URL the Vertex AI entry uses Google's regional endpoint."""
    result = await _start(hass, PROVIDER_VERTEX_AI)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_SERVICE_ACCOUNT: fake_live.service_account_json()}
    )
    with _validations() as checked:
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], _vertex_input(None)
        )
        await hass.async_block_till_done()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert CONF_BASE_URL not in result["data"]
    assert checked == [
        ({**result["data"], CONF_MODEL: VERTEX_MODEL}, RECOMMENDED_OPTIONS)
    ]


async def test_vertex_ai_already_configured(
    hass: HomeAssistant, fake_live: FakeLiveServer, mock_setup_entry: AsyncMock
) -> None:
    """The same service account in the same project is added once.

    A new JSON key of the account is the same account: its email and the
    project make the unique id.
    """
    key_file = fake_live.service_account_json(PROJECT)
    _vertex_entry(hass, fake_live, key_file)
    new_key = json.dumps(
        {
            **json.loads(fake_live.service_account_json(PROJECT)),
            "client_email": json.loads(key_file)["client_email"],
        }
    )
    result = await _start(hass, PROVIDER_VERTEX_AI)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_SERVICE_ACCOUNT: new_key}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _vertex_input(fake_live.base_url)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert fake_live.connections == []

    # The same account in another project is another entry: it is validated
    # (and refused here, the account has no role in that project).
    result = await _start(hass, PROVIDER_VERTEX_AI)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_SERVICE_ACCOUNT: key_file}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _vertex_input(fake_live.base_url, project_id="other")
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "permission_denied"}
    assert len(fake_live.connections) == 1


# -- entries -------------------------------------------------------------------


def _gemini_entry(
    hass: HomeAssistant,
    server: FakeLiveServer,
    api_key: str,
    model: str = GEMINI_MODEL,
    options: Mapping[str, Any] = RECOMMENDED_OPTIONS,
) -> MockConfigEntry:
    """Add a Developer API entry with one assistant on `model`."""
    entry = account_entry(
        {
            CONF_PROVIDER: PROVIDER_GEMINI_API,
            CONF_API_KEY: api_key,
            CONF_BASE_URL: server.base_url,
        },
        agent_data(model, options),
        title="Gemini Live (Gemini API)",
        unique_id=sha256(api_key),
    )
    entry.add_to_hass(hass)
    return entry


def _vertex_entry(
    hass: HomeAssistant, server: FakeLiveServer, key_file: str
) -> MockConfigEntry:
    """Add a Vertex AI entry with one assistant on the first Vertex model."""
    entry = account_entry(
        {
            CONF_PROVIDER: PROVIDER_VERTEX_AI,
            CONF_SERVICE_ACCOUNT: key_file,
            CONF_PROJECT_ID: PROJECT,
            CONF_LOCATION: "us-central1",
            CONF_BASE_URL: server.base_url,
        },
        agent_data(VERTEX_MODEL),
        title=f"Gemini Live (Vertex AI, {PROJECT})",
        unique_id=f"{json.loads(key_file)['client_email']}/{PROJECT}",
    )
    entry.add_to_hass(hass)
    return entry


# -- reauth ------------------------------------------------------------------


async def test_reauth_gemini_api(
    hass: HomeAssistant, fake_live: FakeLiveServer, mock_setup_entry: AsyncMock
) -> None:
    """A new valid key replaces the refused one, and the unique id follows.

    The key is checked with the first assistant's model and settings, which
    stay as they were.
    """
    options = {**RECOMMENDED_OPTIONS, CONF_VOICE: "Puck"}
    entry = _gemini_entry(hass, fake_live, "AIzaSyOLD-revoked", NATIVE_2_5, options)
    result = await entry.start_reauth_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reauth_confirm"
    assert set(result["data_schema"].schema) == {CONF_API_KEY}
    assert result["description_placeholders"]["name"] == entry.title
    assert_translated(result)

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_KEY: "AIzaSyALSO-wrong"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_auth"}
    assert_translated(result)

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_KEY: fake_live.api_key}
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert_translated(result)
    assert entry.data == {
        CONF_PROVIDER: PROVIDER_GEMINI_API,
        CONF_API_KEY: fake_live.api_key,
        CONF_BASE_URL: fake_live.base_url,
    }
    assert entry.unique_id == sha256(fake_live.api_key)
    assert dict(agent(entry).data) == {CONF_MODEL: NATIVE_2_5, **options}
    setup = fake_live.connections[-1].setup
    assert setup is not None
    assert setup["model"] == f"models/{NATIVE_2_5}"
    assert voice_of(setup) == "Puck"
    # The entry was not loaded: it is set up once with the new key.
    assert len(mock_setup_entry.mock_calls) == 1


async def test_reauth_without_assistants(
    hass: HomeAssistant, fake_live: FakeLiveServer, mock_setup_entry: AsyncMock
) -> None:
    """An entry whose assistants were all removed checks the recommended model."""
    entry = account_entry(
        {
            CONF_PROVIDER: PROVIDER_GEMINI_API,
            CONF_API_KEY: "AIzaSyOLD-revoked",
            CONF_BASE_URL: fake_live.base_url,
        },
        unique_id=sha256("AIzaSyOLD-revoked"),
    )
    entry.add_to_hass(hass)
    result = await entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_KEY: fake_live.api_key}
    )
    assert result["reason"] == "reauth_successful"
    setup = fake_live.connections[-1].setup
    assert setup is not None
    assert setup["model"] == f"models/{RECOMMENDED_MODEL[PROVIDER_GEMINI_API]}"


async def test_reauth_gemini_api_key_of_other_entry(
    hass: HomeAssistant, fake_live: FakeLiveServer, mock_setup_entry: AsyncMock
) -> None:
    """A key that another entry already uses is refused."""
    entry = _gemini_entry(hass, fake_live, "AIzaSyOLD-revoked")
    _gemini_entry(hass, fake_live, fake_live.api_key)
    result = await entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_KEY: fake_live.api_key}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert entry.data[CONF_API_KEY] == "AIzaSyOLD-revoked"


async def test_reauth_gemini_api_same_key(
    hass: HomeAssistant, fake_live: FakeLiveServer, mock_setup_entry: AsyncMock
) -> None:
    """The same key, valid again (billing fixed), is accepted."""
    entry = _gemini_entry(hass, fake_live, fake_live.api_key)
    result = await entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_API_KEY: fake_live.api_key}
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert entry.unique_id == sha256(fake_live.api_key)


async def test_reauth_vertex_ai(
    hass: HomeAssistant, fake_live: FakeLiveServer, mock_setup_entry: AsyncMock
) -> None:
    """A new JSON key of the same service account is accepted and validated."""
    key_file = fake_live.service_account_json(PROJECT)
    broken = foreign_service_account(fake_live)
    account = json.loads(key_file)
    # The refused key: same account, a key Google no longer accepts.
    old_key = json.dumps(
        {**json.loads(broken), "client_email": account["client_email"]}
    )
    entry = _vertex_entry(hass, fake_live, old_key)
    result = await entry.start_reauth_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reauth_confirm"
    assert set(result["data_schema"].schema) == {CONF_SERVICE_ACCOUNT}
    assert_translated(result)

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_SERVICE_ACCOUNT: "{"}
    )
    assert result["errors"] == {CONF_SERVICE_ACCOUNT: "invalid_service_account"}
    assert_translated(result)

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_SERVICE_ACCOUNT: old_key}
    )
    assert result["errors"] == {"base": "invalid_auth"}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_SERVICE_ACCOUNT: key_file}
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert entry.data[CONF_SERVICE_ACCOUNT] == key_file
    assert entry.data[CONF_PROJECT_ID] == PROJECT
    assert CONF_MODEL not in entry.data
    assert entry.unique_id == f"{account['client_email']}/{PROJECT}"
    assert len(mock_setup_entry.mock_calls) == 1


async def test_reauth_vertex_ai_wrong_account(
    hass: HomeAssistant, fake_live: FakeLiveServer, mock_setup_entry: AsyncMock
) -> None:
    """A key of another service account aborts the reauthentication."""
    key_file = fake_live.service_account_json(PROJECT)
    entry = _vertex_entry(hass, fake_live, key_file)
    result = await entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_SERVICE_ACCOUNT: fake_live.service_account_json()}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_account"
    assert_translated(result)
    assert entry.data[CONF_SERVICE_ACCOUNT] == key_file
    assert fake_live.connections == []


# -- reconfigure (the entry: location, service endpoint) -----------------------


async def test_reconfigure_gemini_api(
    hass: HomeAssistant, fake_live: FakeLiveServer, mock_setup_entry: AsyncMock
) -> None:
    """The endpoint changes after a handshake with the assistant's setup.

    The form has no model: the model is each assistant's.
    """
    options = {**RECOMMENDED_OPTIONS, CONF_VOICE: "Puck"}
    entry = _gemini_entry(hass, fake_live, fake_live.api_key, NATIVE_2_5, options)
    result = await entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"
    assert {str(marker) for marker in result["data_schema"].schema} == {ADVANCED}
    assert suggested(result, f"{ADVANCED}.{CONF_BASE_URL}") == fake_live.base_url
    assert_translated(result)

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {ADVANCED: {CONF_BASE_URL: "mailto:x@y"}}
    )
    assert result["errors"] == {"base": "invalid_url"}
    assert_translated(result)

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {ADVANCED: {CONF_BASE_URL: UNREACHABLE}}
    )
    assert result["errors"] == {"base": "cannot_connect"}
    assert entry.data[CONF_BASE_URL] == fake_live.base_url

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {ADVANCED: {CONF_BASE_URL: f"{fake_live.base_url}/"}}
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert_translated(result)
    assert entry.data == {
        CONF_PROVIDER: PROVIDER_GEMINI_API,
        CONF_API_KEY: fake_live.api_key,
        CONF_BASE_URL: f"{fake_live.base_url}/",
    }
    assert dict(agent(entry).data) == {CONF_MODEL: NATIVE_2_5, **options}
    setup = fake_live.connections[-1].setup
    assert setup is not None
    assert setup["model"] == f"models/{NATIVE_2_5}"
    assert voice_of(setup) == "Puck"
    assert len(mock_setup_entry.mock_calls) == 1


async def test_reconfigure_removes_base_url(
    hass: HomeAssistant, fake_live: FakeLiveServer, mock_setup_entry: AsyncMock
) -> None:
    """Clearing the endpoint goes back to Google's own."""
    entry = _gemini_entry(hass, fake_live, fake_live.api_key)
    result = await entry.start_reconfigure_flow(hass)
    with _validations() as checked:
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {ADVANCED: {}}
        )
        await hass.async_block_till_done()
    assert result["reason"] == "reconfigure_successful"
    assert CONF_BASE_URL not in entry.data
    assert checked == [({**entry.data, CONF_MODEL: GEMINI_MODEL}, agent(entry).data)]


async def test_reconfigure_vertex_ai(
    hass: HomeAssistant, fake_live: FakeLiveServer, mock_setup_entry: AsyncMock
) -> None:
    """The location of a Vertex AI entry changes after validation."""
    entry = _vertex_entry(hass, fake_live, fake_live.service_account_json(PROJECT))
    result = await entry.start_reconfigure_flow(hass)
    assert {str(marker) for marker in result["data_schema"].schema} == {
        CONF_LOCATION,
        ADVANCED,
    }
    assert suggested(result, CONF_LOCATION) == "us-central1"
    assert_translated(result)

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {CONF_LOCATION: "global", ADVANCED: {CONF_BASE_URL: fake_live.base_url}},
    )
    assert result["errors"] == {CONF_LOCATION: "invalid_location"}
    assert_translated(result)

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            CONF_LOCATION: " europe-west4 ",
            ADVANCED: {CONF_BASE_URL: fake_live.base_url},
        },
    )
    await hass.async_block_till_done()
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.data[CONF_LOCATION] == "europe-west4"
    assert CONF_MODEL not in entry.data
    assert agent(entry).data[CONF_MODEL] == VERTEX_MODEL
    assert entry.unique_id.endswith(f"/{PROJECT}")
    setup = fake_live.connections[-1].setup
    assert setup is not None
    assert setup["model"] == (
        f"projects/{PROJECT}/locations/europe-west4/publishers/google/models/"
        f"{VERTEX_MODEL}"
    )
    assert len(mock_setup_entry.mock_calls) == 1


async def test_reconfigure_broken_key_file(
    hass: HomeAssistant, fake_live: FakeLiveServer, mock_setup_entry: AsyncMock
) -> None:
    """A stored key file that no longer loads is reported, not a crash."""
    entry = _vertex_entry(hass, fake_live, fake_live.service_account_json(PROJECT))
    hass.config_entries.async_update_entry(
        entry, data={**entry.data, CONF_SERVICE_ACCOUNT: "{}"}
    )
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {CONF_LOCATION: "us-central1", ADVANCED: {CONF_BASE_URL: fake_live.base_url}},
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_service_account"}
    assert_translated(result)


# -- assistants (subentry flow) ------------------------------------------------

EXTENDED = "gemini-3.8-live-extended-thinking"
FLASH_3_1 = "gemini-3.1-flash-live-preview"
CUSTOM = "gemini-live-custom"
SETTINGS = {
    CONF_VOICE,
    CONF_LANGUAGE,
    CONF_PROMPT,
    CONF_LLM_HASS_API,
    CONF_TEMPERATURE,
    CONF_ACTIVITY_DETECTION,
    CONF_IDLE_TIMEOUT,
}
"""The settings every model family takes."""
DEFAULT_PROMPT = llm.DEFAULT_INSTRUCTIONS_PROMPT.strip()
"""The default instructions as the template selector returns them."""


def voice_of(setup: Mapping[str, Any]) -> str:
    """Return the prebuilt voice a setup asks for."""
    speech = setup["generationConfig"]["speechConfig"]
    return str(speech["voiceConfig"]["prebuiltVoiceConfig"]["voiceName"])


def form_values(result: Mapping[str, Any]) -> dict[str, Any]:
    """Return what the frontend submits for a form left as it is shown."""
    values: dict[str, Any] = {}
    for marker in result["data_schema"].schema:
        value = (marker.description or {}).get("suggested_value")
        if value is None and marker.default is not probatio.UNDEFINED:
            value = marker.default()
        if value is not None:
            values[str(marker)] = value
    return values


def _settings(**changes: Any) -> dict[str, Any]:
    """Return the settings step's input: the base settings and `changes`."""
    return {
        CONF_VOICE: "Kore",
        CONF_TEMPERATURE: 1.0,
        CONF_ACTIVITY_DETECTION: "manual",
        CONF_IDLE_TIMEOUT: 60,
        **changes,
    }


def patch_family(monkeypatch: pytest.MonkeyPatch, model: str, **changes: Any) -> None:
    """Make the capability table claim more for `model`'s family than it has."""
    family = models.model_family(model)
    monkeypatch.setattr(
        models,
        "_PREFIXES",
        tuple(
            (prefix, replace(row, **changes) if row is family else row)
            for prefix, row in models._PREFIXES
        ),
    )


async def _add_agent(hass: HomeAssistant, entry: MockConfigEntry) -> SubentryFlowResult:
    """Start adding an assistant to `entry`, as the entry's "Add assistant" does."""
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_AGENT),
        context={"source": config_entries.SOURCE_USER},
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert_translated(result, AGENT_STRINGS)
    return result


async def _agent_settings(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    model: str = GEMINI_MODEL,
    name: str = "Kitchen",
) -> SubentryFlowResult:
    """Add an assistant on `model` up to its settings step."""
    result = await _add_agent(hass, entry)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_NAME: name, CONF_MODEL: model}
    )
    assert result["type"] is FlowResultType.FORM, result
    assert result["step_id"] == "set_options", result.get("errors")
    assert_translated(result, AGENT_STRINGS)
    return result


async def _reconfigure_agent(
    hass: HomeAssistant, entry: MockConfigEntry, model: str | None = None
) -> SubentryFlowResult:
    """Reconfigure the entry's assistant up to its settings step.

    `model`: the new model (None: keep it).
    """
    subentry = agent(entry)
    result = await entry.start_subentry_reconfigure_flow(hass, subentry.subentry_id)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"
    assert result["description_placeholders"] == {"name": subentry.title}
    assert suggested(result, CONF_MODEL) == subentry.data[CONF_MODEL]
    assert_translated(result, AGENT_STRINGS)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_MODEL: model or subentry.data[CONF_MODEL]}
    )
    assert result["type"] is FlowResultType.FORM, result
    assert result["step_id"] == "set_options", result.get("errors")
    assert_translated(result, AGENT_STRINGS)
    return result


async def test_add_assistant(hass: HomeAssistant, fake_live: FakeLiveServer) -> None:
    """Name and model, then the settings of its family: a second assistant.

    The model is checked on its own step, the settings with the exact setup
    conversations will send; the assistant is saved with its model.
    """
    entry = _gemini_entry(hass, fake_live, fake_live.api_key)
    result = await _add_agent(hass, entry)
    assert suggested(result, CONF_NAME) == DEFAULT_AGENT_TITLE
    assert suggested(result, CONF_MODEL) == GEMINI_MODEL
    selector = result["data_schema"].schema[CONF_MODEL]
    assert [o["value"] for o in selector.config["options"]] == list(GEMINI_API_MODELS)
    assert selector.config["custom_value"] is True

    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_NAME: " Kitchen ", CONF_MODEL: f" {NATIVE_2_5} "}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "set_options"
    assert_translated(result, AGENT_STRINGS)
    assert result["description_placeholders"] == {
        "name": "Kitchen",
        "model": NATIVE_2_5,
    }
    schema = result["data_schema"].schema
    assert schema[CONF_VOICE].config["options"] == list(VOICES)
    assert len(VOICES) == 30
    assert suggested(result, CONF_VOICE) == "Kore"
    assert suggested(result, CONF_PROMPT) == llm.DEFAULT_INSTRUCTIONS_PROMPT
    assert suggested(result, CONF_LLM_HASS_API) == [llm.LLM_API_ASSIST]
    assert schema[CONF_ACTIVITY_DETECTION].config["options"] == [
        "manual",
        "automatic",
    ]
    # The model check: a session with no settings.
    (check,) = fake_live.connections
    assert check.setup is not None
    assert check.setup["model"] == f"models/{NATIVE_2_5}"
    assert "tools" not in check.setup

    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {
            CONF_VOICE: "Puck",
            CONF_LANGUAGE: " vi-VN ",
            CONF_PROMPT: "You are {{ ha_name }}'s assistant.",
            CONF_LLM_HASS_API: [llm.LLM_API_ASSIST],
            CONF_TEMPERATURE: 0.6,
            CONF_THINKING_BUDGET: 0,
            CONF_AFFECTIVE_DIALOG: False,
            CONF_PROACTIVE_AUDIO: False,
            CONF_GOOGLE_SEARCH: False,
            CONF_ACTIVITY_DETECTION: "automatic",
            CONF_IDLE_TIMEOUT: 30.0,
        },
    )
    await hass.async_block_till_done()

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Kitchen"
    first, added = entry.get_subentries_of_type(SUBENTRY_AGENT)
    assert first.data[CONF_MODEL] == GEMINI_MODEL
    assert added.title == "Kitchen"
    assert dict(added.data) == {
        CONF_MODEL: NATIVE_2_5,
        CONF_VOICE: "Puck",
        CONF_LANGUAGE: "vi-VN",
        CONF_PROMPT: "You are {{ ha_name }}'s assistant.",
        CONF_LLM_HASS_API: [llm.LLM_API_ASSIST],
        CONF_TEMPERATURE: 0.6,
        CONF_THINKING_BUDGET: 0,
        CONF_AFFECTIVE_DIALOG: False,
        CONF_PROACTIVE_AUDIO: False,
        CONF_GOOGLE_SEARCH: False,
        CONF_ACTIVITY_DETECTION: "automatic",
        CONF_IDLE_TIMEOUT: 30,
    }
    assert isinstance(added.data[CONF_IDLE_TIMEOUT], int)
    # The settings check: the session the assistant's conversations open.
    _, settings = fake_live.connections
    assert settings.setup is not None
    assert voice_of(settings.setup) == "Puck"
    assert settings.config["generationConfig"]["speechConfig"]["languageCode"] == (
        "vi-VN"
    )
    assert settings.config["tools"][0]["functionDeclarations"]


async def test_add_assistant_vertex_ai(
    hass: HomeAssistant, fake_live: FakeLiveServer
) -> None:
    """A Vertex AI entry offers its own models, in the entry's location."""
    entry = _vertex_entry(hass, fake_live, fake_live.service_account_json(PROJECT))
    result = await _add_agent(hass, entry)
    assert suggested(result, CONF_MODEL) == RECOMMENDED_MODEL[PROVIDER_VERTEX_AI]
    selector = result["data_schema"].schema[CONF_MODEL]
    assert [o["value"] for o in selector.config["options"]] == list(VERTEX_AI_MODELS)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_NAME: "", CONF_MODEL: VERTEX_AI_MODELS[-1]}
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], form_values(result)
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    # An empty name is the default one.
    assert result["title"] == DEFAULT_AGENT_TITLE
    setup = fake_live.connections[-1].setup
    assert setup is not None
    assert setup["model"] == (
        f"projects/{PROJECT}/locations/us-central1/publishers/google/models/"
        f"{VERTEX_AI_MODELS[-1]}"
    )


@pytest.mark.parametrize(
    ("model", "api_key", "error"),
    [
        ("gemini-unknown", None, {CONF_MODEL: "model_not_found"}),
        ("bad model name!", None, {CONF_MODEL: "model_not_supported"}),
        (GEMINI_MODEL, "AIzaSyREVOKED", {"base": "invalid_auth"}),
    ],
    ids=["unknown_model", "malformed_model", "revoked_key"],
)
async def test_add_assistant_model_errors(
    hass: HomeAssistant,
    fake_live: FakeLiveServer,
    *,
    model: str,
    api_key: str | None,
    error: dict[str, str],
) -> None:
    """A model the service does not serve is refused on the model's step."""
    entry = _gemini_entry(hass, fake_live, api_key or fake_live.api_key)
    result = await _add_agent(hass, entry)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_NAME: "Kitchen", CONF_MODEL: model}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == error
    assert_translated(result, AGENT_STRINGS)
    # The form keeps what was entered.
    assert suggested(result, CONF_MODEL) == model
    assert suggested(result, CONF_NAME) == "Kitchen"
    if api_key:
        return
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_NAME: "Kitchen", CONF_MODEL: GEMINI_MODEL}
    )
    assert result["step_id"] == "set_options"
    assert len(entry.subentries) == 1


async def test_reconfigure_assistant(
    hass: HomeAssistant, fake_live: FakeLiveServer
) -> None:
    """Its current settings are shown, then saved into the assistant.

    APIs that no longer exist are not offered; the entry's other data and
    the assistant's title stay.
    """
    entry = _gemini_entry(
        hass,
        fake_live,
        fake_live.api_key,
        options={
            **RECOMMENDED_OPTIONS,
            CONF_VOICE: "Puck",
            CONF_LLM_HASS_API: [llm.LLM_API_ASSIST, "gone_api"],
        },
    )
    result = await _reconfigure_agent(hass, entry)
    assert result["description_placeholders"] == {
        "name": "Gemini Live",
        "model": GEMINI_MODEL,
    }
    assert suggested(result, CONF_VOICE) == "Puck"
    assert suggested(result, CONF_LLM_HASS_API) == [llm.LLM_API_ASSIST]

    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], _settings(**{CONF_VOICE: "Sulafat", CONF_LANGUAGE: "vi"})
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert_translated(result, AGENT_STRINGS)
    subentry = agent(entry)
    assert subentry.title == "Gemini Live"
    assert dict(subentry.data) == {
        CONF_MODEL: GEMINI_MODEL,
        CONF_VOICE: "Sulafat",
        CONF_LANGUAGE: "vi",
        CONF_TEMPERATURE: 1.0,
        CONF_GOOGLE_SEARCH: False,
        CONF_ACTIVITY_DETECTION: "manual",
        CONF_IDLE_TIMEOUT: 60,
    }
    assert len(entry.subentries) == 1
    setup = fake_live.connections[-1].setup
    assert setup is not None
    assert voice_of(setup) == "Sulafat"


async def test_reconfigure_assistant_model_not_found(
    hass: HomeAssistant, fake_live: FakeLiveServer
) -> None:
    """A new model the service does not serve is refused at the model field."""
    entry = _gemini_entry(hass, fake_live, fake_live.api_key)
    subentry = agent(entry)
    result = await entry.start_subentry_reconfigure_flow(hass, subentry.subentry_id)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_MODEL: "gemini-unknown"}
    )
    assert result["step_id"] == "reconfigure"
    assert result["errors"] == {CONF_MODEL: "model_not_found"}
    assert suggested(result, CONF_MODEL) == "gemini-unknown"
    assert_translated(result, AGENT_STRINGS)
    assert agent(entry).data == subentry.data


async def test_assistant_settings_errors(
    hass: HomeAssistant, fake_live: FakeLiveServer
) -> None:
    """A template that does not render and a bad language code are refused."""
    entry = _gemini_entry(hass, fake_live, fake_live.api_key)
    result = await _agent_settings(hass, entry)
    checks = len(fake_live.connections)
    # The template selector refuses a syntax error itself.
    with pytest.raises(InvalidData):
        await hass.config_entries.subentries.async_configure(
            result["flow_id"], _settings(**{CONF_PROMPT: "Hello {{ ha_name "})
        )
    # A template that parses but fails to render is refused by the flow.
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        _settings(**{CONF_LANGUAGE: "english please", CONF_PROMPT: "Hi {{ 1 / 0 }}"}),
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {
        CONF_PROMPT: "invalid_template",
        CONF_LANGUAGE: "invalid_language",
    }
    assert_translated(result, AGENT_STRINGS)
    # Refused before any Live session; what was entered is shown again.
    assert len(fake_live.connections) == checks
    assert suggested(result, CONF_PROMPT) == "Hi {{ 1 / 0 }}"
    assert suggested(result, CONF_LANGUAGE) == "english please"

    # An empty prompt, language and API list are left out of the settings.
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        _settings(**{CONF_LANGUAGE: "", CONF_PROMPT: "", CONF_LLM_HASS_API: []}),
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {
        CONF_MODEL: GEMINI_MODEL,
        **_settings(),
        CONF_GOOGLE_SEARCH: False,
    }


async def test_assistant_legacy_api_string(
    hass: HomeAssistant, fake_live: FakeLiveServer
) -> None:
    """A single API id stored as a string is offered as a list."""
    entry = _gemini_entry(
        hass,
        fake_live,
        fake_live.api_key,
        options={**RECOMMENDED_OPTIONS, CONF_LLM_HASS_API: llm.LLM_API_ASSIST},
    )
    result = await _reconfigure_agent(hass, entry)
    assert suggested(result, CONF_LLM_HASS_API) == [llm.LLM_API_ASSIST]


async def test_assistant_prompt_uses_llm_context(
    hass: HomeAssistant, fake_live: FakeLiveServer
) -> None:
    """The prompt is rendered with the variables the conversation agent passes."""
    entry = _gemini_entry(hass, fake_live, fake_live.api_key)
    result = await _agent_settings(hass, entry)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        _settings(
            **{
                CONF_VOICE: "Sulafat",
                CONF_PROMPT: "Speak {{ llm_context.language }}. {{ user_name or '' }}",
            }
        ),
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_VOICE] == "Sulafat"


@pytest.mark.parametrize(
    ("model", "fields", "levels", "default_level"),
    [
        (GEMINI_MODEL, {CONF_GOOGLE_SEARCH}, None, None),
        (
            EXTENDED,
            {CONF_THINKING_LEVEL, CONF_GOOGLE_SEARCH},
            ["low", "medium", "high"],
            "low",
        ),
        (
            FLASH_3_1,
            {CONF_THINKING_LEVEL, CONF_GOOGLE_SEARCH},
            ["minimal", "low", "medium", "high"],
            "minimal",
        ),
        (
            NATIVE_2_5,
            {
                CONF_THINKING_BUDGET,
                CONF_AFFECTIVE_DIALOG,
                CONF_PROACTIVE_AUDIO,
                CONF_GOOGLE_SEARCH,
            },
            None,
            None,
        ),
        (CUSTOM, {CONF_GOOGLE_SEARCH}, None, None),
    ],
    ids=["3.8", "3.8-extended-thinking", "3.1", "2.5", "unknown"],
)
async def test_settings_per_family(
    hass: HomeAssistant,
    fake_live: FakeLiveServer,
    *,
    model: str,
    fields: set[str],
    levels: list[str] | None,
    default_level: str | None,
) -> None:
    """The settings step offers only what the new assistant's family accepts."""
    fake_live.developer_models.add(CUSTOM)
    entry = _gemini_entry(hass, fake_live, fake_live.api_key)
    result = await _agent_settings(hass, entry, model)
    schema = result["data_schema"].schema
    assert {str(marker) for marker in schema} == SETTINGS | fields
    if levels is not None:
        assert schema[CONF_THINKING_LEVEL].config["options"] == levels
        marker = next(m for m in schema if str(m) == CONF_THINKING_LEVEL)
        assert marker.default() == default_level
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], form_values(result)
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_MODEL] == model


async def test_search_needs_family_support(
    hass: HomeAssistant, fake_live: FakeLiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without Search next to functions, Search is offered only without an API."""
    patch_family(monkeypatch, GEMINI_MODEL, search_with_functions=False)
    entry = _gemini_entry(hass, fake_live, fake_live.api_key)
    result = await _reconfigure_agent(hass, entry)
    assert CONF_GOOGLE_SEARCH not in result["data_schema"].schema
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], _settings(**{CONF_LLM_HASS_API: []})
    )
    assert result["reason"] == "reconfigure_successful"
    result = await _reconfigure_agent(hass, entry)
    assert CONF_GOOGLE_SEARCH in result["data_schema"].schema


async def test_settings_reach_the_setup(
    hass: HomeAssistant, fake_live: FakeLiveServer
) -> None:
    """The settings are validated with the setup conversations send."""
    entry = _gemini_entry(hass, fake_live, fake_live.api_key)
    result = await _agent_settings(hass, entry, NATIVE_2_5)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        _settings(
            **{
                CONF_VOICE: "Puck",
                CONF_LANGUAGE: "vi-VN",
                CONF_LLM_HASS_API: [llm.LLM_API_ASSIST],
                CONF_THINKING_BUDGET: 512,
                CONF_AFFECTIVE_DIALOG: True,
                CONF_PROACTIVE_AUDIO: True,
                CONF_GOOGLE_SEARCH: True,
                CONF_ACTIVITY_DETECTION: "automatic",
            }
        ),
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    # The model check, then the settings.
    assert len(fake_live.connections) == 2
    setup = fake_live.connections[-1].setup
    assert setup is not None
    generation = setup["generationConfig"]
    assert generation["speechConfig"] == {
        "voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Puck"}},
        "languageCode": "vi-VN",
    }
    assert generation["enableAffectiveDialog"] is True
    assert generation["thinkingConfig"] == {"thinkingBudget": 512}
    assert setup["proactivity"] == {"proactiveAudio": True}
    assert setup["realtimeInputConfig"] == {
        "automaticActivityDetection": {"disabled": False}
    }
    tools = setup["tools"]
    assert [list(tool) for tool in tools] == [
        ["functionDeclarations"],
        ["googleSearch"],
    ]
    assert tools[0]["functionDeclarations"]
    # Conversations open the same setup; reading text aloud needs no Search
    # and must not choose silence.
    config = speech_config(result["data"])
    assert (config.affective_dialog, config.proactive_audio, config.google_search) == (
        True,
        False,
        False,
    )


async def test_thinking_level_reaches_the_setup(
    hass: HomeAssistant, fake_live: FakeLiveServer
) -> None:
    """The thinking level chosen is sent as the family's level."""
    entry = _gemini_entry(hass, fake_live, fake_live.api_key)
    result = await _agent_settings(hass, entry, EXTENDED)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], _settings(**{CONF_THINKING_LEVEL: "high"})
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_THINKING_LEVEL] == "high"
    setup = fake_live.connections[-1].setup
    assert setup is not None
    assert setup["generationConfig"]["thinkingConfig"] == {"thinkingLevel": "HIGH"}
    assert "enableAffectiveDialog" not in setup["generationConfig"]


@pytest.mark.parametrize(
    ("model", "changes", "option", "strict", "rejected_field"),
    [
        (
            GEMINI_MODEL,
            {"affective_dialog": True},
            {CONF_AFFECTIVE_DIALOG: True},
            False,
            "generationConfig.enableAffectiveDialog",
        ),
        (
            FLASH_3_1,
            {"proactive_audio": True},
            {CONF_PROACTIVE_AUDIO: True},
            False,
            "proactivity.proactiveAudio",
        ),
        (
            EXTENDED,
            {"thinking_levels": ("MINIMAL", "LOW", "MEDIUM", "HIGH")},
            {CONF_THINKING_LEVEL: "minimal"},
            True,
            "generationConfig.thinkingConfig.thinkingLevel",
        ),
    ],
    ids=["affective_dialog_3.8", "proactive_audio_3.1", "thinking_level_ext"],
)
async def test_setting_rejected_at_its_field(
    hass: HomeAssistant,
    fake_live: FakeLiveServer,
    monkeypatch: pytest.MonkeyPatch,
    *,
    model: str,
    changes: dict[str, Any],
    option: dict[str, Any],
    strict: bool,
    rejected_field: str,
) -> None:
    """A setting the service refuses is shown at its field, not at the top."""
    patch_family(monkeypatch, model, **changes)
    fake_live.strict_families = strict
    entry = _gemini_entry(hass, fake_live, fake_live.api_key)
    result = await _agent_settings(hass, entry, model)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], _settings(**option)
    )
    assert result["type"] is FlowResultType.FORM
    (key,) = option
    assert result["errors"] == {key: "rejected_by_model"}
    assert_translated(result, AGENT_STRINGS)
    # The model check passed; the settings were refused for that field; then,
    # without it, the rest of the setup was accepted.
    check, refused, without = fake_live.connections
    assert check.setup_complete_sent
    assert refused.rejected_field == rejected_field
    assert without.setup_complete_sent
    assert len(entry.subentries) == 1


async def test_setting_rejected_named_by_reason(
    hass: HomeAssistant, fake_live: FakeLiveServer
) -> None:
    """A reason naming the field puts the error there without retrying."""
    entry = _gemini_entry(hass, fake_live, fake_live.api_key)
    result = await _agent_settings(hass, entry)
    fake_live.add_fault(Close(code=1007, reason="Unsupported language code: xx-YY"))
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], _settings(**{CONF_LANGUAGE: "xx-YY"})
    )
    assert result["errors"] == {CONF_LANGUAGE: "rejected_by_model"}
    assert_translated(result, AGENT_STRINGS)
    # The model check and the refused settings: no retry.
    assert len(fake_live.connections) == 2


async def test_refusal_without_culprit(
    hass: HomeAssistant, fake_live: FakeLiveServer
) -> None:
    """A refusal no single setting explains stays a general error."""
    entry = _gemini_entry(hass, fake_live, fake_live.api_key)
    result = await _agent_settings(hass, entry)
    fake_live.add_fault(Close(code=1007, reason=INVALID_ARGUMENT), times=None)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], _settings(**{CONF_GOOGLE_SEARCH: True})
    )
    assert result["errors"] == {"base": "model_not_supported"}
    assert_translated(result, AGENT_STRINGS)
    # The model check, the full setup, then the setup without Search.
    assert len(fake_live.connections) == 3


async def test_new_model_drops_rejected_settings(
    hass: HomeAssistant, fake_live: FakeLiveServer
) -> None:
    """A new model keeps only the settings its family accepts."""
    options = {
        **RECOMMENDED_OPTIONS,
        CONF_AFFECTIVE_DIALOG: True,
        CONF_PROACTIVE_AUDIO: True,
        CONF_GOOGLE_SEARCH: True,
    }
    entry = _gemini_entry(hass, fake_live, fake_live.api_key, NATIVE_2_5, options)
    result = await _reconfigure_agent(hass, entry, GEMINI_MODEL)
    assert result["description_placeholders"]["model"] == GEMINI_MODEL
    schema = {str(marker) for marker in result["data_schema"].schema}
    assert schema == SETTINGS | {CONF_GOOGLE_SEARCH}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], form_values(result)
    )
    await hass.async_block_till_done()
    assert result["reason"] == "reconfigure_successful"
    assert dict(agent(entry).data) == {
        CONF_MODEL: GEMINI_MODEL,
        **RECOMMENDED_OPTIONS,
        CONF_PROMPT: DEFAULT_PROMPT,
        CONF_GOOGLE_SEARCH: True,
    }
    setup = fake_live.connections[-1].setup
    assert setup is not None
    assert setup["model"] == f"models/{GEMINI_MODEL}"
    assert "enableAffectiveDialog" not in setup["generationConfig"]
    assert "proactivity" not in setup
    assert {"googleSearch": {}} in setup["tools"]


async def test_new_model_drops_unknown_thinking_level(
    hass: HomeAssistant, fake_live: FakeLiveServer
) -> None:
    """A level the new family does not have falls back to its default."""
    options = {**RECOMMENDED_OPTIONS, CONF_THINKING_LEVEL: "minimal"}
    entry = _gemini_entry(hass, fake_live, fake_live.api_key, FLASH_3_1, options)
    result = await _reconfigure_agent(hass, entry, EXTENDED)
    assert suggested(result, CONF_THINKING_LEVEL) is None
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], form_values(result)
    )
    assert result["reason"] == "reconfigure_successful"
    assert dict(agent(entry).data) == {
        CONF_MODEL: EXTENDED,
        **RECOMMENDED_OPTIONS,
        CONF_PROMPT: DEFAULT_PROMPT,
        CONF_THINKING_LEVEL: "low",
        CONF_GOOGLE_SEARCH: False,
    }
    setup = fake_live.connections[-1].setup
    assert setup is not None
    assert setup["generationConfig"]["thinkingConfig"] == {"thinkingLevel": "LOW"}


async def test_new_model_refuses_a_kept_setting(
    hass: HomeAssistant, fake_live: FakeLiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kept setting the new model refuses is marked at its field."""
    patch_family(monkeypatch, GEMINI_MODEL, affective_dialog=True)
    options = {**RECOMMENDED_OPTIONS, CONF_AFFECTIVE_DIALOG: True}
    entry = _gemini_entry(hass, fake_live, fake_live.api_key, NATIVE_2_5, options)
    result = await _reconfigure_agent(hass, entry, GEMINI_MODEL)
    assert suggested(result, CONF_AFFECTIVE_DIALOG) is True
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], form_values(result)
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_AFFECTIVE_DIALOG: "rejected_by_model"}
    assert_translated(result, AGENT_STRINGS)
    assert agent(entry).data[CONF_MODEL] == NATIVE_2_5

    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {**form_values(result), CONF_AFFECTIVE_DIALOG: False}
    )
    assert result["reason"] == "reconfigure_successful"
    assert agent(entry).data[CONF_MODEL] == GEMINI_MODEL
    assert agent(entry).data[CONF_AFFECTIVE_DIALOG] is False


async def test_remove_assistant(hass: HomeAssistant, fake_live: FakeLiveServer) -> None:
    """Removing an assistant removes its device and entities; the other stays."""
    entry = account_entry(
        {
            CONF_PROVIDER: PROVIDER_GEMINI_API,
            CONF_API_KEY: fake_live.api_key,
            CONF_BASE_URL: fake_live.base_url,
        },
        agent_data(GEMINI_MODEL, title="Kitchen"),
        agent_data(NATIVE_2_5, title="Office"),
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    kitchen, office = entry.get_subentries_of_type(SUBENTRY_AGENT)
    entities = er.async_get(hass)
    devices = dr.async_get(hass)
    office_entities = [
        e.entity_id
        for e in er.async_entries_for_config_entry(entities, entry.entry_id)
        if e.config_subentry_id == office.subentry_id
    ]
    assert {e.split(".")[0] for e in office_entities} >= {"conversation", "stt", "tts"}
    assert all(hass.states.get(e) for e in office_entities)
    office_device = devices.async_get_device_by_identifier(
        (DOMAIN, office.subentry_id), entry.entry_id
    )
    assert office_device is not None

    assert hass.config_entries.async_remove_subentry(entry, office.subentry_id)
    await hass.async_block_till_done()

    assert entry.state is ConfigEntryState.LOADED
    assert set(entry.runtime_data.agents) == {kitchen.subentry_id}
    assert devices.async_get(office_device.id) is None
    for entity_id in office_entities:
        assert entities.async_get(entity_id) is None
        assert hass.states.get(entity_id) is None
    remaining = er.async_entries_for_config_entry(entities, entry.entry_id)
    assert {e.config_subentry_id for e in remaining} == {kitchen.subentry_id}
    assert devices.async_get_device_by_identifier(
        (DOMAIN, kitchen.subentry_id), entry.entry_id
    )
    assert await hass.config_entries.async_unload(entry.entry_id)


def test_assistant_strings() -> None:
    """The subentry type has its name and the labels of its flows."""
    assert AGENT_STRINGS["entry_type"]
    assert set(AGENT_STRINGS["initiate_flow"]) == {"user", "reconfigure"}
