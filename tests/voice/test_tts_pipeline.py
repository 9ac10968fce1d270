"""Full STT -> conversation -> TTS runs: the TTS stream is the Live audio.

Also the correlation proof: the three entities of a run see the same
`chat_session.current_session` conversation id, for a short answer (TTS
started when the agent returns) and a long one (TTS streamed by the pipeline).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import struct
from typing import Any

from homeassistant.components import tts
from homeassistant.components.assist_pipeline import PipelineEventType, PipelineStage
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import chat_session
import numpy as np
import pytest
from pytest_homeassistant_custom_component.common import async_mock_service

from custom_components.gemini_live.audio import Resampler, pcm16_to_float32
from custom_components.gemini_live.tts import SILENCE_FRAME
from custom_components.gemini_live.voice import VoiceManager
from custom_components.gemini_live.voice.turn import AUDIO_RATE
from tests.fake_live import Close, Reply, UserTurn

from .conftest import Run, Voice

SHORT = "The kitchen light is on."
LONG = (
    "It is sunny and warm today, with a light breeze from the west "
    "and a high of twenty four degrees."
)


def decode_wav(data: bytes) -> tuple[int, np.ndarray]:
    """Return the sample rate and float32 samples of a (streamed) WAV."""
    assert data[:4] == b"RIFF"
    assert data[8:12] == b"WAVE"
    pos, rate, tag = 12, 0, 0
    while True:
        kind, size = struct.unpack_from("<4sI", data, pos)
        pos += 8
        if kind == b"fmt ":
            tag, channels, rate = struct.unpack_from("<HHI", data, pos)
            assert channels == 1
        elif kind == b"data":
            body = data[pos:]
            break
        pos += size
    if tag == 3:
        return rate, np.frombuffer(body, dtype="<f4")
    assert tag == 1
    return rate, pcm16_to_float32(body[: len(body) // 2 * 2])


async def tts_audio(voice: Voice, run: Run) -> bytes:
    """Return the bytes of the run's TTS stream."""
    stream = tts.async_get_stream(voice.hass, run.tts_token)
    assert stream is not None
    return b"".join([chunk async for chunk in stream.async_stream_result()])


def connection_that_heard(voice: Voice, text: str) -> Any:
    """Return the connection whose first user turn was `text`."""
    return next(
        c for c in voice.server.connections if c.turns and c.turns[0].heard == text
    )


async def test_tts_streams_the_live_audio(voice: Voice) -> None:
    """Without preferred options the TTS stream is the Live audio itself."""
    voice.server.queue_reply(Reply(text=SHORT))

    run = await voice.run("turn on the light", end_stage=PipelineStage.TTS)
    rate, samples = decode_wav(await tts_audio(voice, run))

    assert run.error is None
    assert rate == 24000
    expected = pcm16_to_float32(voice.server.connections[-1].audio_out)
    np.testing.assert_array_equal(samples, expected)


async def test_tts_converts_for_the_satellite(voice: Voice) -> None:
    """A satellite's WAV 16 kHz request gets the resampled Live audio."""
    voice.server.queue_reply(Reply(text=SHORT))

    run = await voice.run(
        "turn on the light", end_stage=PipelineStage.TTS, tts_audio_output="wav"
    )
    rate, samples = decode_wav(await tts_audio(voice, run))

    assert rate == 16000
    resampler = Resampler(24000, 16000)
    audio_out = voice.server.connections[-1].audio_out
    expected = np.concatenate([resampler.process(audio_out), resampler.flush()])
    assert len(samples) == len(expected)
    np.testing.assert_allclose(samples, expected, atol=2 / 32768)


@pytest.mark.parametrize("answer", [SHORT, LONG])
async def test_stages_share_the_conversation_id(
    voice: Voice, monkeypatch: pytest.MonkeyPatch, answer: str
) -> None:
    """STT, conversation and TTS see the run's conversation id."""
    seen: dict[str, list[str | None]] = {}

    def spy(name: str) -> None:
        method: Callable[..., Any] = getattr(VoiceManager, name)

        def wrapper(
            self: VoiceManager, conversation_id: str | None, *args: Any, **kw: Any
        ) -> Any:
            session = chat_session.current_session.get()
            seen[name] = [conversation_id, session.conversation_id if session else None]
            return method(self, conversation_id, *args, **kw)

        monkeypatch.setattr(VoiceManager, name, wrapper)

    for name in ("transcribe", "claim_voice_turn", "claim_turn_for_speech"):
        spy(name)
    voice.server.queue_reply(Reply(text=answer))

    run = await voice.run("what is the weather like", end_stage=PipelineStage.TTS)
    await tts_audio(voice, run)

    progress = run.of(PipelineEventType.INTENT_PROGRESS)
    assert {"tts_start_streaming": True} in progress  # short answers too
    cid = run.conversation_id
    assert seen == {
        "transcribe": [cid, cid],
        "claim_voice_turn": [cid, cid],
        "claim_turn_for_speech": [cid, cid],
    }


async def test_tts_speak_to_a_media_player(voice: Voice) -> None:
    """tts.speak from an automation: Gemini reads the text aloud."""
    calls = async_mock_service(voice.hass, "media_player", "play_media")
    voice.server.queue_reply(Reply(text="Dinner is ready."))

    await voice.hass.services.async_call(
        tts.DOMAIN,
        "speak",
        {
            "entity_id": voice.tts_entity,
            "media_player_entity_id": "media_player.kitchen",
            "message": "Dinner is ready.",
        },
        blocking=True,
    )
    media_id = calls[0].data["media_content_id"]
    _, data = await tts.async_get_media_source_audio(voice.hass, media_id)

    connection = voice.server.connections[-1]
    assert connection.turns[0].text == "Dinner is ready."
    rate, samples = decode_wav(data)
    assert rate == 24000
    np.testing.assert_array_equal(samples, pcm16_to_float32(connection.audio_out))


async def test_concurrent_satellites_hear_their_own_answer(voice: Voice) -> None:
    """Ten simultaneous runs: each TTS stream is its own session's audio."""
    questions = [f"question number {n}" for n in range(1, 11)]

    def responder(turn: UserTurn) -> Reply:
        return Reply(text=f"The answer to {turn.query}.")

    voice.server.responder = responder

    runs = await asyncio.gather(
        *(voice.run(q, end_stage=PipelineStage.TTS) for q in questions)
    )
    audio = await asyncio.gather(*(tts_audio(voice, run) for run in runs))

    frame = round(AUDIO_RATE * SILENCE_FRAME)
    for question, data in zip(questions, audio, strict=True):
        _, samples = decode_wav(data)
        expected = pcm16_to_float32(connection_that_heard(voice, question).audio_out)
        # On a loaded machine a stream may wait over KEEPALIVE_AFTER for its
        # audio and get keep-alive silence between chunks: nothing else.
        np.testing.assert_array_equal(samples[samples != 0], expected[expected != 0])
        assert (len(samples) - len(expected)) % frame == 0
        assert len(samples) >= len(expected)


async def test_live_error_during_tts(voice: Voice) -> None:
    """The session fails while TTS streams: the stream ends with an error."""
    voice.server.realtime_factor = 1.0
    voice.server.model_delay = 0.3
    voice.server.queue_reply(Reply(text=LONG, close=Close.internal(after_chunks=20)))

    run = await voice.run("what is the weather like", end_stage=PipelineStage.TTS)

    assert run.error is None
    assert LONG.startswith(run.speech)
    with pytest.raises(HomeAssistantError, match="Internal error encountered"):
        await tts_audio(voice, run)
    voice.server.queue_reply(Reply(text=SHORT))
    again = await voice.run(
        "turn on the light",
        conversation_id=run.conversation_id,
        end_stage=PipelineStage.TTS,
    )
    _, samples = decode_wav(await tts_audio(voice, again))
    np.testing.assert_array_equal(
        samples, pcm16_to_float32(voice.server.connections[-1].audio_out)
    )
