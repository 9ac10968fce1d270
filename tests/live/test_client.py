"""LiveClient over a real socket: handshake, validation, failures at connect."""

import asyncio
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
import pytest
import pytest_asyncio

from custom_components.gemini_live.live import (
    ApiKeyCredentials,
    InvalidLocationError,
    LiveAuthError,
    LiveClient,
    LiveConfig,
    LiveConnectionError,
    LiveEndpoint,
    LiveError,
    LiveInvalidArgumentError,
    LiveModelNotFoundError,
    LivePermissionError,
    LiveQuotaError,
    LiveResumptionError,
    LiveServiceUnavailableError,
    LiveTimeoutError,
    Provider,
    SessionResumptionUpdate,
)
from tests.fake_live import (
    INVALID_ARGUMENT,
    Close,
    ErrorFrame,
    FakeLiveServer,
    Refuse,
    Stall,
)

from .conftest import GEMINI_MODEL, VERTEX_MODEL, ClientFactory


async def test_connect_gemini(
    fake_live: FakeLiveServer, gemini_client: ClientFactory
) -> None:
    session = await gemini_client().connect(LiveConfig(model=GEMINI_MODEL))
    async with session:
        conn = await fake_live.wait_for_connection()
        assert conn.provider == "gemini_api"
        assert conn.route.version == "v1beta"
        assert conn.headers["x-goog-api-key"] == fake_live.api_key
        assert "Authorization" not in conn.headers
        assert conn.query == {}
        assert conn.setup is not None
        assert conn.setup["model"] == f"models/{GEMINI_MODEL}"
        assert conn.raw_frames[0].startswith('{"setup":{"model":')
        assert conn.binary_frames_received == 0
        assert session.session_id == conn.session_id
        # The resumption handle sent right after setupComplete is tracked.
        assert isinstance(await anext(session.receive()), SessionResumptionUpdate)
        assert session.resumption_handle == conn.session.handles[-1]  # type: ignore[union-attr]
    assert session.closed
    assert await conn.wait_closed() == 1000
    assert conn.closed_by == "client"


async def test_connect_vertex(
    fake_live: FakeLiveServer, vertex_client: ClientFactory
) -> None:
    client = vertex_client()
    async with (
        await client.connect(LiveConfig(model=VERTEX_MODEL)),
        await client.connect(LiveConfig(model=VERTEX_MODEL)),
    ):
        pass
    first, second = fake_live.connections
    assert first.provider == "vertex_ai"
    assert first.route.version == "v1"
    assert first.headers["Authorization"].startswith("Bearer ya29.")
    assert "x-goog-api-key" not in first.headers
    assert first.setup is not None
    assert first.setup["model"] == (
        f"projects/test-project/locations/us-central1/publishers/google/models/{VERTEX_MODEL}"
    )
    # The token is cached across connections.
    assert fake_live.tokens_issued == 1
    assert second.headers["Authorization"] == first.headers["Authorization"]


async def test_vertex_expired_token_is_refreshed(
    fake_live: FakeLiveServer, vertex_client: ClientFactory
) -> None:
    fake_live.token_lifetime = 200  # under the 5-minute refresh margin
    client = vertex_client()
    await client.validate(VERTEX_MODEL)
    await client.validate(VERTEX_MODEL)
    assert fake_live.tokens_issued == 2


async def test_vertex_revoked_token(
    fake_live: FakeLiveServer, vertex_client: ClientFactory
) -> None:
    client = vertex_client()
    await client.validate(VERTEX_MODEL)
    fake_live.expire_tokens()
    with pytest.raises(LiveAuthError) as info:
        await client.validate(VERTEX_MODEL)
    assert info.value.close_code == 1008


async def test_validate(
    fake_live: FakeLiveServer, gemini_client: ClientFactory
) -> None:
    await gemini_client().validate(GEMINI_MODEL)
    conn = fake_live.connections[0]
    assert conn.setup == {
        "model": f"models/{GEMINI_MODEL}",
        "generationConfig": {"responseModalities": ["AUDIO"]},
        "realtimeInputConfig": {"automaticActivityDetection": {"disabled": False}},
    }
    assert await conn.wait_closed() == 1000


@pytest.mark.parametrize(
    ("api_key", "expected", "code"),
    [("wrong", LiveAuthError, 1007), ("", LiveAuthError, 1008)],
)
async def test_validate_bad_key(
    gemini_client: ClientFactory, api_key: str, expected: type[LiveError], code: int
) -> None:
    with pytest.raises(expected) as info:
        await gemini_client(api_key).validate(GEMINI_MODEL)
    assert info.value.close_code == code


async def test_validate_unknown_model(gemini_client: ClientFactory) -> None:
    with pytest.raises(LiveModelNotFoundError, match="is not found for API version"):
        await gemini_client().validate("gemini-live-2.5-flash-native-audio")


async def test_validate_vertex_model_elsewhere(vertex_client: ClientFactory) -> None:
    with pytest.raises(LiveModelNotFoundError):
        await vertex_client(location="asia-south1").validate(VERTEX_MODEL)
    with pytest.raises(LiveModelNotFoundError):
        await vertex_client().validate(GEMINI_MODEL)


async def test_vertex_other_project(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    from custom_components.gemini_live.live import (
        ServiceAccount,
        ServiceAccountCredentials,
    )

    account = ServiceAccount.from_json(fake_live.service_account_json("mine"))
    endpoint = LiveEndpoint(
        provider=Provider.VERTEX_AI,
        base_url=fake_live.base_url,
        project_id="someone-else",
        location="us-central1",
    )
    client = LiveClient(http, endpoint, ServiceAccountCredentials(account))
    with pytest.raises(LivePermissionError):
        await client.validate(VERTEX_MODEL)


async def test_3_8_setup_has_no_thinking_config(gemini_client: ClientFactory) -> None:
    """A 3.8 setup gets no thinkingConfig (3.8 rejects it with 1007)."""
    session = await gemini_client().connect(
        LiveConfig(model="gemini-3.8-live", thinking_budget=0)
    )
    await session.close()


async def test_rejected_setup_is_an_invalid_argument(
    fake_live: FakeLiveServer, gemini_client: ClientFactory
) -> None:
    """A setup the service rejects (1007) raises LiveInvalidArgumentError."""
    fake_live.add_fault(Close(code=1007, reason=INVALID_ARGUMENT))
    with pytest.raises(LiveInvalidArgumentError) as info:
        await gemini_client().connect(LiveConfig(model=GEMINI_MODEL))
    assert info.value.close_code == 1007


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Close.quota(), LiveQuotaError),
        (Close.internal(), LiveServiceUnavailableError),
        (Close(code=1000, reason=""), LiveConnectionError),
        (
            ErrorFrame(code=429, message="Quota", status="RESOURCE_EXHAUSTED"),
            LiveQuotaError,
        ),
        (ErrorFrame(), LiveServiceUnavailableError),
        (Refuse(status=401), LiveAuthError),
        (Refuse(status=403), LiveAuthError),
        (Refuse(status=404), LiveConnectionError),
        (Refuse(status=429), LiveQuotaError),
        (Refuse(status=503), LiveServiceUnavailableError),
    ],
)
async def test_connect_faults(
    fake_live: FakeLiveServer,
    gemini_client: ClientFactory,
    fault: object,
    expected: type[LiveError],
) -> None:
    fake_live.add_fault(fault)  # type: ignore[arg-type]
    with pytest.raises(expected):
        await gemini_client().validate(GEMINI_MODEL)
    # The next connection works.
    await gemini_client().validate(GEMINI_MODEL)


async def test_setup_timeout(
    fake_live: FakeLiveServer, gemini_client: ClientFactory
) -> None:
    fake_live.add_fault(Stall())
    with pytest.raises(LiveTimeoutError, match="setupComplete"):
        await gemini_client(setup_timeout=0.2).validate(GEMINI_MODEL)
    assert await fake_live.connections[0].wait_closed() == 1000


async def test_invalid_location_before_io(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    for location in ("global", ""):
        endpoint = LiveEndpoint(
            provider=Provider.VERTEX_AI,
            base_url=fake_live.base_url,
            project_id="p",
            location=location,
        )
        client = LiveClient(http, endpoint, ApiKeyCredentials("k"))
        with pytest.raises(InvalidLocationError):
            await client.validate(VERTEX_MODEL)
    assert fake_live.http_requests == []


async def test_connection_refused(http: aiohttp.ClientSession) -> None:
    # Bind then release a port so that nothing listens on it.
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    endpoint = LiveEndpoint(
        provider=Provider.GEMINI_API, base_url=f"http://127.0.0.1:{port}"
    )
    client = LiveClient(http, endpoint, ApiKeyCredentials("k"))
    with pytest.raises(
        LiveConnectionError, match=r"Cannot connect to 127\.0\.0\.1"
    ) as info:
        await client.validate(GEMINI_MODEL)
    assert not isinstance(info.value, LiveTimeoutError)


@pytest_asyncio.fixture
async def silent_server(socket_enabled: None) -> AsyncIterator[str]:
    """Serve TCP connections that never get an answer."""
    writers: list[asyncio.StreamWriter] = []

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    for writer in writers:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_connect_timeout(http: aiohttp.ClientSession, silent_server: str) -> None:
    endpoint = LiveEndpoint(provider=Provider.GEMINI_API, base_url=silent_server)
    client = LiveClient(http, endpoint, ApiKeyCredentials("k"), connect_timeout=0.2)
    with pytest.raises(LiveTimeoutError, match=r"timed out after 0\.2 s"):
        await client.validate(GEMINI_MODEL)


@pytest_asyncio.fixture
async def odd_server(socket_enabled: None) -> AsyncIterator[tuple[str, list[str]]]:
    """Serve WebSockets that answer the setup with something else.

    The fake Live server always answers a valid setup with setupComplete (or an
    error or close), so this case needs its own server.
    """
    seen: list[str] = []

    async def handle(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.receive()
        await ws.send_bytes(b'{"serverContent": {"turnComplete": true}}')
        msg = await ws.receive()
        seen.append(msg.type.name)
        return ws

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}", seen
    await runner.cleanup()


async def test_first_message_must_be_setup_complete(
    http: aiohttp.ClientSession, odd_server: tuple[str, list[str]]
) -> None:
    base_url, seen = odd_server
    endpoint = LiveEndpoint(provider=Provider.GEMINI_API, base_url=base_url)
    client = LiveClient(http, endpoint, ApiKeyCredentials("k"))
    with pytest.raises(LiveServiceUnavailableError, match="setupComplete"):
        await client.validate(GEMINI_MODEL)
    assert seen == ["CLOSE"]


async def test_cancel_during_setup_closes_socket(
    fake_live: FakeLiveServer, gemini_client: ClientFactory
) -> None:
    fake_live.add_fault(Stall())
    task = asyncio.create_task(gemini_client().validate(GEMINI_MODEL))
    conn = await fake_live.wait_for_connection()
    await conn.wait_for(lambda: conn.setup is not None)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await conn.wait_closed() == 1000


async def test_connect_with_unknown_handle(
    fake_live: FakeLiveServer, gemini_client: ClientFactory
) -> None:
    """A handle the server does not know (or no longer keeps) is refused at setup."""
    with pytest.raises(LiveResumptionError, match="refused") as info:
        await gemini_client().connect(
            LiveConfig(model=GEMINI_MODEL), resumption_handle="expired-handle"
        )
    assert (info.value.close_code, info.value.reason) == (1007, INVALID_ARGUMENT)
    assert isinstance(info.value.__cause__, LiveInvalidArgumentError)
    conn = fake_live.connections[0]
    assert conn.setup is not None
    assert conn.setup["sessionResumption"] == {"handle": "expired-handle"}


async def test_setup_refusal_without_handle_keeps_its_class(
    fake_live: FakeLiveServer, gemini_client: ClientFactory
) -> None:
    """Only a resuming setup turns a setup close into LiveResumptionError."""
    fake_live.add_fault(Close(code=1007, reason=INVALID_ARGUMENT))
    with pytest.raises(LiveInvalidArgumentError) as info:
        await gemini_client().connect(LiveConfig(model=GEMINI_MODEL))
    assert not isinstance(info.value, LiveResumptionError)
