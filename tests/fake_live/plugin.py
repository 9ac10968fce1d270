"""Pytest fixtures for the fake Live server (registered by tests/conftest.py).

`fake_live` is a started `FakeLiveServer` on 127.0.0.1 (function scope); it is
stopped after the test, closing every WebSocket, and the test fails if the
server itself raised. Generated speech is cached in pytest's cache folder.
"""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from .server import FakeLiveServer
from .speech import set_cache_dir


def pytest_configure(config: pytest.Config) -> None:
    """Keep generated speech in .pytest_cache (shared by sessions and workers)."""
    cache = getattr(config, "cache", None)
    if cache is not None:
        set_cache_dir(Path(cache.mkdir("fake_live_speech")))


@pytest_asyncio.fixture
async def fake_live(socket_enabled: None) -> AsyncIterator[FakeLiveServer]:
    """Run a fake Gemini Live server for the test."""
    server = FakeLiveServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
    if server.errors:
        raise server.errors[0]
