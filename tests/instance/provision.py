"""Provision a Home Assistant over its public APIs, as its frontend would.

Onboarding (owner, core config, analytics, integration steps) or, once done,
the login flow; the Gemini Live entry through the REST config flow; an Assist
pipeline of the entry's STT, conversation and TTS entities, set as preferred.
"""

# Test helpers take a timeout argument.
# ruff: noqa: ASYNC109
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
import hashlib
import json
import os
from pathlib import Path
import secrets
from typing import Any, Self

import aiohttp

from .client import TIMEOUT, ApiError, HomeAssistantClient, poll

DOMAIN = "gemini_live"
LANGUAGE = "en"
STEPS = ("user", "core_config", "analytics", "integration")


@dataclass(frozen=True, slots=True, kw_only=True)
class Owner:
    """The local user onboarding creates (an administrator)."""

    name: str = "Demo"
    username: str = "demo"
    password: str

    @classmethod
    def create(cls) -> Self:
        """Return an owner with a fresh random password."""
        return cls(password=secrets.token_urlsafe(9))

    @classmethod
    def load_or_create(cls, path: Path) -> Self:
        """Return the owner saved at `path`, or a new one saved there (mode 600)."""
        if path.exists():
            return cls(**json.loads(path.read_text()))
        owner = cls.create()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(json.dumps(asdict(owner)))
        return owner


@dataclass(frozen=True, slots=True, kw_only=True)
class GeminiApiAccount:
    """A Gemini Developer API key; `base_url` for another endpoint (the fake)."""

    api_key: str
    base_url: str | None = None
    model: str | None = None
    """None: the model the form suggests."""


@dataclass(frozen=True, slots=True, kw_only=True)
class VertexAccount:
    """A Google Cloud service-account key for Vertex AI."""

    service_account_json: str
    project_id: str
    location: str = "us-central1"
    base_url: str | None = None
    model: str | None = None


type Account = GeminiApiAccount | VertexAccount


def fingerprint(account: Account) -> str:
    """Return a digest that changes with any field of `account` (no secret in it)."""
    fields = {"kind": type(account).__name__, **asdict(account)}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def account_from_env(env: Mapping[str, str] = os.environ) -> Account | None:
    """Google's own service from the environment, or None.

    GEMINI_API_KEY, or GEMINI_VERTEX_SERVICE_ACCOUNT (path of a key file) with
    GEMINI_VERTEX_PROJECT (default: the file's project) and
    GEMINI_VERTEX_LOCATION (default us-central1); GEMINI_MODEL picks the model.
    """
    model = env.get("GEMINI_MODEL") or None
    if key := env.get("GEMINI_API_KEY"):
        return GeminiApiAccount(api_key=key, model=model)
    if path := env.get("GEMINI_VERTEX_SERVICE_ACCOUNT"):
        text = Path(path).expanduser().read_text()
        project = env.get("GEMINI_VERTEX_PROJECT") or json.loads(text)["project_id"]
        location = env.get("GEMINI_VERTEX_LOCATION") or "us-central1"
        return VertexAccount(
            service_account_json=text,
            project_id=project,
            location=location,
            model=model,
        )
    return None


@dataclass(frozen=True, slots=True)
class Assistant:
    """The provisioned Gemini Live entry and its Assist pipeline."""

    entry_id: str
    pipeline_id: str
    stt_entity: str
    conversation_entity: str
    tts_entity: str


# ----------------------------------------------------------------- login


def client_id(url: str) -> str:
    """Return the client id the frontend uses: the instance's own URL."""
    return f"{url.rstrip('/')}/"


def _redirect_uri(url: str) -> str:
    return f"{client_id(url)}?auth_callback=1"


async def _json(response: aiohttp.ClientResponse, what: str) -> Any:
    body = await response.text()
    if response.status >= 400:
        raise ApiError(f"{what}: HTTP {response.status}: {body[:500]}")
    return json.loads(body) if body else None


async def _token(http: aiohttp.ClientSession, url: str, code: str) -> str:
    """Exchange an authorization code for an access token."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": client_id(url),
    }
    async with http.post(f"{url}/auth/token", data=form) as response:
        return str((await _json(response, "token"))["access_token"])


async def _onboard_user(http: aiohttp.ClientSession, url: str, owner: Owner) -> str:
    """Do the onboarding user step: create the owner; return an access token."""
    body = {
        "client_id": client_id(url),
        "name": owner.name,
        "username": owner.username,
        "password": owner.password,
        "language": LANGUAGE,
    }
    async with http.post(f"{url}/api/onboarding/users", json=body) as response:
        code = (await _json(response, "onboarding user step"))["auth_code"]
    return await _token(http, url, code)


async def _login(http: aiohttp.ClientSession, url: str, owner: Owner) -> str:
    """Log in through the Home Assistant auth provider; return an access token."""
    start = {
        "client_id": client_id(url),
        "handler": ["homeassistant", None],
        "redirect_uri": _redirect_uri(url),
    }
    async with http.post(f"{url}/auth/login_flow", json=start) as response:
        flow = await _json(response, "login flow")
    answer = {
        "client_id": client_id(url),
        "username": owner.username,
        "password": owner.password,
    }
    async with http.post(
        f"{url}/auth/login_flow/{flow['flow_id']}", json=answer
    ) as response:
        result = await _json(response, "login")
    if result.get("type") != "create_entry":
        raise ApiError(f"Login of {owner.username!r} refused: {result.get('errors')}")
    return await _token(http, url, result["result"])


async def _finish_onboarding(
    http: aiohttp.ClientSession, url: str, token: str, done: set[str]
) -> None:
    """Do the onboarding steps after the user: core config, analytics, integration."""
    headers = {"Authorization": f"Bearer {token}"}
    if "core_config" not in done:
        async with HomeAssistantClient(url, token) as client:
            # The frontend's map starts at this point; left there, the
            # weather integration onboarding offers stays out (no home).
            await client.command(
                "config/core/update",
                latitude=52.3731339,
                longitude=4.8903147,
                country="US",
                language=LANGUAGE,
                time_zone="UTC",
                unit_system="metric",
                currency="USD",
            )
        async with http.post(
            f"{url}/api/onboarding/core_config", headers=headers
        ) as response:
            await _json(response, "onboarding core config step")
    if "analytics" not in done:
        async with http.post(
            f"{url}/api/onboarding/analytics", headers=headers
        ) as response:
            await _json(response, "onboarding analytics step")
    if "integration" not in done:
        body = {"client_id": client_id(url), "redirect_uri": _redirect_uri(url)}
        async with http.post(
            f"{url}/api/onboarding/integration", json=body, headers=headers
        ) as response:
            await _json(response, "onboarding integration step")


async def sign_in(url: str, owner: Owner) -> str:
    """Onboard with `owner` (or log in once onboarded); an access token."""
    async with aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=TIMEOUT)
    ) as http:
        async with http.get(f"{url}/api/onboarding") as response:
            # Once onboarded, Home Assistant no longer serves the status (404).
            steps = (
                [] if response.status == 404 else await _json(response, "onboarding")
            )
        done = {step["step"] for step in steps if step["done"]} if steps else set(STEPS)
        if "user" in done:
            token = await _login(http, url, owner)
        else:
            token = await _onboard_user(http, url, owner)
        await _finish_onboarding(http, url, token, done)
        return token


# ------------------------------------------------------- the integration


def _suggested(form: Mapping[str, Any], name: str) -> Any:
    """Return the suggested value or default of a field of a flow form."""
    for item in form.get("data_schema") or []:
        if item["name"] == name:
            return (item.get("description") or {}).get("suggested_value") or item.get(
                "default"
            )
    return None


async def _flow_step(
    client: HomeAssistantClient, flow: Mapping[str, Any], user_input: dict[str, Any]
) -> dict[str, Any]:
    """Answer a form of a config flow; raise ApiError when it shows errors."""
    result: dict[str, Any] = await client.rest(
        "POST", f"/api/config/config_entries/flow/{flow['flow_id']}", user_input
    )
    if result["type"] == "form" and result.get("errors"):
        raise ApiError(f"Config flow step {flow['step_id']}: {result['errors']}")
    if result["type"] == "abort":
        raise ApiError(f"Config flow aborted: {result['reason']}")
    return result


def _advanced(base_url: str | None) -> dict[str, Any]:
    return {"advanced_settings": {"base_url": base_url}} if base_url else {}


async def add_gemini_live(client: HomeAssistantClient, account: Account) -> str:
    """Create the Gemini Live entry through the REST config flow; its id."""
    flow: dict[str, Any] = await client.rest(
        "POST",
        "/api/config/config_entries/flow",
        {"handler": DOMAIN, "show_advanced_options": True},
    )
    if isinstance(account, GeminiApiAccount):
        flow = await _flow_step(client, flow, {"provider": "gemini_api"})
        flow = await _flow_step(
            client,
            flow,
            {
                "api_key": account.api_key,
                "model": account.model or _suggested(flow, "model"),
                **_advanced(account.base_url),
            },
        )
    else:
        flow = await _flow_step(client, flow, {"provider": "vertex_ai"})
        flow = await _flow_step(
            client, flow, {"service_account": account.service_account_json}
        )
        flow = await _flow_step(
            client,
            flow,
            {
                "project_id": account.project_id,
                "location": account.location,
                "model": account.model or _suggested(flow, "model"),
                **_advanced(account.base_url),
            },
        )
    if flow["type"] != "create_entry":
        raise ApiError(f"Config flow did not create the entry: {flow}")
    return str(flow["result"]["entry_id"])


async def gemini_live_entries(client: HomeAssistantClient) -> list[dict[str, Any]]:
    """Return the Gemini Live config entries (config_entries/get)."""
    entries: list[dict[str, Any]] = await client.command(
        "config_entries/get", domain=DOMAIN
    )
    return entries


async def create_assistant(client: HomeAssistantClient, entry_id: str) -> Assistant:
    """Make the entry's entities the preferred Assist pipeline (reused if any)."""
    registry = await client.command("config/entity_registry/list")
    entities = {
        e["entity_id"].split(".")[0]: e["entity_id"]
        for e in registry
        if e.get("config_entry_id") == entry_id
    }
    missing = {"stt", "conversation", "tts"} - entities.keys()
    if missing:
        raise ApiError(f"Entry {entry_id} has no {', '.join(sorted(missing))} entity")
    fields = {
        "name": "Gemini Live",
        "language": LANGUAGE,
        "conversation_engine": entities["conversation"],
        "conversation_language": LANGUAGE,
        "stt_engine": entities["stt"],
        "stt_language": LANGUAGE,
        "tts_engine": entities["tts"],
        "tts_language": LANGUAGE,
        "tts_voice": None,
        "wake_word_entity": None,
        "wake_word_id": None,
        "prefer_local_intents": False,
    }
    listing = await client.command("assist_pipeline/pipeline/list")
    engines = ("conversation_engine", "stt_engine", "tts_engine")
    for pipeline in listing["pipelines"]:
        if all(pipeline[key] == fields[key] for key in engines):
            pipeline_id = pipeline["id"]
            break
    else:
        pipeline_id = (
            await client.command("assist_pipeline/pipeline/create", **fields)
        )["id"]
    if listing["preferred_pipeline"] != pipeline_id:
        await client.command(
            "assist_pipeline/pipeline/set_preferred", pipeline_id=pipeline_id
        )
    return Assistant(
        entry_id=entry_id,
        pipeline_id=pipeline_id,
        stt_entity=entities["stt"],
        conversation_entity=entities["conversation"],
        tts_entity=entities["tts"],
    )


async def wait_running(client: HomeAssistantClient, timeout: float = 120.0) -> None:
    """Wait until Home Assistant finished starting (get_config state RUNNING)."""
    state = ""

    async def running() -> bool:
        nonlocal state
        state = str((await client.command("get_config"))["state"])
        return state == "RUNNING"

    await poll(
        running,
        timeout,
        lambda: f"Home Assistant is still {state} after {timeout:.0f} s",
    )


async def confirm_http_config(client: HomeAssistantClient) -> None:
    """Keep the HTTP settings on trial (from configuration.yaml): promote them.

    As the user's "Confirm" in the frontend's dialog; otherwise Home Assistant
    restarts with its defaults five minutes later.
    """
    config = await client.command("http/config")
    if config["active_config_type"] == "pending":
        await client.command("http/config/promote")


async def provision(
    client: HomeAssistantClient,
    account: Account | None,
    *,
    replace: str | None = None,
    created: Callable[[str], None] | None = None,
) -> Assistant | None:
    """Add the Gemini Live entry (unless one exists) and its preferred pipeline.

    Waits until Home Assistant is running first. `account` None: only an
    existing entry is used (None when there is none). `replace`: the id of an
    entry made for another account, removed first. `created` is called with
    the id of an entry this call adds, as soon as it exists.
    """
    await wait_running(client)
    await confirm_http_config(client)
    entries = await gemini_live_entries(client)
    if replace in {entry["entry_id"] for entry in entries}:
        await client.rest("DELETE", f"/api/config/config_entries/entry/{replace}")
        entries = [entry for entry in entries if entry["entry_id"] != replace]
    if entries:
        entry_id = entries[0]["entry_id"]
    elif account is not None:
        entry_id = await add_gemini_live(client, account)
        if created is not None:
            created(entry_id)
    else:
        return None
    await wait_loaded(client, entry_id)
    return await create_assistant(client, entry_id)


async def wait_loaded(
    client: HomeAssistantClient, entry_id: str, timeout: float = TIMEOUT
) -> None:
    """Wait until the entry is set up (ApiError with its state and reason)."""
    entry: dict[str, Any] = {}

    async def loaded() -> bool:
        nonlocal entry
        entries = await gemini_live_entries(client)
        entry = next(e for e in entries if e["entry_id"] == entry_id)
        return bool(entry["state"] == "loaded")

    await poll(
        loaded,
        timeout,
        lambda: f"Entry {entry_id} is {entry.get('state')}: {entry.get('reason')}",
    )
