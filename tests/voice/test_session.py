"""VoiceSession and VoiceManager on an in-process Live session double."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine, Sequence
from typing import Any

import pytest

from custom_components.gemini_live.live import (
    ActivityDetection,
    AudioChunk,
    FunctionCall,
    FunctionResponse,
    LiveConfig,
    LiveConnectionError,
    LiveEvent,
    LiveServiceUnavailableError,
    LiveTimeoutError,
    OutputTranscription,
    ToolCall,
    ToolCallCancellation,
    TurnComplete,
)
from custom_components.gemini_live.voice import (
    manager as manager_module,
    session as session_module,
    turn as turn_module,
)
from custom_components.gemini_live.voice.manager import VoiceManager
from custom_components.gemini_live.voice.session import VoiceSession

CONFIG = LiveConfig(
    model="gemini-test", activity_detection=ActivityDetection(disabled=True)
)


class FakeLive:
    """Records what is sent; yields the events a test feeds it."""

    def __init__(self) -> None:
        """Start open, with nothing sent."""
        self.sent: list[tuple[str, Any]] = []
        self.closed = False
        self._events: asyncio.Queue[LiveEvent | Exception | None] = asyncio.Queue()

    def feed(self, *events: LiveEvent | Exception) -> None:
        """Queue server events (an exception ends receive() with it)."""
        for event in events:
            self._events.put_nowait(event)

    async def send_audio(self, pcm: bytes, sample_rate: int = 16000) -> None:
        """Record audio."""
        self.sent.append(("audio", pcm))

    async def send_activity_start(self) -> None:
        """Record activityStart."""
        self.sent.append(("activityStart", None))

    async def send_activity_end(self) -> None:
        """Record activityEnd."""
        self.sent.append(("activityEnd", None))

    async def send_audio_stream_end(self) -> None:
        """Record audioStreamEnd."""
        self.sent.append(("audioStreamEnd", None))

    async def send_text(self, text: str, *, turn_complete: bool = True) -> None:
        """Record a text turn."""
        self.sent.append(("text", text))

    async def send_tool_response(self, responses: Sequence[FunctionResponse]) -> None:
        """Record tool responses."""
        self.sent.append(("toolResponse", list(responses)))

    async def receive(self) -> AsyncIterator[LiveEvent]:
        """Yield the fed events until closed."""
        while (event := await self._events.get()) is not None:
            if isinstance(event, Exception):
                raise event
            yield event

    async def close(self) -> None:
        """Close; receive() ends."""
        if not self.closed:
            self.closed = True
            self._events.put_nowait(None)


class FakeClient:
    """Hands out FakeLive sessions."""

    def __init__(self) -> None:
        """Start without sessions."""
        self.sessions: list[FakeLive] = []
        self.configs: list[LiveConfig] = []

    async def connect(self, config: LiveConfig) -> FakeLive:
        """Return a new session."""
        self.configs.append(config)
        self.sessions.append(live := FakeLive())
        return live


class Tasks:
    """A spawn function that keeps its tasks, awaited at teardown."""

    def __init__(self) -> None:
        """Start without tasks."""
        self.tasks: set[asyncio.Task[None]] = set()

    def __call__(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Start a task."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def settle(self) -> None:
        """Wait until every task (and those they start) finished."""
        while self.tasks:
            await asyncio.wait(list(self.tasks))


@pytest.fixture(autouse=True)
def short_timers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every timer fast."""
    monkeypatch.setattr(turn_module, "OUTPUT_GRACE", 0.01)
    monkeypatch.setattr(turn_module, "INPUT_GRACE", 0.01)
    monkeypatch.setattr(session_module, "REPLY_TIMEOUT", 0.1)
    monkeypatch.setattr(manager_module, "CLAIM_TIMEOUT", 0.05)
    monkeypatch.setattr(manager_module, "AUDIO_CLAIM_TIMEOUT", 0.05)


async def _config() -> LiveConfig:
    return CONFIG


async def _audio(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


def _session(
    live: FakeLive, tasks: Tasks, closed: list[VoiceSession], idle: float = 10.0
) -> VoiceSession:
    session = VoiceSession(
        live,  # type: ignore[arg-type]
        "conv",
        manual_activity=True,
        idle_timeout=idle,
        spawn=tasks,
        on_close=closed.append,
    )
    session.start()
    return session


async def test_watchdog_fails_a_silent_reply() -> None:
    """No server event while a reply is due: the turn fails, the session closes."""
    live, tasks, closed = FakeLive(), Tasks(), []
    session = _session(live, tasks, closed)
    turn = session.new_turn(voice=False)
    await session.send_text("hello")

    with pytest.raises(LiveTimeoutError):
        await turn.next_event()
    await tasks.settle()
    assert live.closed
    assert closed == [session]


async def test_new_turn_ends_the_previous_one() -> None:
    """Starting a turn finishes the current one without an error."""
    live, tasks, closed = FakeLive(), Tasks(), []
    session = _session(live, tasks, closed)
    first = session.new_turn(voice=False)
    second = session.new_turn(voice=True)

    assert first.finished
    assert first.error is None
    assert session.turn is second
    await session.close()
    await tasks.settle()
    assert isinstance(second.error, LiveConnectionError)


async def test_idle_session_closes() -> None:
    """The session closes idle_timeout after its last turn ended."""
    live, tasks, closed = FakeLive(), Tasks(), []
    session = _session(live, tasks, closed, idle=0.05)
    turn = session.new_turn(voice=False)
    await session.send_text("hello")
    live.feed(AudioChunk(b"\x00\x00", 24000), TurnComplete(None, False))

    assert await turn.next_event() is not None
    await asyncio.sleep(0.1)
    await tasks.settle()
    assert live.closed
    assert session.closed


async def test_receive_error_fails_the_turn() -> None:
    """A Live error ends the current turn with it and closes the session."""
    live, tasks, closed = FakeLive(), Tasks(), []
    session = _session(live, tasks, closed)
    turn = session.new_turn(voice=True)
    live.feed(OutputTranscription("Hi", False), LiveServiceUnavailableError("down"))

    assert await turn.next_event() == OutputTranscription("Hi", False)
    with pytest.raises(LiveServiceUnavailableError):
        await turn.next_event()
    await tasks.settle()
    assert live.closed
    assert closed == [session]


async def test_automatic_activity_stops_streaming_at_the_reply() -> None:
    """With Gemini's activity detection, speech stops once the model replies."""
    live, tasks, closed = FakeLive(), Tasks(), []
    session = VoiceSession(
        live,  # type: ignore[arg-type]
        "conv",
        manual_activity=False,
        idle_timeout=10,
        spawn=tasks,
        on_close=closed.append,
    )
    turn = session.new_turn(voice=True)

    async def microphone() -> AsyncIterator[bytes]:
        yield b"a"
        turn.add_audio(b"\x00\x00")  # the model started replying
        yield b"b"

    await session.stream_audio(turn, microphone())
    assert live.sent == [("audio", b"a")]
    await session.close()

    live2 = FakeLive()
    session2 = VoiceSession(
        live2,  # type: ignore[arg-type]
        "conv",
        manual_activity=False,
        idle_timeout=10,
        spawn=tasks,
        on_close=closed.append,
    )
    await session2.stream_audio(session2.new_turn(voice=True), _audio(b"a"))
    assert live2.sent == [("audio", b"a"), ("audioStreamEnd", None)]
    await session2.close()


async def test_manager_voice_turn_lifecycle() -> None:
    """Transcribe -> claim_voice_turn -> release_turn -> claim_turn_for_speech."""
    client, tasks = FakeClient(), Tasks()
    voice = VoiceManager(
        client,  # type: ignore[arg-type]
        spawn=tasks,
        idle_timeout=10,
        speech_config=lambda: CONFIG,
    )

    async def reply() -> None:
        await asyncio.sleep(0.01)
        live = client.sessions[0]
        voice._sessions["conv"].turn.add_input("hello")  # type: ignore[union-attr]
        live.feed(OutputTranscription("Hi!", False), AudioChunk(b"\x01\x00", 24000))

    task = asyncio.create_task(reply())
    text = await voice.transcribe("conv", _audio(b"\x00\x00"), _config)
    await task
    assert text == "hello"
    assert [kind for kind, _ in client.sessions[0].sent] == [
        "activityStart",
        "audio",
        "activityEnd",
    ]
    assert voice.claim_voice_turn("other") is None
    turn = voice.claim_voice_turn("conv")
    assert turn is not None
    assert voice.claim_voice_turn("conv") is None

    voice.release_turn(turn)
    assert voice.claim_turn_for_speech(None, "Hi!") is turn
    assert voice.claim_turn_for_speech("conv", "Hi!") is None
    await voice.async_close()
    await tasks.settle()
    assert not voice._timers


async def test_unclaimed_voice_turn_closes_its_session() -> None:
    """No agent claims the transcribed turn: its session is closed."""
    client, tasks = FakeClient(), Tasks()
    voice = VoiceManager(
        client,  # type: ignore[arg-type]
        spawn=tasks,
        idle_timeout=10,
        speech_config=lambda: CONFIG,
    )
    asyncio.get_running_loop().call_later(
        0.01,
        lambda: voice._sessions["conv"].turn.add_input("yes"),  # type: ignore[union-attr]
    )

    assert await voice.transcribe("conv", _audio(b"\x00\x00"), _config) == "yes"
    await asyncio.sleep(0.1)
    await tasks.settle()
    assert client.sessions[0].closed
    assert not voice._sessions
    assert voice.claim_voice_turn("conv") is None


async def test_speak_uses_its_own_session() -> None:
    """speak() sends the text in a new session that closes after the reply."""
    client, tasks = FakeClient(), Tasks()
    speech_config = LiveConfig(model="gemini-test", system_instruction="Read aloud")
    voice = VoiceManager(
        client,  # type: ignore[arg-type]
        spawn=tasks,
        idle_timeout=10,
        speech_config=lambda: speech_config,
    )

    turn = await voice.speak("Good morning")
    live = client.sessions[0]
    live.feed(AudioChunk(b"\x01\x00", 24000), TurnComplete(None, False))

    assert client.configs == [speech_config]
    assert live.sent == [("text", "Good morning")]
    assert [chunk async for chunk in turn.audio_stream()] == [b"\x01\x00"]
    await asyncio.sleep(0.01)
    await tasks.settle()
    assert live.closed
    assert not voice._unkeyed
    assert voice.claim_turn_for_speech(None, "Good morning") is None


async def test_watchdog_waits_for_our_tool_calls() -> None:
    """While a tool call of the model runs on our side, silence is fine."""
    live, tasks, closed = FakeLive(), Tasks(), []
    session = _session(live, tasks, closed)
    turn = session.new_turn(voice=False)
    await session.send_text("hello")
    call = FunctionCall(id="c1", name="lamp", args={})
    live.feed(ToolCall((call,)), ToolCall((FunctionCall(id="c2", name="x", args={}),)))
    live.feed(ToolCallCancellation(("c2",)))

    assert await turn.next_event() == ToolCall((call,))
    await asyncio.sleep(0.25)
    assert not turn.finished
    assert turn.is_cancelled("c2")

    await turn.respond([FunctionResponse(id="c1", name="lamp", response={})])
    assert live.sent[-1] == (
        "toolResponse",
        [FunctionResponse(id="c1", name="lamp", response={})],
    )
    assert await turn.next_event() == ToolCall(
        (FunctionCall(id="c2", name="x", args={}),)
    )
    assert await turn.next_event() == ToolCallCancellation(("c2",))
    with pytest.raises(LiveTimeoutError):
        await turn.next_event()
    await tasks.settle()


async def test_failed_sends_close_the_session() -> None:
    """A failure to send the user's input closes the new session."""

    class BrokenLive(FakeLive):
        async def send_text(self, text: str, *, turn_complete: bool = True) -> None:
            """Fail."""
            raise LiveConnectionError("gone")

    class BrokenClient(FakeClient):
        async def connect(self, config: LiveConfig) -> FakeLive:
            """Return a session that cannot send."""
            self.sessions.append(live := BrokenLive())
            return live

    client, tasks = BrokenClient(), Tasks()
    voice = VoiceManager(
        client,  # type: ignore[arg-type]
        spawn=tasks,
        idle_timeout=10,
        speech_config=lambda: CONFIG,
    )

    with pytest.raises(LiveConnectionError):
        await voice.start_text_turn("conv", "hello", _config)
    with pytest.raises(LiveConnectionError):
        await voice.speak("hello")
    await tasks.settle()
    assert all(live.closed for live in client.sessions)
    assert not voice._sessions
    assert not voice._unkeyed
