"""LiveSession: one conversation over one or more (resumed) connections."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass
import json
import logging
from types import TracebackType
from typing import Any, Self, cast

import aiohttp

from .errors import (
    CLOSE_NORMAL,
    LiveConnectionError,
    LiveError,
    error_from_close,
)
from .events import (
    GoAway,
    LiveEvent,
    SessionResumptionUpdate,
    SetupComplete,
    parse_server_message,
)
from .messages import (
    AUDIO_IN_RATE,
    FunctionResponse,
    activity_end_message,
    activity_start_message,
    audio_message,
    audio_stream_end_message,
    realtime_text_message,
    text_message,
    tool_response_message,
    video_message,
)

_LOGGER = logging.getLogger(__name__)

_DATA_TYPES = (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY)


@dataclass(slots=True)
class Connection:
    """An open WebSocket after setupComplete, with any events that came with it."""

    ws: aiohttp.ClientWebSocketResponse
    setup: SetupComplete
    pending: list[LiveEvent]


type Opener = Callable[[str | None], Coroutine[Any, Any, Connection]]


def dumps(message: dict[str, Any]) -> str:
    """Serialise a client message compactly."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def close_error(
    ws: aiohttp.ClientWebSocketResponse, msg: aiohttp.WSMessage
) -> LiveError:
    """Describe why a connection ended (any non-data message)."""
    if msg.type is aiohttp.WSMsgType.CLOSE:
        return error_from_close(int(msg.data), str(msg.extra or ""))
    detail = f": {msg.data}" if msg.type is aiohttp.WSMsgType.ERROR else ""
    return LiveConnectionError(f"Connection lost{detail}", close_code=ws.close_code)


async def send_frame(ws: aiohttp.ClientWebSocketResponse, data: str) -> None:
    """Send one text frame; a broken connection raises ``LiveConnectionError``."""
    try:
        await ws.send_str(data)
    except (aiohttp.ClientError, ConnectionError) as err:
        raise LiveConnectionError(f"Cannot send to the Live API: {err}") from err


class LiveSession:
    """An open Live session; use as an async context manager.

    ``receive()`` reads the socket in the caller's task. On ``goAway`` with
    resumption enabled and a resumable handle known, it closes the connection,
    opens a new one with that handle (sends wait meanwhile), then yields the
    ``GoAway``; without a handle it just yields the ``GoAway``.
    """

    def __init__(
        self,
        opener: Opener,
        connection: Connection,
        *,
        resumption: bool,
        resumption_handle: str | None = None,
    ) -> None:
        """Wrap an open connection; ``opener`` opens resumed ones."""
        self._opener = opener
        self._resumption = resumption
        self._ws = connection.ws
        self._session_id = connection.setup.session_id
        self._handle = resumption_handle
        self._pending: deque[LiveEvent] = deque()
        self._closed = False
        self._send_lock = asyncio.Lock()
        self._swap: asyncio.Task[None] | None = None
        self._queue(connection.pending)

    @property
    def session_id(self) -> str | None:
        """The server's session id, when it sent one."""
        return self._session_id

    @property
    def resumption_handle(self) -> str | None:
        """The latest resumable handle (for a later ``connect``)."""
        return self._handle

    @property
    def closed(self) -> bool:
        """Whether the session is closed."""
        return self._closed

    async def __aenter__(self) -> Self:
        """Return the session."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the session."""
        await self.close()

    async def send_audio(self, pcm: bytes, sample_rate: int = AUDIO_IN_RATE) -> None:
        """Send a chunk of PCM16LE mono audio."""
        await self._send(audio_message(pcm, sample_rate))

    async def send_video_frame(self, jpeg: bytes) -> None:
        """Send one JPEG video frame."""
        await self._send(video_message(jpeg))

    async def send_activity_start(self) -> None:
        """Signal the start of user speech (manual activity detection)."""
        await self._send(activity_start_message())

    async def send_activity_end(self) -> None:
        """Signal the end of user speech (manual activity detection)."""
        await self._send(activity_end_message())

    async def send_audio_stream_end(self) -> None:
        """Signal that the microphone paused (automatic activity detection)."""
        await self._send(audio_stream_end_message())

    async def send_text(self, text: str, *, turn_complete: bool = True) -> None:
        """Send an ordered user text turn."""
        await self._send(text_message(text, turn_complete))

    async def send_realtime_text(self, text: str) -> None:
        """Send realtime text input."""
        await self._send(realtime_text_message(text))

    async def send_tool_response(self, responses: Sequence[FunctionResponse]) -> None:
        """Answer function calls."""
        await self._send(tool_response_message(responses))

    async def receive(self) -> AsyncIterator[LiveEvent]:
        """Yield server events until the session closes.

        A normal close ends the iteration; any other close raises a
        ``LiveError`` subclass.
        """
        while True:
            while self._pending and not self._closed:
                yield self._pending.popleft()
            if self._closed or not await self._read():
                return

    async def close(self) -> None:
        """Close the connection (and any resumption in progress); idempotent."""
        if self._closed:
            return
        self._closed = True
        if (swap := self._swap) is not None:
            swap.cancel()
            await asyncio.wait([swap])
        await self._ws.close()
        _LOGGER.debug("Live session closed")

    async def _send(self, message: dict[str, Any]) -> None:
        data = dumps(message)
        async with self._send_lock:
            if self._closed:
                raise LiveConnectionError("The Live session is closed")
            await send_frame(self._ws, data)

    def _queue(self, events: Sequence[LiveEvent]) -> None:
        for event in events:
            if (
                isinstance(event, SessionResumptionUpdate)
                and event.resumable
                and event.new_handle
            ):
                self._handle = event.new_handle
        self._pending.extend(events)

    async def _read(self) -> bool:
        """Read one frame into the queue; False when the session ended normally."""
        ws = self._ws
        msg = await ws.receive()
        if self._closed:
            await ws.close()
            return False
        if msg.type not in _DATA_TYPES:
            await self.close()
            if msg.type is aiohttp.WSMsgType.CLOSE and msg.data == CLOSE_NORMAL:
                return False
            error = close_error(ws, msg)
            _LOGGER.debug("Live connection ended: %s", error)
            raise error
        try:
            events = parse_server_message(msg.data)
        except LiveError:
            await self.close()
            raise
        self._queue(events)
        if any(isinstance(event, GoAway) for event in events):
            if self._resumption and self._handle:
                return await self._resume(self._handle)
            _LOGGER.debug("GoAway without a resumable handle")
        return True

    async def _resume(self, handle: str) -> bool:
        """Swap to a connection resumed from ``handle``; False if closed meanwhile."""
        _LOGGER.debug("GoAway: resuming on a new connection")
        async with self._send_lock:
            self._swap = asyncio.create_task(self._reconnect(handle))
            try:
                await self._swap
            except asyncio.CancelledError:
                task = cast("asyncio.Task[Any]", asyncio.current_task())
                if self._closed and not task.cancelling():
                    return False  # close() cancelled the swap
                await self.close()
                raise
            except LiveError:
                await self.close()
                raise
            finally:
                self._swap = None
        return True

    async def _reconnect(self, handle: str) -> None:
        """Close the current socket, then open and install a resumed one.

        Runs as a task that close() can cancel; the new connection is installed
        without yielding once open, so close() always finds and closes it.
        """
        await self._ws.close()
        connection = await self._opener(handle)
        self._ws = connection.ws
        self._session_id = connection.setup.session_id
        self._queue(connection.pending)
