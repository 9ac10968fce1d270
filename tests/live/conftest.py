"""Fixtures for the Live client tests: an aiohttp session and clients of the fake server."""

import asyncio
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
import pytest_asyncio

from custom_components.gemini_live.live import (
    ApiKeyCredentials,
    LiveClient,
    LiveEndpoint,
    Provider,
    ServiceAccount,
    ServiceAccountCredentials,
)
from tests.fake_live import FakeLiveServer

GEMINI_MODEL = "gemini-2.5-flash-native-audio-preview-12-2025"
VERTEX_MODEL = "gemini-live-2.5-flash-native-audio"

type ClientFactory = Callable[..., LiveClient]


@pytest_asyncio.fixture
async def http(socket_enabled: None) -> AsyncIterator[aiohttp.ClientSession]:
    """Yield an aiohttp session, closed after the test."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def gemini_client(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> ClientFactory:
    """Build a Gemini API client of the fake server (API key overridable)."""

    def build(api_key: str | None = None, **kwargs: float) -> LiveClient:
        endpoint = LiveEndpoint(
            provider=Provider.GEMINI_API, base_url=fake_live.base_url
        )
        key = fake_live.api_key if api_key is None else api_key
        return LiveClient(http, endpoint, ApiKeyCredentials(key), **kwargs)

    return build


@pytest.fixture
def vertex_client(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> ClientFactory:
    """Build a Vertex AI client of the fake server (service account of the fake)."""

    def build(location: str = "us-central1", **kwargs: float) -> LiveClient:
        account = ServiceAccount.from_json(fake_live.service_account_json())
        endpoint = LiveEndpoint(
            provider=Provider.VERTEX_AI,
            base_url=fake_live.base_url,
            project_id=account.project_id,
            location=location,
        )
        return LiveClient(http, endpoint, ServiceAccountCredentials(account), **kwargs)

    return build


def live_tasks() -> list[asyncio.Task[object]]:
    """Tasks running a coroutine of the Live client package."""
    found = []
    for task in asyncio.all_tasks():
        code = getattr(task.get_coro(), "cr_code", None)
        if code is not None and "gemini_live/live/" in code.co_filename:
            found.append(task)
    return found


@pytest_asyncio.fixture(name="fake_live")
async def checked_fake_live(
    fake_live: FakeLiveServer,
) -> AsyncIterator[FakeLiveServer]:
    """Yield the fake server, then check every connection closed and no task left."""
    yield fake_live
    for connection in fake_live.connections:
        await connection.wait_closed(timeout=5)
    assert live_tasks() == []
