"""One real Home Assistant per version and test module, on the fake Live server.

pytest-homeassistant-custom-component has no release for 2026.11, so these
tests run Home Assistant itself: 2026.10.4 from .venv and 2026.11.0 from
.venv-2026.11 (scripts/setup), each as a `hass` process of tests/instance,
onboarded, with the Gemini Live entry made through the REST config flow
against the fake server running in this process (its `base_url` in the
flow's advanced settings; the fake serves the Gemini TTS models too), and
the assistant's instructions naming the user. Home Assistant's ffmpeg is a
wrapper that records each command line (`Home.ffmpeg_runs()`).
Tests drive it as the frontend and the apps do (REST and WebSocket).

The module-scoped process and fake server live on the session event loop
(`pytestmark` of the test modules), so every test of a module shares them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
import contextlib
from dataclasses import dataclass, field
from pathlib import Path
import shutil
import stat
from typing import Any

from awesomeversion import AwesomeVersion
import pytest
import pytest_asyncio
import pytest_socket

from tests.fake_live import FakeLiveServer, Reply
from tests.instance import (
    REPOSITORY,
    Assistant,
    GeminiApiAccount,
    HomeAssistantClient,
    Instance,
    Owner,
    home_assistant,
    provision,
    sign_in,
)
from tests.instance.client import TIMEOUT
from tests.instance.provision import wait_loaded

VENVS = {
    "2026.10.4": REPOSITORY / ".venv",
    "2026.11.0": REPOSITORY / ".venv-2026.11",
}
"""The Home Assistant versions proven, and the venv each one runs from."""
MODEL = "gemini-2.5-flash-native-audio-preview-12-2025"
"""The model the suite scripts (blocking tool calls)."""
PROMPT = "You are a voice assistant. You are talking to {{ user_name }}."
"""The assistant's instructions: they show whose session the model got."""
FFMPEG_RUNS = "ffmpeg-runs.txt"


def spy_on_ffmpeg(config_dir: Path) -> None:
    """Make Home Assistant run ffmpeg through a wrapper that logs its arguments."""
    real = shutil.which("ffmpeg")
    assert real, "ffmpeg is not installed (scripts/setup)"
    wrapper = config_dir / "ffmpeg"
    wrapper.write_text(
        f'#!/bin/sh\necho "$*" >> "{config_dir / FFMPEG_RUNS}"\nexec "{real}" "$@"\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    (config_dir / "packages").mkdir(parents=True, exist_ok=True)
    (config_dir / "packages" / "ffmpeg.yaml").write_text(
        f"ffmpeg:\n  ffmpeg_bin: {wrapper}\n"
    )


@dataclass(slots=True)
class Home:
    """A running, provisioned Home Assistant and the fake server it talks to."""

    version: str
    instance: Instance
    client: HomeAssistantClient
    """Signed in as `owner` (an administrator)."""
    owner: Owner
    server: FakeLiveServer
    assistant: Assistant

    def ffmpeg_runs(self) -> list[str]:
        """Return the command line of every ffmpeg Home Assistant ran so far."""
        path = self.instance.config_dir / FFMPEG_RUNS
        return path.read_text().splitlines() if path.exists() else []

    @property
    def passes_through(self) -> bool:
        """Whether this version serves a TTS stream in the requested format as is."""
        return AwesomeVersion(self.version) >= AwesomeVersion("2026.11.0")


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """No in-process Home Assistant here (overrides the suite's fixture)."""


@pytest.fixture(autouse=True)
def verify_cleanup() -> None:
    """Skip the test plugin's check of the function loop and its threads.

    It is made for an in-process `hass`; these tests share a process and a
    fake server on the session loop, both closed when the module ends.
    """


@pytest.fixture(autouse=True)
def sockets(socket_enabled: None) -> None:
    """Let each test reach the process and the process reach the fake."""


@pytest_asyncio.fixture(scope="module", loop_scope="session", params=list(VENVS))
async def home(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Home]:
    """Start and provision Home Assistant of one version; stop it at the end."""
    version: str = request.param
    pytest_socket.enable_socket()  # module fixtures run before `socket_enabled`
    config_dir = tmp_path_factory.mktemp(f"ha-{version}")
    spy_on_ffmpeg(config_dir)
    owner = Owner.create()
    async with FakeLiveServer() as server:
        server.speech.serve()  # the Gemini TTS models speak `tts.speak` text
        async with home_assistant(config_dir, venv=VENVS[version]) as instance:
            token = await sign_in(instance.url, owner)
            async with HomeAssistantClient(instance.url, token) as client:
                running = (await client.command("get_config"))["version"]
                assert running == version, f"{VENVS[version]} runs {running}"
                assistant = await provision(
                    client,
                    GeminiApiAccount(
                        api_key=server.api_key, base_url=server.base_url, model=MODEL
                    ),
                )
                assert assistant is not None
                await set_prompt(client, assistant.entry_id, PROMPT)
                yield Home(version, instance, client, owner, server, assistant)
        if server.errors:
            raise server.errors[0]


@pytest.fixture
def fake(home: Home) -> FakeLiveServer:
    """Return the fake server, with no reply scripted and no fault."""
    server = home.server
    server.replies.clear()
    server.clear_faults()
    server.responder = None
    server.default_reply = Reply(text="OK.")
    return server


async def set_prompt(client: HomeAssistantClient, entry_id: str, prompt: str) -> None:
    """Change the assistant's instructions through the subentry reconfigure flow.

    Every other field keeps the value the form suggests. The entry reloads.
    """
    subentries = await client.command(
        "config_entries/subentries/list", entry_id=entry_id
    )
    flow = await client.rest(
        "POST",
        "/api/config/config_entries/subentries/flow",
        {
            "handler": [entry_id, "conversation"],
            "subentry_id": subentries[0]["subentry_id"],
        },
    )
    while flow["type"] == "form":
        answer = filled(flow["data_schema"])
        if flow["step_id"] == "set_options":
            answer["prompt"] = prompt
        assert not flow.get("errors"), flow["errors"]
        flow = await client.rest(
            "POST",
            f"/api/config/config_entries/subentries/flow/{flow['flow_id']}",
            answer,
        )
    assert flow == {**flow, "type": "abort", "reason": "reconfigure_successful"}
    await wait_loaded(client, entry_id)


def filled(schema: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Answer a form with each field's suggested value, else its default."""
    answer: dict[str, Any] = {}
    for item in schema:
        if item.get("type") == "expandable":
            answer[item["name"]] = filled(item["schema"])
        elif "suggested_value" in (description := item.get("description") or {}):
            answer[item["name"]] = description["suggested_value"]
        elif "default" in item:
            answer[item["name"]] = item["default"]
    return answer


@dataclass(slots=True)
class ChatLogWatch:
    """A conversation's chat log as `conversation/chat_log/subscribe` shows it."""

    content: list[dict[str, Any]]
    """The messages when the subscription started."""
    events: list[dict[str, Any]] = field(default_factory=list)
    """Every event since then ({"event_type", "data"}), in order."""


@contextlib.asynccontextmanager
async def watch_chat_log(
    client: HomeAssistantClient, conversation_id: str
) -> AsyncIterator[ChatLogWatch]:
    """Subscribe to a chat log (as the frontend's Assist dialog does) while open."""
    message = {
        "type": "conversation/chat_log/subscribe",
        "conversation_id": conversation_id,
    }
    async with client._subscription(message) as (msg_id, queue):
        client._result(await client._next(queue, TIMEOUT, "chat log"), "chat log")
        initial = (await client._next(queue, TIMEOUT, "chat log state"))["event"]
        assert initial["event_type"] == "initial_state", initial
        watch = ChatLogWatch(initial["data"]["content"])

        async def collect() -> None:
            while True:
                watch.events.append((await queue.get())["event"])

        collector = asyncio.create_task(collect())
        try:
            yield watch
        finally:
            collector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await collector
            await client.command("unsubscribe_events", subscription=msg_id)


async def chat_log(
    client: HomeAssistantClient, conversation_id: str
) -> list[dict[str, Any]]:
    """Return a conversation's chat log messages, as the frontend gets them."""
    async with watch_chat_log(client, conversation_id) as watch:
        return watch.content


def said(content: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    """Return (role, text) of the user and assistant messages that have text."""
    return [
        (item["role"], item["content"])
        for item in content
        if item["role"] in ("user", "assistant") and item.get("content")
    ]
