"""Voice pipeline latency, run by hand (not by scripts/test).

    .venv/bin/pytest benchmarks/latency.py -s
    (environment: BENCH_RUNS=5 runs per row and mode, BENCH_REALTIME=2)

Home Assistant's real Assist pipeline (`async_pipeline_from_audio_stream`)
with this integration's STT, conversation and TTS entities against the fake
Live server (tests/voice harness; manual activity detection: Home
Assistant's VAD ends the user's turn and the client sends activityEnd). The
fake model waits MODEL_DELAY, then paces its reply audio at BENCH_REALTIME
times real time (production streams faster than real time; 2 is an assumed
typical value, the header prints the pace actually sent). The TTS stream is
read in-process from the moment a satellite would fetch it
(tts_start_streaming or TTS_END), so network and satellite time are not
included. Other processes on the machine add noise: the header prints the
load average.

Modes, interleaved run by run:
  live      the product: inside a pipeline run the agent's first chat-log
            deltas are a blank text and the external `stream_live_audio`
            tool call, so Home Assistant starts the TTS stream (and its
            ffmpeg) as soon as the agent stage begins;
  baseline  the same with that trigger off (`voice.chat._Reply` patched so
            that its `trigger_id` is None): Home Assistant starts TTS only
            once the answer text is there (after 60 streamed characters, or
            when the agent returns);
  early STT (table 1, no lag) live, with the fake marking the input
            transcript's last fragment `finished` (its
            `transcription_finished_flag`; production never sets it);
  pipeline VAD (table 2) live without the STT entity's early end of speech
            (`stt.ends_early` patched to False): the pipeline's own VAD ends
            the user's turn after 0.7 s of silence.
Every reply text is distinct, so the baseline's text-keyed TTS cache never
replays an earlier run.

Table 1, per satellite format (ffmpeg converts each), a short reply, the
output transcript on time or lagging its audio by OUTPUT_LAG (the fake's
`Reply.transcript_lag`):
  (b) first audio chunk the fake server sent -> first TTS audio byte (past
      the container header / FLAC padding); and, for live runs, the STT end
      and the TTS stream start relative to that chunk (negative: before it).
Table 2, ESPHome WAV 16 kHz, microphone streamed in real time:
  (a) end of the user's speech (the chunk with the last speech sample went
      into the pipeline) -> first TTS audio byte, live (early end of
      speech) against pipeline VAD, with the live run's parts (speech end ->
      STT_END, speech end -> first audio chunk);
  (c) end of speech -> the chat log holding the whole answer as its one
      assistant message (checked when the agent returns).
"wrong" counts runs whose agent speech or chat log was not exactly the reply
(live/other mode), left out of the timings. The default 5 runs per row and
mode (p95 is then nearly the maximum) take about 6 minutes on 2 cores.

Table 3 (`test_first_byte_per_version`, about 2 minutes): (b) per satellite
format on both Home Assistant versions side by side, each a real `hass`
process (tests/ha_versions: 2026.10.4 from .venv, 2026.11.0 from
.venv-2026.11) reading text aloud through `/api/tts_get_url` and the TTS
proxy, the way a satellite fetches its URL: the fake's Gemini TTS stream is
held after its headers until the proxy request waits (so ffmpeg, where it
runs, has started, as the pipeline's early start arranges), then (b) is the
release of its first 200 ms chunk -> the first audio byte the HTTP client
reads past the container header. 2026.10 converts every format with ffmpeg;
2026.11 passes the WAV and FLAC streams through (this integration encodes
them), and still converts mp3. Includes the local HTTP hops.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
import contextlib
from dataclasses import dataclass, field
from enum import Enum
import itertools
import os
from pathlib import Path
import statistics
import time

import aiohttp
from homeassistant.core import HomeAssistant
import pytest

from benchmarks import voice_runs
from benchmarks.audio_formats import ffmpeg_version
from benchmarks.voice_runs import (
    Format,
    Microphone,
    PipelineTurn,
    Voice,
    assistant_messages,
    percentiles,
    ratio,
    run_turn,
    satellite_formats,
)
from custom_components.gemini_live import stt as stt_module
from custom_components.gemini_live.voice import chat
from custom_components.gemini_live.voice.tools import ToolRunner
from custom_components.gemini_live.voice.turn import LiveTurn
from tests.fake_live import Connection, FakeLiveServer, Reply, SpeechStall, speech
from tests.ha_versions.conftest import MODEL, VENVS
from tests.instance import (
    GeminiApiAccount,
    HomeAssistantClient,
    Owner,
    home_assistant,
    provision,
    sign_in,
)

# Fixtures (shared with benchmarks/soak.py).
fake_live = voice_runs.fake_live
voice = voice_runs.voice
entry_options = voice_runs.entry_options
custom_integrations = voice_runs.custom_integrations
enable_event_loop_debug = voice_runs.enable_event_loop_debug
hass_config_dir = voice_runs.hass_config_dir
live_model = voice_runs.live_model

RUNS = int(os.environ.get("BENCH_RUNS", "5"))
"""Runs per row and mode."""
REALTIME_FACTOR = float(os.environ.get("BENCH_REALTIME", "2"))
"""Pace of the reply audio, in times real time."""
MODEL_DELAY = 0.3
"""Seconds the fake model takes before its first frame."""
OUTPUT_LAG = 1.0
"""Seconds the output transcript trails its audio in the lagging rows."""
QUESTION = "what is the weather like today"
SHORT = "It is sunny, {n}."
LONG = "It is sunny and warm today, with a light breeze from the west, {n}."
assert len(SHORT.format(n=10**4)) < 60
assert len(LONG.format(n=1)) > 60


class Mode(Enum):
    """How a run is made (see the module docstring)."""

    LIVE = "live"
    BASELINE = "baseline"
    EARLY_STT = "early STT"
    PIPELINE_VAD = "pipeline VAD"


@pytest.fixture
def chunk_times(monkeypatch: pytest.MonkeyPatch) -> dict[Connection, list[float]]:
    """Record when the fake server sent each audio chunk, per connection."""
    sent: dict[Connection, list[float]] = {}
    record = Connection.record_audio_out

    def stamp(self: Connection, pcm: bytes) -> None:
        sent.setdefault(self, []).append(time.perf_counter())
        record(self, pcm)

    monkeypatch.setattr(Connection, "record_audio_out", stamp)
    return sent


@pytest.fixture
def early_end(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Return a switch: [False] turns the STT entity's early end off."""
    switch = [True]
    product = stt_module.ends_early

    def switched(hass: HomeAssistant, device_id: str | None) -> bool:
        return switch[0] and product(hass, device_id)

    monkeypatch.setattr(stt_module, "ends_early", switched)
    return switch


@pytest.fixture
def trigger(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Return a switch: [False] turns the agent's audio trigger off (baseline)."""
    switch = [True]
    product = chat._Reply  # noqa: SLF001 - the product's own switch

    class SwitchedReply(product):  # type: ignore[misc, valid-type]
        def __init__(
            self, turn: LiveTurn, tools: ToolRunner, *, stream_audio: bool
        ) -> None:
            super().__init__(turn, tools, stream_audio=stream_audio and switch[0])

    monkeypatch.setattr(chat, "_Reply", SwitchedReply)
    return switch


@dataclass(slots=True)
class Timings:
    """Seconds of one row and mode, by measure."""

    values: dict[str, list[float]] = field(default_factory=dict)
    wrong: int = 0
    """Runs whose agent speech or chat log was not exactly the reply."""

    def add(self, name: str, value: float) -> None:
        """Record one value of a measure."""
        self.values.setdefault(name, []).append(value)

    def __getitem__(self, name: str) -> list[float]:
        """Return the values of a measure."""
        return self.values.get(name, [])


type Row = dict[Mode, Timings]
type Measure = Callable[[Timings, PipelineTurn, float], None]


@dataclass(slots=True)
class Bench:
    """The harness, the trigger switch and the chunk stamps of one test."""

    voice: Voice
    trigger: list[bool]
    early_end: list[bool]
    chunk_times: dict[Connection, list[float]]
    question: bytes
    paces: list[float] = field(default_factory=list)
    texts: Iterator[int] = field(default_factory=itertools.count)
    wrong: list[str] = field(default_factory=list)
    """What the wrong runs got."""

    @property
    def server(self) -> FakeLiveServer:
        """The fake Live server."""
        return self.voice.server

    async def warm_up(self, fmt: Format) -> None:
        """Run once unpaced per mode: imports, caches, the format's first ffmpeg."""
        factor, self.server.realtime_factor = self.server.realtime_factor, None
        for mode in (Mode.LIVE, Mode.BASELINE):
            await self.turn(mode, fmt, SHORT, {}, realtime=False)
        self.server.realtime_factor = factor

    async def rows(
        self,
        modes: tuple[Mode, ...],
        fmt: Format,
        template: str,
        *,
        realtime: bool,
        lag: float = 0.0,
        measure: Measure,
    ) -> Row:
        """Run RUNS times per mode, the modes interleaved in rotating order."""
        row: Row = {mode: Timings() for mode in modes}
        for index in range(RUNS):
            for offset in range(len(modes)):
                mode = modes[(index + offset) % len(modes)]
                await self.turn(
                    mode,
                    fmt,
                    template,
                    row,
                    realtime=realtime,
                    lag=lag,
                    measure=measure,
                )
        return row

    async def turn(
        self,
        mode: Mode,
        fmt: Format,
        template: str,
        row: Row,
        *,
        realtime: bool,
        lag: float = 0.0,
        measure: Measure | None = None,
    ) -> None:
        """Run the pipeline once in `mode`; add its figures to `row`."""
        text = template.format(n=next(self.texts))
        self.trigger[0] = mode is not Mode.BASELINE
        self.early_end[0] = mode is not Mode.PIPELINE_VAD
        self.server.transcription_finished_flag = mode is Mode.EARLY_STT
        self.server.responder = lambda user: Reply(text=text, transcript_lag=lag)
        chat_log: list[list[tuple[str | None, object]]] = []

        def check_chat_log(turn: PipelineTurn) -> None:
            messages = assistant_messages(self.voice.hass, turn.conversation_id)
            chat_log.append([(m.content, m.tool_calls) for m in messages])

        turn = await run_turn(
            self.voice,
            Microphone(self.question, realtime=realtime),
            fmt,
            on_intent_end=check_chat_log,
        )
        assert turn.error is None, turn.error
        sent = self.chunk_times[self.server.connections[-1]]
        self.paces.append(pace(sent, len(speech(text))))
        timings = row.setdefault(mode, Timings())
        if turn.speech != text or chat_log != [[(text, None)]]:
            timings.wrong += 1
            self.wrong.append(
                f"{mode.value}, {fmt.name}, lag {lag:g} s: reply {text!r},"
                f" speech {turn.speech!r}, chat log {chat_log}"
            )
        elif measure is not None:
            measure(timings, turn, sent[0])
        await self.voice.manager.async_close()


def pace(sent: list[float], pcm_bytes: int) -> float:
    """Return the real-time factor the reply audio was sent at."""
    if len(sent) < 2:
        return 0.0
    seconds = pcm_bytes / 2 / 24000 * (len(sent) - 1) / len(sent)
    return seconds / (sent[-1] - sent[0])


def chunk_to_audio(timings: Timings, turn: PipelineTurn, first_chunk: float) -> None:
    """Table 1: first chunk -> first TTS audio byte; STT end, stream start."""
    timings.add("b", turn.first_audio - first_chunk)
    timings.add("stt", turn.stt_end - first_chunk)
    timings.add("stream", turn.stream_start - first_chunk)


def speech_to_audio(timings: Timings, turn: PipelineTurn, first_chunk: float) -> None:
    """Table 2: end of speech -> first TTS audio byte, its parts, the chat log."""
    speech_end = turn.mic.speech_end
    timings.add("a", turn.first_audio - speech_end)
    timings.add("stt", turn.stt_end - speech_end)
    timings.add("model", first_chunk - speech_end)
    timings.add("c", turn.intent_end - speech_end)


@pytest.mark.timeout(3600)
async def test_latency(
    voice: Voice,
    chunk_times: dict[Connection, list[float]],
    trigger: list[bool],
    early_end: list[bool],
) -> None:
    """Print latency percentiles, the product against the baseline."""
    load = os.getloadavg()[0]
    bench = Bench(voice, trigger, early_end, chunk_times, speech(QUESTION, 16000))
    voice.server.model_delay = MODEL_DELAY
    voice.server.realtime_factor = REALTIME_FACTOR
    formats = satellite_formats()
    table1: dict[tuple[str, float], Row] = {}
    for fmt in formats:
        await bench.warm_up(fmt)
        for lag, modes in (
            (0.0, (Mode.LIVE, Mode.BASELINE, Mode.EARLY_STT)),
            (OUTPUT_LAG, (Mode.LIVE, Mode.BASELINE)),
        ):
            table1[fmt.name, lag] = await bench.rows(
                modes, fmt, SHORT, realtime=False, lag=lag, measure=chunk_to_audio
            )
    esphome = formats[0]
    table2 = {
        label: await bench.rows(
            (Mode.LIVE, Mode.PIPELINE_VAD),
            esphome,
            template,
            realtime=True,
            measure=speech_to_audio,
        )
        for label, template in (("short", SHORT), ("long", LONG))
    }
    print_header(bench, load)
    print_table1(table1)
    print_table2(table2, esphome)
    for run in bench.wrong:
        print(f"wrong: {run}")


def median_ms(values: list[float]) -> str:
    """Return the median in milliseconds."""
    return f"{1000 * statistics.median(values):.0f}" if values else "-"


def wrong(row: Row, other: Mode = Mode.BASELINE) -> str:
    """Return the wrong counts, live/other mode."""
    return f"{row[Mode.LIVE].wrong}/{row[other].wrong}"


def print_header(bench: Bench, load: float) -> None:
    """Print the set-up."""
    server = bench.server
    print(
        f"\n\n{ffmpeg_version()}\nload average {load:.2f} at the start,"
        f" {os.getloadavg()[0]:.2f} at the end ({os.cpu_count()} cores)\n"
        f"Model delay {1000 * MODEL_DELAY:.0f} ms, reply audio paced at"
        f" {REALTIME_FACTOR:g}x real time (sent at"
        f" {statistics.median(bench.paces):.2f}x), input transcription"
        f" {server.input_transcription!r} (streaming lag"
        f" {server.input_transcription_lag:g} s); {RUNS} runs per row and mode,"
        " interleaved; ms p50 / p95; x = baseline / live p50"
    )


def print_table1(table: dict[tuple[str, float], Row]) -> None:
    """Print (b) per format and output transcript lag."""
    print(
        "\n1. (b) first audio chunk sent -> first TTS audio byte, short reply"
        " (< 60 characters); lag: output transcript behind its audio; live STT"
        " end and TTS stream start relative to the first chunk (p50 ms)"
    )
    print(
        f"{'format':<23}{'lag':>4}{'live':>14}{'baseline':>14}{'x':>8}"
        f"{'early STT':>14}{'STT end':>9}{'stream':>8}{'wrong':>7}"
    )
    for (name, lag), row in table.items():
        live, base = row[Mode.LIVE], row[Mode.BASELINE]
        early = row.get(Mode.EARLY_STT, Timings())
        print(
            f"{name:<23}{f'{lag:g} s':>4}{percentiles(live['b']):>14}"
            f"{percentiles(base['b']):>14}{ratio(base['b'], live['b']):>8}"
            f"{percentiles(early['b']):>14}{median_ms(live['stt']):>9}"
            f"{median_ms(live['stream']):>8}{wrong(row):>7}"
        )


def print_table2(table: dict[str, Row], esphome: Format) -> None:
    """Print (a) and (c) per reply length."""
    print(
        f"\n2. {esphome.name}, microphone in real time, manual activity (HA's"
        " VAD, then activityEnd): (a) end of speech -> first TTS audio byte,"
        " live (early end of speech) and with the pipeline's VAD; live parts"
        " (p50 ms): speech end -> STT end, speech end -> first chunk; (c) end"
        " of speech -> whole answer in the chat log"
    )
    print(
        f"{'reply':<7}{'(a) live':>14}{'pipe VAD':>14}{'x':>8}{'STT':>7}"
        f"{'chunk':>7}{'(c) live':>14}{'pipe VAD':>14}{'x':>8}{'wrong':>7}"
    )
    for label, row in table.items():
        live, base = row[Mode.LIVE], row[Mode.PIPELINE_VAD]
        print(
            f"{label:<7}{percentiles(live['a']):>14}{percentiles(base['a']):>14}"
            f"{ratio(base['a'], live['a']):>8}{median_ms(live['stt']):>7}"
            f"{median_ms(live['model']):>7}{percentiles(live['c']):>14}"
            f"{percentiles(base['c']):>14}{ratio(base['c'], live['c']):>8}"
            f"{wrong(row, Mode.PIPELINE_VAD):>7}"
        )


STALL_SETTLE = 0.3
"""Seconds the held TTS stream waits once the proxy request is in."""
WARM_UP_RUNS = 2
"""Runs per format and version left out of table 3 (caches, first ffmpeg)."""


def audio_start(data: bytes, extension: str) -> int | None:
    """Return where the audio of a WAV or FLAC stream begins (None: not yet known)."""
    if extension == "wav":
        at = data.find(b"data", 12)
        return at + 8 if at >= 0 and len(data) >= at + 8 else None
    offset = 4  # "fLaC", then metadata blocks up to the one flagged last
    while len(data) >= offset + 4:
        last = data[offset] & 0x80
        offset += 4 + int.from_bytes(data[offset + 1 : offset + 4])
        if last:
            return offset if len(data) >= offset else None
    return None


async def first_audio_byte(
    http: aiohttp.ClientSession, url: str, extension: str, released: list[float]
) -> float:
    """Read the proxy URL to its end; return when the first audio byte came."""
    data = b""
    first = 0.0
    async with http.get(url) as response:
        response.raise_for_status()
        async for chunk in response.content.iter_any():
            data += chunk
            start = audio_start(data, extension) if extension != "mp3" else 0
            if not first and start is not None and len(data) > start:
                first = time.perf_counter()
    assert first, "no audio"
    assert released, "read before the stream was released"
    return first - released[0]


@dataclass(slots=True)
class Proxied:
    """A running Home Assistant version to read text aloud through."""

    client: HomeAssistantClient
    http: aiohttp.ClientSession
    """Authenticated, for the proxy URLs."""
    engine: str
    """The TTS entity."""


@contextlib.asynccontextmanager
async def proxied(
    version: str, server: FakeLiveServer, config_dir: Path
) -> AsyncIterator[Proxied]:
    """Start and provision one Home Assistant version."""
    async with home_assistant(config_dir, venv=VENVS[version]) as ha:
        token = await sign_in(ha.url, Owner.create())
        async with (
            HomeAssistantClient(ha.url, token) as client,
            aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http,
        ):
            account = GeminiApiAccount(
                api_key=server.api_key, base_url=server.base_url, model=MODEL
            )
            assistant = await provision(client, account)
            assert assistant is not None
            yield Proxied(client, http, assistant.tts_entity)


async def proxied_run(
    home: Proxied, server: FakeLiveServer, fmt: Format, run: int
) -> float:
    """Have one text read aloud in `fmt`; return its (b) in seconds."""
    client = home.client
    options = fmt.audio_output or {}
    server.speech._released.clear()  # noqa: SLF001 - hold this stream too
    server.speech.add_fault(SpeechStall(after_chunks=0))
    calls = len(server.speech.calls)
    url = await client.rest(
        "POST",
        "/api/tts_get_url",
        {
            "engine_id": home.engine,
            "message": f"The {fmt.name} timer number {run} is done.",
            "language": "en",
            "options": options,
        },
    )
    released: list[float] = []
    reader = asyncio.create_task(
        first_audio_byte(
            home.http,
            f"{client.url}{url['path']}",
            options["preferred_format"],
            released,
        )
    )
    await server.wait_for(lambda: len(server.speech.calls) > calls, 10, "TTS call")
    await asyncio.sleep(STALL_SETTLE)
    released.append(time.perf_counter())
    server.speech.release()
    async with asyncio.timeout(30):
        return await reader


@pytest.mark.timeout(900)
async def test_first_byte_per_version(
    fake_live: FakeLiveServer, tmp_path: Path
) -> None:
    """Print table 3: (b) per satellite format, 2026.10.4 against 2026.11.0.

    Both versions run at once and take turns run by run, so that the load of
    the machine weighs on them alike.
    """
    fake_live.speech.serve()
    rows: dict[str, dict[str, list[float]]] = {version: {} for version in VENVS}
    async with contextlib.AsyncExitStack() as stack:
        homes = {
            version: await stack.enter_async_context(
                proxied(version, fake_live, tmp_path / version)
            )
            for version in VENVS
        }
        for run in range(-WARM_UP_RUNS, RUNS):
            for fmt in satellite_formats():
                for version, home in homes.items():
                    seconds = await proxied_run(home, fake_live, fmt, run)
                    if run >= 0:
                        rows[version].setdefault(fmt.name, []).append(seconds)
    load = os.getloadavg()[0]
    print(
        f"\n\n{ffmpeg_version()}; load average {load:.2f} ({os.cpu_count()} cores)"
        f"\n3. (b) first TTS chunk released -> first audio byte through the TTS"
        f" proxy, real Home Assistant processes, {RUNS} runs per row (ms p50 / p95)"
    )
    print(f"{'format':<23}" + "".join(f"{v:>16}" for v in rows))
    for fmt in satellite_formats():
        print(
            f"{fmt.name:<23}"
            + "".join(f"{percentiles(row[fmt.name]):>16}" for row in rows.values())
        )
