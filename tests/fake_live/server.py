"""FakeLiveServer: an aiohttp stand-in for Gemini Live (Developer API and Vertex).

Serves, on 127.0.0.1 and a free port:

* `/ws/google.ai.generativelanguage.{v1beta|v1alpha|v1}.GenerativeService.
  {BidiGenerateContent|BidiGenerateContentConstrained}` (API key in the
  `x-goog-api-key` header or `?key=`),
* `/ws/google.cloud.aiplatform.{v1|v1beta1}.LlmBidiService/BidiGenerateContent`
  (`Authorization: Bearer` token from the token endpoint),
* `POST /token`, the OAuth2 JWT-bearer grant for `service_account_json()`,
* the Gemini TTS models' `streamGenerateContent` of both providers
  (`server.speech`, speech_endpoint.py).

Repeated slashes in paths are tolerated, as by production.
"""

# Test helpers take a timeout argument.
# ruff: noqa: ASYNC109
from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
import contextlib
import secrets
from typing import Any, Literal, Self

from aiohttp import web

from .auth import TokenAuthority
from .connection import Connection, Session, wait_until
from .faults import FaultQueue
from .protocol import (
    DEVELOPER_MODELS,
    VERTEX_LOCATIONS,
    VERTEX_MODELS,
    Provider,
    Rejection,
    Route,
    parse_path,
)
from .scenario import (
    API_KEY_INVALID,
    INVALID_CREDENTIALS,
    MISSING_CREDENTIALS,
    UNREGISTERED_CALLER,
    Fault,
    Refuse,
    Reply,
    Responder,
)
from .speech_endpoint import SpeechService


class FakeLiveServer:
    """A scriptable fake of the Gemini Live WebSocket API.

    Configure before or during a test (plain attributes): `default_reply`,
    `responder`, `model_delay`, `realtime_factor`, `text_frames`,
    `send_session_id`, `vad_silence_ms`, `vad_threshold`, `token_lifetime`,
    the served `developer_models` / `vertex_models` / `vertex_locations`, and
    the production behaviours below (defaults keep them off or minimal):

    * `input_transcription` ("at_turn_end" | "streaming") and
      `input_transcription_lag`: user-speech transcript at the reply's start,
      or word by word while the audio arrives (live-api.md 2.3, 3.2, 8.2);
    * `output_transcript_lag`: output transcription trailing its audio (3.2,
      8.2; per reply `Reply.transcript_lag`);
    * `transcription_finished_flag`: `finished: true` on the last fragment of
      each transcription (production never sets it, 8.3);
    * `connection_lifetime` and `go_away_notice`: goAway, then the 1008
      GOAWAY_ABORT close, as production ends connections after ~10 min (3.5,
      6);
    * `resumption_update_interval`: periodic sessionResumptionUpdate, not
      resumable (no handle) while the model generates or a tool call is
      pending (3.6, 3.10); `expire_handles()` invalidates issued handles.

    Each model follows its family's contract (families.py: `FAMILIES`,
    `RULES`; 2.1, 7): setup rejections (`Connection.rejected_field`),
    interactionStatus on every 3.x turnComplete (3.2), NON_BLOCKING function
    calls by default on 3.8 (2.4, 7.1), contextUpdate applied (2.5). Options:

    * `merge_server_content` (None: the family's default, on for 3.x, off for
      2.5): one serverContent per audio chunk with its outputTranscription,
      the last one also carrying generationComplete and turnComplete (3, 8.1);
    * `strict_families` (False): also close on the family rules the
      reference does not state as rejections (`stated=False` in
      families.RULES: thinkingLevel on 2.5, thinkingBudget on 3.1 and 3.8
      Extended Thinking, thinkingLevel MINIMAL and BLOCKING declarations on
      Extended Thinking, contextUpdate on 2.5); by default they are accepted
      and listed in `Connection.unverified_fields`.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        """Create a stopped server (see `start()`)."""
        self.host = host
        self.port = 0
        self.api_key = "AIzaSyFAKE-" + secrets.token_urlsafe(21)[:28]
        """A valid Developer API key."""
        self.authority = TokenAuthority()
        self.connections: list[Connection] = []
        """Every WebSocket (valid path), in connect order."""
        self.sessions: dict[str, Session] = {}
        self.replies: deque[Reply] = deque()
        """Queued replies, taken one per user turn (after a connection's own)."""
        self.responder: Responder | None = None
        """Chooses a reply per user turn when no reply is queued."""
        self.default_reply = Reply(text="OK.")
        """Used when nothing is queued and the responder returns None."""
        self.model_delay = 0.0
        """Seconds between the end of a user turn and the first model frame."""
        self.realtime_factor: float | None = None
        """Audio pacing for replies: None as fast as possible, 1.0 real time."""
        self.text_frames: set[str] = {"generationComplete"}
        """Message kinds sent as TEXT frames (all others are BINARY), e.g.
        "setupComplete", "modelTurn", "outputTranscription", "turnComplete",
        "toolCall", "sessionResumptionUpdate", "goAway", "error"."""
        self.send_session_id = True
        """Include sessionId in setupComplete."""
        self.vad_silence_ms = 500
        """Server VAD: trailing silence that ends a turn (unless the setup's
        automaticActivityDetection.silenceDurationMs says otherwise)."""
        self.vad_threshold = 1000
        """Server VAD: peak PCM16 amplitude counted as speech."""
        self.input_transcription: Literal["at_turn_end", "streaming"] = "at_turn_end"
        """When the inputTranscription of a user turn is sent (setup with
        inputAudioTranscription): "at_turn_end" all of it when the reply starts;
        "streaming" word by word while the turn's audio arrives (fake STT of
        the audio so far, `SpeechStream`), the last words after the turn."""
        self.input_transcription_lag = 0.2
        """Streaming: seconds between the audio that completes a word (or the
        end of the turn) and that word's fragment."""
        self.output_transcript_lag = 0.0
        """Seconds each outputTranscription fragment trails the audio chunk it
        belongs to (`Reply.transcript_lag` overrides); 0: just before it."""
        self.transcription_finished_flag = False
        """Set `finished: true` on the last fragment of each transcription."""
        self.connection_lifetime: float | None = None
        """Seconds from setupComplete after which a connection is aborted (1008
        GOAWAY_ABORT), goAway coming `go_away_notice` s before; None: never.
        Production: ~600 s (goAway at ~540 s with timeLeft "50s")."""
        self.go_away_notice = 50.0
        """The goAway timeLeft before `connection_lifetime` ends."""
        self.resumption_update_interval: float | None = None
        """Seconds between periodic sessionResumptionUpdates (setup with
        sessionResumption): a new handle, or `{"resumable": false}` without a
        handle while a reply plays (then also one at the start of each reply).
        None: only after setupComplete and after each turn."""
        self.merge_server_content: bool | None = None
        """Several fields per serverContent (audio part, outputTranscription,
        generationComplete, turnComplete); None: the model family's default
        (3.x on, 2.5 off; live-api.md 3, 8.1)."""
        self.strict_families = False
        """Close 1007 on the `stated=False` family rules too (families.RULES)."""
        self.developer_models: set[str] = set(DEVELOPER_MODELS)
        self.vertex_models: set[str] = set(VERTEX_MODELS)
        self.vertex_locations: set[str] = set(VERTEX_LOCATIONS)
        self.http_requests: list[tuple[str, str]] = []
        """(method, path) of every HTTP request, upgrades included."""
        self.errors: list[BaseException] = []
        """Exceptions raised inside the server (failing the test at teardown)."""
        self.speech = SpeechService(self)
        """The TTS endpoint: served models, faults, recorded calls."""
        self._faults: FaultQueue[Fault] = FaultQueue()
        self._handles: dict[str, tuple[Session, int]] = {}
        self._runner: web.AppRunner | None = None

    # --------------------------------------------------------------- running

    async def start(self) -> Self:
        """Listen on `host` at `port` (0, the default: a free one)."""
        app = web.Application()
        app.router.add_post("/token", self.authority.handle_token)
        self.speech.add_routes(app.router)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = int(self._runner.addresses[0][1])
        self.authority.token_uri = f"{self.base_url}/token"
        return self

    async def stop(self) -> None:
        """Close every WebSocket (1001) and stop listening; no task survives."""
        await asyncio.gather(*(conn.close(1001, "") for conn in self.connections))
        await asyncio.gather(*(conn.shutdown() for conn in self.connections))
        self.speech.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        """Start the server."""
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        """Stop the server."""
        await self.stop()

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:PORT (usable as LiveEndpoint.base_url)."""
        return f"http://{self.host}:{self.port}"

    @property
    def token_uri(self) -> str:
        """The fake OAuth2 token endpoint."""
        return self.authority.token_uri

    @property
    def token_lifetime(self) -> float:
        """Seconds an issued access token stays valid (`expires_in`)."""
        return self.authority.token_lifetime

    @token_lifetime.setter
    def token_lifetime(self, seconds: float) -> None:
        self.authority.token_lifetime = seconds

    def ws_url(
        self,
        provider: Provider = "gemini_api",
        version: str | None = None,
        *,
        key: str | None = None,
    ) -> str:
        """Return the WebSocket URL of a provider (default v1beta / v1beta1)."""
        base = f"ws://{self.host}:{self.port}/ws/"
        if provider == "gemini_api":
            url = (
                f"{base}google.ai.generativelanguage.{version or 'v1beta'}"
                ".GenerativeService.BidiGenerateContent"
            )
        else:
            url = (
                f"{base}google.cloud.aiplatform.{version or 'v1beta1'}"
                ".LlmBidiService/BidiGenerateContent"
            )
        return f"{url}?key={key}" if key else url

    @staticmethod
    def model_resource(
        model: str | None = None,
        provider: Provider = "gemini_api",
        *,
        project: str = "test-project",
        location: str = "us-central1",
    ) -> str:
        """setup.model for a provider (default: the provider's default model)."""
        if provider == "gemini_api":
            return f"models/{model or 'gemini-2.5-flash-native-audio-preview-12-2025'}"
        model = model or "gemini-live-2.5-flash-native-audio"
        return (
            f"projects/{project}/locations/{location}/publishers/google/models/{model}"
        )

    # ------------------------------------------------------------ scripting

    def queue_reply(self, *replies: Reply) -> None:
        """Queue replies for the next user turns (any connection, FIFO)."""
        self.replies.extend(replies)

    def add_fault(self, fault: Fault, times: int | None = 1) -> None:
        """Apply `fault` to the next `times` connections (None: all of them).

        Faults queue up in order: e.g. `add_fault(Refuse(status=503))` then
        `add_fault(Close.quota())` fails the first connection at the upgrade
        and the second at setup; the third works.
        """
        self._faults.add(fault, times)

    def clear_faults(self) -> None:
        """Drop every pending fault."""
        self._faults.clear()

    def service_account_json(self, project_id: str = "test-project") -> str:
        """Return a service-account key file (fresh RSA key) trusted by /token."""
        return self.authority.account_json(self.authority.create_account(project_id))

    def expire_tokens(self) -> None:
        """Invalidate every access token issued so far."""
        self.authority.expire_all()

    @property
    def tokens_issued(self) -> int:
        """How many access tokens the token endpoint handed out."""
        return len(self.authority.tokens)

    def models(self, provider: Provider) -> set[str]:
        """Return the model ids served for `provider`."""
        return self.developer_models if provider == "gemini_api" else self.vertex_models

    # ------------------------------------------------------------- sessions

    def new_session(self, model: str) -> Session:
        """Create a session (used by connections)."""
        session = Session(id=secrets.token_hex(8), model=model)
        self.sessions[session.id] = session
        return session

    def register_handle(self, handle: str, session: Session) -> None:
        """Remember a resumption handle and the history length it restores."""
        session.handles.append(handle)
        self._handles[handle] = (session, len(session.history))

    def resolve_handle(self, handle: str) -> tuple[Session, int] | None:
        """Return the session and history length for a handle."""
        return self._handles.get(handle)

    def expire_handles(self) -> None:
        """Invalidate every resumption handle issued so far.

        Resuming with one is then refused like an unknown handle (1007
        "Request contains an invalid argument.").
        """
        self._handles.clear()

    # ---------------------------------------------------------------- waits

    async def wait_for(
        self, predicate: Callable[[], bool], timeout: float = 5.0, what: str = ""
    ) -> None:
        """Wait until `predicate()` is true (TimeoutError after `timeout` s)."""
        await wait_until(predicate, timeout, what or "a condition")

    async def wait_for_connections(
        self, count: int, timeout: float = 5.0
    ) -> list[Connection]:
        """Wait until `count` WebSockets were accepted; returns the first ones."""
        await wait_until(
            lambda: len(self.connections) >= count, timeout, f"{count} connections"
        )
        return self.connections[:count]

    async def wait_for_connection(
        self, index: int = 0, timeout: float = 5.0
    ) -> Connection:
        """Wait for connection number `index` (0-based)."""
        return (await self.wait_for_connections(index + 1, timeout))[index]

    # ------------------------------------------------------------- handlers

    def _check_auth(
        self, request: web.Request, route: Route
    ) -> tuple[Rejection | None, Any]:
        """(rejection or None, the bearer token used)."""
        if route.provider == "gemini_api":
            key = request.headers.get("x-goog-api-key") or request.query.get("key")
            if not key:
                return Rejection(1008, UNREGISTERED_CALLER), None
            if key != self.api_key:
                return Rejection(1007, API_KEY_INVALID), None
            return None, None
        authorization = request.headers.get("Authorization")
        if not authorization:
            return Rejection(1008, MISSING_CREDENTIALS), None
        token = self.authority.check(authorization)
        if token is None:
            return Rejection(1008, INVALID_CREDENTIALS), None
        return None, token

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.http_requests.append((request.method, request.raw_path))
        route = parse_path(request.path)
        if route is None or request.method != "GET":
            return web.Response(status=404, text="Not Found")
        fault = self._faults.take()
        if isinstance(fault, Refuse):
            return web.Response(status=fault.status, text=fault.body)
        # timeout: how long a server close waits for the client's close frame.
        ws = web.WebSocketResponse(timeout=1.0, autoping=True, max_msg_size=16 << 20)
        await ws.prepare(request)
        auth, token = self._check_auth(request, route)
        conn = Connection(self, len(self.connections), request, route, fault)
        conn.token = token
        self.connections.append(conn)
        try:
            await conn.run(ws, auth)
        except Exception as err:
            self.errors.append(err)
            with contextlib.suppress(Exception):
                await conn.close(1011, "Internal error encountered.")
            raise
        return ws
