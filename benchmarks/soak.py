"""Soak test, run by hand (not by scripts/test: testpaths is tests/).

    .venv/bin/pytest benchmarks/soak.py -s
    (environment: SOAK_TURNS=1000)

SOAK_TURNS voice turns through Home Assistant's real Assist pipeline (STT ->
conversation -> TTS, this integration's entities) against the fake Live
server, one after the other, in follow-up conversations: each conversation
id is reused for CONVERSATION_LENGTHS turns (cycling), then a new one starts.
Every question is distinct speech (words of espeak-ng, concatenated, heard
back by the fake's STT) and every answer a distinct text with distinct
audio (seeded noise), so each check is real. Mixed in:

* every 50th turn (from the 25th on) the fake sends goAway after two audio
  chunks of the reply, which goes on streaming; the session then rotates to
  a resumed connection;
* every 50th turn (from the 12th on) the fake closes the connection with
  1011 after the turn; the conversation's next turn opens a new one (with the
  chat log as history);
* every 50th turn, after it, the conversation waits out the entry's idle
  timeout (IDLE_TIMEOUT, set low), so its session closes; its next turn
  reopens it. Sessions of finished conversations expire the same way;
* every 10th turn asks for ESPHome's WAV 16 kHz (through ffmpeg); the others
  take the 24 kHz WAV as is, compared byte for byte with the fake's audio;
* every 20th turn the fake leaves the transcripts' `finished` flag off, as
  production does (the agent then waits out the output transcript's tail);
  otherwise replies end at once, and come as fast as possible.

Per turn: the STT text equals the question, the agent's speech and the chat
log's last assistant message equal the answer (no leftover audio trigger),
and the TTS stream (read to its end through the run's token, from the moment
a satellite would fetch it) holds the answer's audio. "lost" counts turns
that failed or timed out, "wrong" turns with any other mismatch.

For the first and last WINDOW turns, after each turn (after gc.collect()):
the Python heap traced since the first turn (tracemalloc, current), asyncio
tasks alive, Live sessions open in the manager, WebSockets open on the fake
server, Home Assistant's chat sessions alive (they expire after 5 minutes),
the turn's wall time; mean / max per window and last / first. The fake
records every frame of every connection for tests, so after each turn the
soak forgets closed connections and the records of open ones; Home
Assistant's TTS memory cache (300 s of every stream by default) is cut to
TTS_CACHE_SECONDS so that it does not read as growth. The heap difference
between the end of the first window and the end is printed by file
(tracemalloc snapshots). Prints the wall time; asyncio's debug mode is off.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
import gc
import itertools
import os
import random
import statistics
import struct
import time
import tracemalloc
from typing import Any

from homeassistant.components.tts.const import DATA_TTS_MANAGER
from homeassistant.core import HomeAssistant
from homeassistant.helpers.chat_session import DATA_CHAT_SESSION
import pytest

from benchmarks import voice_runs
from benchmarks.voice_runs import (
    Format,
    Microphone,
    PipelineTurn,
    Voice,
    assistant_messages,
    open_connections,
    run_turn,
    satellite_formats,
)
from custom_components.gemini_live.const import CONF_IDLE_TIMEOUT, RECOMMENDED_OPTIONS
from tests.fake_live import (
    INTERNAL_ERROR,
    Connection,
    FakeLiveServer,
    GoAway,
    Reply,
    UserTurn,
    speech,
)

# Fixtures (shared with benchmarks/latency.py).
fake_live = voice_runs.fake_live
voice = voice_runs.voice
custom_integrations = voice_runs.custom_integrations
enable_event_loop_debug = voice_runs.enable_event_loop_debug
hass_config_dir = voice_runs.hass_config_dir
live_model = voice_runs.live_model

TURNS = int(os.environ.get("SOAK_TURNS", "1000"))
WINDOW = min(100, max(TURNS // 2, 1))
"""Turns measured at the start and at the end."""
IDLE_TIMEOUT = 2.0
"""The entry's idle_timeout (seconds) in the soak."""
TTS_CACHE_SECONDS = 10
TURN_TIMEOUT = 30.0
CONVERSATION_LENGTHS = (1, 4, 7, 10)
ANSWER_SECONDS = 0.32
"""Length of each answer's audio (eight 40 ms chunks)."""
PREFIX = "find the"
WORDS = tuple(
    tuple(words.split())
    for words in (
        "red green blue yellow purple orange silver golden pink brown",
        "fox horse rabbit tiger eagle dolphin turtle spider camel penguin",
        "kitchen garden garage office bedroom hallway attic cellar balcony bathroom",
        "monday tuesday wednesday thursday friday saturday sunday january march april",
    )
)
"""Question words by position (all distinct: the fake STT finds each once)."""


@pytest.fixture
def entry_options() -> dict[str, Any]:
    """Return the recommended options with a short idle timeout."""
    return {**RECOMMENDED_OPTIONS, CONF_IDLE_TIMEOUT: IDLE_TIMEOUT}


@dataclass(frozen=True, slots=True)
class Plan:
    """One turn: what is asked, what is answered, what happens around it."""

    number: int
    """1-based."""
    words: tuple[str, ...]
    new_conversation: bool

    @property
    def question(self) -> str:
        """The words the user says."""
        return " ".join((PREFIX, *self.words))

    @property
    def answer(self) -> str:
        """The model's answer."""
        return f"Turn {self.number}: the {' '.join(self.words)} is fine."

    @property
    def go_away(self) -> bool:
        """Whether the fake sends goAway in the middle of the reply."""
        return self.number % 50 == 25

    @property
    def close_after(self) -> bool:
        """Whether the fake closes the connection with 1011 after the turn."""
        return self.number % 50 == 12

    @property
    def idle_after(self) -> bool:
        """Whether the conversation waits out the idle timeout after the turn."""
        return self.number % 50 == 0

    @property
    def satellite(self) -> bool:
        """Whether the TTS stream is ESPHome's WAV 16 kHz (through ffmpeg)."""
        return self.number % 10 == 5

    @property
    def production_transcripts(self) -> bool:
        """Whether the transcripts come without their `finished` flag."""
        return self.number % 20 == 7

    def answer_audio(self) -> bytes:
        """Distinct 24 kHz PCM16 noise for this turn."""
        samples = round(24000 * ANSWER_SECONDS)
        return random.Random(self.number).randbytes(2 * samples)


def plans(turns: int) -> Iterator[Plan]:
    """Yield the turns: distinct questions, in conversations of cycling length."""
    positions = max(3, len(str(max(turns - 1, 1))))
    lengths = itertools.cycle(CONVERSATION_LENGTHS)
    left = 0
    for index in range(turns):
        digits = f"{index:0{positions}d}"[-len(WORDS) :]
        words = tuple(WORDS[p][int(d)] for p, d in enumerate(digits))
        new = left == 0
        if new:
            left = next(lengths)
        left -= 1
        yield Plan(index + 1, words, new)


def question_audio(words: tuple[str, ...]) -> bytes:
    """Microphone PCM of the question: the words' own speech, one after another."""
    return b"".join(speech(word, 16000) for word in (PREFIX, *words))


def wav_body(data: bytes) -> tuple[int, bytes]:
    """Return the sample rate and data bytes of a (streamed) WAV."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a WAV stream")
    pos, rate = 12, 0
    while pos + 8 <= len(data):
        kind, size = struct.unpack_from("<4sI", data, pos)
        pos += 8
        if kind == b"fmt ":
            rate = struct.unpack_from("<I", data, pos + 4)[0]
        elif kind == b"data":
            return rate, data[pos:]
        pos += size
    raise ValueError("WAV stream without data")


@dataclass(slots=True)
class Sample:
    """Figures read after one turn."""

    heap: float
    """MiB."""
    tasks: int
    sessions: int
    connections: int
    chat_sessions: int
    seconds: float
    """Wall time of the turn."""


@dataclass(slots=True)
class Soak:
    """The run's state and its counters."""

    voice: Voice
    passthrough: Format
    esphome: Format
    answers: dict[str, Reply] = field(default_factory=dict)
    """The reply to each question of the current turn."""
    served_by: Connection | None = None
    """The fake connection that answered the latest turn."""
    lost: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    anomalies: list[str] = field(default_factory=list)
    closed: Counter[str] = field(default_factory=Counter)
    """Closed fake connections by how they ended."""
    resumed: int = 0
    go_aways: int = 0
    first: list[Sample] = field(default_factory=list)
    last: list[Sample] = field(default_factory=list)

    @property
    def server(self) -> FakeLiveServer:
        """The fake Live server."""
        return self.voice.server

    def respond(self, user: UserTurn) -> Reply:
        """Answer the question the fake heard (a fallback if it heard another)."""
        self.served_by = user.connection
        return self.answers.get(user.query, Reply(text="I did not catch that."))

    async def turn(self, plan: Plan, conversation_id: str | None) -> str | None:
        """Run and check one turn; return its conversation id (None if lost)."""
        self.answers = {
            plan.question: Reply(
                text=plan.answer,
                audio=plan.answer_audio(),
                go_away=GoAway(time_left=10.0, after_chunks=2)
                if plan.go_away
                else None,
            )
        }
        self.server.transcription_finished_flag = not plan.production_transcripts
        fmt = self.esphome if plan.satellite else self.passthrough
        try:
            async with asyncio.timeout(TURN_TIMEOUT):
                turn = await run_turn(
                    self.voice,
                    Microphone(question_audio(plan.words)),
                    fmt,
                    conversation_id=conversation_id,
                    keep_audio=True,
                )
        except Exception as err:  # noqa: BLE001 - counted, the soak goes on
            self.lost.append(f"{plan.number}: {err!r}")
            await self.voice.manager.async_close()
            return None
        if turn.error is not None:
            self.lost.append(f"{plan.number}: {turn.error}")
            return None
        if problem := self.check(plan, turn, conversation_id):
            self.wrong.append(f"{plan.number}: {problem}")
        return turn.conversation_id

    def check(
        self, plan: Plan, turn: PipelineTurn, conversation_id: str | None
    ) -> str | None:
        """Return what is wrong with a finished turn, if anything."""
        if conversation_id is not None and turn.conversation_id != conversation_id:
            return f"conversation {turn.conversation_id} instead of {conversation_id}"
        if turn.heard != plan.question:
            return f"heard {turn.heard!r}"
        if turn.speech != plan.answer:
            return f"speech {turn.speech!r}"
        messages = assistant_messages(self.voice.hass, turn.conversation_id)
        if not messages or messages[-1].content != plan.answer:
            return f"chat log {[m.content for m in messages[-2:]]!r}"
        if messages[-1].tool_calls:
            return f"chat log tool calls {messages[-1].tool_calls!r}"
        try:
            rate, body = wav_body(bytes(turn.audio))
        except ValueError as err:
            return f"TTS stream ({len(turn.audio)} bytes): {err}"
        if not plan.satellite:
            if body != plan.answer_audio():
                return f"TTS audio differs ({len(body)} bytes)"
            return None
        seconds = len(body) / 2 / rate if rate else 0.0
        if rate != 16000 or abs(seconds - ANSWER_SECONDS) > 0.05:
            return f"TTS audio {seconds:.3f} s at {rate} Hz"
        return None

    async def after(self, plan: Plan, conversation_id: str) -> None:
        """Break the connection or wait out the idle timeout, as planned."""
        manager = self.voice.manager
        sessions = manager._sessions  # noqa: SLF001 - no public view of the sessions
        session = sessions.get(conversation_id)
        if plan.close_after:
            if (conn := self.served_by) is None or conn.closed:
                self.anomalies.append(f"{plan.number}: no open connection to close")
                return
            await conn.close(1011, INTERNAL_ERROR)
            await self.expect(
                lambda: sessions.get(conversation_id) is not session,
                f"{plan.number}: the 1011 close left the session open",
            )
        elif plan.idle_after:
            await self.expect(
                lambda: conversation_id not in sessions,
                f"{plan.number}: the session outlived its idle timeout",
                IDLE_TIMEOUT + 5,
            )

    async def expect(
        self, predicate: Callable[[], bool], what: str, seconds: float = 5.0
    ) -> None:
        """Wait for `predicate()`; note an anomaly if it does not come true."""
        try:
            await self.server.wait_for(predicate, seconds)
        except TimeoutError:
            self.anomalies.append(what)

    def forget_records(self) -> None:
        """Drop what the fake recorded for tests; count how connections ended.

        Closed connections are forgotten; open ones lose the frames, audio and
        turns recorded so far (between turns nothing reads them).
        """
        server = self.server
        for conn in server.connections:
            if conn.closed:
                self.closed[f"{conn.closed_by} {conn.close_code}"] += 1
                self.resumed += conn.resumed
                self.go_aways += conn.go_away_sent
                if conn.session is not None and conn in conn.session.connections:
                    conn.session.connections.remove(conn)
                continue
            for record in (conn.frames, conn.raw_frames, conn.messages, conn.sent):
                record.clear()
            conn.turns.clear()
            conn._audio_in.clear()  # noqa: SLF001 - the fake's own record
            conn._audio_out.clear()  # noqa: SLF001
        server.connections[:] = [conn for conn in server.connections if not conn.closed]

    def sample(self, seconds: float) -> Sample:
        """Read the figures after a turn."""
        gc.collect()
        manager = self.voice.manager
        return Sample(
            heap=tracemalloc.get_traced_memory()[0] / 2**20,
            tasks=len(asyncio.all_tasks()),
            sessions=len(manager._sessions) + len(manager._unkeyed),  # noqa: SLF001
            connections=open_connections(self.server),
            chat_sessions=len(self.voice.hass.data[DATA_CHAT_SESSION]),
            seconds=seconds,
        )


def shorten_tts_cache(hass: HomeAssistant, seconds: int) -> None:
    """Keep Home Assistant's TTS results in memory `seconds` instead of 300."""
    manager = hass.data[DATA_TTS_MANAGER]
    manager.memory_cache_maxage = seconds
    manager.memcache_cleanup.maxage = seconds
    manager.token_to_stream_cleanup.maxage = seconds


@pytest.mark.timeout(3600)
async def test_soak(voice: Voice) -> None:
    """Run TURNS checked turns; print growth between the first and last ones."""
    shorten_tts_cache(voice.hass, TTS_CACHE_SECONDS)
    formats = satellite_formats(passthrough=True)
    soak = Soak(voice, passthrough=formats[-1], esphome=formats[0])
    voice.server.responder = soak.respond
    voice.server.model_delay = 0.0
    voice.server.realtime_factor = None
    all_plans = list(plans(TURNS))
    for plan in all_plans:  # generate (or load) every word's speech up front
        question_audio(plan.words)
    # One unchecked turn first: imports, ffmpeg, caches.
    await soak.turn(Plan(0, all_plans[0].words, True), None)
    await voice.manager.async_close()
    soak.lost.clear()
    soak.wrong.clear()
    await asyncio.sleep(0.1)
    soak.forget_records()
    soak.closed.clear()
    gc.collect()
    tasks_before = len(asyncio.all_tasks())

    tracemalloc.start()
    started = time.perf_counter()
    heaps: list[dict[str, int]] = []
    conversation_id: str | None = None
    for plan in all_plans:
        turn_start = time.perf_counter()
        if plan.new_conversation:
            conversation_id = None
        conversation_id = await soak.turn(plan, conversation_id)
        elapsed = time.perf_counter() - turn_start
        if conversation_id is not None:
            await soak.after(plan, conversation_id)
        soak.forget_records()
        if plan.number <= WINDOW:
            soak.first.append(soak.sample(elapsed))
            if plan.number == WINDOW:
                heaps.append(heap_by_file())
        if plan.number > TURNS - WINDOW:
            soak.last.append(soak.sample(elapsed))
    wall = time.perf_counter() - started
    heaps.append(heap_by_file())

    await asyncio.sleep(IDLE_TIMEOUT + 1)  # every session's idle timeout
    soak.forget_records()
    gc.collect()
    settled = soak.sample(0.0)
    tracemalloc.stop()
    print_report(soak, wall, tasks_before, settled, heaps)
    assert not soak.lost, soak.lost[:5]
    assert not soak.wrong, soak.wrong[:5]


def print_report(
    soak: Soak,
    wall: float,
    tasks_before: int,
    settled: Sample,
    heaps: list[dict[str, int]],
) -> None:
    """Print the counts, the windows and the heap growth by file."""
    server = soak.server
    print(
        f"\n\n{TURNS} turns in {wall:.0f} s wall time ({1000 * wall / TURNS:.0f} ms"
        f" per turn, tracemalloc on); {os.cpu_count()} cores, load average"
        f" {os.getloadavg()[0]:.2f} at the end"
    )
    print(
        f"lost {len(soak.lost)}, wrong {len(soak.wrong)}, anomalies"
        f" {len(soak.anomalies)}; {len(server.http_requests)} WebSocket upgrades"
        f" in all, {soak.resumed} resumed, goAway sent on {soak.go_aways};"
        f" closed connections: {dict(sorted(soak.closed.items()))}"
    )
    for label, items in (
        ("lost", soak.lost),
        ("wrong", soak.wrong),
        ("anomaly", soak.anomalies),
    ):
        for item in items[:5]:
            print(f"  {label} {item}")
    print(
        f"\nafter each turn, turns 1-{WINDOW} against"
        f" {TURNS - WINDOW + 1}-{TURNS}: mean / max, and last / first (means)"
    )
    print(f"{'':<26}{'first':>16}{'last':>16}{'last/first':>12}")
    rows = (
        ("Python heap (MiB)", "heap", "{:.1f}"),
        ("asyncio tasks", "tasks", "{:.1f}"),
        ("Live sessions (manager)", "sessions", "{:.1f}"),
        ("fake WebSockets open", "connections", "{:.1f}"),
        ("HA chat sessions", "chat_sessions", "{:.1f}"),
        ("turn wall time (ms)", "seconds", "{:.0f}"),
    )
    for label, name, number in rows:
        scale = 1000 if name == "seconds" else 1
        first = [scale * getattr(s, name) for s in soak.first]
        last = [scale * getattr(s, name) for s in soak.last]
        cells = [
            f"{number.format(statistics.mean(v))} / {number.format(max(v))}"
            for v in (first, last)
        ]
        mean_first = statistics.mean(first)
        growth = f"{statistics.mean(last) / mean_first:.2f}x" if mean_first else "-"
        print(f"{label:<26}{cells[0]:>16}{cells[1]:>16}{growth:>12}")
    print(
        f"\n{IDLE_TIMEOUT + 1:g} s after the last turn: heap {settled.heap:.1f} MiB,"
        f" tasks {settled.tasks} (before the first turn: {tasks_before}), Live"
        f" sessions {settled.sessions}, fake WebSockets open {settled.connections}"
    )
    print_heap_growth(*heaps)


def heap_by_file() -> dict[str, int]:
    """Return the traced heap by the file that allocated it (bytes)."""
    gc.collect()
    snapshot = tracemalloc.take_snapshot()
    return {
        stat.traceback[0].filename: stat.size
        for stat in snapshot.statistics("filename")
    }


def print_heap_growth(first: dict[str, int], last: dict[str, int]) -> None:
    """Print the heap growth between two `heap_by_file()`s, by package and file."""
    growth = {
        name: last.get(name, 0) - first.get(name, 0) for name in first.keys() | last
    }
    packages: Counter[str] = Counter()
    for name, size in growth.items():
        packages[_package(name)] += size
    print(
        "\nheap growth from the end of the first window to the end, by package"
        " (KiB): "
        + ", ".join(
            f"{name} {size / 1024:+.0f}" for name, size in packages.most_common()
        )
    )
    for name, size in sorted(growth.items(), key=lambda item: -abs(item[1]))[:8]:
        print(f"  {size / 1024:+9.0f} KiB  {_short(name)}")


def _package(filename: str) -> str:
    for marker, name in (
        ("custom_components/gemini_live", "gemini_live"),
        ("tests/fake_live", "fake server"),
        ("site-packages/homeassistant", "homeassistant"),
        ("site-packages", "other packages"),
    ):
        if marker in filename:
            return name
    return "stdlib and other"


def _short(filename: str) -> str:
    for marker in ("site-packages/", "/work/main/", "lib/python3.14/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename
