"""Shared by the voice benchmarks: timed, checked pipeline runs on the fake server.

The fixtures of tests/voice (the benchmarks live outside tests/, so each
script re-exports them), the satellites' TTS formats, a microphone that
stamps when the last speech sample went into the pipeline, one run of Home
Assistant's real Assist pipeline (`Voice.run`) with its TTS stream read the
way a satellite reads it, the chat log's assistant messages, and p50/p95
formatting.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
import statistics
import time
from typing import Any

from homeassistant.components import conversation, tts
from homeassistant.components.assist_pipeline import (
    PipelineEvent,
    PipelineEventType,
    PipelineStage,
)
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import chat_session
import pytest

from benchmarks.audio_formats import TARGETS, container_overhead, ha_convert_command
from custom_components.gemini_live.audio import SampleFormat, wav_header
from tests import conftest as root
from tests.fake_live import FakeLiveServer, chunks, plugin, silence
from tests.fake_live.speech import set_cache_dir
from tests.voice import conftest as harness
from tests.voice.conftest import CHUNK_MS, Voice

__all__ = [
    "Format",
    "Microphone",
    "PipelineTurn",
    "Voice",
    "assistant_messages",
    "custom_integrations",
    "enable_event_loop_debug",
    "entry_options",
    "fake_live",
    "hass_config_dir",
    "live_model",
    "open_connections",
    "percentiles",
    "ratio",
    "run_turn",
    "satellite_formats",
    "voice",
]

# The fixtures of tests/voice; a script makes them its own by assignment.
fake_live = plugin.fake_live
voice = harness.voice
entry_options = harness.entry_options
live_model = root.live_model

SPEECH_LEVEL = 300
"""Peak PCM16 amplitude counted as speech when finding the end of speech."""
PASSTHROUGH = "no options (24k WAV as is)"


@pytest.fixture(autouse=True)
def custom_integrations(
    enable_custom_integrations: None, request: pytest.FixtureRequest
) -> None:
    """Let Home Assistant load this repository's integration; cache speech.

    Generated speech goes to pytest's cache folder, as for the tests.
    """
    cache = getattr(request.config, "cache", None)
    if cache is not None:
        set_cache_dir(Path(cache.mkdir("fake_live_speech")))


@pytest.fixture
def hass_config_dir(tmp_path: Path) -> str:
    """Keep the TTS cache in a temporary folder."""
    return str(tmp_path)


@pytest.fixture(autouse=True)
def enable_event_loop_debug() -> None:
    """Leave asyncio's debug mode off, as in production.

    Overrides the fixture of pytest-homeassistant-custom-component that turns
    it on: it records a traceback for every callback, which roughly doubles
    the CPU time of a pipeline run.
    """


@dataclass(frozen=True, slots=True)
class Format:
    """A satellite's TTS request and the bytes its stream has before any audio."""

    name: str
    audio_output: dict[str, Any] | None
    overhead: int
    """Container header (and FLAC padding) bytes: audio starts after them."""


def satellite_formats(*, passthrough: bool = False) -> list[Format]:
    """Return the satellites' formats (through ffmpeg), plus the passthrough one.

    The browser row asks for mp3: Home Assistant's default format, converted
    by ffmpeg like the satellites' (this entity's own default, WAV, is the
    passthrough row).
    """
    found = [
        Format(
            target.name,
            {
                key: value
                for key, value in (
                    (tts.ATTR_PREFERRED_FORMAT, target.extension),
                    (tts.ATTR_PREFERRED_SAMPLE_RATE, target.rate),
                    (tts.ATTR_PREFERRED_SAMPLE_CHANNELS, target.channels),
                    (tts.ATTR_PREFERRED_SAMPLE_BYTES, target.sample_bytes),
                )
                if value is not None
            },
            container_overhead(ha_convert_command(target)),
        )
        for target in TARGETS
    ]
    if passthrough:
        header = len(wav_header(24000, SampleFormat.PCM16))
        found.append(Format(PASSTHROUGH, None, header))
    return found


class Microphone:
    """Microphone PCM in 20 ms chunks, then silence until the pipeline stops.

    `realtime`: one chunk per 20 ms, as a satellite streams; otherwise as
    fast as the pipeline takes it. `speech_end` is the moment the chunk
    holding the last speech sample (peak above `SPEECH_LEVEL`) went in.
    """

    def __init__(
        self, pcm: bytes, *, realtime: bool = False, trailing_silence_ms: int = 1500
    ) -> None:
        """Prepare `pcm` (16 kHz PCM16 mono) and trailing silence."""
        self.pieces = list(chunks(pcm + silence(trailing_silence_ms), CHUNK_MS))
        self.realtime = realtime
        self.last_speech = max(
            (
                index
                for index, piece in enumerate(self.pieces)
                if _peak(piece) >= SPEECH_LEVEL
            ),
            default=0,
        )
        self.speech_end = 0.0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        """Yield the chunks, stamping `speech_end`."""
        start = time.perf_counter()
        for index, piece in enumerate(self.pieces):
            if self.realtime:
                due = start + index * CHUNK_MS / 1000
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
            else:
                await asyncio.sleep(0)
            if index == self.last_speech:
                self.speech_end = time.perf_counter()
            yield piece


def _peak(pcm: bytes) -> int:
    samples = memoryview(pcm)[: len(pcm) // 2 * 2].cast("h")
    if not samples:
        return 0
    highest, lowest = max(samples), min(samples)
    return max(highest, -lowest)


@dataclass(slots=True)
class PipelineTurn:
    """What one pipeline run did, and when (`time.perf_counter()` seconds)."""

    mic: Microphone
    conversation_id: str = ""
    heard: str = ""
    """The STT result."""
    speech: str = ""
    """The agent's speech (INTENT_END)."""
    error: str | None = None
    """The pipeline's error event, or what went wrong reading the TTS stream."""
    vad_end: float = 0.0
    stt_end: float = 0.0
    stream_start: float = 0.0
    """When a satellite would fetch the TTS stream (tts_start_streaming or
    TTS_END)."""
    streamed: bool = False
    """Whether the stream started before the agent returned."""
    intent_end: float = 0.0
    first_audio: float = 0.0
    """When the first byte after the format's `overhead` came out of the stream."""
    audio: bytearray = field(default_factory=bytearray)
    """The TTS stream (kept only with `keep_audio`)."""
    audio_bytes: int = 0


async def run_turn(
    voice: Voice,
    mic: Microphone,
    fmt: Format | None = None,
    *,
    conversation_id: str | None = None,
    keep_audio: bool = False,
    on_intent_end: Callable[[PipelineTurn], None] | None = None,
) -> PipelineTurn:
    """Run the pipeline STT -> TTS once; return when its TTS stream was read.

    The stream is read to its end from the moment a satellite would fetch it.
    `on_intent_end(turn)` runs in the INTENT_END event (the agent returned).
    """
    turn = PipelineTurn(mic)
    overhead = fmt.overhead if fmt is not None else 0
    token = ""
    reader: asyncio.Task[None] | None = None

    def on_event(event: PipelineEvent) -> None:
        nonlocal token, reader
        data = event.data or {}
        now = time.perf_counter()
        match event.type:
            case PipelineEventType.RUN_START:
                token = data["tts_output"]["token"]
                turn.conversation_id = data["conversation_id"]
            case PipelineEventType.STT_VAD_END:
                turn.vad_end = now
            case PipelineEventType.STT_END:
                turn.stt_end = now
                turn.heard = data["stt_output"]["text"]
            case PipelineEventType.INTENT_END:
                turn.intent_end = now
                response = data["intent_output"]["response"]
                turn.speech = response["speech"]["plain"]["speech"]
                if on_intent_end is not None:
                    on_intent_end(turn)
            case PipelineEventType.ERROR:
                turn.error = f"{data.get('code')}: {data.get('message')}"
        if reader is None and (
            event.type is PipelineEventType.TTS_END or "tts_start_streaming" in data
        ):
            turn.stream_start = now
            turn.streamed = not turn.intent_end
            reader = asyncio.create_task(_read_tts(voice, token, overhead, turn))

    await voice.run(
        mic,
        conversation_id=conversation_id,
        end_stage=PipelineStage.TTS,
        tts_audio_output=fmt.audio_output if fmt is not None else None,
        event_callback=on_event,
    )
    if reader is not None:
        await reader
    elif turn.error is None:
        turn.error = "no TTS stream"
    if not keep_audio:
        turn.audio.clear()
    return turn


async def _read_tts(
    voice: Voice, token: str, overhead: int, turn: PipelineTurn
) -> None:
    """Read the TTS stream to its end; stamp the first audio byte."""
    stream = tts.async_get_stream(voice.hass, token)
    if stream is None:
        turn.error = turn.error or "TTS stream not found"
        return
    try:
        async for chunk in stream.async_stream_result():
            turn.audio_bytes += len(chunk)
            turn.audio += chunk
            if not turn.first_audio and turn.audio_bytes > overhead:
                turn.first_audio = time.perf_counter()
    except HomeAssistantError as err:
        turn.error = turn.error or f"TTS stream: {err}"


def assistant_messages(
    hass: HomeAssistant, conversation_id: str
) -> list[conversation.AssistantContent]:
    """Return the assistant messages of a conversation's chat log."""
    with (
        chat_session.async_get_chat_session(hass, conversation_id) as session,
        conversation.async_get_chat_log(hass, session) as chat_log,
    ):
        return [
            content
            for content in chat_log.content
            if isinstance(content, conversation.AssistantContent)
        ]


def open_connections(server: FakeLiveServer) -> int:
    """Return how many of the fake server's WebSockets are open."""
    return sum(not connection.closed for connection in server.connections)


def percentiles(values: list[float]) -> str:
    """Return "p50 / p95" of seconds, in milliseconds ("-" without values)."""
    if not values:
        return "-"
    p95 = (
        statistics.quantiles(values, n=20, method="inclusive")[18]
        if len(values) > 1
        else values[0]
    )
    return f"{1000 * statistics.median(values):6.0f} /{1000 * p95:5.0f}"


def ratio(numerator: list[float], denominator: list[float]) -> str:
    """Return the ratio of two medians ("-" if either is missing or zero)."""
    if not numerator or not denominator or not statistics.median(denominator):
        return "-"
    return f"{statistics.median(numerator) / statistics.median(denominator):.2f}x"
