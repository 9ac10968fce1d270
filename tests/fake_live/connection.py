"""One fake Live WebSocket: its recorded traffic and the server-side session logic.

`Connection` is both the record a test inspects (`setup`, `frames`,
`audio_in`, `audio_out`, `video_frames`, `sent`, `tool_responses`, close
state) and the state machine that turns client frames into user turns and
plays `Reply` scripts.
"""

# Test helpers take a timeout argument.
# ruff: noqa: ASYNC109
from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Coroutine
import contextlib
from dataclasses import dataclass, field
import json
import secrets
from typing import TYPE_CHECKING, Any, Literal

from aiohttp import WSMsgType, web
from multidict import CIMultiDict

from . import families, protocol
from .families import Family
from .player import ReplyPlayer
from .protocol import ModelRef, Rejection, Route
from .scenario import (
    GOAWAY_ABORT,
    INTERNAL_ERROR,
    INVALID_ARGUMENT,
    Close,
    ErrorFrame,
    Fault,
    GoAway,
    Reply,
    Scheduling,
    Stall,
    Turn,
    TurnEnd,
    UserTurn,
)
from .speech import recognize
from .transcription import InputTranscriber

if TYPE_CHECKING:
    from .auth import IssuedToken
    from .server import FakeLiveServer

SCHEDULINGS: tuple[Scheduling, ...] = ("INTERRUPT", "WHEN_IDLE", "SILENT")
"""FunctionResponse.scheduling values, strongest first (live-api.md 2.4)."""
EXPLICIT_ACTIVITY = (
    "Explicit activity control is not supported when automatic activity "
    "detection is enabled."
)


async def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `predicate` until true; TimeoutError naming `what` after `timeout` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError(f"fake Live server: timed out waiting for {what}")
        await asyncio.sleep(0.002)


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolResult:
    """One functionResponse as the fake understood it (live-api.md 2.4)."""

    id: str
    name: str
    non_blocking: bool
    """It answered a NON_BLOCKING call (else a BLOCKING or unknown one)."""
    scheduling: str | None
    """The scheduling sent (wherever it was), None if absent."""
    scheduling_in: Literal["functionResponse", "response"] | None
    """Where it was: the FunctionResponse top level (SDK, proto) or inside
    `response` (the Developer docs' example); the top level wins (10.7)."""

    @property
    def effective(self) -> Scheduling | None:
        """The scheduling applied: NON_BLOCKING only, WHEN_IDLE by default."""
        if not self.non_blocking:
            return None
        if self.scheduling in SCHEDULINGS:
            return self.scheduling  # type: ignore[return-value]
        return "WHEN_IDLE"


@dataclass(frozen=True, slots=True, kw_only=True)
class VideoFrame:
    """One `realtimeInput.video` blob as received (live-api.md 2.3, 4)."""

    mime_type: str
    """Its mimeType (the reference's frames are "image/jpeg")."""
    data: bytes
    """The decoded image bytes."""
    turn: int
    """Index of the user turn it came before (len(turns) on arrival)."""


@dataclass(frozen=True, slots=True)
class AsyncCall:
    """A NON_BLOCKING call whose result has not arrived."""

    name: str
    reply: Reply
    """The Reply that made it (its `then` gives the follow-up)."""
    turn: UserTurn


@dataclass(slots=True, kw_only=True)
class Session:
    """A logical Live session; survives reconnects through resumption handles."""

    id: str
    model: str
    history: list[Turn] = field(default_factory=list)
    connections: list[Connection] = field(default_factory=list)
    handles: list[str] = field(default_factory=list)


class Connection:
    """A client WebSocket on the fake server (record + protocol state)."""

    def __init__(
        self,
        server: FakeLiveServer,
        index: int,
        request: web.Request,
        route: Route,
        fault: Fault | None,
    ) -> None:
        """Record the handshake; `fault` is the connection fault to apply."""
        self.server = server
        self.index = index
        self.route = route
        self.provider = route.provider
        self.path: str = request.path
        self.query: dict[str, str] = dict(request.query)
        self.headers: CIMultiDict[str] = CIMultiDict(request.headers)
        self.fault = fault
        self.token: IssuedToken | None = None
        """The bearer token used (Vertex)."""
        self.setup: dict[str, Any] | None = None
        """The setup object exactly as received (snake_case kept)."""
        self.config: dict[str, Any] = {}
        """The setup object normalised to camelCase."""
        self.model: ModelRef | None = None
        self.rejected_field: str | None = None
        """The field (dotted camelCase path, or "contextUpdate") whose rule
        made the server close the connection (families.RULES), else None."""
        self.unverified_fields: list[str] = []
        """Fields accepted although a `stated=False` rule flags them for this
        family (they would close with `server.strict_families`)."""
        self.system_instruction: str | None = None
        """The session's current system instruction (parts joined by blank
        lines, 2.1), from the setup, then each contextUpdate."""
        self.system_instruction_updates: list[str] = []
        """Each system instruction set by a contextUpdate, in order (2.5)."""
        self.context_updates: list[dict[str, Any]] = []
        """Each contextUpdate applied (camelCase), in order."""
        self.tools: list[dict[str, Any]] = []
        """The session's current tools (setup, then contextUpdate, 2.5)."""
        self.search_with_functions = False
        """The setup's tools had both googleSearch and functionDeclarations
        (8.10: Google's example app never combines them)."""
        self.tool_results: list[ToolResult] = []
        """Every functionResponse, with the scheduling found and where."""
        self.last_interaction_status: str | None = None
        """The interactionStatus of the last turnComplete sent (3.x)."""
        self.session: Session | None = None
        self.resumed = False
        self.frames: list[dict[str, Any]] = []
        """Every client message as parsed JSON, in order (as received)."""
        self.raw_frames: list[str] = []
        """The raw text of every client message."""
        self.messages: list[dict[str, Any]] = []
        """Every client message normalised to camelCase."""
        self.sent: list[dict[str, Any]] = []
        """Every server message sent, in order."""
        self.binary_frames_received = 0
        self._audio_in = bytearray()
        self.audio_in_rate = 16000
        self._audio_out = bytearray()
        self.video_frames: list[VideoFrame] = []
        """Every realtimeInput.video frame, with its mimeType and user turn."""
        self.turns: list[UserTurn] = []
        self.tool_calls: list[dict[str, Any]] = []
        self.tool_responses: list[dict[str, Any]] = []
        self.cancelled_tool_calls: list[str] = []
        self.interruptions = 0
        self.audio_chunks_sent = 0
        self.setup_complete_sent = False
        self.go_away_sent = False
        self.closed = False
        self.closed_by: Literal["server", "client"] | None = None
        self.close_code: int | None = None
        self.close_reason = ""
        self.replies: deque[Reply] = deque()
        """Replies for this connection only (taken before the server's queue)."""
        self._ws: web.WebSocketResponse | None = None
        self._send_lock = asyncio.Lock()
        self._close_done: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._reply_task: asyncio.Task[None] | None = None
        self._player: ReplyPlayer | None = None
        # User-turn state.
        self._turn_audio = bytearray()
        self._turn_rate = 16000
        self._heard: InputTranscriber | None = None
        """The input transcription of the user turn in progress."""
        self._in_activity = False
        self._speech_seen = False
        self._silence_samples = 0
        self._stalled = False
        # NON_BLOCKING calls (live-api.md 2.4, 7.1).
        self._async_calls: dict[str, AsyncCall] = {}
        self._follow_ups: deque[tuple[Reply, list[dict[str, Any]], UserTurn]] = deque()

    def __repr__(self) -> str:
        """Short description for assertion messages."""
        state = f"closed {self.close_code}" if self.closed else "open"
        return f"<Connection #{self.index} {self.provider} {state}>"

    # ----------------------------------------------------------------- record

    @property
    def audio_in(self) -> bytes:
        """All PCM received (decoded), in order."""
        return bytes(self._audio_in)

    @property
    def video_in(self) -> list[bytes]:
        """The image bytes of every video frame received, in order."""
        return [frame.data for frame in self.video_frames]

    @property
    def audio_out(self) -> bytes:
        """All PCM sent (24 kHz), in order."""
        return bytes(self._audio_out)

    @property
    def audio_out_size(self) -> int:
        """len(audio_out), without copying."""
        return len(self._audio_out)

    def record_audio_out(self, pcm: bytes) -> None:
        """Account for model audio sent."""
        self._audio_out += pcm
        self.audio_chunks_sent += 1

    @property
    def session_id(self) -> str | None:
        """The session id (also sent in setupComplete)."""
        return self.session.id if self.session else None

    @property
    def history(self) -> list[Turn]:
        """The session's conversation so far (shared across resumptions)."""
        return self.session.history if self.session else []

    @property
    def manual_activity(self) -> bool:
        """True when automaticActivityDetection.disabled (client VAD)."""
        detection = self.config.get("realtimeInputConfig", {}).get(
            "automaticActivityDetection", {}
        )
        return bool(detection.get("disabled"))

    @property
    def resumption(self) -> bool:
        """True when the setup asked for session resumption."""
        return "sessionResumption" in self.config

    @property
    def replying(self) -> bool:
        """True while a reply is being played."""
        return self._reply_task is not None and not self._reply_task.done()

    @property
    def family(self) -> Family:
        """The model family of the setup's model (families.FAMILIES)."""
        return families.family_of(self.model.model_id if self.model else "")

    @property
    def merged_content(self) -> bool:
        """Several fields per serverContent (server option, else the family)."""
        merge = self.server.merge_server_content
        return self.family.merged_content if merge is None else merge

    @property
    def google_search(self) -> bool:
        """The session's current tools include googleSearch."""
        return any("googleSearch" in tool for tool in self.tools)

    @property
    def async_pending(self) -> bool:
        """A NON_BLOCKING call is unanswered."""
        return bool(self._async_calls)

    def queue_reply(self, *replies: Reply) -> None:
        """Queue replies for this connection's next user turns."""
        self.replies.extend(replies)

    def turn_complete(
        self, *, status: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        """Return a turnComplete serverContent for this family.

        3.x families add `interactionStatus` (3.2): `status`, else
        "IN_PROGRESS" while a NON_BLOCKING call is pending or a follow-up is
        due, else "IDLE".
        """
        content: dict[str, Any] = {"turnComplete": True, **fields}
        if self.family.interaction_status:
            if status is None:
                busy = self._async_calls or self._follow_ups
                status = "IN_PROGRESS" if busy else "IDLE"
            content["interactionStatus"] = status
            self.last_interaction_status = status
        return content

    def register_async_call(
        self, call_id: str, name: str, reply: Reply, turn: UserTurn
    ) -> None:
        """Track a NON_BLOCKING call until its functionResponse arrives."""
        self._async_calls[call_id] = AsyncCall(name, reply, turn)

    def take_follow_up(self) -> tuple[Reply, list[dict[str, Any]]] | None:
        """Pop the next due follow-up (the calling Reply and the responses)."""
        if not self._follow_ups:
            return None
        reply, responses, _ = self._follow_ups.popleft()
        return reply, responses

    # ------------------------------------------------------------------ waits

    async def wait_for(
        self, predicate: Callable[[], bool], timeout: float = 5.0, what: str = ""
    ) -> None:
        """Wait until `predicate()` is true."""
        await wait_until(predicate, timeout, what or f"condition on {self!r}")

    async def wait_setup(self, timeout: float = 5.0) -> None:
        """Wait until setupComplete was sent."""
        await wait_until(lambda: self.setup_complete_sent, timeout, "setupComplete")

    async def wait_closed(self, timeout: float = 5.0) -> int | None:
        """Wait until the socket is closed; returns the close code."""
        await wait_until(lambda: self.closed, timeout, f"{self!r} to close")
        return self.close_code

    async def wait_for_turns(self, count: int, timeout: float = 5.0) -> list[UserTurn]:
        """Wait until `count` user turns ended; returns them."""
        await wait_until(lambda: len(self.turns) >= count, timeout, f"{count} turns")
        return self.turns[:count]

    async def wait_for_tool_responses(
        self, count: int, timeout: float = 5.0
    ) -> list[dict[str, Any]]:
        """Wait until `count` functionResponses arrived; returns them."""
        await wait_until(
            lambda: len(self.tool_responses) >= count,
            timeout,
            f"{count} tool responses",
        )
        return self.tool_responses[:count]

    async def wait_idle(self, timeout: float = 5.0) -> None:
        """Wait until no reply is playing."""
        await wait_until(lambda: not self.replying, timeout, "the reply to finish")

    async def wait_for_message(self, key: str, timeout: float = 5.0) -> dict[str, Any]:
        """Wait for the first client message with top-level `key` (camelCase)."""
        await wait_until(
            lambda: any(key in m for m in self.messages), timeout, f"a {key} message"
        )
        return next(m for m in self.messages if key in m)

    # ------------------------------------------------------------- server side

    async def send(self, message: dict[str, Any], *, text: bool | None = None) -> None:
        """Send one server message (binary JSON unless `text` or configured)."""
        ws = self._ws
        if ws is None or ws.closed:
            raise ConnectionResetError("the fake Live connection is closed")
        if text is None:
            text = _kind(message) in self.server.text_frames
        payload = json.dumps(message, indent=2) + "\n"
        async with self._send_lock:
            if text:
                await ws.send_str(payload)
            else:
                await ws.send_bytes(payload.encode())
        self.sent.append(message)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the socket from the server with `code` and `reason`."""
        ws = self._ws
        if self.closed or ws is None:
            return
        reason = protocol.truncate_reason(reason)
        self._mark_closed("server", code, reason)
        done = self._close_done = asyncio.Event()
        try:
            if not ws.closed:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await ws.close(code=code, message=reason.encode())
        finally:
            done.set()

    async def go_away(self, time_left: float = 2.0) -> None:
        """Send goAway; close 1008 if the client is still connected after."""
        await self._send_go_away(time_left)
        self.spawn(self._abort_after(time_left))

    async def send_error(self, error: ErrorFrame | None = None) -> None:
        """Send an {"error": {...}} data frame."""
        error = error or ErrorFrame()
        body = {"code": error.code, "message": error.message, "status": error.status}
        await self.send({"error": body})

    async def send_resumption_update(self, *, resumable: bool = True) -> str | None:
        """Send a sessionResumptionUpdate (if enabled) and return its handle.

        `resumable=False` (model generating or a tool call pending) sends
        `{"resumable": false}` without a handle, as production does.
        """
        if not self.resumption or self.session is None:
            return None
        if not resumable:
            await self.send({"sessionResumptionUpdate": {"resumable": False}})
            return None
        handle = secrets.token_urlsafe(48)
        self.server.register_handle(handle, self.session)
        await self.send(
            {"sessionResumptionUpdate": {"newHandle": handle, "resumable": True}}
        )
        return handle

    # -------------------------------------------------------------- lifecycle

    async def run(self, ws: web.WebSocketResponse, auth: Rejection | None) -> None:
        """Serve the socket until it is closed."""
        self._ws = ws
        try:
            first = await self._next_message()
            if first is None:
                return
            if auth is not None:
                await self.close(auth.code, auth.reason)
                return
            if not await self._handle_setup(first):
                return
            while (message := await self._next_message()) is not None:
                await self._dispatch(message)
        except ConnectionError:
            pass  # the client went away while the server was sending
        finally:
            await self.shutdown()

    async def shutdown(self) -> None:
        """Stop every task of this connection (idempotent)."""
        if self._close_done is not None:  # a server close handshake in progress
            await self._close_done.wait()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if not self.closed:
            ws = self._ws
            code = ws.close_code if ws is not None else None
            self._mark_closed("client", code, "")

    def _mark_closed(
        self, by: Literal["server", "client"], code: int | None, reason: str
    ) -> None:
        if self.closed:
            return
        self.closed, self.closed_by = True, by
        self.close_code, self.close_reason = code, reason

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run `coro` as a task of this connection, cancelled by `shutdown()`.

        An exception other than ConnectionError (the client left) is recorded
        in `server.errors`, failing the test.
        """
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        if (err := task.exception()) is not None and not isinstance(
            err, ConnectionError
        ):
            self.server.errors.append(err)

    async def _send_go_away(self, time_left: float) -> None:
        await self.send({"goAway": {"timeLeft": _duration(time_left)}})
        self.go_away_sent = True

    async def _abort_after(self, time_left: float) -> None:
        await asyncio.sleep(time_left)
        await self.close(1008, GOAWAY_ABORT)

    async def _expire(self, lifetime: float, notice: float) -> None:
        """End the connection after `lifetime` s: goAway `notice` s before."""
        notice = min(notice, lifetime)
        await asyncio.sleep(lifetime - notice)
        if not self.go_away_sent:
            await self._send_go_away(notice)
        await self._abort_after(notice)

    async def _resumption_updates(self, interval: float) -> None:
        """Send production's periodic updates (3.6).

        Not resumable while replying or while a NON_BLOCKING call runs.
        """
        while True:
            await asyncio.sleep(interval)
            busy = self.replying or self.async_pending
            await self.send_resumption_update(resumable=not busy)

    def _start_timers(self) -> None:
        """Start the connection-lifetime and periodic-resumption timers, if set."""
        server = self.server
        if server.connection_lifetime is not None:
            self.spawn(self._expire(server.connection_lifetime, server.go_away_notice))
        if server.resumption_update_interval is not None and self.resumption:
            self.spawn(self._resumption_updates(server.resumption_update_interval))

    async def _next_message(self) -> dict[str, Any] | None:
        """Read the next client JSON message; None once closed (or closed on error)."""
        ws = self._ws
        assert ws is not None
        while True:
            msg = await ws.receive()
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                if not self.closed:
                    self._mark_closed("client", ws.close_code, str(msg.extra or ""))
                return None
            if msg.type == WSMsgType.ERROR:
                self._mark_closed("client", 1006, str(msg.data))
                return None
            if msg.type == WSMsgType.BINARY:
                self.binary_frames_received += 1
                raw = bytes(msg.data).decode(errors="replace")
            elif msg.type == WSMsgType.TEXT:
                raw = str(msg.data)
            else:
                continue
            self.raw_frames.append(raw)
            try:
                data = json.loads(raw)
            except ValueError:
                data = None
            if not isinstance(data, dict):
                await self.close(
                    1007, "Invalid JSON payload received. Unexpected token."
                )
                return None
            self.frames.append(data)
            message: dict[str, Any] = protocol.normalize(data)
            self.messages.append(message)
            return message

    # ------------------------------------------------------------------ setup

    async def _reject(self, rejection: Rejection) -> bool:
        self.rejected_field = rejection.field
        await self.close(rejection.code, rejection.reason)
        return False

    async def _handle_setup(self, message: dict[str, Any]) -> bool:
        """Validate the first message; send setupComplete. False when closed."""
        if set(message) != {"setup"} or not isinstance(message["setup"], dict):
            return await self._reject(Rejection(1007, INVALID_ARGUMENT))
        self.setup = self.frames[-1]["setup"]
        self.config = message["setup"]
        model = protocol.check_model(
            self.config.get("model"),
            self.route,
            project=self.token.account.project_id if self.token else None,
            models=self.server.models(self.provider),
            locations=self.server.vertex_locations,
        )
        if isinstance(model, Rejection):
            return await self._reject(model)
        bad = protocol.check_setup(
            self.config,
            model,
            self.provider,
            strict=self.server.strict_families,
            unverified=self.unverified_fields,
        )
        if bad is not None:
            return await self._reject(bad)
        self.model = model
        self.tools = list(self.config.get("tools") or [])
        kinds = {key for tool in self.tools for key in tool}
        self.search_with_functions = {"googleSearch", "functionDeclarations"} <= kinds
        if "systemInstruction" in self.config:
            self.system_instruction = _instruction(self.config["systemInstruction"])
        if (bad := await self._attach_session()) is not None:
            return await self._reject(bad)
        fault = self.fault
        if isinstance(fault, Close):
            await self.close(fault.code, fault.reason)
            return False
        if isinstance(fault, Stall):
            self._stalled = True
            return True
        if isinstance(fault, ErrorFrame):
            await self.send_error(fault)
            self._stalled = True
            return True
        body: dict[str, Any] = {}
        if self.server.send_session_id and self.session is not None:
            body["sessionId"] = self.session.id
        await self.send({"setupComplete": body})
        self.setup_complete_sent = True
        await self.send_resumption_update()
        self._start_timers()
        if isinstance(fault, GoAway):
            await self.go_away(fault.time_left)
        return True

    async def _attach_session(self) -> Rejection | None:
        """Start a session or resume one by handle."""
        assert self.model is not None
        handle = (self.config.get("sessionResumption") or {}).get("handle")
        if not handle:
            self.session = self.server.new_session(self.model.resource)
        else:
            found = self.server.resolve_handle(str(handle))
            if found is None:
                return Rejection(1007, INVALID_ARGUMENT)
            session, history_len = found
            if session.model != self.model.resource:
                return Rejection(1007, INVALID_ARGUMENT)
            # Give a closing predecessor a moment; a still-open one is an error.
            with contextlib.suppress(TimeoutError):
                await wait_until(
                    lambda: all(c.closed for c in session.connections), 0.2, ""
                )
            if not all(c.closed for c in session.connections):
                return Rejection(1011, INTERNAL_ERROR)
            del session.history[history_len:]
            self.session, self.resumed = session, True
        self.session.connections.append(self)
        return None

    # --------------------------------------------------------------- dispatch

    async def _dispatch(self, message: dict[str, Any]) -> None:
        unknown = sorted(set(message) - protocol.CLIENT_MESSAGE_KEYS)
        if unknown or len(message) != 1:
            reason = (
                f'Invalid JSON payload received. Unknown name "{unknown[0]}": '
                "Cannot find field."
                if unknown
                else INVALID_ARGUMENT
            )
            await self.close(1007, reason)
            return
        if "setup" in message:
            await self.close(1007, INVALID_ARGUMENT)
            return
        if "realtimeInput" in message:
            await self._realtime_input(message["realtimeInput"] or {})
        elif "clientContent" in message:
            await self._client_content(message["clientContent"] or {})
        elif "toolResponse" in message:
            await self._tool_response(message["toolResponse"] or {})
        elif "contextUpdate" in message:
            await self._context_update(message["contextUpdate"] or {})

    async def _context_update(self, body: dict[str, Any]) -> None:
        """Apply a contextUpdate (live-api.md 2.5): only the fields set."""
        if not self.family.context_update:
            # 2.5: no source says the 2.5 models serve it (families.CONTEXT_UPDATE).
            if self.server.strict_families:
                await self._reject(
                    Rejection(
                        1007,
                        'Invalid JSON payload received. Unknown name "contextUpdate"'
                        ": Cannot find field.",
                        families.CONTEXT_UPDATE,
                    )
                )
                return
            if families.CONTEXT_UPDATE not in self.unverified_fields:
                self.unverified_fields.append(families.CONTEXT_UPDATE)
        unknown = sorted(set(body) - {"systemInstruction", "tools"})
        if unknown:
            await self._reject(
                Rejection(
                    1007,
                    f'Invalid JSON payload received. Unknown name "{unknown[0]}" '
                    "at 'context_update': Cannot find field.",
                    f"contextUpdate.{unknown[0]}",
                )
            )
            return
        if "tools" in body:
            wrapper = body["tools"] or {}
            if not isinstance(wrapper, dict):  # 2.5: {"tools": {"tools": [...]}}
                await self._reject(
                    Rejection(1007, INVALID_ARGUMENT, "contextUpdate.tools")
                )
                return
            tools = list(wrapper.get("tools") or [])
            bad = families.check(
                {"tools": tools},
                self.family,
                self.provider,
                strict=self.server.strict_families,
                unverified=self.unverified_fields,
            )
            if bad is not None:
                await self._reject(bad)
                return
            self.tools = tools  # an empty list clears them
        if "systemInstruction" in body:
            text = _instruction(body["systemInstruction"])
            self.system_instruction = text
            self.system_instruction_updates.append(text)
        self.context_updates.append(body)

    async def _realtime_input(self, body: dict[str, Any]) -> None:
        blobs = [body[key] or {} for key in ("audio", "video") if key in body]
        blobs += (body.get("mediaChunks") or [])[:1]  # production uses the first
        for blob in blobs:
            try:
                data = protocol.decode_b64(str(blob.get("data", "")))
            except ValueError:
                await self.close(1007, INVALID_ARGUMENT)
                return
            mime_type = str(blob.get("mimeType", ""))
            if mime_type.startswith("audio/"):
                await self._audio(data, protocol.pcm_rate(blob.get("mimeType")))
            else:
                self.video_frames.append(
                    VideoFrame(mime_type=mime_type, data=data, turn=len(self.turns))
                )
        if "activityStart" in body or "activityEnd" in body:
            if not self.manual_activity:
                await self.close(1007, EXPLICIT_ACTIVITY)
                return
            if "activityStart" in body:
                await self.interrupt()
                self._in_activity = True
                self._reset_turn()
            if "activityEnd" in body:
                self._in_activity = False
                await self._end_turn("activityEnd")
        if (
            body.get("audioStreamEnd")
            and not self.manual_activity
            and self._speech_seen
        ):
            await self._end_turn("audioStreamEnd")
        if isinstance(body.get("text"), str):
            await self.interrupt()
            await self._end_turn("text", body["text"])

    async def _audio(self, pcm: bytes, rate: int) -> None:
        self._audio_in += pcm
        self.audio_in_rate = rate
        if self._stalled:
            return
        if self.manual_activity:
            if self._in_activity:
                await self._add_turn_audio(pcm, rate)
            return
        await self._add_turn_audio(pcm, rate)
        await self._detect_activity(pcm, rate)

    async def _add_turn_audio(self, pcm: bytes, rate: int) -> None:
        """Add audio to the user turn; the streaming STT hears it."""
        self._turn_audio += pcm
        self._turn_rate = rate
        await self._transcriber(rate).feed(pcm)

    def _transcriber(self, rate: int) -> InputTranscriber:
        """Return the input transcription of the turn in progress (made on demand)."""
        if self._heard is None:
            streaming = (
                self.server.input_transcription == "streaming"
                and "inputAudioTranscription" in self.config
            )
            self._heard = InputTranscriber(self, rate, streaming=streaming)
        return self._heard

    async def _detect_activity(self, pcm: bytes, rate: int) -> None:
        """Server VAD: speech = 10 ms frames over the peak threshold."""
        silence_ms = (
            self.config.get("realtimeInputConfig", {})
            .get("automaticActivityDetection", {})
            .get("silenceDurationMs")
            or self.server.vad_silence_ms
        )
        frame = 2 * max(rate // 100, 1)
        samples = memoryview(pcm)[: len(pcm) // 2 * 2].cast("h")
        step = frame // 2
        for start in range(0, len(samples), step):
            part = samples[start : start + step]
            low, high = min(part), max(part)
            loud = max(high, -low) >= self.server.vad_threshold
            if loud:
                if not self._speech_seen and self.replying:
                    await self.interrupt()
                self._speech_seen = True
                self._silence_samples = 0
            elif self._speech_seen:
                self._silence_samples += len(part)
                if self._silence_samples * 1000 >= int(silence_ms) * rate:
                    await self._end_turn("silence")

    async def _client_content(self, body: dict[str, Any]) -> None:
        await self.interrupt()
        user_text: list[str] = []
        for content in body.get("turns") or []:
            role: Literal["user", "model"] = (
                "model" if content.get("role") == "model" else "user"
            )
            text = "".join(str(p.get("text", "")) for p in content.get("parts") or [])
            if self.session is not None:
                self.session.history.append(Turn(role=role, text=text))
            if role == "user" and text:
                user_text.append(text)
        if body.get("turnComplete") and not self._stalled:
            await self._end_turn("clientContent", " ".join(user_text) or None, False)

    async def _tool_response(self, body: dict[str, Any]) -> None:
        """Hand BLOCKING results to the player; schedule NON_BLOCKING ones."""
        batches: dict[int, tuple[AsyncCall, list[dict[str, Any]], list[str]]] = {}
        for response in body.get("functionResponses") or []:
            if self.provider == "gemini_api" and not response.get("id"):
                await self.close(1007, INVALID_ARGUMENT)
                return
            scheduling, where = _scheduling(response)
            if where == "functionResponse" and scheduling not in SCHEDULINGS:
                await self.close(1007, INVALID_ARGUMENT)  # a protobuf enum (0)
                return
            self.tool_responses.append(response)
            call_id = str(response.get("id", ""))
            call = self._async_calls.pop(call_id, None)
            result = ToolResult(
                id=call_id,
                name=str(response.get("name", "")),
                non_blocking=call is not None,
                scheduling=scheduling,
                scheduling_in=where,
            )
            self.tool_results.append(result)
            if call is None:
                if self._player is not None:
                    self._player.deliver(response)
                continue
            if self.session is not None:  # every result enters the history
                output = json.dumps(response.get("response") or {}, sort_keys=True)
                self.session.history.append(Turn(role="tool", text=output))
            batch = batches.setdefault(id(call.reply), (call, [], []))
            batch[1].append(response)
            batch[2].append(result.effective or "WHEN_IDLE")
        for call, responses, schedulings in batches.values():
            strongest = next(s for s in SCHEDULINGS if s in schedulings)
            await self._schedule(call, responses, strongest)
        await self._idle_if_done()

    async def _schedule(
        self, call: AsyncCall, responses: list[dict[str, Any]], scheduling: str
    ) -> None:
        """Speak the follow-up of NON_BLOCKING results per `scheduling` (2.4)."""
        if scheduling == "SILENT" or self.closed:
            return  # the results only entered the history
        due = (call.reply, responses, call.turn)
        if scheduling == "INTERRUPT":
            self._follow_ups.appendleft(due)
            player = self._player
            if self.replying and player is not None and not player.finishing:
                await self.interrupt()  # the current output stops now
        else:  # WHEN_IDLE: after the current output
            self._follow_ups.append(due)
        self._start_follow_ups()

    def _start_follow_ups(self) -> None:
        """Play the due follow-ups now if the model is idle."""
        if self.replying or not self._follow_ups or self.closed:
            return
        turn = self._follow_ups[0][2]
        heard = InputTranscriber(self, turn.sample_rate, streaming=False)
        self._player = ReplyPlayer(self, turn, None, heard, follow_up=True)
        self._reply_task = self.spawn(self._player.run())

    async def _idle_if_done(self) -> None:
        """3.x: end an IN_PROGRESS interaction that produced nothing more."""
        if (
            self.family.interaction_status
            and self.last_interaction_status == "IN_PROGRESS"
            and not (self.replying or self._async_calls or self._follow_ups)
            and not self.closed
        ):
            await self.send({"serverContent": self.turn_complete(status="IDLE")})

    # ------------------------------------------------------------------ turns

    def _reset_turn(self) -> None:
        self._turn_audio = bytearray()
        self._heard = None
        self._speech_seen = False
        self._silence_samples = 0

    async def _end_turn(
        self, ended_by: TurnEnd, text: str | None = None, record: bool = True
    ) -> None:
        """Close the user turn and start the reply task."""
        if self._stalled:
            return
        await self.interrupt()
        audio = bytes(self._turn_audio)
        heard = self._transcriber(self._turn_rate)
        self._reset_turn()
        turn = UserTurn(
            connection=self,
            index=len(self.turns),
            ended_by=ended_by,
            audio=audio,
            sample_rate=self._turn_rate,
            heard=recognize(audio, self._turn_rate) if audio else None,
            text=text,
        )
        self.turns.append(turn)
        entry = None
        if record and self.session is not None:
            entry = Turn(role="user", text=turn.query)
            self.session.history.append(entry)
        self._player = ReplyPlayer(self, turn, entry, heard)
        self._reply_task = self.spawn(self._player.run())

    async def interrupt(self) -> None:
        """Barge-in: stop the playing reply (interrupted, turnComplete)."""
        task, player = self._reply_task, self._player
        if task is None or player is None or task.done():
            return
        if player.finishing:  # too late to interrupt: let it complete
            await wait_until(
                lambda: task.done() or not player.finishing, 5.0, "the reply to end"
            )
            if task.done():
                return  # else it went on with a follow-up: cut that one
        task.cancel()
        await asyncio.wait({task})
        self.interruptions += 1
        await player.interrupted()


def _instruction(content: Any) -> str:
    """Return the text of a systemInstruction Content (parts as paragraphs)."""
    if isinstance(content, str):
        return content
    parts = (content.get("parts") or []) if isinstance(content, dict) else []
    return "\n\n".join(str(part.get("text", "")) for part in parts)


def _scheduling(
    response: dict[str, Any],
) -> tuple[str | None, Literal["functionResponse", "response"] | None]:
    """Return a functionResponse's scheduling and where it was (2.4, 10.7)."""
    if "scheduling" in response:
        return str(response["scheduling"]), "functionResponse"
    inner = response.get("response")
    if isinstance(inner, dict) and "scheduling" in inner:
        return str(inner["scheduling"]), "response"
    return None, None


def _duration(seconds: float) -> str:
    """google.protobuf.Duration JSON: "2s", "0.500s"."""
    return f"{seconds:g}s" if float(seconds).is_integer() else f"{seconds:.3f}s"


def _kind(message: dict[str, Any]) -> str:
    """Return the frame kind matched against `server.text_frames`."""
    if "serverContent" in message:
        content = message["serverContent"]
        for key in (
            "interrupted",
            "turnComplete",
            "generationComplete",
            "modelTurn",
            "inputTranscription",
            "outputTranscription",
        ):
            if key in content:
                return key
    return next(iter(message), "")
