"""Every model family end to end.

The reply is heard, tools work, and the setup holds no field the family
rejects (the fake server closes 1007 on one).
"""

from __future__ import annotations

from typing import Any

from homeassistant.components import tts
from homeassistant.components.assist_pipeline import PipelineEventType, PipelineStage
import pytest

from tests.fake_live import Reply, ToolCall

from .conftest import Voice
from .test_pipeline import LIGHT, TURN_ON, _kitchen_light

FAMILIES = {
    "gemini-3.8-live": None,
    "gemini-3.8-live-extended-thinking": {"thinkingLevel": "LOW"},
    "gemini-3.1-flash-live-preview": {"thinkingLevel": "MINIMAL"},
    "gemini-2.5-flash-native-audio-preview-12-2025": {"thinkingBudget": 0},
}


@pytest.fixture(params=list(FAMILIES))
def live_model(request: pytest.FixtureRequest) -> str:
    """Run each test on every model family."""
    return str(request.param)


async def test_family_voice_turn_with_a_tool(voice: Voice, live_model: str) -> None:
    """A spoken request switches the light; the answer is heard in full."""
    await _kitchen_light(voice.hass)
    voice.server.queue_reply(
        Reply(
            text="One moment.",
            tool_calls=[ToolCall(name=TURN_ON, args={"name": "Kitchen light"})],
            then=Reply(text="The kitchen light is on."),
        )
    )

    run = await voice.run("turn on the kitchen light", end_stage=PipelineStage.TTS)

    assert run.error is None
    assert voice.hass.states.get(LIGHT).state == "on"
    assert run.speech == "The kitchen light is on."
    stream = tts.async_get_stream(voice.hass, run.tts_token)
    assert stream is not None
    audio = b"".join([chunk async for chunk in stream.async_stream_result()])
    assert len(audio) > 24000
    connection = voice.server.connections[-1]
    generation: dict[str, Any] = connection.config["generationConfig"]
    assert generation.get("thinkingConfig") == FAMILIES[live_model]
    assert "enableAffectiveDialog" not in generation
    assert "proactivity" not in connection.config
    assert not connection.closed
    assert PipelineEventType.ERROR not in run.types


@pytest.mark.parametrize("live_model", ["gemini-3.8-live-extended-thinking"])
async def test_extended_thinking_reply_heard_whole(voice: Voice) -> None:
    """A filler, turnComplete IN_PROGRESS, a pause, then the answer: one reply.

    Neither the early turnComplete nor the pause ends the turn, cuts the
    audio or the transcript.
    """
    answer = "Let me think about that. The garage door has been open for an hour."
    voice.server.queue_reply(
        Reply(text=answer, in_progress_after_chunks=3, in_progress_pause=1.5)
    )

    run = await voice.run("is the garage door open", end_stage=PipelineStage.TTS)

    assert run.speech == answer
    stream = tts.async_get_stream(voice.hass, run.tts_token)
    assert stream is not None
    audio = b"".join([chunk async for chunk in stream.async_stream_result()])
    sent = voice.server.connections[-1].audio_out
    assert len(audio) - 44 >= len(sent)  # every byte sent (and keep-alive silence)
    statuses = [
        m["serverContent"].get("interactionStatus")
        for m in voice.server.connections[-1].sent
        if "turnComplete" in m.get("serverContent", {})
    ]
    assert statuses == ["IN_PROGRESS", "IDLE"]
