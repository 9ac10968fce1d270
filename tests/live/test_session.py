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
    InputTranscription,
    Interrupted,
    LiveClient,
    LiveConfig,
    LiveConnectionError,
    LiveEndpoint,
    LiveError,
    LiveEvent,
    LiveQuotaError,
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
    Close,
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

from .conftest import GEMINI_MODEL, VERTEX_MODEL, ClientFactory
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


async def test_go_away_resumes_transparently(
    fake_live: FakeLiveServer, gemini_client: ClientFactory
) -> None:
    fake_live.add_fault(GoAwayFault(time_left=1.0))
    async with await open_session(gemini_client()) as session:
        events = session.receive()
        seen = await until(events, lambda e: isinstance(e, GoAway))
        first_id = session.session_id
        old, new = fake_live.connections
        handle = old.session.handles[0]  # type: ignore[union-attr]
        # The old socket was closed (by us) before the new one was opened.
        assert old.closed_by == "client"
        assert old.close_code == 1000
        assert new.resumed
        assert new.setup is not None
        assert new.setup["sessionResumption"] == {"handle": handle}
        await session.send_text("still there?")
        seen += await until(events, turn_complete)
        assert new.turns[0].text == "still there?"
        assert session.session_id == first_id == new.session_id
    assert of(GoAway, seen) == [GoAway(1.0)]
    assert len(fake_live.connections) == 2
    assert not [c for c in fake_live.connections if c.close_code == 1008]


async def test_go_away_vertex(
    fake_live: FakeLiveServer, vertex_client: ClientFactory
) -> None:
    fake_live.add_fault(GoAwayFault(time_left=1.0))
    async with await open_session(vertex_client(), VERTEX_MODEL) as session:
        events = session.receive()
        await until(events, lambda e: isinstance(e, GoAway))
        await session.send_text("hi")
        await until(events, turn_complete)
    assert fake_live.connections[1].resumed
    assert fake_live.tokens_issued == 1


async def test_go_away_without_resumption(
    fake_live: FakeLiveServer, gemini_client: ClientFactory
) -> None:
    fake_live.add_fault(GoAwayFault(time_left=0.2))
    seen: list[LiveEvent] = []
    async with await open_session(gemini_client(), session_resumption=False) as session:
        with pytest.raises(LiveServiceUnavailableError, match="GoAway") as info:
            await record(session.receive(), seen)
    assert seen == [GoAway(0.2)]
    assert info.value.close_code == 1008
    assert len(fake_live.connections) == 1


async def test_go_away_resume_refused(
    fake_live: FakeLiveServer, gemini_client: ClientFactory
) -> None:
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
