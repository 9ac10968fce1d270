"""The fake server's Gemini TTS endpoint: streamGenerateContent over SSE.

Routes (POST), as production serves them (the Gemini API "Text-to-speech
generation" guide, the Vertex AI "Generate speech with Gemini TTS" guide and
its migration guide, google-genai `models.py`/`_api_client.py`):

* Developer API `/{v1beta|v1alpha|v1}/models/{model}:streamGenerateContent`, the
  API key in `x-goog-api-key` or `?key=`;
* Vertex AI `/{v1|v1beta1}/projects/{p}/locations/{l}/publishers/google/
  models/{model}:streamGenerateContent`, a bearer token of the fake token
  endpoint whose account belongs to project `p`; the Gemini 3.8 TTS models
  are served in `global`, `us` and `eu` only.

With `?alt=sse` the answer is `text/event-stream`: one `data:` event (CRLF
separated) per `chunk_ms` of espeak-ng speech of the request's exact text
(`async_speech`, 24 kHz PCM16 as base64 `inlineData` of
`audio/L16;codec=pcm;rate=24000`), the last one with `finishReason: STOP` and
`usageMetadata`; without it, one JSON array of the same responses.

Refusals are Google's JSON errors (`{"error": {code, message, status}}`):
missing API key 403, invalid key 400 (API_KEY_INVALID), missing or invalid
token 401, another project's resource 403, a model (or Vertex location) not
served 404, a bad request 400 (no text, responseModalities other than
["AUDIO"], temperature/topP/topK on 3.8 models, a voice that is not one of
the 30 prebuilt ones, a languageCode outside the documented list). Scripted
faults: `SpeechError` (before the stream or as an event after some chunks)
and `SpeechStall` (the stream stops until `release()`).

No TTS model is served until `serve()` is called (as for a key or project
the TTS models are refused to): tests opt in to the TTS path, and the others
keep the integration's Live fallback.
"""

# Test helpers take a timeout argument.
# ruff: noqa: ASYNC109
from __future__ import annotations

import asyncio
from dataclasses import dataclass
import json
import secrets
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .connection import wait_until
from .faults import FaultQueue
from .protocol import Provider, encode_b64, normalize
from .scenario import (
    API_KEY_INVALID,
    INVALID_ARGUMENT,
    INVALID_CREDENTIALS,
    MISSING_CREDENTIALS,
    QUOTA_EXCEEDED,
    UNREGISTERED_CALLER,
)
from .speech import async_speech

if TYPE_CHECKING:
    from .server import FakeLiveServer

SPEECH_RATE = 24000
SPEECH_MIME_TYPE = "audio/L16;codec=pcm;rate=24000"
DEVELOPER_SPEECH_MODELS = frozenset(
    {
        "gemini-3.8-flash-tts",
        "gemini-3.8-flash-lite-tts",
        "gemini-3.1-flash-tts-preview",
        "gemini-2.5-flash-preview-tts",
        "gemini-2.5-pro-preview-tts",
    }
)
VERTEX_SPEECH_MODELS = frozenset(
    {
        "gemini-3.8-flash-tts",
        "gemini-3.8-flash-lite-tts",
        "gemini-3.1-flash-tts-preview",
        "gemini-2.5-flash-tts",
        "gemini-2.5-pro-tts",
    }
)
VERTEX_SPEECH_LOCATIONS = frozenset({"global", "us", "eu"})
PREBUILT_VOICES = frozenset(
    [
        "Zephyr",
        "Puck",
        "Charon",
        "Kore",
        "Fenrir",
        "Leda",
        "Orus",
        "Aoede",
        "Callirrhoe",
        "Autonoe",
        "Enceladus",
        "Iapetus",
        "Umbriel",
        "Algieba",
        "Despina",
        "Erinome",
        "Algenib",
        "Rasalgethi",
        "Laomedeia",
        "Achernar",
        "Alnilam",
        "Schedar",
        "Gacrux",
        "Pulcherrima",
        "Achird",
        "Zubenelgenubi",
        "Vindemiatrix",
        "Sadachbia",
        "Sadaltager",
        "Sulafat",
    ]
)
LANGUAGE_CODES = frozenset(
    [
        "de-DE",
        "en-AU",
        "en-GB",
        "en-IN",
        "en-US",
        "es-US",
        "fr-FR",
        "hi-IN",
        "pt-BR",
        "ar-XA",
        "es-ES",
        "fr-CA",
        "id-ID",
        "it-IT",
        "ja-JP",
        "tr-TR",
        "vi-VN",
        "bn-IN",
        "gu-IN",
        "kn-IN",
        "ml-IN",
        "mr-IN",
        "ta-IN",
        "te-IN",
        "nl-NL",
        "ko-KR",
        "cmn-CN",
        "pl-PL",
        "ru-RU",
        "th-TH",
    ]
)
"""`SpeechConfig.languageCode` values of the public protos (live-api.md)."""
SAMPLING_FIELDS = ("temperature", "topP", "topK")
"""Refused with INVALID_ARGUMENT by the Gemini 3.8 TTS models (migration guide)."""
_DEVELOPER_ROUTE = (
    "/{version:v1beta|v1alpha|v1}/models/{model:[^/:]+}:streamGenerateContent"
)
_VERTEX_ROUTE = (
    "/{version:v1|v1beta1}/projects/{project:[^/]+}/locations/{location:[^/]+}"
    "/publishers/google/models/{model:[^/:]+}:streamGenerateContent"
)
_POLL = 0.02


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechError:
    """Answer with a Google error.

    Before streaming, or (`after_chunks` set) as an event after that many
    audio events, the HTTP status then being 200.
    """

    code: int = 500
    status: str = "INTERNAL"
    message: str = "Internal error encountered."
    after_chunks: int | None = None

    @classmethod
    def quota(cls) -> SpeechError:
        """429 RESOURCE_EXHAUSTED, the Developer API's quota text."""
        return cls(code=429, status="RESOURCE_EXHAUSTED", message=QUOTA_EXCEEDED)

    def body(self) -> dict[str, Any]:
        """Return the error JSON."""
        return {
            "error": {"code": self.code, "message": self.message, "status": self.status}
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechStall:
    """Stop the stream for a while.

    After `after_chunks` events (0: right after the headers), until
    `release()`, the client leaving or the server stopping.
    """

    after_chunks: int = 0


type SpeechFault = SpeechError | SpeechStall


@dataclass(slots=True, kw_only=True)
class SpeechCall:
    """One request to the TTS endpoint, as received and answered."""

    provider: Provider
    model: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    """The JSON body as received (None when it was not JSON)."""
    text: str = ""
    voice: str | None = None
    language: str | None = None
    status: int = 200
    rejected_field: str | None = None
    """The request field a 400 refused (dotted camelCase path)."""
    chunks_sent: int = 0
    audio: bytes = b""
    """The PCM streamed back (all of it, once the stream ended)."""
    finished: bool = False
    """The last event (finishReason STOP) went out."""
    client_left: bool = False
    """The client closed the connection before the end of the stream."""


class SpeechService:
    """The TTS routes of a `FakeLiveServer` (its `speech` attribute)."""

    def __init__(self, server: FakeLiveServer) -> None:
        """Serve for `server`, whose API key and token authority decide auth."""
        self.server = server
        self.models: dict[Provider, set[str]] = {
            "gemini_api": set(),
            "vertex_ai": set(),
        }
        """TTS model ids served per provider (none until `serve()`)."""
        self.vertex_locations: set[str] = set(VERTEX_SPEECH_LOCATIONS)
        self.chunk_ms = 200
        """Milliseconds of audio per event."""
        self.chunk_delay = 0.0
        """Seconds between events."""
        self.calls: list[SpeechCall] = []
        """Every request to a TTS route, in order."""
        self._faults: FaultQueue[SpeechFault] = FaultQueue()
        self._released = asyncio.Event()
        self._stopping = asyncio.Event()

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """Register the TTS routes (before the server's catch-all route)."""
        router.add_post(_DEVELOPER_ROUTE, self._developer)
        router.add_post(_VERTEX_ROUTE, self._vertex)

    def serve(self, provider: Provider | None = None) -> None:
        """Serve the documented TTS models of `provider` (None: both)."""
        documented = {
            "gemini_api": DEVELOPER_SPEECH_MODELS,
            "vertex_ai": VERTEX_SPEECH_MODELS,
        }
        for name, models in documented.items():
            if provider in (None, name):
                self.models[name] = set(models)

    @property
    def syntheses(self) -> list[SpeechCall]:
        """The requests that were answered with speech."""
        return [call for call in self.calls if call.status == 200 and call.text]

    def add_fault(self, fault: SpeechFault, times: int | None = 1) -> None:
        """Apply `fault` to the next `times` accepted requests (None: all)."""
        self._faults.add(fault, times)

    def release(self) -> None:
        """Let every stalled stream go on (later stalls pass at once)."""
        self._released.set()

    def close(self) -> None:
        """End stalled streams, without their last event (the server stops)."""
        self._stopping.set()

    async def wait_for_calls(
        self, count: int, timeout: float = 5.0
    ) -> list[SpeechCall]:
        """Wait until `count` requests arrived; return the first ones."""
        await wait_until(
            lambda: len(self.calls) >= count, timeout, f"{count} TTS calls"
        )
        return self.calls[:count]

    # ------------------------------------------------------------- handlers

    async def _developer(self, request: web.Request) -> web.StreamResponse:
        call = await self._record(request, "gemini_api")
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        if not key:
            return self._refuse(call, 403, "PERMISSION_DENIED", UNREGISTERED_CALLER)
        if key != self.server.api_key:
            return self._refuse(call, 400, "INVALID_ARGUMENT", API_KEY_INVALID)
        if call.model not in self.models["gemini_api"]:
            version = request.match_info["version"]
            return self._refuse(
                call,
                404,
                "NOT_FOUND",
                f"models/{call.model} is not found for API version {version}, or"
                " is not supported for generateContent. Call ListModels to see the"
                " list of available models and their supported methods.",
            )
        return await self._synthesise(request, call)

    async def _vertex(self, request: web.Request) -> web.StreamResponse:
        call = await self._record(request, "vertex_ai")
        info = request.match_info
        authorization = request.headers.get("Authorization")
        if not authorization:
            return self._refuse(call, 401, "UNAUTHENTICATED", MISSING_CREDENTIALS)
        token = self.server.authority.check(authorization)
        if token is None:
            return self._refuse(call, 401, "UNAUTHENTICATED", INVALID_CREDENTIALS)
        resource = (
            f"projects/{info['project']}/locations/{info['location']}"
            f"/publishers/google/models/{call.model}"
        )
        if token.account.project_id != info["project"]:
            return self._refuse(
                call,
                403,
                "PERMISSION_DENIED",
                f"Permission 'aiplatform.endpoints.predict' denied on resource"
                f" '//aiplatform.googleapis.com/{resource}' (or it may not exist).",
            )
        if (
            call.model not in self.models["vertex_ai"]
            or info["location"] not in self.vertex_locations
        ):
            return self._refuse(
                call,
                404,
                "NOT_FOUND",
                f"Publisher Model `{resource}` was not found or your project does"
                " not have access to it. Please ensure you are using a valid model"
                " version.",
            )
        return await self._synthesise(request, call)

    async def _record(self, request: web.Request, provider: Provider) -> SpeechCall:
        try:
            body: Any = json.loads(await request.text())
        except ValueError:
            body = None
        call = SpeechCall(
            provider=provider,
            model=request.match_info["model"],
            path=request.path,
            query=dict(request.query),
            headers=dict(request.headers),
            body=body,
        )
        self.calls.append(call)
        return call

    @staticmethod
    def _refuse(
        call: SpeechCall,
        code: int,
        status: str,
        message: str,
        rejected_field: str | None = None,
    ) -> web.Response:
        call.status, call.rejected_field = code, rejected_field
        error = SpeechError(code=code, status=status, message=message)
        return web.json_response(error.body(), status=code)

    async def _synthesise(
        self, request: web.Request, call: SpeechCall
    ) -> web.StreamResponse:
        if (bad := _check_request(call)) is not None:
            return self._refuse(call, 400, "INVALID_ARGUMENT", INVALID_ARGUMENT, bad)
        fault = self._faults.take()
        if isinstance(fault, SpeechError) and fault.after_chunks is None:
            call.status = fault.code
            return web.json_response(fault.body(), status=fault.code)
        pcm = await async_speech(call.text, SPEECH_RATE)
        size = 2 * (SPEECH_RATE * self.chunk_ms // 1000)
        pieces = [pcm[i : i + size] for i in range(0, len(pcm), size)] or [b""]
        events = [self._response(call, piece) for piece in pieces]
        events[-1]["candidates"][0]["finishReason"] = "STOP"
        events[-1]["usageMetadata"] = _usage(call.text, pcm)
        if request.query.get("alt") != "sse":
            call.audio, call.chunks_sent, call.finished = pcm, len(events), True
            return web.json_response(events)
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        try:
            await self._stream(
                request, response, call, events, pieces=pieces, fault=fault
            )
        except ConnectionError:
            call.client_left = True
        return response

    async def _stream(
        self,
        request: web.Request,
        response: web.StreamResponse,
        call: SpeechCall,
        events: list[dict[str, Any]],
        *,
        pieces: list[bytes],
        fault: SpeechFault | None,
    ) -> None:
        for index, (event, piece) in enumerate(zip(events, pieces, strict=True)):
            if fault is not None and fault.after_chunks == index:
                if isinstance(fault, SpeechError):
                    await _send(response, fault.body())
                    await response.write_eof()
                    return
                if not await self._held(request, call):
                    return
            if index and self.chunk_delay:
                await asyncio.sleep(self.chunk_delay)
            await _send(response, event)
            call.chunks_sent += 1
            call.audio += piece
        call.finished = True
        await response.write_eof()

    async def _held(self, request: web.Request, call: SpeechCall) -> bool:
        """Wait for `release()`; False if the client left or the server stops."""
        while not self._released.is_set():
            transport = request.transport
            if transport is None or transport.is_closing():
                call.client_left = True
                return False
            if self._stopping.is_set():
                return False
            await _wait(self._released, _POLL)
        return True

    def _response(self, call: SpeechCall, pcm: bytes) -> dict[str, Any]:
        part = {"inlineData": {"mimeType": SPEECH_MIME_TYPE, "data": encode_b64(pcm)}}
        return {
            "candidates": [{"content": {"role": "model", "parts": [part]}, "index": 0}],
            "modelVersion": call.model,
            "responseId": secrets.token_urlsafe(16),
        }


def _check_request(call: SpeechCall) -> str | None:
    """Fill in what `call` asks for; return the field to refuse, if any."""
    if not isinstance(call.body, dict):
        return "body"
    body = normalize(call.body)
    texts: list[str] = []
    for content in body.get("contents") or []:
        if not isinstance(content, dict) or content.get("role", "user") != "user":
            return "contents"
        for part in content.get("parts") or []:
            if not isinstance(part, dict) or set(part) - {"text"}:
                return "contents.parts"
            texts.append(str(part.get("text", "")))
    call.text = "".join(texts)
    if not call.text.strip():
        return "contents"
    generation = body.get("generationConfig") or {}
    if generation.get("responseModalities") != ["AUDIO"]:
        return "generationConfig.responseModalities"
    if call.model.startswith("gemini-3.8"):
        for name in SAMPLING_FIELDS:
            if name in generation:
                return f"generationConfig.{name}"
    speech = generation.get("speechConfig") or {}
    voice = ((speech.get("voiceConfig") or {}).get("prebuiltVoiceConfig") or {}).get(
        "voiceName"
    )
    if voice is not None and voice not in PREBUILT_VOICES:
        return "generationConfig.speechConfig.voiceConfig.prebuiltVoiceConfig.voiceName"
    language = speech.get("languageCode")
    if language is not None and language not in LANGUAGE_CODES:
        return "generationConfig.speechConfig.languageCode"
    call.voice, call.language = voice, language
    return None


def _usage(text: str, pcm: bytes) -> dict[str, Any]:
    """Token counts: a token per word of text, 25 per second of audio."""
    prompt = len(text.split())
    audio = round(len(pcm) / (2 * SPEECH_RATE) * 25)
    return {
        "promptTokenCount": prompt,
        "candidatesTokenCount": audio,
        "totalTokenCount": prompt + audio,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
        "candidatesTokensDetails": [{"modality": "AUDIO", "tokenCount": audio}],
    }


async def _send(response: web.StreamResponse, message: dict[str, Any]) -> None:
    await response.write(b"data: " + json.dumps(message).encode() + b"\r\n\r\n")


async def _wait(event: asyncio.Event, timeout: float) -> None:
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        pass
