"""WebSocket heartbeat: idle connections stay open, dead peers are detected.

aiohttp pings after ``heartbeat`` seconds without incoming data and gives up
when no pong (or other data) arrives within ``heartbeat / 2``. The tests scale
the production value (90 s: 45 s for the pong, Gemini's lag 8-30 s) down.
"""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
from aiohttp import WSMsgType, web
import pytest
import pytest_asyncio

from custom_components.gemini_live.live import (
    ApiKeyCredentials,
    LiveClient,
    LiveConfig,
    LiveConnectionError,
    LiveEndpoint,
    LiveEvent,
    Provider,
    SessionResumptionUpdate,
    TurnComplete,
)
from custom_components.gemini_live.live.client import HEARTBEAT
from tests.fake_live import FakeLiveServer

from .conftest import GEMINI_MODEL, ClientFactory, live_tasks


async def record(
    session_events: AsyncIterator[LiveEvent], seen: list[LiveEvent]
) -> None:
    async for event in session_events:
        seen.append(event)  # noqa: PERF401 - keeps the events before an error


def test_default_waits_long_enough_for_slow_pongs() -> None:
    """The pong wait (heartbeat / 2 in aiohttp) covers Gemini's 30 s pong lag."""
    assert HEARTBEAT / 2 >= 30


async def test_idle_connection_stays_open(
    fake_live: FakeLiveServer, gemini_client: ClientFactory
) -> None:
    """Idle for many heartbeat intervals against the fake (which answers pings)."""
    async with await gemini_client(heartbeat=0.3).connect(
        LiveConfig(model=GEMINI_MODEL)
    ) as session:
        seen: list[LiveEvent] = []
        reader = asyncio.create_task(record(session.receive(), seen))
        await asyncio.sleep(1.5)
        conn = fake_live.connections[0]
        assert not conn.closed
        assert not reader.done()
        await session.send_text("still there?")
        await conn.wait_for(lambda: any(isinstance(e, TurnComplete) for e in seen))
    async with asyncio.timeout(5):
        await reader
    assert isinstance(seen[0], SessionResumptionUpdate)


@dataclass
class PingServer:
    """A Live look-alike that records pings and answers them itself (or not)."""

    url: str = ""
    pong_delay: float | None = None
    """Seconds before each pong; None: never answer."""
    pings: list[float] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)


@pytest_asyncio.fixture
async def ping_server(socket_enabled: None) -> AsyncIterator[PingServer]:
    """Serve setupComplete, then only handle pings (autoping off)."""
    server = PingServer()
    loop = asyncio.get_running_loop()

    async def handle(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        await ws.receive()
        await ws.send_str('{"setupComplete": {}}')
        try:
            while True:
                msg = await ws.receive()
                if msg.type is WSMsgType.PING:
                    server.pings.append(loop.time())
                    if server.pong_delay is not None:
                        await asyncio.sleep(server.pong_delay)
                        await ws.pong(msg.data)
                elif msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.ERROR):
                    break
        finally:
            server.closed.set()
        return ws

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield server
    await runner.cleanup()


def ping_client(
    http: aiohttp.ClientSession, server: PingServer, heartbeat: float | None
) -> LiveClient:
    endpoint = LiveEndpoint(provider=Provider.GEMINI_API, base_url=server.url)
    return LiveClient(http, endpoint, ApiKeyCredentials("k"), heartbeat=heartbeat)


async def test_slow_pongs_within_the_wait_are_fine(
    http: aiohttp.ClientSession, ping_server: PingServer
) -> None:
    """Pongs late by half the pong wait keep the connection (and its pings) going."""
    ping_server.pong_delay = 0.1  # the pong wait is 0.4 / 2 = 0.2 s
    loop = asyncio.get_running_loop()
    client = ping_client(http, ping_server, heartbeat=0.4)
    async with await client.connect(LiveConfig(model=GEMINI_MODEL)) as session:
        opened = loop.time()
        seen: list[LiveEvent] = []
        reader = asyncio.create_task(record(session.receive(), seen))
        await asyncio.sleep(1.6)
        assert not reader.done()
        assert not session.closed
    async with asyncio.timeout(5):
        await reader  # ends without an error when the session closes
    assert seen == []
    assert len(ping_server.pings) >= 2
    # The first ping came one heartbeat after the last data (setupComplete).
    assert 0.3 <= ping_server.pings[0] - opened < 0.6
    assert live_tasks() == []


async def test_unanswered_ping_is_a_lost_connection(
    http: aiohttp.ClientSession, ping_server: PingServer
) -> None:
    loop = asyncio.get_running_loop()
    client = ping_client(http, ping_server, heartbeat=0.2)
    async with await client.connect(LiveConfig(model=GEMINI_MODEL)) as session:
        start = loop.time()
        seen: list[LiveEvent] = []
        async with asyncio.timeout(3):
            with pytest.raises(LiveConnectionError, match="Connection lost: No PONG"):
                await record(session.receive(), seen)
        # One heartbeat to the ping, half a heartbeat waiting for the pong.
        assert 0.25 <= loop.time() - start < 1.0
        assert session.closed
        with pytest.raises(LiveConnectionError):
            await session.send_text("hi")
    assert seen == []
    assert len(ping_server.pings) == 1
    async with asyncio.timeout(5):
        await ping_server.closed.wait()
    assert live_tasks() == []


async def test_heartbeat_off(
    http: aiohttp.ClientSession, ping_server: PingServer
) -> None:
    client = ping_client(http, ping_server, heartbeat=None)
    async with await client.connect(LiveConfig(model=GEMINI_MODEL)):
        await asyncio.sleep(0.3)
    assert ping_server.pings == []
