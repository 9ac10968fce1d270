"""A client of Home Assistant's REST and WebSocket APIs, as apps and browsers use them."""

# Test helpers take a timeout argument.
# ruff: noqa: ASYNC109
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
import contextlib
from dataclasses import dataclass, field
import itertools
from typing import Any, Self

import aiohttp

from tests.fake_live.speech import chunks, silence

TIMEOUT = 30.0
"""Seconds any request or command may take."""
PIPELINE_TIMEOUT = 60.0
CHUNK_MS = 20


class ApiError(RuntimeError):
    """Home Assistant answered with an error (or not in time)."""


async def poll(
    check: Callable[[], Awaitable[bool]],
    timeout: float,
    failure: Callable[[], str],
    interval: float = 0.2,
) -> None:
    """Ask `check()` every `interval` s until it is true; ApiError(failure()) after `timeout` s.

    For states Home Assistant's APIs offer no event of.
    """
    try:
        async with asyncio.timeout(timeout):
            while not await check():  # noqa: ASYNC110 (no event to wait for)
                await asyncio.sleep(interval)
    except TimeoutError:
        raise ApiError(failure()) from None


@dataclass(slots=True)
class PipelineRun:
    """The events of one `assist_pipeline/run`, as the Assist dialog gets them."""

    events: list[dict[str, Any]] = field(default_factory=list)
    """Each event's {"type", "data", "timestamp"} in order."""

    def of(self, kind: str) -> list[dict[str, Any]]:
        """Return the data of the events of one type (e.g. "stt-end")."""
        return [e.get("data") or {} for e in self.events if e["type"] == kind]

    @property
    def types(self) -> list[str]:
        """Event types in order."""
        return [e["type"] for e in self.events]

    @property
    def error(self) -> dict[str, Any] | None:
        """The error event's data, if any."""
        errors = self.of("error")
        return errors[0] if errors else None

    @property
    def heard(self) -> str:
        """The speech-to-text result."""
        return str(self.of("stt-end")[0]["stt_output"]["text"])

    @property
    def speech(self) -> str:
        """The agent's answer."""
        response = self.of("intent-end")[0]["intent_output"]["response"]
        return str(response["speech"]["plain"]["speech"])

    @property
    def tts_url(self) -> str:
        """The path of the answer's audio (/api/tts_proxy/...)."""
        return str(self.of("tts-end")[0]["tts_output"]["url"])


class HomeAssistantClient:
    """REST and one WebSocket of a Home Assistant, with an access token.

    Use as `async with HomeAssistantClient(url, token) as client:`.
    """

    def __init__(self, url: str, token: str) -> None:
        """Prepare a client of `url` (http://host:port) authenticated by `token`."""
        self.url = url.rstrip("/")
        self._token = token
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._ids = itertools.count(1)
        self._queues: dict[int, asyncio.Queue[dict[str, Any]]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        """Open the WebSocket and authenticate."""
        self._http = aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {self._token}"},
            timeout=aiohttp.ClientTimeout(total=TIMEOUT),
        )
        try:
            self._ws = await self._http.ws_connect(f"{self.url}/api/websocket")
            async with asyncio.timeout(TIMEOUT):
                await self._authenticate(self._ws)
        except BaseException:
            await self.close()
            raise
        self._reader = asyncio.create_task(self._read())
        return self

    async def _authenticate(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """auth_required, auth with the token, auth_ok (ApiError otherwise)."""
        required = await ws.receive_json()
        if required.get("type") != "auth_required":
            raise ApiError(f"Unexpected first message: {required}")
        await ws.send_json({"type": "auth", "access_token": self._token})
        answer = await ws.receive_json()
        if answer.get("type") != "auth_ok":
            raise ApiError(f"WebSocket authentication failed: {answer}")

    async def __aexit__(self, *exc: object) -> None:
        """Close the WebSocket and the HTTP session."""
        await self.close()

    async def close(self) -> None:
        """Close everything (idempotent)."""
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        if self._ws is not None:
            await self._ws.close()
            self._ws = None
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def _read(self) -> None:
        """Hand each WebSocket message to the queue of its command id."""
        assert self._ws is not None
        async for message in self._ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                break
            data = message.json()
            for item in data if isinstance(data, list) else [data]:
                if (queue := self._queues.get(item.get("id"))) is not None:
                    queue.put_nowait(item)
        for queue in self._queues.values():
            queue.put_nowait({"type": "closed"})

    # ------------------------------------------------------------- WebSocket

    @contextlib.asynccontextmanager
    async def _subscription(
        self, message: dict[str, Any]
    ) -> AsyncIterator[tuple[int, asyncio.Queue[dict[str, Any]]]]:
        """Send a command; yield its id and the queue of its messages."""
        if self._ws is None:
            raise ApiError("Client is closed")
        msg_id = next(self._ids)
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._queues[msg_id] = queue
        try:
            await self._ws.send_json({**message, "id": msg_id})
            yield msg_id, queue
        finally:
            del self._queues[msg_id]

    @staticmethod
    async def _next(
        queue: asyncio.Queue[dict[str, Any]], timeout: float, what: str
    ) -> dict[str, Any]:
        try:
            async with asyncio.timeout(timeout):
                item = await queue.get()
        except TimeoutError:
            raise ApiError(f"No answer to {what} within {timeout:.0f} s") from None
        if item["type"] == "closed":
            raise ApiError(f"WebSocket closed while waiting for {what}")
        return item

    @staticmethod
    def _result(item: dict[str, Any], what: str) -> Any:
        if item["type"] != "result":
            raise ApiError(f"Unexpected answer to {what}: {item}")
        if not item["success"]:
            error = item.get("error") or {}
            raise ApiError(f"{what}: {error.get('code')}: {error.get('message')}")
        return item.get("result")

    async def command(self, type_: str, timeout: float = TIMEOUT, **fields: Any) -> Any:
        """Send a WebSocket command; return its result (ApiError on failure)."""
        async with self._subscription({"type": type_, **fields}) as (_, queue):
            return self._result(await self._next(queue, timeout, type_), type_)

    async def process(
        self,
        text: str,
        *,
        agent_id: str | None = None,
        conversation_id: str | None = None,
        language: str | None = None,
    ) -> dict[str, Any]:
        """`conversation/process`: the agent's result for typed text."""
        fields: dict[str, Any] = {"text": text, "conversation_id": conversation_id}
        if agent_id:
            fields["agent_id"] = agent_id
        if language:
            fields["language"] = language
        result: dict[str, Any] = await self.command("conversation/process", **fields)
        return result

    async def run_pipeline(
        self,
        pcm: bytes,
        *,
        sample_rate: int = 16000,
        pipeline: str | None = None,
        end_stage: str = "tts",
        conversation_id: str | None = None,
        trailing_silence_ms: int = 1500,
        timeout: float = PIPELINE_TIMEOUT,
    ) -> PipelineRun:
        """`assist_pipeline/run` from STT on microphone PCM16 mono, as a browser.

        The audio goes as binary frames prefixed with the run's handler id
        (20 ms each, then silence so that the pipeline's VAD ends the command,
        then the empty frame that ends the stream); returns every event up to
        run-end (or error).
        """
        message: dict[str, Any] = {
            "type": "assist_pipeline/run",
            "start_stage": "stt",
            "end_stage": end_stage,
            "input": {"sample_rate": sample_rate},
            "conversation_id": conversation_id,
            "timeout": timeout,
        }
        if pipeline:
            message["pipeline"] = pipeline
        run = PipelineRun()
        async with (
            asyncio.timeout(timeout + 5),
            self._subscription(message) as (_, queue),
        ):
            self._result(await self._next(queue, timeout, "assist_pipeline/run"), "run")
            sender: asyncio.Task[None] | None = None
            try:
                while True:
                    item = await self._next(queue, timeout, "a pipeline event")
                    event = item["event"]
                    run.events.append(event)
                    if event["type"] == "run-start":
                        handler = event["data"]["runner_data"]["stt_binary_handler_id"]
                        audio = pcm + silence(trailing_silence_ms, sample_rate)
                        sender = asyncio.create_task(
                            self._send_audio(handler, audio, sample_rate)
                        )
                    if event["type"] in ("run-end", "error"):
                        break
            finally:
                if sender is not None:
                    sender.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await sender
        return run

    async def _send_audio(self, handler: int, pcm: bytes, rate: int) -> None:
        """Send PCM as the browser does: handler byte + chunk; then the end."""
        assert self._ws is not None
        prefix = bytes([handler])
        for chunk in chunks(pcm, CHUNK_MS, rate):
            await self._ws.send_bytes(prefix + chunk)
            await asyncio.sleep(0)
        await self._ws.send_bytes(prefix)

    # ------------------------------------------------------------------ REST

    async def rest(self, method: str, path: str, json: Any = None) -> Any:
        """Call the REST API; return the decoded JSON body (ApiError >= 400)."""
        assert self._http is not None
        async with self._http.request(method, f"{self.url}{path}", json=json) as resp:
            body = await resp.text()
            if resp.status >= 400:
                raise ApiError(f"{method} {path}: HTTP {resp.status}: {body[:500]}")
            return await resp.json(content_type=None) if body else None

    async def call_service(
        self, domain: str, service: str, data: dict[str, Any] | None = None
    ) -> Any:
        """POST /api/services/<domain>/<service>."""
        return await self.rest("POST", f"/api/services/{domain}/{service}", data or {})

    async def state(self, entity_id: str) -> dict[str, Any]:
        """GET /api/states/<entity_id>."""
        state: dict[str, Any] = await self.rest("GET", f"/api/states/{entity_id}")
        return state

    async def wait_state(
        self, entity_id: str, state: str, timeout: float = 10.0
    ) -> dict[str, Any]:
        """Wait until an entity has `state` (ApiError with the last state)."""
        current: dict[str, Any] = {}

        async def reached() -> bool:
            nonlocal current
            current = await self.state(entity_id)
            return bool(current["state"] == state)

        await poll(
            reached,
            timeout,
            lambda: f"{entity_id} is {current.get('state')!r}, not {state!r}",
        )
        return current

    async def fetch(self, path: str) -> tuple[str, bytes]:
        """GET a path or URL (e.g. a TTS proxy URL); its content type and body."""
        assert self._http is not None
        url = path if "://" in path else f"{self.url}{path}"
        async with self._http.get(url) as resp:
            body = await resp.read()
            if resp.status >= 400:
                raise ApiError(f"GET {path}: HTTP {resp.status}")
            return resp.content_type, body
