"""Voice pipeline latency, CPU and memory, run by hand (not by scripts/test).

    .venv/bin/pytest benchmarks/latency.py -s [-k memory] (BENCH_RUNS=50)

Home Assistant's real Assist pipeline (`async_pipeline_from_audio_stream`)
with this integration's STT, conversation and TTS entities, against the fake
Live server with a fixed model delay; Home Assistant is built by
pytest-homeassistant-custom-component's `hass` fixture and the end-to-end
harness of tests/voice. The microphone PCM (espeak-ng) is fed as fast as the
pipeline takes it, and the TTS stream is read in-process from the moment a
satellite would fetch it (tts_start_streaming or TTS_END), so network and
satellite time are not included. For each satellite format and a short
(< 60 characters) and a long (> 200 characters) reply it prints p50/p95 of

  (a) end of the microphone stream (the pipeline's STT_VAD_END) -> first audio
      byte out of the TTS stream (beyond container headers / FLAC padding);
  (b) first audio chunk sent by the fake server -> that same byte;

and CPU per second of audio streamed in (microphone) and out (reply): the
whole process (Home Assistant, the fake server and this integration), of
which the in-process WAV conversion, and ffmpeg subprocesses. The memory test
prints the Python heap peak (tracemalloc, numpy included) of 10 concurrent
pipeline runs per format.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
import os
from pathlib import Path
import resource
import statistics
import time
import tracemalloc
from typing import Any

from homeassistant.components import tts
from homeassistant.components.assist_pipeline import (
    PipelineEvent,
    PipelineEventType,
    PipelineStage,
)
import pytest

from benchmarks.audio_formats import TARGETS, container_overhead, ha_convert_command
from custom_components.gemini_live.audio import (
    SampleFormat,
    WavStreamEncoder,
    wav_header,
)
from tests.fake_live import Connection, FakeLiveServer, Reply, plugin, speech
from tests.voice import conftest as harness
from tests.voice.conftest import Voice

# Fixtures of the test harness (this file lives outside tests/).
fake_live = plugin.fake_live
voice = harness.voice
entry_options = harness.entry_options

RUNS = int(os.environ.get("BENCH_RUNS", "50"))
MODEL_DELAY = 0.3
"""Seconds the fake model takes before its first frame."""
CONCURRENT = 10
QUESTION = "what is the weather like today"
SHORT = "It is sunny and warm."
LONG = (
    "It is sunny and warm today, with a light breeze from the west and a high of "
    "twenty four degrees. In the evening clouds come in from the coast, and there "
    "is a small chance of rain after midnight, so you may want to close the "
    "windows before you go to bed."
)
assert len(SHORT) < 60
assert len(LONG) > 200


@dataclass(frozen=True, slots=True)
class Format:
    """A satellite's TTS request and the size of its container overhead."""

    name: str
    audio_output: dict[str, Any] | None
    overhead: int


def formats() -> list[Format]:
    """Return the satellite formats, plus a client that sets no preferred option."""
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
    header = len(wav_header(24000, SampleFormat.PCM16))
    return [*found, Format("no options (24k WAV as is)", None, header)]


@pytest.fixture(autouse=True)
def setup(enable_custom_integrations: None) -> None:
    """Let Home Assistant load this repository's integration."""


@pytest.fixture
def hass_config_dir(tmp_path: Path) -> str:
    """Keep the TTS cache in a temporary folder."""
    return str(tmp_path)


@pytest.fixture
def first_chunk_sent(monkeypatch: pytest.MonkeyPatch) -> dict[Connection, float]:
    """Record when the fake server sent each connection's first audio chunk."""
    sent: dict[Connection, float] = {}
    record = Connection.record_audio_out

    def stamp(self: Connection, pcm: bytes) -> None:
        sent.setdefault(self, time.perf_counter())
        record(self, pcm)

    monkeypatch.setattr(Connection, "record_audio_out", stamp)
    return sent


@dataclass(slots=True)
class Sample:
    """Timestamps of one pipeline run."""

    vad_end: float = 0.0
    first_audio: float = 0.0
    audio_bytes: int = 0
    reader: asyncio.Task[None] | None = None


@dataclass(slots=True)
class Cpu:
    """CPU seconds spent while runs were going on."""

    process: float = 0.0
    conversion: float = 0.0
    children: float = 0.0
    audio_seconds: float = 0.0


@dataclass(slots=True)
class Row:
    """Figures of one format and reply length."""

    a: list[float] = field(default_factory=list)
    b: list[float] = field(default_factory=list)
    cpu: Cpu = field(default_factory=Cpu)


@pytest.fixture
def conversion_clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Count the event loop thread's CPU seconds in the WAV encoder (one cell)."""
    clock = [0.0]

    def timed[**P, R](method: Callable[P, R]) -> Callable[P, R]:
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            start = time.thread_time()
            try:
                return method(*args, **kwargs)
            finally:
                clock[0] += time.thread_time() - start

        return wrapper

    for name in ("encode", "flush"):
        monkeypatch.setattr(
            WavStreamEncoder, name, timed(getattr(WavStreamEncoder, name))
        )
    return clock


async def read_tts(voice: Voice, token: str, overhead: int, sample: Sample) -> None:
    """Read a TTS stream to its end, as a satellite; stamp the first audio byte."""
    stream = tts.async_get_stream(voice.hass, token)
    assert stream is not None
    async for chunk in stream.async_stream_result():
        sample.audio_bytes += len(chunk)
        if not sample.first_audio and sample.audio_bytes > overhead:
            sample.first_audio = time.perf_counter()


async def pipeline_run(voice: Voice, question: bytes, fmt: Format) -> Sample:
    """Run the pipeline once; return when its TTS stream was read to the end."""
    sample = Sample()
    token = ""

    def on_event(event: PipelineEvent) -> None:
        nonlocal token
        data = event.data or {}
        if event.type is PipelineEventType.RUN_START:
            token = data["tts_output"]["token"]
        elif event.type is PipelineEventType.STT_VAD_END:
            sample.vad_end = time.perf_counter()
        elif sample.reader is None and (
            event.type is PipelineEventType.TTS_END or "tts_start_streaming" in data
        ):
            sample.reader = asyncio.create_task(
                read_tts(voice, token, fmt.overhead, sample)
            )

    run = await voice.run(
        question,
        end_stage=PipelineStage.TTS,
        tts_audio_output=fmt.audio_output,
        event_callback=on_event,
    )
    assert run.error is None, run.error
    assert sample.reader is not None
    await sample.reader
    return sample


def percentiles(values: list[float]) -> str:
    """Return "p50 / p95" in milliseconds."""
    p95 = statistics.quantiles(values, n=20, method="inclusive")[18]
    return f"{1000 * statistics.median(values):6.0f} /{1000 * p95:5.0f}"


def serve(server: FakeLiveServer, text: str) -> None:
    """Answer every user turn with `text` after MODEL_DELAY."""
    server.model_delay = MODEL_DELAY
    server.responder = lambda turn: Reply(text=text)


@pytest.mark.timeout(7200)
async def test_latency_and_cpu(
    voice: Voice,
    first_chunk_sent: dict[Connection, float],
    conversion_clock: list[float],
) -> None:
    """Print latency percentiles and CPU per second of audio."""
    question = speech(QUESTION, 16000)
    mic_seconds = len(question) / 2 / 16000 + 1.5  # + the harness's silence
    rows: dict[tuple[str, str], Row] = {}
    for fmt in formats():
        for label, text in (("short", SHORT), ("long", LONG)):
            serve(voice.server, text)
            reply_seconds = len(speech(text, 24000)) / 2 / 24000
            row = rows[fmt.name, label] = Row()
            await pipeline_run(voice, question, fmt)  # warm-up
            await voice.manager.async_close()
            for _ in range(RUNS):
                children = resource.getrusage(resource.RUSAGE_CHILDREN)
                start, converting = time.process_time(), conversion_clock[0]
                sample = await pipeline_run(voice, question, fmt)
                row.cpu.process += time.process_time() - start
                row.cpu.conversion += conversion_clock[0] - converting
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                row.cpu.children += (after.ru_utime + after.ru_stime) - (
                    children.ru_utime + children.ru_stime
                )
                row.cpu.audio_seconds += mic_seconds + reply_seconds
                connection = voice.server.connections[-1]
                row.a.append(sample.first_audio - sample.vad_end)
                row.b.append(sample.first_audio - first_chunk_sent[connection])
                await voice.manager.async_close()

    print(
        f"\n\nModel delay {1000 * MODEL_DELAY:.0f} ms, {RUNS} runs per row; ms p50 / p95;"
        " CPU ms per second of audio in + out"
    )
    print(
        f"{'format':<27}{'reply':<7}{'(a) VAD end->audio':>20}"
        f"{'(b) 1st chunk->audio':>22}{'CPU process':>13}{'conversion':>12}"
        f"{'ffmpeg':>8}"
    )
    for (name, label), row in rows.items():
        per_second = 1000 / row.cpu.audio_seconds
        print(
            f"{name:<27}{label:<7}{percentiles(row.a):>20}{percentiles(row.b):>22}"
            f"{row.cpu.process * per_second:>13.1f}"
            f"{row.cpu.conversion * per_second:>12.2f}"
            f"{row.cpu.children * per_second:>8.1f}"
        )


@pytest.mark.timeout(1800)
async def test_memory(voice: Voice) -> None:
    """Print the heap peak of CONCURRENT simultaneous pipeline runs per format."""
    question = speech(QUESTION, 16000)
    serve(voice.server, LONG)
    print(
        f"\n\nPython heap peak (tracemalloc) of {CONCURRENT} concurrent runs, long"
        " reply; baseline: the same runs without the TTS stage"
    )

    async def intent_only() -> None:
        run = await voice.run(question, end_stage=PipelineStage.INTENT)
        assert run.error is None, run.error

    baseline = await heap_peak(voice, intent_only)
    print(f"{'baseline (STT + agent)':<27}{baseline / 2**20:8.1f} MiB")
    for fmt in formats():
        await pipeline_run(voice, question, fmt)  # warm-up: caches, imports
        await voice.manager.async_close()
        peak = await heap_peak(voice, partial(pipeline_run, voice, question, fmt))
        print(
            f"{fmt.name:<27}{peak / 2**20:8.1f} MiB"
            f"  (+{(peak - baseline) / 2**20:.1f} MiB for TTS)"
        )


async def heap_peak(voice: Voice, run: Callable[[], Awaitable[object]]) -> int:
    """Return the heap peak (bytes above the start) of CONCURRENT runs at once."""
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    await asyncio.gather(*(run() for _ in range(CONCURRENT)))
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    await voice.manager.async_close()
    return peak
