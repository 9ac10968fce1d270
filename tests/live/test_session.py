"""LiveSession over a real socket against the fake server: events, sends, close, goAway."""

import asyncio
from collections.abc import AsyncIterator, Callable
import json
from typing import Any

import aiohttp
from aiohttp import web
import pytest
import pytest_asyncio

from custom_components.gemini_live.live import (
    ActivityDetection,
    ApiKeyCredentials,
    AudioChunk,
    FunctionResponse,
    GenerationComplete,
    GoAway,
    HistoryTurn,
    InputTranscription,
    Interrupted,
    LiveClient,
    LiveConfig,
    LiveConnectionError,
    LiveEndpoint,
    LiveError,
    LiveEvent,
    LiveInvalidArgumentError,
    LiveQuotaError,
    LiveResumptionError,
    LiveServiceUnavailableError,
    LiveSession,
    ModelText,
    OutputTranscription,
    Provider,
    SessionResumptionUpdate,
    ToolCall,
    ToolCallCancellation,
    TurnComplete,
    UsageMetadata,
)
from tests.fake_live import (
    INVALID_ARGUMENT,
    Close,
    Connection as FakeConnection,
    ErrorFrame,
    FakeLiveServer,
    GoAway as GoAwayFault,
    Refuse,
    Reply,
    ToolCall as FakeToolCall,
    chunks,
    silence,
    speech,
)

from .conftest import GEMINI_MODEL, VERTEX_MODEL, ClientFactory, live_tasks
from .test_errors import CLOSE_TABLE, truncated

MANUAL = ActivityDetection(disabled=True)


async def until(
    events: AsyncIterator[LiveEvent],
    stop: Callable[[LiveEvent], bool],
    limit: float = 10,
) -> list[LiveEvent]:
    """Collect events up to and including the first one matching `stop`."""
    seen: list[LiveEvent] = []
    async with asyncio.timeout(limit):
        async for event in events:
            seen.append(event)
            if stop(event):
                return seen
    raise AssertionError(f"iteration ended without the event: {seen}")


async def record(events: AsyncIterator[LiveEvent], seen: list[LiveEvent]) -> None:
    """Append events to `seen` until the iteration ends (or fails)."""
    async for event in events:
        seen.append(event)  # noqa: PERF401 - keeps the events before an error


def turn_complete(event: LiveEvent) -> bool:
    return isinstance(event, TurnComplete)


def of[T](kind: type[T], events: list[LiveEvent]) -> list[T]:
    return [event for event in events if isinstance(event, kind)]


def last_handle(conn: FakeConnection) -> str:
    """Return the newest resumable handle the fake sent on `conn`."""
    updates = [
        m["sessionResumptionUpdate"]
        for m in conn.sent
        if "sessionResumptionUpdate" in m
    ]
    return str(next(u["newHandle"] for u in reversed(updates) if u.get("resumable")))


async def open_session(
    client: LiveClient, model: str = GEMINI_MODEL, **options: Any
) -> LiveSession:
    return await client.connect(LiveConfig(model=model, **options))


async def test_manual_activity_audio_turn(
    fake_live: FakeLiveServer, gemini_client: ClientFactory
) -> None:
    mic = speech("turn on the kitchen light", 16000)
    fake_live.queue_reply(Reply(text="Turning on the kitchen light."))
    async with await open_session(
        gemini_client(), activity_detection=MANUAL
    ) as session:
        events = session.receive()
        await session.send_activity_start()
        for chunk in chunks(mic, 40):
            await session.send_audio(chunk)
        await session.send_activity_end()
        seen = await until(events, turn_complete)
        seen += await until(events, lambda e: isinstance(e, SessionResumptionUpdate))
        conn = fake_live.connections[0]
        turn = (await conn.wait_for_turns(1))[0]
    assert turn.ended_by == "activityEnd"
    assert turn.heard == "turn on the kitchen light"
    assert conn.audio_in == mic
    audio = of(AudioChunk, seen)
    assert {chunk.sample_rate for chunk in audio} == {24000}
    assert b"".join(chunk.data for chunk in audio) == conn.audio_out
    assert "".join(t.text for t in of(InputTranscription, seen)) == turn.heard
    spoken = "".join(t.text for t in of(OutputTranscription, seen))
    assert spoken == "Turning on the kitchen light."
    kinds = [
        type(e) for e in seen if not isinstance(e, (AudioChunk, OutputTranscription))
    ]
    assert kinds[-4:] == [
        GenerationComplete,
        TurnComplete,
        UsageMetadata,
        SessionResumptionUpdate,
    ]
    usage = of(UsageMetadata, seen)[0]
    assert usage.total_tokens == usage.prompt_tokens + usage.response_tokens  # type: ignore[operator]
    assert session.resumption_handle == conn.session.handles[-1]  # type: ignore[union-attr]


async def test_automatic_activity_and_stream_end(
    fake_live: FakeLiveServer, gemini_client: ClientFactory
) -> None:
    mic = speech("what time is it", 16000)
    async with await open_session(gemini_client()) as session:
        for chunk in chunks(mic + silence(100), 20):
            await session.send_audio(chunk)
        await session.send_audio_stream_end()
        seen = await until(session.receive(), turn_complete)
        conn = fake_live.connections[0]
        turn = (await conn.wait_for_turns(1))[0]
    assert turn.ended_by == "audioStreamEnd"
    assert of(GenerationComplete, seen)
    assert {"realtimeInput": {"audioStreamEnd": True}} in conn.frames


async def test_frames_are_compact_text_json(
    fake_live: FakeLiveServer, gemini_client: ClientFactory
) -> None:
    async with await open_session(gemini_client()) as session:
        await session.send_text("Grüße")
        await session.send_video_frame(b"\xff\xd8\xff\xe0jpeg")
        await session.send_realtime_text("hello")
        conn = fake_live.connections[0]
        await conn.wait_for(lambda: len(conn.frames) == 4)
    assert conn.binary_frames_received == 0
    for raw in conn.raw_frames:
        assert raw == json.dumps(
            json.loads(raw), separators=(",", ":"), ensure_ascii=False
        )
    assert conn.frames[1:] == [
        {
            "clientContent": {
                "turns": [{"role": "user", "parts": [{"text": "Grüße"}]}],
                "turnComplete": True,
            }
        },
        {
            "realtimeInput": {
                "video": {"mimeType": "image/jpeg", "data": "/9j/4GpwZWc="}
            }
        },
        {"realtimeInput": {"text": "hello"}},
    ]
    assert conn.video_in == [b"\xff\xd8\xff\xe0jpeg"]


async def test_history_and_context_update(
    fake_live: FakeLiveServer, gemini_client: ClientFactory
) -> None:
    """Seeded turns enter the history in order without a reply; contextUpdate is sent."""
    async with await open_session(gemini_client()) as session:
        await session.send_history([])  # nothing to send
        await session.send_context_update()  # nothing to send
        await session.send_history(
            [HistoryTurn("user", "My name is Ada."), HistoryTurn("model", "Hi Ada!")]
        )
        await session.send_context_update(system_instruction="Answer in French.")
        await session.send_text("What is my name?")
        await until(session.receive(), turn_complete)
        conn = fake_live.connections[0]
    assert conn.messages[1:] == [
        {
            "clientContent": {
                "turns": [
                    {"role": "user", "parts": [{"text": "My name is Ada."}]},
                    {"role": "model", "parts": [{"text": "Hi Ada!"}]},
                ],
                "turnComplete": False,
            }
        },
        {
            "contextUpdate": {
                "systemInstruction": {"parts": [{"text": "Answer in French."}]}
            }
        },
        {
            "clientContent": {
                "turns": [{"role": "user", "parts": [{"text": "What is my name?"}]}],
                "turnComplete": True,
            }
        },
    ]
    assert [turn.text for turn in conn.turns] == ["What is my name?"]
    assert [(t.role, t.text) for t in conn.history[:3]] == [
        ("user", "My name is Ada."),
        ("model", "Hi Ada!"),
        ("user", "What is my name?"),
    ]


@pytest.mark.parametrize("text_frames", [set(), {"all"}])
async def test_text_and_binary_frames(
    fake_live: FakeLiveServer, gemini_client: ClientFactory, text_frames: set[str]
) -> None:
    if text_frames:
        text_frames = {
            "setupComplete",
            "modelTurn",
            "outputTranscription",
            "generationComplete",
            "turnComplete",
            "sessionResumptionUpdate",
        }
    fake_live.text_frames = text_frames
    async with await open_session(gemini_client()) as session:
        await session.send_text("hi")
        seen = await until(session.receive(), turn_complete)
    assert of(AudioChunk, seen)
    assert of(GenerationComplete, seen)


async def test_tool_call_round_trip(
    fake_live: FakeLiveServer, gemini_client: ClientFactory
) -> None:
    fake_live.queue_reply(
        Reply(
            text="Let me check.",
            tool_calls=[
                FakeToolCall(
                    id="call-1",
                    name="HassTurnOn",
                    args={"device_name": "lamp", "brightnessPct": 50},
                )
            ],
            then=Reply(text="All done now."),
        )
    )
    async with await open_session(gemini_client()) as session:
        events = session.receive()
        await session.send_text("turn on the lamp")
        seen = await until(events, lambda e: isinstance(e, ToolCall))
        call = of(ToolCall, seen)[0].calls[0]
        assert (call.id, call.name) == ("call-1", "HassTurnOn")
        assert call.args == {"device_name": "lamp", "brightnessPct": 50}
        response = {"success": True, "result": {"snake_case": 1, "camelCase": [2]}}
        await session.send_tool_response(
            [FunctionResponse(id=call.id, name=call.name, response=response)]
        )
        seen = await until(events, turn_complete)
        conn = fake_live.connections[0]
    # The last fragment trails turnComplete, as in production.
    assert "".join(t.text for t in of(OutputTranscription, seen)).strip() == "All done"
    assert conn.frames[-1] == {
        "toolResponse": {
            "functionResponses": [
                {"id": "call-1", "name": "HassTurnOn", "response": response}
            ]
        }
    }


async def test_barge_in_cancels_tool_call(
    fake_live: FakeLiveServer, gemini_client: ClientFactory
) -> None:
    fake_live.queue_reply(
        Reply(text="Hmm.", tool_calls=[FakeToolCall(id="slow", name="Search")])
    )
    async with await open_session(gemini_client()) as session:
        events = session.receive()
        await session.send_text("search something")
        await until(events, lambda e: isinstance(e, ToolCall))
        await session.send_text("never mind")
        seen = await until(events, turn_complete)
    assert seen == [
        Interrupted(),
        ToolCallCancellation(("slow",)),
        TurnComplete(None, False),
    ]


async def test_injected_server_messages(
    fake_live: FakeLiveServer, gemini_client: ClientFactory
) -> None:
    """Message kinds the fake's scripts do not produce, in text and binary frames."""
    async with await open_session(gemini_client()) as session:
        events = session.receive()
        await until(events, lambda e: isinstance(e, SessionResumptionUpdate))
        conn = fake_live.connections[0]
        await conn.send(
            {
                "serverContent": {
                    "modelTurn": {
                        "parts": [
                            {"text": "thinking", "thought": True},
                            {"text": "Hello"},
                            {
                                "inlineData": {
                                    "mimeType": "audio/pcm;rate=24000",
                                    "data": "AAEC_-8",  # URL-safe, unpadded
                                }
                            },
                        ]
                    },
                    "outputTranscription": {"text": "Hello"},
                    "turnComplete": True,
                    "turnCompleteReason": "NEED_MORE_INPUT",
                    "waitingForInput": True,
                },
                "usageMetadata": {"totalTokenCount": 9},
            },
            text=True,
        )
        await conn.send({"voiceActivity": {"type": "ACTIVITY_START"}})
        await conn.send(
            {"sessionResumptionUpdate": {"newHandle": "", "resumable": False}}
        )
        await conn.send({"usageMetadata": {"promptTokenCount": 1}})
        seen = await until(
            events, lambda e: isinstance(e, UsageMetadata) and e.prompt_tokens == 1
        )
        handle = session.resumption_handle
    assert seen == [
        ModelText("thinking", True),
        ModelText("Hello", False),
        AudioChunk(b"\x00\x01\x02\xff\xef", 24000),
        OutputTranscription("Hello", False),
        TurnComplete("NEED_MORE_INPUT", True),
        UsageMetadata(None, None, 9),
        SessionResumptionUpdate(None, False),
        UsageMetadata(1, None, None),
    ]
    # A non-resumable update keeps the last resumable handle.
    assert handle == conn.session.handles[-1]  # type: ignore[union-attr]


async def test_oversized_message(
    fake_live: FakeLiveServer, gemini_client: ClientFactory
) -> None:
    """Aiohttp's 4 MiB limit: an ERROR message, reported as a lost connection."""
    async with await open_session(gemini_client()) as session:
        conn = await fake_live.wait_for_connection()
        await conn.send({"usageMetadata": {"x": "x" * (5 << 20)}})
        with pytest.raises(LiveConnectionError, match=r"Connection lost: .*size"):
            await until(session.receive(), lambda e: False)


@pytest.mark.parametrize(("code", "reason", "expected"), CLOSE_TABLE)
async def test_close_codes_mid_session(
    fake_live: FakeLiveServer,
    gemini_client: ClientFactory,
    code: int,
    reason: str,
    expected: type[LiveError],
) -> None:
    async with await open_session(gemini_client()) as session:
        conn = await fake_live.wait_for_connection()
        await conn.close(code, reason)
        with pytest.raises(expected) as info:
            await until(session.receive(), lambda e: False)
        assert session.closed
    assert info.value.close_code == code
    assert info.value.reason == truncated(reason)


async def test_close_mid_reply(
    fake_live: FakeLiveServer, gemini_client: ClientFactory
) -> None:
    fake_live.queue_reply(
        Reply(text="A longer answer.", close=Close.quota(after_chunks=2))
    )
    seen: list[LiveEvent] = []
    async with await open_session(gemini_client()) as session:
        await session.send_text("hi")
        with pytest.raises(LiveQuotaError, match="quota"):
            await record(session.receive(), seen)
        with pytest.raises(LiveConnectionError, match="closed"):
            await session.send_text("again")
    assert len(of(AudioChunk, seen)) == 2


async def test_normal_close_ends_iteration(
    fake_live: FakeLiveServer, gemini_client: ClientFactory
) -> None:
    async with await open_session(gemini_client()) as session:
        conn = await fake_live.wait_for_connection()
        await conn.close(1000, "")
        seen = [event async for event in session.receive()]
        assert session.closed
    assert seen == [SessionResumptionUpdate(conn.session.handles[0], True)]  # type: ignore[union-attr]
    assert [event async for event in session.receive()] == []


async def test_error_frame_mid_session(
    fake_live: FakeLiveServer, gemini_client: ClientFactory
) -> None:
    fake_live.queue_reply(
        Reply(error=ErrorFrame(code=429, message="Quota", status="RESOURCE_EXHAUSTED"))
    )
    async with await open_session(gemini_client()) as session:
        await session.send_text("hi")
        with pytest.raises(LiveQuotaError):
            await until(session.receive(), lambda e: False)
        assert session.closed
    assert fake_live.connections[0].closed_by == "client"


async def test_close_is_idempotent_and_safe(
    fake_live: FakeLiveServer, gemini_client: ClientFactory
) -> None:
    session = await open_session(gemini_client())
    await session.close()
    await session.close()
    async with session:
        pass
    assert session.closed
    with pytest.raises(LiveConnectionError):
        await session.send_audio(b"\0\0")
    assert await fake_live.connections[0].wait_closed() == 1000


async def test_close_while_receiving_in_another_task(
    fake_live: FakeLiveServer, gemini_client: ClientFactory
) -> None:
    session = await open_session(gemini_client())
    seen: list[LiveEvent] = []

    task = asyncio.create_task(record(session.receive(), seen))
    await asyncio.sleep(0.05)
    await session.close()
    async with asyncio.timeout(2):
        await task  # ends without an error
    assert [type(e) for e in seen] == [SessionResumptionUpdate]


async def test_cancelled_close_still_closes(
    fake_live: FakeLiveServer, gemini_client: ClientFactory
) -> None:
    session = await open_session(gemini_client())
    task = asyncio.create_task(session.close())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await session.close()
    await fake_live.connections[0].wait_closed()


async def test_cancelled_receive_keeps_session_usable(
    fake_live: FakeLiveServer, gemini_client: ClientFactory
) -> None:
    async with await open_session(gemini_client()) as session:
        events = session.receive()
        await until(events, lambda e: isinstance(e, SessionResumptionUpdate))
        with pytest.raises(TimeoutError):
            await until(events, lambda e: False, limit=0.05)
        await session.send_text("hi")
        assert of(TurnComplete, await until(session.receive(), turn_complete))


# ------------------------------------------------------------------ goAway


class Reader:
    """Runs `session.receive()` in a task and records the events.

    A goAway rotation happens inside `receive()`, so tests that wait for it
    keep a reader running, as the integration's voice session does.
    """

    def __init__(self, session: LiveSession) -> None:
        """Start reading."""
        self.seen: list[LiveEvent] = []
        self._next = 0
        self.task = asyncio.create_task(record(session.receive(), self.seen))

    async def until(
        self, stop: Callable[[LiveEvent], bool], limit: float = 5
    ) -> list[LiveEvent]:
        """Events since the last call, up to and including the first matching `stop`."""
        async with asyncio.timeout(limit):
            while True:
                for index in range(self._next, len(self.seen)):
                    if stop(self.seen[index]):
                        found = self.seen[self._next : index + 1]
                        self._next = index + 1
                        return found
                if self.task.done():
                    self.task.result()  # raises the session's error, if any
                    raise AssertionError(f"iteration ended: {self.seen}")
                await asyncio.sleep(0.002)

    async def finish(self) -> None:
        """Wait for the iteration to end (after the session closed); re-raise."""
        async with asyncio.timeout(5):
            await self.task


async def test_go_away_when_idle_resumes_transparently(
    fake_live: FakeLiveServer, gemini_client: ClientFactory
) -> None:
    """A goAway on an idle connection rotates at once, after the GoAway is yielded.

    (The GoAway used to be yielded after the swap; now `receive()` yields it
    first and rotates on its next read, so the test keeps a reader running.)
    """
    fake_live.add_fault(GoAwayFault(time_left=10.0))
    async with await open_session(gemini_client()) as session:
        first_id = session.session_id
        reader = Reader(session)
        seen = await reader.until(lambda e: isinstance(e, GoAway))
        new = await fake_live.wait_for_connection(1)
        old = fake_live.connections[0]
        # The old socket was closed (by us) before the new one was opened.
        assert old.closed_by == "client"
        assert old.close_code == 1000
        await new.wait_setup()
        assert new.resumed
        assert new.setup is not None
        assert new.setup["sessionResumption"] == {"handle": last_handle(old)}
        await session.send_text("still there?")
        seen += await reader.until(turn_complete)
        assert new.turns[0].text == "still there?"
        assert session.session_id == first_id == new.session_id
    await reader.finish()
    assert of(GoAway, seen) == [GoAway(10.0)]
    assert len(fake_live.connections) == 2
    assert not [c for c in fake_live.connections if c.close_code == 1008]


async def test_go_away_mid_reply_keeps_the_reply(
    fake_live: FakeLiveServer, gemini_client: ClientFactory
) -> None:
    """A goAway while the reply streams: the reply ends on the old connection first."""
    fake_live.queue_reply(
        Reply(text="The weather today is sunny with a light breeze.", realtime_factor=4)
    )
    async with await open_session(gemini_client()) as session:
        reader = Reader(session)
        await session.send_text("what's the weather?")
        seen = await reader.until(lambda e: isinstance(e, AudioChunk))
        old = fake_live.connections[0]
        await old.go_away(10.0)
        seen += await reader.until(turn_complete)
        seen += await reader.until(lambda e: isinstance(e, SessionResumptionUpdate))
        new = await fake_live.wait_for_connection(1)
        # Closed by the client before the new connection was even opened.
        assert (old.closed_by, old.close_code) == ("client", 1000)
        await new.wait_setup()
        await session.send_text("and tomorrow?")
        after = await reader.until(turn_complete)
    await reader.finish()
    go_away = seen.index(GoAway(10.0))
    assert of(AudioChunk, seen[go_away:]), "the goAway came in the middle of the reply"
    # Every audio chunk of the reply arrived, then its TurnComplete.
    assert b"".join(chunk.data for chunk in of(AudioChunk, seen)) == old.audio_out
    done = next(i for i, e in enumerate(seen) if isinstance(e, TurnComplete))
    assert not of(AudioChunk, seen[done:])
    assert [turn.text for turn in old.turns] == ["what's the weather?"]
    # Resumed with the newest handle, sent after the reply's turnComplete.
    handle = last_handle(old)
    update = next(
        i
        for i, m in enumerate(old.sent)
        if m.get("sessionResumptionUpdate", {}).get("newHandle") == handle
    )
    assert any(
        m.get("serverContent", {}).get("turnComplete") for m in old.sent[:update]
    )
    assert new.setup is not None
    assert new.setup["sessionResumption"] == {"handle": handle}
    assert new.resumed
    # The next request was answered on the new connection.
    assert [turn.text for turn in new.turns] == ["and tomorrow?"]
    assert b"".join(chunk.data for chunk in of(AudioChunk, after)) == new.audio_out
    assert not [c for c in fake_live.connections if c.close_code == 1008]


async def test_go_away_deadline_cuts_an_unfinished_reply(
    fake_live: FakeLiveServer, gemini_client: ClientFactory
) -> None:
    """A reply that outlasts timeLeft: rotation at the deadline, before the 1008 abort.

    The deadline is timeLeft - min(5 s, timeLeft / 4) after the goAway: 1.5 s.
    """
    fake_live.queue_reply(Reply(text="This answer never ends.", pause_after_chunks=2))
    loop = asyncio.get_running_loop()
    async with await open_session(gemini_client()) as session:
        reader = Reader(session)
        await session.send_text("talk to me")
        await reader.until(lambda e: isinstance(e, AudioChunk))
        old = fake_live.connections[0]
        old_ws = session._ws
        handle = last_handle(old)
        sent = loop.time()
        await old.go_away(2.0)
        new = await fake_live.wait_for_connection(1)
        # The interrupted read did not turn the close into an abort: the
        # client waited for the server's close reply before reconnecting.
        assert old_ws.close_code == 1000
        # The server was silent from the goAway to the deadline.
        assert 1.45 <= loop.time() - sent < 1.95
        assert (old.closed_by, old.close_code) == ("client", 1000)
        await new.wait_setup()
        assert new.setup is not None
        assert new.setup["sessionResumption"] == {"handle": handle}
        await session.send_text("hello again")
        after = await reader.until(turn_complete)
        await asyncio.sleep(sent + 2.1 - loop.time())  # past the old abort time
        assert not reader.task.done()
    await reader.finish()  # no error reached the caller
    assert of(GoAway, reader.seen) == [GoAway(2.0)]
    assert [turn.text for turn in new.turns] == ["hello again"]
    assert of(AudioChunk, after)
    assert not [c for c in fake_live.connections if c.close_code == 1008]


async def test_go_away_waits_for_the_tool_call(
    fake_live: FakeLiveServer, gemini_client: ClientFactory
) -> None:
    """A pending tool call is answered and the reply finished before rotating."""
    fake_live.queue_reply(
        Reply(
            text="Let me check.",
            tool_calls=[FakeToolCall(id="call-1", name="HassTurnOn")],
            then=Reply(text="The lamp is on."),
        )
    )
    async with await open_session(gemini_client()) as session:
        reader = Reader(session)
        await session.send_text("turn on the lamp")
        await reader.until(lambda e: isinstance(e, ToolCall))
        old = fake_live.connections[0]
        await old.go_away(10.0)
        await reader.until(lambda e: isinstance(e, GoAway))
        await asyncio.sleep(0.1)
        assert len(fake_live.connections) == 1
        await session.send_tool_response(
            [FunctionResponse(id="call-1", name="HassTurnOn", response={"ok": True})]
        )
        seen = await reader.until(turn_complete)
        new = await fake_live.wait_for_connection(1)
        await new.wait_setup()
    await reader.finish()
    assert len(old.tool_responses) == 1
    assert (
        "".join(t.text for t in of(OutputTranscription, seen))
        .strip()
        .startswith("The lamp")
    )
    assert new.resumed
    assert not new.tool_responses


async def test_go_away_vertex(
    fake_live: FakeLiveServer, vertex_client: ClientFactory
) -> None:
    """Resuming on Vertex reuses the access token.

    (A reader now runs throughout: the rotation happens after the GoAway is
    yielded, on the next read.)
    """
    fake_live.add_fault(GoAwayFault(time_left=10.0))
    async with await open_session(vertex_client(), VERTEX_MODEL) as session:
        reader = Reader(session)
        await reader.until(lambda e: isinstance(e, GoAway))
        await (await fake_live.wait_for_connection(1)).wait_setup()
        await session.send_text("hi")
        await reader.until(turn_complete)
    await reader.finish()
    assert fake_live.connections[1].resumed
    assert fake_live.connections[1].turns
    assert fake_live.tokens_issued == 1


async def test_go_away_without_resumption(
    fake_live: FakeLiveServer, gemini_client: ClientFactory
) -> None:
    """Resumption off: the session ends at the first idle point after goAway.

    (This used to end with the server's 1008 abort; now the client closes
    first and says why.)
    """
    fake_live.add_fault(GoAwayFault(time_left=10.0))
    seen: list[LiveEvent] = []
    async with await open_session(gemini_client(), session_resumption=False) as session:
        with pytest.raises(LiveConnectionError, match="resumption is off") as info:
            await record(session.receive(), seen)
        assert session.closed
    assert seen == [GoAway(10.0)]
    assert info.value.close_code is None
    assert len(fake_live.connections) == 1
    conn = fake_live.connections[0]
    assert (conn.closed_by, conn.close_code) == ("client", 1000)


@pytest_asyncio.fixture
async def go_away_server(socket_enabled: None) -> AsyncIterator[str]:
    """Serve WebSockets that send setupComplete and goAway but never a handle.

    The fake Live server always sends a handle when resumption is on.
    """

    async def handle(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.receive()
        await ws.send_str('{"setupComplete": {}}')
        await ws.send_str('{"goAway": {"timeLeft": "0.8s"}}')
        await ws.receive()  # the client's close
        return ws

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


async def test_go_away_without_handle_ends_at_the_deadline(
    http: aiohttp.ClientSession, go_away_server: str
) -> None:
    endpoint = LiveEndpoint(provider=Provider.GEMINI_API, base_url=go_away_server)
    client = LiveClient(http, endpoint, ApiKeyCredentials("k"))
    loop = asyncio.get_running_loop()
    seen: list[LiveEvent] = []
    async with await open_session(client) as session:
        start = loop.time()
        with pytest.raises(LiveConnectionError, match="no resumable handle"):
            async with asyncio.timeout(2):
                await record(session.receive(), seen)
        # The silent server did not keep the read from waking at the deadline
        # (0.8 s - 0.8 s / 4).
        assert 0.55 <= loop.time() - start < 0.8
        assert session.closed
    assert seen == [GoAway(0.8)]
    assert live_tasks() == []


async def test_go_away_resume_refused(
    fake_live: FakeLiveServer, gemini_client: ClientFactory
) -> None:
    """The server closes the resumed connection at setup: LiveResumptionError."""
    fake_live.add_fault(GoAwayFault(time_left=10.0))
    fake_live.add_fault(Close(code=1007, reason=INVALID_ARGUMENT))
    async with await open_session(gemini_client()) as session:
        with pytest.raises(LiveResumptionError, match="refused") as info:
            await until(session.receive(), lambda e: False)
        assert session.closed
        with pytest.raises(LiveConnectionError):
            await session.send_text("hi")
    assert (info.value.close_code, info.value.reason) == (1007, INVALID_ARGUMENT)
    assert isinstance(info.value.__cause__, LiveInvalidArgumentError)
    old, new = fake_live.connections
    assert old.closed_by == "client"
    assert new.setup is not None
    assert new.setup["sessionResumption"] == {"handle": last_handle(old)}


async def test_go_away_resume_upgrade_refused(
    fake_live: FakeLiveServer, gemini_client: ClientFactory
) -> None:
    """An HTTP refusal of the new connection is not about the handle: its own error."""
    fake_live.add_fault(GoAwayFault(time_left=1.0))
    fake_live.add_fault(Refuse(status=503))
    async with await open_session(gemini_client()) as session:
        with pytest.raises(LiveServiceUnavailableError, match="HTTP 503"):
            await until(session.receive(), lambda e: False)
        assert session.closed
        with pytest.raises(LiveConnectionError):
            await session.send_text("hi")


class GatedCredentials(ApiKeyCredentials):
    """API key credentials that hold every connection after the first at a gate."""

    def __init__(self, api_key: str) -> None:
        """Start with a closed gate."""
        super().__init__(api_key)
        self.calls = 0
        self.gate = asyncio.Event()

    async def headers(self, http: aiohttp.ClientSession) -> dict[str, str]:
        """Wait at the gate from the second call on."""
        self.calls += 1
        if self.calls > 1:
            await self.gate.wait()
        return await super().headers(http)


@pytest_asyncio.fixture
async def gated(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> AsyncIterator[tuple[LiveSession, GatedCredentials, asyncio.Task[list[LiveEvent]]]]:
    """Yield a session whose receive() task waits in a goAway swap at the gate."""
    credentials = GatedCredentials(fake_live.api_key)
    endpoint = LiveEndpoint(provider=Provider.GEMINI_API, base_url=fake_live.base_url)
    client = LiveClient(http, endpoint, credentials)
    fake_live.add_fault(GoAwayFault(time_left=5.0))
    session = await open_session(client)

    async def consume() -> list[LiveEvent]:
        return await until(session.receive(), turn_complete)

    task = asyncio.create_task(consume())
    await fake_live.wait_for(lambda: credentials.calls == 2)
    yield session, credentials, task
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await session.close()


async def test_sends_wait_for_the_swap(
    fake_live: FakeLiveServer,
    gated: tuple[LiveSession, GatedCredentials, asyncio.Task[list[LiveEvent]]],
) -> None:
    session, credentials, receiver = gated
    old = fake_live.connections[0]
    assert old.closed
    sender = asyncio.create_task(session.send_text("during the swap"))
    await asyncio.sleep(0.05)
    assert not sender.done()
    credentials.gate.set()
    await sender
    seen = await receiver
    new = fake_live.connections[1]
    assert new.turns[0].text == "during the swap"
    assert not any("clientContent" in frame for frame in old.frames)
    assert of(GoAway, seen)
    assert of(TurnComplete, seen)


async def test_close_during_swap(
    fake_live: FakeLiveServer,
    gated: tuple[LiveSession, GatedCredentials, asyncio.Task[list[LiveEvent]]],
) -> None:
    session, credentials, receiver = gated
    sender = asyncio.create_task(session.send_text("lost"))
    await asyncio.sleep(0.01)
    async with asyncio.timeout(1):
        await session.close()
    with pytest.raises(AssertionError, match="iteration ended"):
        await receiver
    with pytest.raises(LiveConnectionError):
        await sender
    credentials.gate.set()
    assert len(fake_live.connections) == 1


async def test_close_during_swap_after_connect(
    fake_live: FakeLiveServer,
    gated: tuple[LiveSession, GatedCredentials, asyncio.Task[list[LiveEvent]]],
) -> None:
    """close() while the new connection waits for setupComplete."""
    session, credentials, receiver = gated
    fake_live.add_fault(Close(code=1000))  # never reached: closed first
    fake_live.clear_faults()
    credentials.gate.set()
    new = await fake_live.wait_for_connection(1)
    await new.wait_for(lambda: new.setup is not None)
    await session.close()
    with pytest.raises(AssertionError, match="iteration ended"):
        await receiver
    await new.wait_closed()


async def test_receive_cancelled_during_swap(
    fake_live: FakeLiveServer,
    gated: tuple[LiveSession, GatedCredentials, asyncio.Task[list[LiveEvent]]],
) -> None:
    session, _, receiver = gated
    receiver.cancel()
    with pytest.raises(asyncio.CancelledError):
        await receiver
    assert session.closed
    with pytest.raises(LiveConnectionError):
        await session.send_text("hi")


# ------------------------------------------------------------ lost socket


@pytest_asyncio.fixture
async def abort_server(socket_enabled: None) -> AsyncIterator[str]:
    """Serve WebSockets that answer setupComplete, then drop the TCP connection.

    The fake Live server always closes with a close frame; this needs its own.
    """

    async def handle(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.receive()
        await ws.send_str('{"setupComplete": {}}')
        await ws.receive()  # the first client message
        assert request.transport is not None
        request.transport.abort()
        return ws

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


async def test_send_on_lost_connection(
    http: aiohttp.ClientSession, abort_server: str
) -> None:
    endpoint = LiveEndpoint(provider=Provider.GEMINI_API, base_url=abort_server)
    client = LiveClient(http, endpoint, ApiKeyCredentials("k"))
    async with await open_session(client) as session:
        await session.send_text("hi")
        with pytest.raises(LiveConnectionError, match="Cannot send"):  # noqa: PT012
            async with asyncio.timeout(2):
                while True:
                    await session.send_audio(b"\0\0")
                    await asyncio.sleep(0.01)


async def test_connection_lost(http: aiohttp.ClientSession, abort_server: str) -> None:
    endpoint = LiveEndpoint(provider=Provider.GEMINI_API, base_url=abort_server)
    client = LiveClient(http, endpoint, ApiKeyCredentials("k"))
    async with await open_session(client) as session:
        assert session.session_id is None
        await session.send_text("hi")
        with pytest.raises(LiveConnectionError, match="Connection lost"):
            await until(session.receive(), lambda e: False)
        with pytest.raises(LiveConnectionError):
            await session.send_text("again")
