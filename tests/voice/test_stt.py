"""The STT entity used directly: resampling, no chat session, errors."""

from __future__ import annotations

from homeassistant.components import stt
from homeassistant.helpers import chat_session
import pytest

from custom_components.gemini_live.voice import manager
from tests.fake_live import Close, Reply, speech

from .conftest import Voice, microphone


def _metadata(rate: int) -> stt.SpeechMetadata:
    return stt.SpeechMetadata(
        language="en",
        format=stt.AudioFormats.WAV,
        codec=stt.AudioCodecs.PCM,
        bit_rate=stt.AudioBitRates.BITRATE_16,
        sample_rate=stt.AudioSampleRates(rate),
        channel=stt.AudioChannels.CHANNEL_MONO,
    )


def _entity(voice: Voice) -> stt.SpeechToTextEntity:
    entity = stt.async_get_speech_to_text_entity(voice.hass, voice.stt_entity)
    assert entity is not None
    return entity


async def test_other_sample_rates_are_resampled(voice: Voice) -> None:
    """48 kHz input reaches the Live API as 16 kHz PCM, streamed."""
    voice.server.queue_reply(Reply(text="Hi.", heard="good morning"))
    pcm = speech("good morning", 48000)

    with chat_session.async_get_chat_session(voice.hass):
        result = await _entity(voice).async_process_audio_stream(
            _metadata(48000), microphone(pcm, trailing_silence_ms=0)
        )

    assert result == stt.SpeechResult("good morning", stt.SpeechResultState.SUCCESS)
    connection = voice.server.connections[-1]
    assert connection.audio_in_rate == 16000
    assert abs(len(connection.audio_in) - len(pcm) // 3) <= 64
    audio = [m for m in connection.messages if "audio" in m.get("realtimeInput", {})]
    assert len(audio) > 10  # streamed chunk by chunk, not buffered


async def test_outside_a_chat_session(
    voice: Voice, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a chat session the speech gets a session of its own, closed soon."""
    monkeypatch.setattr(manager, "CLAIM_TIMEOUT", 0.05)
    voice.server.queue_reply(Reply(text="Hi."))

    result = await _entity(voice).async_process_audio_stream(
        _metadata(16000), microphone(speech("good morning", 16000))
    )

    assert result.text == "good morning"
    await voice.server.connections[-1].wait_closed()
    assert not voice.manager._unkeyed


async def test_live_error_is_an_stt_error(voice: Voice) -> None:
    """A Live failure returns an error result."""
    voice.server.queue_reply(Reply(close=Close.quota()))

    with chat_session.async_get_chat_session(voice.hass):
        result = await _entity(voice).async_process_audio_stream(
            _metadata(16000), microphone(speech("good morning", 16000))
        )

    assert result == stt.SpeechResult(None, stt.SpeechResultState.ERROR)
