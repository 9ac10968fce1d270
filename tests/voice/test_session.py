"""VoiceSession and VoiceManager over the real Live client and the fake server.

No Home Assistant pipeline here: these tests drive the voice core directly,
for orders of events that a pipeline run cannot produce on demand (a barge-in
on the same session, a tool call nobody answers, a silent server).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from custom_components.gemini_live.live import (
    ActivityDetection,
    ApiKeyCredentials,
    FunctionDeclaration,
    FunctionResponse,
    LiveClient,
    LiveConfig,
    LiveConnectionError,
    LiveEndpoint,
    LiveTimeoutError,
    Provider,
    ToolCall as LiveToolCall,
)
from custom_components.gemini_live.voice import (
    manager as manager_module,
    session as session_module,
    turn as turn_module,
)
from custom_components.gemini_live.voice.manager import SessionSetup, VoiceManager
from tests.fake_live import (
    FakeLiveServer,
    GoAway,
    Reply,
    Stall,
    ToolCall,
    chunks,
    silence,
    speech,
)

MODEL = "gemini-2.5-flash-native-audio-preview-12-2025"
CONFIG = LiveConfig(model=MODEL, activity_detection=ActivityDetection(disabled=True))


class Tasks:
    """A spawn function that keeps its tasks; `settle()` awaits them."""

    def __init__(self) -> None:
        """Start without tasks."""
        self.tasks: set[asyncio.Task[Any]] = set()

    def __call__(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Start a task."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def settle(self) -> None:
        """Wait until every task (and those they start) finished."""
        while self.tasks:
            await asyncio.wait(list(self.tasks))


@pytest_asyncio.fixture
async def manager(
    fake_live: FakeLiveServer, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[VoiceManager]:
    """Yield a voice manager on a real client of the fake server."""
    monkeypatch.setattr(turn_module, "TRANSCRIPT_TAIL", 0.05)
    monkeypatch.setattr(manager_module, "CLAIM_TIMEOUT", 0.5)
    tasks = Tasks()
    async with aiohttp.ClientSession() as http:
        client = LiveClient(
            http,
            LiveEndpoint(provider=Provider.GEMINI_API, base_url=fake_live.base_url),
            ApiKeyCredentials(fake_live.api_key),
        )
        voice = VoiceManager(
            client, spawn=tasks, idle_timeout=30, speech_config=lambda: CONFIG
        )
        yield voice
        await voice.async_close()
        await tasks.settle()


async def _setup() -> SessionSetup:
    return SessionSetup(config=CONFIG)


async def _microphone(text: str) -> AsyncIterator[bytes]:
    for chunk in chunks(speech(text, 16000) + silence(300)):
        yield chunk


async def _answer(manager: VoiceManager, question: str) -> str:
    """Speak `question` in conversation "conv"; return the whole answer."""
    await manager.transcribe("conv", _microphone(question), _setup)
    turn = manager.claim_voice_turn("conv")
    assert turn is not None
    while await turn.next_event() is not None:
        pass
    return turn.output_transcript


async def test_barge_in_events_stay_with_the_cut_off_turn(
    fake_live: FakeLiveServer, manager: VoiceManager
) -> None:
    """A new turn during a reply: the old reply's events stay with it.

    Its interrupted and turnComplete reach the old turn only; the new turn
    gets its own whole answer.
    """
    fake_live.queue_reply(
        Reply(text="A very long story about the weather.", pause_after_chunks=2),
        Reply(text="Okay, stopping."),
    )
    await manager.transcribe("conv", _microphone("tell me a story"), _setup)
    first = manager.claim_voice_turn("conv")
    assert first is not None
    connection = await fake_live.wait_for_connection(0)
    await connection.wait_for(lambda: connection.audio_chunks_sent >= 2)

    answer = await _answer(manager, "stop")

    assert answer == "Okay, stopping."
    assert connection.interruptions == 1
    assert first.finished
    assert len(fake_live.connections) == 1


async def test_unanswered_tool_call_gets_an_error_in_time(
    fake_live: FakeLiveServer,
    manager: VoiceManager,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A tool call nobody answers is answered with an error, and the turn ends."""
    monkeypatch.setattr(session_module, "UNANSWERED_TOOL_TIMEOUT", 0.2)
    fake_live.queue_reply(
        Reply(
            text="",
            tool_calls=[ToolCall(name="lamp")],
            then=Reply(text="That did not work."),
        )
    )
    await manager.transcribe("conv", _microphone("switch the lamp"), _setup)
    turn = manager.claim_voice_turn("conv")
    assert turn is not None
    assert isinstance(await turn.next_event(), LiveToolCall)  # never answered

    while await turn.next_event() is not None:
        pass

    connection = fake_live.connections[0]
    (response,) = connection.tool_responses
    assert response["response"]["error"]["status"] == "no_answer"
    assert turn.output_transcript == "That did not work."


async def test_silent_server_fails_the_turn_in_time(
    fake_live: FakeLiveServer,
    manager: VoiceManager,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The server never answers: the turn fails within REPLY_TIMEOUT."""
    monkeypatch.setattr(session_module, "REPLY_TIMEOUT", 0.3)
    fake_live.queue_reply(Reply(stall=True))

    with pytest.raises(LiveTimeoutError):
        async with asyncio.timeout(2):
            await manager.transcribe("conv", _microphone("hello"), _setup)
    await fake_live.connections[0].wait_closed()
    assert not manager._sessions


async def test_respond_after_the_reply_is_ignored(
    fake_live: FakeLiveServer, manager: VoiceManager
) -> None:
    """A tool result arriving after the turn ended is not sent."""
    fake_live.queue_reply(Reply(text="Hello."))
    assert await _answer(manager, "hello") == "Hello."
    session = manager._sessions["conv"]
    assert session.turn is not None
    await session.turn.respond([FunctionResponse(id="x", name="y", response={})])
    assert fake_live.connections[0].tool_responses == []


async def test_new_turn_after_an_unanswered_premature_turn_complete(
    fake_live: FakeLiveServer,
    manager: VoiceManager,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A premature turnComplete and no answer: the next request gets its own.

    The old generation already sent its turnComplete, so nothing of the new
    reply is taken for the old turn's.
    """
    monkeypatch.setattr(turn_module, "SILENT_REPLY_TIMEOUT", 5.0)
    fake_live.queue_reply(
        Reply(
            text="",
            tool_calls=[ToolCall(name="lamp")],
            premature_turn_complete="after_tool_response",
            then=Reply(stall=True),
        ),
        Reply(text="The hall light is on."),
    )
    await manager.transcribe("conv", _microphone("switch the lamp"), _setup)
    first = manager.claim_voice_turn("conv")
    assert first is not None
    event = await first.next_event()
    assert isinstance(event, LiveToolCall)
    (call,) = event.calls
    await first.respond(
        [FunctionResponse(id=call.id, name=call.name, response={"output": {}})]
    )
    connection = fake_live.connections[0]
    await connection.wait_for(
        lambda: any(
            "turnComplete" in m.get("serverContent", {}) for m in connection.sent
        )
    )

    async with asyncio.timeout(3):
        answer = await _answer(manager, "is the hall light on")

    assert answer == "The hall light is on."
    assert first.finished


async def test_go_away_deadline_in_the_middle_of_a_reply(
    fake_live: FakeLiveServer, manager: VoiceManager
) -> None:
    """The goAway deadline passes mid-reply: the turn ends with what was said.

    The client leaves the connection at its deadline and resumes; the cut
    reply ends at once (it will not continue on the new connection) instead
    of waiting for a turnComplete that never comes, and the conversation
    goes on on the resumed connection.
    """
    fake_live.realtime_factor = 1.0
    fake_live.queue_reply(
        Reply(
            text="A very long story about the weather in the mountains today.",
            go_away=GoAway(after_chunks=2, time_left=0.4),
        ),
        Reply(text="Still here."),
    )
    await manager.transcribe("conv", _microphone("tell me a story"), _setup)
    first = manager.claim_voice_turn("conv")
    assert first is not None

    async with asyncio.timeout(3):
        await first.wait_done()

    assert first.error is None
    assert first.output_transcript
    assert first.output_transcript != (
        "A very long story about the weather in the mountains today."
    )
    assert await _answer(manager, "are you there") == "Still here."
    resumed = fake_live.connections[-1]
    assert resumed.resumed
    history = [(turn.role, turn.text) for turn in resumed.history]
    assert history[:2] == [
        ("user", "tell me a story"),
        ("model", first.output_transcript),
    ]


async def test_cancelled_opening_fails_its_waiters_with_an_error(
    fake_live: FakeLiveServer, manager: VoiceManager
) -> None:
    """The request opening a session is cancelled: the other gets a LiveError.

    It was not cancelled itself, so a CancelledError would be a lie.
    """
    fake_live.add_fault(Stall())
    opener = asyncio.ensure_future(manager.start_text_turn("conv", "first", _setup))
    await fake_live.wait_for_connection(0)
    waiter = asyncio.ensure_future(manager.start_text_turn("conv", "second", _setup))
    await asyncio.sleep(0.05)

    opener.cancel()

    with pytest.raises(LiveConnectionError):
        async with asyncio.timeout(2):
            await waiter
    with pytest.raises(asyncio.CancelledError):
        await opener


async def test_no_timer_after_close(
    fake_live: FakeLiveServer, manager: VoiceManager
) -> None:
    """A turn released after the entry closed its sessions leaves no timer."""
    fake_live.queue_reply(Reply(text="Hello."))
    await manager.transcribe("conv", _microphone("hello"), _setup)
    turn = manager.claim_voice_turn("conv")
    assert turn is not None

    await manager.async_close()
    manager.release_turn(turn)

    assert not manager._timers


async def test_blocking_call_cancelled_by_new_input_leaves_nothing_pending(
    fake_live: FakeLiveServer, manager: VoiceManager
) -> None:
    """3.8 cancels a pending BLOCKING call when the user speaks again.

    The cut-off turn has no call pending, its late result is not sent, and
    the new turn gets its own answer.
    """
    config = replace(
        CONFIG,
        model="gemini-3.8-live",
        functions=(FunctionDeclaration(name="lamp"),),
        non_blocking_tools=False,
    )

    async def setup() -> SessionSetup:
        return SessionSetup(config=config)

    fake_live.queue_reply(
        Reply(text="", tool_calls=[ToolCall(name="lamp")], then=Reply(text="On.")),
        Reply(text="Okay, never mind."),
    )
    await manager.transcribe("conv", _microphone("switch the lamp"), setup)
    first = manager.claim_voice_turn("conv")
    assert first is not None
    event = await first.next_event()
    assert isinstance(event, LiveToolCall)
    (call,) = event.calls

    await manager.transcribe("conv", _microphone("no wait"), setup)
    second = manager.claim_voice_turn("conv")
    assert second is not None
    while await second.next_event() is not None:
        pass
    await first.respond(
        [FunctionResponse(id=call.id, name=call.name, response={"output": {}})]
    )

    connection = fake_live.connections[0]
    assert connection.cancelled_tool_calls == [call.id]
    assert not first.tool_calls_pending
    assert connection.tool_responses == []
    assert second.output_transcript == "Okay, never mind."


async def test_typed_request_waits_for_a_voice_request_being_spoken(
    fake_live: FakeLiveServer, manager: VoiceManager
) -> None:
    """Text typed while the user speaks in the same conversation waits its turn.

    Both requests get their own answers; the speech is not cut.
    """
    fake_live.responder = lambda turn: Reply(text=f"You said {turn.query}.")
    spoken = asyncio.ensure_future(_answer(manager, "turn on the light"))
    connection = await fake_live.wait_for_connection(0)
    await connection.wait_for(
        lambda: connection.binary_frames_received > 0 or bool(connection.messages)
    )
    typed = await manager.start_text_turn("conv", "typed", _setup)
    while await typed.next_event() is not None:
        pass

    assert await spoken == "You said turn on the light."
    assert typed.output_transcript == "You said typed."
