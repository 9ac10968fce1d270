"""Voice pipeline latency, CPU and memory, run by hand (not by scripts/test).

    .venv/bin/pytest benchmarks/latency.py -s [-k memory]
    (environment: BENCH_RUNS=5, BENCH_REALTIME=2)

Home Assistant's real Assist pipeline (`async_pipeline_from_audio_stream`)
with this integration's STT, conversation and TTS entities, against the fake
Live server with a fixed model delay; Home Assistant is built by
pytest-homeassistant-custom-component's `hass` fixture and the end-to-end
harness of tests/voice. The microphone PCM (espeak-ng) is fed as fast as the
pipeline takes it. The fake server paces the reply audio at BENCH_REALTIME
times real time: production streams replies faster than real time, and 2 is
an assumed typical value, not a measurement (the header prints the pace the
chunks were actually sent at). The TTS stream is read in-process from the
moment a satellite would fetch it (tts_start_streaming or TTS_END), so network
and satellite time are not included. For each satellite format and a short
(< 60 characters) and a long (> 200 characters) reply it prints p50/p95 of

  (a) end of the microphone stream (the pipeline's STT_VAD_END) -> first audio
      byte out of the TTS stream (beyond container headers / FLAC padding);
  (b) first audio chunk sent by the fake server -> that same byte;
  (c) end of the microphone stream -> the conversation's chat log (read with
      chat_session + async_get_chat_log) holds the whole reply transcript as
      its one assistant message; "wrong" counts runs whose chat log does not
      end up with exactly that;

for the agent's early return ("early") and without it ("baseline": the
conversation entity's `_pipelines_play_live_audio` patched to False, which is
Home Assistant's own timing: TTS starts after 60 streamed characters or when
the agent returns with the whole transcript), interleaved in the same run,
with the ratio baseline / early of the p50s; and CPU per second of audio
streamed in (microphone) and out (reply) in the early runs: the whole process
(Home Assistant, the fake server and this integration), of which the
in-process WAV conversion, and ffmpeg subprocesses. Every run waits for its
paced reply (the long one takes ~8 s), so the default of 5 runs per row and
mode (p95 is then nearly the maximum) keeps the file near 10 minutes on 2
cores; BENCH_RUNS=50 takes about 1.5 hours. The memory test prints the Python
heap peak (tracemalloc, numpy included) of 10 concurrent pipeline runs per
format.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
import contextlib
from dataclasses import dataclass, field
from functools import partial
import os
from pathlib import Path
import resource
import statistics
import time
import tracemalloc
from typing import Any

from homeassistant.components import conversation, tts
from homeassistant.components.assist_pipeline import (
    PipelineEvent,
    PipelineEventType,
    PipelineStage,
)
from homeassistant.components.conversation.chat_log import async_subscribe_chat_logs
from homeassistant.components.conversation.const import ChatLogEventType
from homeassistant.core import HomeAssistant
from homeassistant.helpers import chat_session
import pytest

from benchmarks.audio_formats import TARGETS, container_overhead, ha_convert_command
from custom_components.gemini_live.audio import (
    SampleFormat,
    WavStreamEncoder,
    wav_header,
)
from custom_components.gemini_live.conversation import GeminiLiveConversationEntity
from tests.fake_live import Connection, FakeLiveServer, Reply, plugin, speech
from tests.voice import conftest as harness
from tests.voice.conftest import Voice

# Fixtures of the test harness (this file lives outside tests/).
fake_live = plugin.fake_live
voice = harness.voice
entry_options = harness.entry_options

RUNS = int(os.environ.get("BENCH_RUNS", "5"))
"""Runs per row and mode."""
REALTIME_FACTOR = float(os.environ.get("BENCH_REALTIME", "2"))
"""Pace of the reply audio, in times real time."""
MODEL_DELAY = 0.3
"""Seconds the fake model takes before its first frame."""
TRANSCRIPT_TIMEOUT = 10.0
"""Seconds after a run's end that its chat log may take to get the transcript."""
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
def audio_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> dict[Connection, list[tuple[float, int]]]:
    """Record when the fake server sent each audio chunk, and its size."""
    sent: dict[Connection, list[tuple[float, int]]] = {}
    record = Connection.record_audio_out

    def stamp(self: Connection, pcm: bytes) -> None:
        sent.setdefault(self, []).append((time.perf_counter(), len(pcm)))
        record(self, pcm)

    monkeypatch.setattr(Connection, "record_audio_out", stamp)
    return sent


def pace(sent: list[tuple[float, int]]) -> float:
    """Return the real-time factor of the audio sent from first to last chunk."""
    seconds = sum(size for _, size in sent[:-1]) / 2 / 24000
    return seconds / (sent[-1][0] - sent[0][0])


@pytest.fixture
def early_return(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Return a switch: [False] turns the agent's early return off (baseline)."""
    switch = [True]
    # The product's own switch (see voice.chat); nothing public turns it off.
    plays = GeminiLiveConversationEntity._pipelines_play_live_audio  # noqa: SLF001

    def patched(self: GeminiLiveConversationEntity) -> bool:
        return switch[0] and plays(self)

    monkeypatch.setattr(
        GeminiLiveConversationEntity, "_pipelines_play_live_audio", patched
    )
    return switch


def assistant_texts(content: list[conversation.Content]) -> list[str | None]:
    """Return the texts of a chat log's assistant messages."""
    return [c.content for c in content if isinstance(c, conversation.AssistantContent)]


def stored_assistant_texts(
    hass: HomeAssistant, conversation_id: str
) -> list[str | None]:
    """Return the assistant texts of a conversation's chat log."""
    with (
        chat_session.async_get_chat_session(hass, conversation_id) as session,
        conversation.async_get_chat_log(hass, session) as chat_log,
    ):
        return assistant_texts(chat_log.content)


@dataclass(slots=True)
class Transcripts:
    """When each conversation's chat log first held `reply` as its one answer.

    Checked whenever Home Assistant stores a chat log: at the pipeline's
    INTENT_END (the run's log is stored as the agent returns) and at chat-log
    UPDATED events (fired when a re-opened log is stored: the continuation).
    Chat-log subscribers alone would miss the baseline: a streamed assistant
    message fires no event, nor does storing a new chat log.
    """

    hass: HomeAssistant
    reply: str = ""
    complete: dict[str, float] = field(default_factory=dict)

    def check(self, conversation_id: str) -> None:
        """Stamp the conversation if its chat log holds the whole reply."""
        if conversation_id not in self.complete and stored_assistant_texts(
            self.hass, conversation_id
        ) == [self.reply]:
            self.complete[conversation_id] = time.perf_counter()

    def on_event(
        self, conversation_id: str, event: ChatLogEventType, data: dict[str, Any]
    ) -> None:
        """Check the chat log after an UPDATED event."""
        if event is ChatLogEventType.UPDATED:
            self.check(conversation_id)


@pytest.fixture
def transcripts(voice: Voice) -> Iterator[Transcripts]:
    """Watch every chat log."""
    watch = Transcripts(voice.hass)
    unsubscribe = async_subscribe_chat_logs(voice.hass, watch.on_event)
    yield watch
    unsubscribe()


@dataclass(slots=True)
class Sample:
    """Timestamps of one pipeline run."""

    conversation_id: str = ""
    speech: str = ""
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
class Timings:
    """Latencies (seconds) of one format, reply length and mode."""

    a: list[float] = field(default_factory=list)
    b: list[float] = field(default_factory=list)
    transcript: list[float] = field(default_factory=list)
    wrong: int = 0
    """Runs whose chat log did not end up with the reply transcript."""


@dataclass(slots=True)
class Row:
    """Figures of one format and reply length."""

    early: Timings = field(default_factory=Timings)
    baseline: Timings = field(default_factory=Timings)
    cpu: Cpu = field(default_factory=Cpu)
    """Of the early runs."""


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


@contextlib.contextmanager
def metered(
    cpu: Cpu, conversion_clock: list[float], audio_seconds: float
) -> Iterator[None]:
    """Add the CPU seconds spent in the block (and its audio seconds) to `cpu`."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    start, converting = time.process_time(), conversion_clock[0]
    yield
    cpu.process += time.process_time() - start
    cpu.conversion += conversion_clock[0] - converting
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu.children += (after.ru_utime + after.ru_stime) - (
        children.ru_utime + children.ru_stime
    )
    cpu.audio_seconds += audio_seconds


async def read_tts(voice: Voice, token: str, overhead: int, sample: Sample) -> None:
    """Read a TTS stream to its end, as a satellite; stamp the first audio byte."""
    stream = tts.async_get_stream(voice.hass, token)
    assert stream is not None
    async for chunk in stream.async_stream_result():
        sample.audio_bytes += len(chunk)
        if not sample.first_audio and sample.audio_bytes > overhead:
            sample.first_audio = time.perf_counter()


async def pipeline_run(
    voice: Voice,
    question: bytes,
    fmt: Format,
    transcripts: Transcripts | None = None,
) -> Sample:
    """Run the pipeline once; return when its TTS stream was read to the end."""
    sample = Sample()
    token = ""

    def on_event(event: PipelineEvent) -> None:
        nonlocal token
        data = event.data or {}
        if event.type is PipelineEventType.RUN_START:
            token = data["tts_output"]["token"]
            sample.conversation_id = data["conversation_id"]
        elif event.type is PipelineEventType.STT_VAD_END:
            sample.vad_end = time.perf_counter()
        elif event.type is PipelineEventType.INTENT_END:
            response = data["intent_output"]["response"]
            sample.speech = response["speech"]["plain"]["speech"]
            if transcripts is not None:
                transcripts.check(sample.conversation_id)
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


async def warm_up(voice: Voice, question: bytes, fmt: Format) -> None:
    """Run the pipeline once with unpaced audio: caches, imports, ffmpeg."""
    voice.server.realtime_factor = None
    await pipeline_run(voice, question, fmt)
    await voice.manager.async_close()
    voice.server.realtime_factor = REALTIME_FACTOR


async def transcript_time(
    voice: Voice, transcripts: Transcripts, sample: Sample, text: str
) -> float | None:
    """Return VAD end -> the whole transcript in the chat log; None if it is not."""
    conversation_id = sample.conversation_id
    with contextlib.suppress(TimeoutError):
        await voice.server.wait_for(
            lambda: conversation_id in transcripts.complete, TRANSCRIPT_TIMEOUT
        )
    if conversation_id not in transcripts.complete or stored_assistant_texts(
        voice.hass, conversation_id
    ) != [text]:
        return None
    return transcripts.complete[conversation_id] - sample.vad_end


def percentiles(values: list[float]) -> str:
    """Return "p50 / p95" in milliseconds."""
    if not values:
        return "-"
    p95 = statistics.quantiles(values, n=20, method="inclusive")[18]
    return f"{1000 * statistics.median(values):6.0f} /{1000 * p95:5.0f}"


def ratio(baseline: list[float], early: list[float]) -> str:
    """Return the ratio of the medians, baseline / early."""
    if not baseline or not early:
        return "-"
    return f"{statistics.median(baseline) / statistics.median(early):.2f}x"


def serve(server: FakeLiveServer, text: str) -> None:
    """Answer every user turn with `text` after MODEL_DELAY, paced."""
    server.model_delay = MODEL_DELAY
    server.realtime_factor = REALTIME_FACTOR
    server.responder = lambda turn: Reply(text=text)


@pytest.mark.timeout(7200)
async def test_latency_and_cpu(
    voice: Voice,
    audio_sent: dict[Connection, list[tuple[float, int]]],
    conversion_clock: list[float],
    early_return: list[bool],
    transcripts: Transcripts,
) -> None:
    """Print latency and transcript percentiles, early against baseline, and CPU."""
    question = speech(QUESTION, 16000)
    mic_seconds = len(question) / 2 / 16000 + 1.5  # + the harness's silence
    rows: dict[tuple[str, str], Row] = {}
    paces: list[float] = []
    for fmt in formats():
        for label, text in (("short", SHORT), ("long", LONG)):
            serve(voice.server, text)
            transcripts.reply = text
            reply_seconds = len(speech(text, 24000)) / 2 / 24000
            row = rows[fmt.name, label] = Row()
            for early in (True, False):
                early_return[0] = early
                await warm_up(voice, question, fmt)
            for index in range(RUNS):
                for early in (True, False) if index % 2 else (False, True):
                    early_return[0] = early
                    timings = row.early if early else row.baseline
                    with (
                        metered(row.cpu, conversion_clock, mic_seconds + reply_seconds)
                        if early
                        else contextlib.nullcontext()
                    ):
                        sample = await pipeline_run(voice, question, fmt, transcripts)
                    # Early: the agent returned with the first words only.
                    assert text.startswith(sample.speech)
                    assert (sample.speech != text) is early, sample.speech
                    sent = audio_sent[voice.server.connections[-1]]
                    paces.append(pace(sent))
                    timings.a.append(sample.first_audio - sample.vad_end)
                    timings.b.append(sample.first_audio - sent[0][0])
                    elapsed = await transcript_time(voice, transcripts, sample, text)
                    if elapsed is None:
                        timings.wrong += 1
                    else:
                        timings.transcript.append(elapsed)
                    await voice.manager.async_close()

    print(
        f"\n\nModel delay {1000 * MODEL_DELAY:.0f} ms, reply audio paced at"
        f" {REALTIME_FACTOR:g}x real time (sent at {statistics.median(paces):.2f}x),"
        f" {RUNS} runs per row and mode (early return and baseline interleaved);"
        " ms p50 / p95; x: baseline / early p50"
    )
    print(
        f"{'format':<27}{'reply':<7}{'(a) VAD end->audio: early':>27}"
        f"{'baseline':>15}{'x':>8}{'(b) 1st chunk->audio: early':>30}"
        f"{'baseline':>15}{'x':>8}"
    )
    for (name, label), row in rows.items():
        early, base = row.early, row.baseline
        print(
            f"{name:<27}{label:<7}{percentiles(early.a):>27}"
            f"{percentiles(base.a):>15}{ratio(base.a, early.a):>8}"
            f"{percentiles(early.b):>30}{percentiles(base.b):>15}"
            f"{ratio(base.b, early.b):>8}"
        )
    print(
        "\n(c) VAD end -> whole transcript in the chat log; wrong: runs whose chat"
        " log did not get it (early / baseline); CPU of the early runs, ms per"
        " second of audio in + out"
    )
    print(
        f"{'format':<27}{'reply':<7}{'(c) early':>15}{'baseline':>15}{'x':>8}"
        f"{'wrong':>7}{'CPU process':>13}{'conversion':>12}{'ffmpeg':>8}"
    )
    for (name, label), row in rows.items():
        early, base = row.early, row.baseline
        per_second = 1000 / row.cpu.audio_seconds
        print(
            f"{name:<27}{label:<7}{percentiles(early.transcript):>15}"
            f"{percentiles(base.transcript):>15}"
            f"{ratio(base.transcript, early.transcript):>8}"
            f"{f'{early.wrong}/{base.wrong}':>7}"
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
        await warm_up(voice, question, fmt)
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
