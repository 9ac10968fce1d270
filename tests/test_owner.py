"""Whose run the STT entity serves, and 2026.11's conversation owners.

The real 2026.11.0 process of tests/ha_versions shows the owners at work;
here the rule itself, and a browser run on the suite's Home Assistant.
"""

from __future__ import annotations

from typing import Any

from homeassistant.const import CONF_PROMPT
from homeassistant.core import Context
from homeassistant.helpers.chat_session import ChatSession
import pytest
from pytest_homeassistant_custom_component.common import MockUser
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.gemini_live.const import RECOMMENDED_OPTIONS
from custom_components.gemini_live.owner import may_continue
from tests.fake_live import Reply, chunks, silence, speech
from tests.voice import conftest as harness
from tests.voice.conftest import CHUNK_MS, Voice

voice = harness.voice


@pytest.fixture
def entry_options() -> dict[str, Any]:
    """Instructions that name the user the session is for."""
    return {**RECOMMENDED_OPTIONS, CONF_PROMPT: "You are talking to {{ user_name }}."}


def owned_by(user_id: str | None) -> ChatSession:
    """Return a chat session with 2026.11's owner field set."""
    session = ChatSession("conversation")
    session.user_id = user_id  # type: ignore[attr-defined]
    return session


def test_owners_decide_who_may_go_on() -> None:
    """Only the owner goes on; anyone before an owner, or when unknown."""
    assert may_continue(owned_by("owner"), Context(user_id="owner"))
    assert not may_continue(owned_by("owner"), Context(user_id="guest"))
    assert not may_continue(owned_by(None), Context(user_id="guest"))
    assert may_continue(owned_by(None), Context())  # a satellite's conversation
    assert may_continue(owned_by("owner"), None)
    assert may_continue(ChatSession("conversation"), Context(user_id="guest"))
    assert may_continue(None, Context(user_id="guest"))


async def test_browser_run_opens_the_session_as_its_user(
    voice: Voice, hass_ws_client: WebSocketGenerator, hass_admin_user: MockUser
) -> None:
    """assist_pipeline/run over the WebSocket: the session is the user's.

    The STT entity opens the Live session before the agent runs; the
    instructions are rendered for the signed-in user.
    """
    client = await hass_ws_client(voice.hass)
    voice.server.queue_reply(Reply(text="Hello."))
    await client.send_json_auto_id(
        {
            "type": "assist_pipeline/run",
            "start_stage": "stt",
            "end_stage": "intent",
            "input": {"sample_rate": 16000},
            "pipeline": voice.pipeline_id,
        }
    )
    assert (await client.receive_json())["success"]
    events: list[dict[str, Any]] = []
    while not events or events[-1]["type"] not in ("run-end", "error"):
        events.append((await client.receive_json())["event"])
        if events[-1]["type"] == "run-start":
            handler = events[-1]["data"]["runner_data"]["stt_binary_handler_id"]
            prefix = bytes([handler])
            audio = speech("good morning", 16000) + silence(1500)
            for chunk in chunks(audio, CHUNK_MS):
                await client.send_bytes(prefix + chunk)
            await client.send_bytes(prefix)

    assert [e["type"] for e in events][-1] == "run-end", events
    ended = [e["data"] for e in events if e["type"] == "intent-end"]
    assert ended[0]["intent_output"]["response"]["speech"]["plain"]["speech"] == (
        "Hello."
    )
    instruction = voice.server.connections[-1].system_instruction or ""
    assert f"You are talking to {hass_admin_user.name}." in instruction
