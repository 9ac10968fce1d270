"""Run the fake Gemini Live server with the demo model until interrupted.

    python -m tests.fake_live [--port 8124] [--key KEY]

Prints the URL and the API key to use (the integration's config flow:
Gemini API, the key, Advanced settings > service endpoint = the URL).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from .demo import demo_responder
from .server import FakeLiveServer


def demo_server(port: int = 0, api_key: str | None = None) -> FakeLiveServer:
    """Return a stopped fake server answering with the demo model."""
    server = FakeLiveServer()
    server.port = port
    if api_key:
        server.api_key = api_key
    server.responder = demo_responder
    return server


async def serve(port: int, api_key: str | None) -> None:
    """Serve until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with demo_server(port, api_key) as server:
        sys.stdout.write(f"url: {server.base_url}\nkey: {server.api_key}\n")
        sys.stdout.flush()
        await stop.wait()


def main() -> None:
    """Parse the command line and serve."""
    parser = argparse.ArgumentParser(prog="python -m tests.fake_live")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--key", help="the API key to accept (default: a new one)")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port, args.key))


if __name__ == "__main__":
    main()
