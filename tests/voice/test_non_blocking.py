"""NON_BLOCKING tools on 3.8 Live: the model talks on while Home Assistant acts.

Through the real pipeline with espeak-ng speech against the fake server,
which runs NON_BLOCKING calls and their scheduling as the reference
documents (live-api.md 2.4, 7.1) and cancels a pending BLOCKING call on new
input (3.4).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

from homeassistant.components import conversation, tts
from homeassistant.components.assist_pipeline import PipelineEvent, PipelineStage
from homeassistant.components.homeassistant.exposed_entities import (
    async_expose_entity,
)
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import pytest

from tests.fake_live import Reply, ToolCall

from .conftest import Voice
from .test_pipeline import LIGHT, _kitchen_light

SCRIPT = "script.movie_night"
FLAG = "input_boolean.movie_mode"
MEANWHILE = "Starting movie night, this takes a moment."
DONE = "Movie night is ready."


@pytest.fixture
def live_model() -> str:
    """3.8 Live: function calls are NON_BLOCKING by default."""
    return "gemini-3.8-live"


async def _slow_script(hass: HomeAssistant) -> None:
    """Set up an exposed script that takes 8 s, then switches a flag on."""
    assert await async_setup_component(
        hass, "input_boolean", {"input_boolean": {"movie_mode": {}}}
    )
    assert await async_setup_component(
        hass,
        "script",
        {
            "script": {
                "movie_night": {
                    "alias": "Movie night",
                    "sequence": [
                        {"delay": 8},
                        {
                            "action": "input_boolean.turn_on",
                            "target": {"entity_id": FLAG},
                        },
                    ],
                }
            }
        },
    )
    await hass.async_block_till_done()
    async_expose_entity(hass, conversation.DOMAIN, SCRIPT, True)


async def test_slow_script_keeps_the_audio_flowing(voice: Voice) -> None:
    """An 8 s script: the audio never pauses long, its effect is reported.

    The model says something meanwhile; the script runs to its end (never
    cut off at the bound of blocking calls); its result goes back WHEN_IDLE
    and the model's report of it is heard and is the answer.
    """
    await _slow_script(voice.hass)
    voice.server.queue_reply(
        Reply(
            text="",
            meanwhile=MEANWHILE,
            tool_calls=[ToolCall(name="script__movie_night")],
            then=Reply(text=DONE),
        )
    )
    arrivals: list[tuple[float, int]] = []
    readers: list[asyncio.Task[None]] = []

    async def read(token: str) -> None:
        stream = tts.async_get_stream(voice.hass, token)
        assert stream is not None
        arrivals.extend(
            [
                (time.monotonic(), len(chunk))
                async for chunk in stream.async_stream_result()
            ]
        )

    def on_event(event: PipelineEvent) -> None:
        data = event.data or {}
        if not readers and data.get("tts_output", {}).get("stream_response"):
            readers.append(asyncio.create_task(read(data["tts_output"]["token"])))

    run = await voice.run(
        "start movie night", end_stage=PipelineStage.TTS, event_callback=on_event
    )
    await asyncio.gather(*readers)

    assert run.error is None
    assert voice.hass.states.get(FLAG).state == "on"
    assert run.speech == DONE
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(arrivals)]
    assert arrivals[-1][0] - arrivals[0][0] > 8
    assert max(gaps) < 1.5  # silence keeps the stream alive across the script
    (response,) = voice.server.connections[-1].tool_responses
    assert response["scheduling"] == "WHEN_IDLE"
    assert response["response"]["output"]["status"] == "success"
    log = voice.chat_log(run.conversation_id)
    assert [getattr(item, "content", None) for item in log[2:]] == [
        MEANWHILE,
        None,
        DONE,
    ]


async def test_fast_result_does_not_wait_for_a_slow_one(voice: Voice) -> None:
    """Two NON_BLOCKING calls at once: each result goes back when it is there."""
    await _slow_script(voice.hass)
    await _kitchen_light(voice.hass)

    def follow_up(responses: list[dict[str, Any]]) -> Reply:
        names = {response["name"] for response in responses}
        return Reply(text=DONE if "script__movie_night" in names else "Light is on.")

    voice.server.queue_reply(
        Reply(
            text="",
            meanwhile=MEANWHILE,
            tool_calls=[
                ToolCall(name="intent__HassTurnOn", args={"name": "Kitchen light"}),
                ToolCall(name="script__movie_night"),
            ],
            then=follow_up,
        )
    )

    run = await voice.run("lights and movie night")

    messages = [
        [r["name"] for r in m["toolResponse"]["functionResponses"]]
        for m in voice.server.connections[-1].messages
        if "toolResponse" in m
    ]
    assert messages == [["intent__HassTurnOn"], ["script__movie_night"]]
    light = voice.hass.states.get(LIGHT)
    assert light is not None
    assert light.state == "on"
    assert run.speech == DONE
