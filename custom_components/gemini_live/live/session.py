"""LiveSession: one conversation over one or more (resumed) connections."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum, auto
import json
import logging
from types import TracebackType
from typing import Any, Self, cast

import aiohttp
from aiohttp import WSCloseCode

from .errors import (
    CLOSE_NORMAL,
    LiveConnectionError,
    LiveError,
    error_from_close,
)
from .events import (
    GoAway,
    LiveEvent,
    Resumed,
    SessionResumptionUpdate,
    SetupComplete,
    ToolCall,
    ToolCallCancellation,
    TurnComplete,
    parse_server_message,
)
from .messages import (
    AUDIO_IN_RATE,
    FunctionResponse,
    HistoryTurn,
    activity_end_message,
    activity_start_message,
    audio_message,
    audio_stream_end_message,
    context_update_message,
    history_message,
    realtime_text_message,
    text_message,
    tool_response_message,
    video_message,
)

_LOGGER = logging.getLogger(__name__)

_DATA_TYPES = (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY)

GO_AWAY_MARGIN = 5.0
"""Seconds before a goAway's end at which the session moves on, whatever the
state (at most a quarter of ``timeLeft``). It covers the goAway's transit and
closing the old socket, which must reach the server before its 1008 abort."""


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


class Input(Enum):
    """What a client message means for the conversation (see ``Rotation``)."""

    STREAM = auto()
    """Audio or video: no effect."""
    CONTEXT = auto()
    """Changes history or context: the known handle predates it."""
    TURN = auto()
    """Asks for a reply (or opens a user turn that will get one)."""


class Rotation:
    """When to leave a connection that announced its end with goAway.

    The connection is *idle* when the model completed its turn (a
    ``TurnComplete`` not marked ``IN_PROGRESS``) after the last ``Input.TURN``
    message and no tool call is pending. Once a goAway arrived, rotating is
    *due* when the connection is idle and a resumable handle newer than the
    last turn or context change is known (any idle point when resumption is
    off), or at the latest at the deadline, ``timeLeft - margin`` after the
    goAway (margin ``min(GO_AWAY_MARGIN, timeLeft / 4)``), whatever the state.
    """

    def __init__(self, *, resumption: bool) -> None:
        """Start idle, with no goAway and no fresh handle."""
        self.deadline: float | None = None
        """Loop time at which to rotate anyway (None: no goAway yet)."""
        self._resumption = resumption
        self._awaiting_reply = False
        self._pending_calls: set[str] = set()
        self._handle_fresh = False

    @property
    def idle(self) -> bool:
        """Whether the model owes no reply and no tool call is pending."""
        return not self._awaiting_reply and not self._pending_calls

    def due(self, now: float) -> bool:
        """Whether to rotate now (only ever after a goAway)."""
        if self.deadline is None:
            return False
        if now >= self.deadline:
            return True
        return self.idle and (self._handle_fresh or not self._resumption)

    def sent(self, kind: Input, answered: Iterable[str] = ()) -> None:
        """Account for a client message (``answered``: tool call ids)."""
        if kind is Input.STREAM:
            return
        self._handle_fresh = False
        self._pending_calls.difference_update(answered)
        if kind is Input.TURN:
            self._awaiting_reply = True

    def received(self, event: LiveEvent, now: float) -> None:
        """Account for a server event."""
        match event:
            case TurnComplete(interaction_status=status) if status != "IN_PROGRESS":
                self._awaiting_reply = False
                self._handle_fresh = False
            case ToolCall(calls=calls):
                self._pending_calls.update(call.id for call in calls)
            case ToolCallCancellation(ids=ids):
                self._pending_calls.difference_update(ids)
            case SessionResumptionUpdate(new_handle=handle, resumable=True) if handle:
                self._handle_fresh = True
            case GoAway(time_left=time_left):
                left = 0.0 if time_left is None else max(time_left, 0.0)
                deadline = now + left - min(GO_AWAY_MARGIN, left / 4)
                if self.deadline is None or deadline < self.deadline:
                    self.deadline = deadline


async def close_socket(ws: aiohttp.ClientWebSocketResponse) -> None:
    """Close a WebSocket (close handshake bounded by its ``ws_close`` timeout).

    aiohttp 3.14 re-arms the heartbeat timer when the server's close reply
    arrives after ``close()`` started; the stray timer would fire, harmlessly,
    a heartbeat later. It is cancelled here so that no timer outlives the socket.
    """
    try:
        await ws.close()
    finally:
        disarm = getattr(ws, "_cancel_heartbeat", None)
        if callable(disarm):
            disarm()


def forget_interrupted_receive(ws: aiohttp.ClientWebSocketResponse) -> None:
    """Undo aiohttp's mark of a ``receive()`` we interrupted on a healthy socket.

    aiohttp records an interrupted ``receive()`` as an abnormal closure (1006),
    and ``close()`` then skips waiting for the server's close reply. Before a
    resumption the server must have seen the old socket close (it refuses to
    resume while that one is open), so the reply is worth waiting for.
    """
    if not ws.closed and ws.close_code == WSCloseCode.ABNORMAL_CLOSURE:
        ws._close_code = None  # noqa: SLF001


async def send_frame(ws: aiohttp.ClientWebSocketResponse, data: str) -> None:
    """Send one text frame; a broken connection raises ``LiveConnectionError``."""
    try:
        await ws.send_str(data)
    except (aiohttp.ClientError, ConnectionError) as err:
        raise LiveConnectionError(f"Cannot send to the Live API: {err}") from err


class LiveSession:
    """An open Live session; use as an async context manager.

    ``receive()`` reads the socket in the caller's task. On ``goAway`` it yields
    the ``GoAway`` and keeps reading (and sending on) the connection until
    rotating is due (see ``Rotation``): then it closes the connection and opens
    one resumed from the newest resumable handle, while sends wait, yields
    ``Resumed`` and goes on reading there. Without a handle (or with
    resumption off) it closes and
    raises ``LiveConnectionError`` instead; a refused resumption raises
    ``LiveResumptionError``.
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
        self._rotation = Rotation(resumption=resumption)
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
        await self._send(audio_message(pcm, sample_rate), Input.STREAM)

    async def send_video_frame(self, jpeg: bytes) -> None:
        """Send one JPEG video frame."""
        await self._send(video_message(jpeg), Input.STREAM)

    async def send_activity_start(self) -> None:
        """Signal the start of user speech (manual activity detection)."""
        await self._send(activity_start_message(), Input.TURN)

    async def send_activity_end(self) -> None:
        """Signal the end of user speech (manual activity detection)."""
        await self._send(activity_end_message(), Input.TURN)

    async def send_audio_stream_end(self) -> None:
        """Signal that the microphone paused (automatic activity detection)."""
        await self._send(audio_stream_end_message(), Input.TURN)

    async def send_text(self, text: str, *, turn_complete: bool = True) -> None:
        """Send an ordered user text turn."""
        kind = Input.TURN if turn_complete else Input.CONTEXT
        await self._send(text_message(text, turn_complete), kind)

    async def send_realtime_text(self, text: str) -> None:
        """Send realtime text input."""
        await self._send(realtime_text_message(text), Input.TURN)

    async def send_tool_response(self, responses: Sequence[FunctionResponse]) -> None:
        """Answer function calls."""
        await self._send(
            tool_response_message(responses),
            Input.TURN,
            [response.id for response in responses],
        )

    async def send_history(self, turns: Sequence[HistoryTurn]) -> None:
        """Append earlier turns to the history, in order, without asking for a reply.

        Sends nothing when ``turns`` is empty.
        """
        if turns:
            await self._send(history_message(turns), Input.CONTEXT)

    async def send_context_update(
        self, *, system_instruction: str | None = None
    ) -> None:
        """Replace the system instruction of the open session (``contextUpdate``).

        Sends nothing when no field is given.
        """
        if system_instruction is not None:
            message = context_update_message(system_instruction=system_instruction)
            await self._send(message, Input.CONTEXT)

    async def receive(self) -> AsyncIterator[LiveEvent]:
        """Yield server events until the session closes.

        A normal close ends the iteration; any other close raises a
        ``LiveError`` subclass. After a ``GoAway`` the iteration goes on, over
        a resumed connection once rotating is due (see the class docstring).
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
        await close_socket(self._ws)
        _LOGGER.debug("Live session closed")

    async def _send(
        self, message: dict[str, Any], kind: Input, answered: Iterable[str] = ()
    ) -> None:
        data = dumps(message)
        async with self._send_lock:
            if self._closed:
                raise LiveConnectionError("The Live session is closed")
            self._rotation.sent(kind, answered)
            await send_frame(self._ws, data)

    def _queue(self, events: Sequence[LiveEvent]) -> None:
        now = asyncio.get_running_loop().time()
        for event in events:
            if (
                isinstance(event, SessionResumptionUpdate)
                and event.resumable
                and event.new_handle
            ):
                self._handle = event.new_handle
            self._rotation.received(event, now)
        self._pending.extend(events)

    async def _read(self) -> bool:
        """Read one frame into the queue, or rotate when due.

        False when the session ended normally. The read stops at the goAway
        deadline, so rotating needs no task of its own.
        """
        ws = self._ws
        if not self._rotation.due(asyncio.get_running_loop().time()):
            try:
                async with asyncio.timeout_at(self._rotation.deadline):
                    msg = await ws.receive()
            except TimeoutError:
                forget_interrupted_receive(ws)  # the goAway deadline passed
            except asyncio.CancelledError:
                forget_interrupted_receive(ws)  # the caller stopped reading
                raise
            else:
                return await self._process(ws, msg)
        if self._closed:
            return False
        return await self._rotate()

    async def _process(
        self, ws: aiohttp.ClientWebSocketResponse, msg: aiohttp.WSMessage
    ) -> bool:
        """Queue the events of one frame; False when the session ended normally."""
        if self._closed:
            await close_socket(ws)
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
        return True

    async def _rotate(self) -> bool:
        """Leave a connection after its goAway: resume, or close and raise."""
        deadline = self._rotation.deadline
        late = deadline is not None and asyncio.get_running_loop().time() >= deadline
        _LOGGER.debug(
            "GoAway: leaving the connection (%s)", "deadline" if late else "idle"
        )
        handle = self._handle if self._resumption else None
        if handle is None:
            await self.close()
            why = "no resumable handle" if self._resumption else "resumption is off"
            raise LiveConnectionError(
                f"The Live connection ended after goAway and cannot be resumed ({why})"
            )
        return await self._resume(handle, reply_cut=late and not self._rotation.idle)

    async def _resume(self, handle: str, *, reply_cut: bool) -> bool:
        """Swap to a connection resumed from ``handle``; False if closed meanwhile."""
        async with self._send_lock:
            self._swap = asyncio.create_task(self._reconnect(handle, reply_cut))
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

    async def _reconnect(self, handle: str, reply_cut: bool) -> None:
        """Close the current socket, then open and install a resumed one.

        The server refuses to resume while the old socket is open (1011). Runs
        as a task that close() can cancel; the new connection is installed
        without yielding once open, so close() always finds and closes it.
        """
        await close_socket(self._ws)
        connection = await self._opener(handle)
        self._ws = connection.ws
        self._session_id = connection.setup.session_id
        self._rotation = Rotation(resumption=self._resumption)
        self._queue(connection.pending)
        self._pending.append(Resumed(reply_cut=reply_cut))
