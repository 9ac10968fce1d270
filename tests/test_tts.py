"""The TTS entity: in-process conversion, per-stream cache keys, speak fallback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
import itertools

from homeassistant.components import tts
from homeassistant.components.tts.const import DATA_COMPONENT
from homeassistant.components.tts.entity import TTSAudioRequest
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import chat_session
import numpy as np
import pytest
from pytest_homeassistant_custom_component.common import async_mock_service

from custom_components.gemini_live import tts as gemini_tts, tts_format
from custom_components.gemini_live.audio import (
    FlacStreamEncoder,
    SampleFormat,
    StreamEncoder,
    WavStreamEncoder,
    wav_header,
)
from custom_components.gemini_live.const import RECOMMENDED_VOICE, VOICES
from custom_components.gemini_live.live import LiveError, LiveServiceUnavailableError
from custom_components.gemini_live.tts import GeminiLiveTtsEntity
from custom_components.gemini_live.tts_format import OutputFormat
from tests.fake_live import Close, Reply, speech
from tests.voice import conftest as harness
from tests.voice.conftest import Voice

# The end-to-end harness: Home Assistant with a Gemini Live entry on the fake server.
voice = harness.voice
entry_options = harness.entry_options

RATE = 24000
PCM16_HEADER = wav_header(RATE, SampleFormat.PCM16)


class FakeTurn:
    """A claimed turn whose audio is scripted: bytes, or a float to pause."""

    def __init__(
        self, script: Sequence[bytes | float], error: LiveError | None = None
    ) -> None:
        """Play `script`, then raise `error` if given."""
        self.script = script
        self.error = error
        self.closed = False

    def audio_stream(self) -> AsyncIterator[bytes]:
        """Yield the scripted audio."""
        return self._play()

    async def _play(self) -> AsyncIterator[bytes]:
        try:
            for item in self.script:
                if isinstance(item, float):
                    await asyncio.sleep(item)
                else:
                    yield item
            if self.error is not None:
                raise self.error
        finally:
            self.closed = True


def entity_of(voice: Voice) -> GeminiLiveTtsEntity:
    """Return the entry's TTS entity object."""
    assert voice.tts_entity is not None
    entity = voice.hass.data[DATA_COMPONENT].get_entity(voice.tts_entity)
    assert isinstance(entity, GeminiLiveTtsEntity)
    return entity


def claim(
    voice: Voice, monkeypatch: pytest.MonkeyPatch, turn: FakeTurn | None
) -> list[tuple[str | None, str]]:
    """Make claim_turn_for_speech return `turn`; return the recorded calls."""
    calls: list[tuple[str | None, str]] = []

    def fake(conversation_id: str | None, text: str) -> FakeTurn | None:
        calls.append((conversation_id, text))
        return turn

    monkeypatch.setattr(voice.manager, "claim_turn_for_speech", fake)
    return calls


async def text(*parts: str) -> AsyncGenerator[str]:
    """Yield a message in parts."""
    for part in parts:
        yield part


async def stream(
    voice: Voice, options: dict[str, object], message: AsyncGenerator[str]
) -> bytes:
    """Return the bytes of one `async_stream_tts_audio` call."""
    response = await entity_of(voice).async_stream_tts_audio(
        TTSAudioRequest("en", options, message)
    )
    assert response.extension == "wav"
    return b"".join([chunk async for chunk in response.data_gen])


def split(pcm: bytes) -> list[bytes]:
    """Cut PCM into uneven chunks, some ending inside a sample."""
    cuts = [0, 961, 2960, 2963, 7001, *range(9000, len(pcm), 1920), len(pcm)]
    return [pcm[a:b] for a, b in itertools.pairwise(cuts)]


@pytest.mark.parametrize(
    ("options", "rate", "sample_format"),
    [
        ({"preferred_format": "wav"}, 24000, SampleFormat.PCM16),
        (
            {
                "preferred_format": "wav",
                "preferred_sample_rate": 16000,
                "preferred_sample_channels": 1,
                "preferred_sample_bytes": 2,
            },
            16000,
            SampleFormat.FLOAT64,
        ),
        (
            {
                "preferred_format": "flac",
                "preferred_sample_rate": 48000,
                "preferred_sample_channels": 1,
                "preferred_sample_bytes": 2,
            },
            48000,
            SampleFormat.FLOAT64,
        ),
        (
            {"preferred_format": "wav", "preferred_sample_rate": "22050"},
            22050,
            SampleFormat.FLOAT64,
        ),
        ({"preferred_format": "mp3"}, 24000, SampleFormat.FLOAT64),
        ({}, 24000, SampleFormat.FLOAT64),  # Home Assistant's default is mp3
    ],
)
async def test_conversion_is_byte_exact(
    voice: Voice,
    monkeypatch: pytest.MonkeyPatch,
    options: dict[str, object],
    rate: int,
    sample_format: SampleFormat,
) -> None:
    """The stream is exactly audio.py's WAV of the turn's audio for the options."""
    chunks = split(speech("Convert me exactly, please.", RATE))
    claim(voice, monkeypatch, FakeTurn(chunks))

    data = await stream(voice, options, text("Convert me"))

    encoder = WavStreamEncoder(RATE, rate, sample_format)
    expected = [encoder.header(), *map(encoder.encode, chunks), encoder.flush()]
    assert data == b"".join(expected)


async def test_pipeline_turn_is_claimed_by_conversation_id(
    voice: Voice, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inside a chat session the turn is looked up by its conversation id."""
    calls = claim(voice, monkeypatch, FakeTurn([b"\x01\x00" * 100]))

    with chat_session.async_get_chat_session(voice.hass) as session:
        data = await stream(voice, {"preferred_format": "wav"}, text("", "Sure", "!"))

    assert calls == [(session.conversation_id, "Sure")]
    assert data == PCM16_HEADER + b"\x01\x00" * 100


async def test_rest_of_the_text_is_read_at_once(
    voice: Voice, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The text stream is drained while the audio has not been read yet."""
    claim(voice, monkeypatch, FakeTurn([bytes(480)]))
    drained = asyncio.Event()

    async def message() -> AsyncGenerator[str]:
        yield "The first words"
        await asyncio.sleep(0.01)
        yield " and the rest."
        drained.set()

    response = await entity_of(voice).async_stream_tts_audio(
        TTSAudioRequest("en", {"preferred_format": "wav"}, message())
    )
    async with asyncio.timeout(1):
        await drained.wait()
    assert b"".join([c async for c in response.data_gen]) == PCM16_HEADER + bytes(480)


async def test_speak_to_a_media_player(voice: Voice) -> None:
    """tts.speak plays Gemini's own audio of the text, unconverted."""
    calls = async_mock_service(voice.hass, "media_player", "play_media")
    voice.server.queue_reply(Reply(text="The washing machine is done."))

    await voice.hass.services.async_call(
        tts.DOMAIN,
        "speak",
        {
            "entity_id": voice.tts_entity,
            "media_player_entity_id": "media_player.kitchen",
            "message": "The washing machine is done.",
        },
        blocking=True,
    )
    extension, data = await tts.async_get_media_source_audio(
        voice.hass, calls[0].data["media_content_id"]
    )

    connection = voice.server.connections[-1]
    assert connection.turns[0].text == "The washing machine is done."
    assert extension == "wav"
    assert data == PCM16_HEADER + connection.audio_out
    assert connection.audio_out == speech("The washing machine is done.", RATE)


async def test_speak_in_the_requested_voice(voice: Voice) -> None:
    """The voice option of a TTS request picks Gemini's voice for that text."""
    voice.server.queue_reply(Reply(text="Hello from Puck."))

    data = await stream(
        voice,
        {"preferred_format": "wav", tts.ATTR_VOICE: "Puck"},
        text("Hello from Puck."),
    )

    connection = voice.server.connections[-1]
    speech_config = connection.config["generationConfig"]["speechConfig"]
    assert speech_config["voiceConfig"]["prebuiltVoiceConfig"]["voiceName"] == "Puck"
    assert data == PCM16_HEADER + connection.audio_out


async def test_no_pending_turn_falls_back_to_speak(voice: Voice) -> None:
    """A conversation without a pending turn: Gemini says the whole text."""
    voice.server.queue_reply(Reply(text="Good night."))

    with chat_session.async_get_chat_session(voice.hass):
        data = await stream(voice, {"preferred_format": "wav"}, text("Good ", "night."))

    connection = voice.server.connections[-1]
    assert connection.turns[0].text == "Good night."
    assert data == PCM16_HEADER + connection.audio_out


@pytest.mark.parametrize("parts", [(), ("",), ("", " ", "\n")])
async def test_empty_text_gives_an_empty_wav(
    voice: Voice, monkeypatch: pytest.MonkeyPatch, parts: tuple[str, ...]
) -> None:
    """No turn and no words: a header, and no Live session."""
    calls = claim(voice, monkeypatch, None)
    connections = len(voice.server.connections)

    assert (
        await stream(voice, {"preferred_format": "wav"}, text(*parts)) == PCM16_HEADER
    )
    assert len(voice.server.connections) == connections
    assert calls == [(None, next((part for part in parts if part), ""))]


async def test_speak_failure_is_translated(voice: Voice) -> None:
    """A Live session Gemini refuses becomes a translated error."""
    voice.server.add_fault(Close.quota())

    with pytest.raises(HomeAssistantError) as err:
        await stream(voice, {"preferred_format": "wav"}, text("Hello."))

    assert err.value.translation_key == "live_error"
    assert "quota" in str(err.value.translation_placeholders)


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"preferred_format": "wav", "preferred_sample_bytes": 1}, "1-byte"),
        ({"preferred_format": "flac", "preferred_sample_channels": 9}, "9 channels"),
        ({"preferred_format": "flac", "preferred_sample_rate": 1 << 20}, "Hz"),
        ({"preferred_format": "wav", "preferred_sample_rate": -16000}, "Hz"),
    ],
)
async def test_a_format_that_cannot_be_emitted_is_a_clear_error(
    voice: Voice,
    monkeypatch: pytest.MonkeyPatch,
    options: dict[str, object],
    error: str,
) -> None:
    """Passthrough, a format out of bounds: a translated error, no turn taken."""
    monkeypatch.setattr(tts_format, "PASSES_THROUGH", True)
    calls = claim(voice, monkeypatch, FakeTurn([bytes(960)]))

    with pytest.raises(HomeAssistantError) as err:
        await entity_of(voice).async_stream_tts_audio(
            TTSAudioRequest("en", options, text("Hi"))
        )

    assert err.value.translation_key == "unsupported_audio_format"
    assert error in str(err.value.translation_placeholders)
    assert calls == []


async def test_turn_failure_is_translated(
    voice: Voice, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A turn that fails mid-reply: the audio so far, then a translated error."""
    error = LiveServiceUnavailableError(
        "closed", close_code=1011, reason="Internal error encountered."
    )
    claim(voice, monkeypatch, FakeTurn([bytes(960)], error))
    response = await entity_of(voice).async_stream_tts_audio(
        TTSAudioRequest("en", {"preferred_format": "wav"}, text("Hi"))
    )
    audio = response.data_gen

    assert await anext(audio) == PCM16_HEADER
    assert await anext(audio) == bytes(960)
    with pytest.raises(HomeAssistantError) as err:
        await anext(audio)
    assert err.value.translation_key == "live_error"
    assert err.value.translation_placeholders == {
        "reason": "Internal error encountered."
    }


@pytest.fixture
def fast_keepalive(monkeypatch: pytest.MonkeyPatch) -> None:
    """Scale the keepalive timing down 5x."""
    monkeypatch.setattr(gemini_tts, "KEEPALIVE_AFTER", 0.2)
    monkeypatch.setattr(gemini_tts, "SILENCE_FRAME", 0.02)
    monkeypatch.setattr(gemini_tts, "KEEPALIVE_INTERVAL", 0.2)
    monkeypatch.setattr(gemini_tts, "MAX_SILENCE", 6.0)


def inserted_silence(data: bytes, before: bytes, after: bytes) -> float:
    """Seconds of digital silence between `before` and `after` in a PCM16 WAV."""
    body = data[len(PCM16_HEADER) :]
    assert body.startswith(before)
    assert body.endswith(after)
    gap = body[len(before) : len(body) - len(after)]
    assert gap == bytes(len(gap))
    return len(gap) / 2 / RATE


def tone(seconds: float) -> bytes:
    """Return a 440 Hz PCM16 tone (no zero samples in a row)."""
    t = np.arange(round(RATE * seconds)) / RATE
    return (np.sin(2 * np.pi * 440 * t + 0.1) * 8000).astype("<i2").tobytes()


@pytest.mark.usefixtures("fast_keepalive")
async def test_pause_is_filled_at_real_time_pace(
    voice: Voice, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pause the listener has no audio for is filled after KEEPALIVE_AFTER."""
    before, after = tone(0.04), tone(0.04)
    claim(voice, monkeypatch, FakeTurn([before, 0.6, after]))

    data = await stream(voice, {"preferred_format": "wav"}, text("Hi"))

    # 0.6 s pause; silence from 0.2 s on, at real time: about 0.4 s (less if
    # the loop wakes late: silence never catches up on time already lost).
    assert 0.2 <= inserted_silence(data, before, after) <= 0.44


@pytest.mark.usefixtures("fast_keepalive")
async def test_pause_with_buffered_audio_gets_keepalive_frames_only(
    voice: Voice, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the listener still has seconds of audio, only sparse frames go out."""
    before, after = tone(3.0), tone(0.04)
    claim(voice, monkeypatch, FakeTurn([before, 1.0, after]))

    data = await stream(voice, {"preferred_format": "wav"}, text("Hi"))

    # From 0.2 s on, one 0.02 s frame per 0.2 s: 4 or 5 frames.
    assert 0.04 <= inserted_silence(data, before, after) <= 0.1


@pytest.mark.usefixtures("fast_keepalive")
async def test_silence_is_bounded(
    voice: Voice, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stalled turn gets at most MAX_SILENCE of silence."""
    monkeypatch.setattr(gemini_tts, "MAX_SILENCE", 0.1)
    before, after = tone(0.04), tone(0.04)
    claim(voice, monkeypatch, FakeTurn([before, 0.6, after]))

    data = await stream(voice, {"preferred_format": "wav"}, text("Hi"))

    assert inserted_silence(data, before, after) == pytest.approx(0.1)


@pytest.mark.usefixtures("fast_keepalive")
async def test_listener_leaving_stops_reading(
    voice: Voice, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closing the stream mid-pause stops reading the turn's audio."""
    turn = FakeTurn([bytes(960), 30.0, bytes(960)])
    claim(voice, monkeypatch, turn)
    response = await entity_of(voice).async_stream_tts_audio(
        TTSAudioRequest("en", {"preferred_format": "wav"}, text("Hi"))
    )
    audio = response.data_gen

    assert await anext(audio) == PCM16_HEADER
    assert await anext(audio) == bytes(960)
    assert await anext(audio) == bytes(960)  # 20 ms of keepalive silence
    await audio.aclose()

    assert turn.closed


async def test_entity_attributes(voice: Voice) -> None:
    """Named after the entry; Live API languages; 30 voices; WAV by default."""
    entity = entity_of(voice)
    assert voice.tts_entity == "tts.gemini_live"
    state = voice.hass.states.get(voice.tts_entity)
    assert state is not None
    assert state.attributes["friendly_name"] == "Gemini Live"
    voices = entity.async_get_supported_voices("en")
    assert voices[0].voice_id == RECOMMENDED_VOICE
    assert sorted(v.voice_id for v in voices) == sorted(VOICES)
    assert {"en", "de", "vi", "zh"} <= set(entity.supported_languages)
    assert entity.default_language in entity.supported_languages
    assert entity.default_options == {"preferred_format": "wav"}


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            {
                "preferred_format": "wav",
                "preferred_sample_rate": 16000,
                "preferred_sample_channels": 1,
                "preferred_sample_bytes": 2,
            },
            OutputFormat("wav", 16000),
        ),
        (
            {"preferred_format": "wav", "preferred_sample_rate": 22050},
            OutputFormat("wav", 22050),
        ),
        (
            {"preferred_format": "wav", "preferred_sample_bytes": 4},
            OutputFormat("wav", 24000, 1, SampleFormat.PCM32),
        ),
        (
            {
                "preferred_format": "flac",
                "preferred_sample_rate": 48000,
                "preferred_sample_channels": 1,
                "preferred_sample_bytes": 2,
            },
            OutputFormat("flac", 48000),
        ),
        (
            {"preferred_format": "flac", "preferred_sample_bytes": 3},
            OutputFormat("flac", 24000, 1, SampleFormat.PCM24),
        ),
    ],
)
async def test_passthrough_stream_is_the_requested_format(
    voice: Voice,
    monkeypatch: pytest.MonkeyPatch,
    options: dict[str, object],
    expected: OutputFormat,
) -> None:
    """With 2026.11's rule the entity emits exactly the satellite's format.

    PCM WAV or FLAC at the preferred rate and width, declared as such, so that
    Home Assistant serves it with no ffmpeg (tests/ha_versions shows it does).
    """
    monkeypatch.setattr(tts_format, "PASSES_THROUGH", True)
    pcm = speech("Pass me through, please.", RATE)
    claim(voice, monkeypatch, FakeTurn(split(pcm)))

    response = await entity_of(voice).async_stream_tts_audio(
        TTSAudioRequest("en", options, text("Pass me"))
    )
    data = b"".join([chunk async for chunk in response.data_gen])

    assert response.extension == expected.extension
    rate, sample_format = expected.rate, expected.sample_format
    if expected.extension == "flac":
        encoder: StreamEncoder = FlacStreamEncoder(RATE, rate, 1, sample_format)
        assert data[:4] == b"fLaC"
    else:
        encoder = WavStreamEncoder(RATE, rate, sample_format)
        assert data[:44] == wav_header(rate, sample_format)
    assert data == encoder.header() + encoder.encode(pcm) + encoder.flush()
