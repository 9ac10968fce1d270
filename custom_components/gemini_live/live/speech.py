"""Speech synthesis with a Gemini TTS model: text read exactly as written.

One `streamGenerateContent?alt=sse` request per text (Developer API and
Vertex AI alike): the text as the user part, `responseModalities: ["AUDIO"]`
and the prebuilt voice in `speechConfig`. The server sends server-sent events,
each a GenerateContentResponse whose parts carry base64 `inlineData` of
`audio/L16;codec=pcm;rate=24000`; `SpeechStream` yields that PCM as each event
arrives. Sampling fields (temperature, topP, topK) are never sent: the Gemini
3.8 TTS models refuse them.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Mapping
import contextlib
from dataclasses import dataclass
import json
import logging
from typing import Any, Self
from urllib.parse import urlsplit

import aiohttp

from .auth import Credentials
from .errors import (
    LiveConnectionError,
    LiveError,
    LiveInvalidArgumentError,
    LiveServiceUnavailableError,
    LiveTimeoutError,
    error_from_payload,
    error_from_response,
)
from .events import AUDIO_OUT_RATE, _rate as audio_rate, decode_base64

_LOGGER = logging.getLogger(__name__)

SPEECH_OPEN_TIMEOUT = 10.0
"""Seconds for credentials, the connection and the response headers."""
SPEECH_READ_TIMEOUT = 15.0
"""Longest silence of the event stream (the first audio included)."""
_PCM_TYPES = ("audio/l16", "audio/pcm")


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechRequest:
    """What to synthesise: the text, word for word, in a prebuilt voice."""

    text: str
    voice: str | None = None
    language: str | None = None
    """BCP-47 `speechConfig.languageCode`; None lets the model detect it."""

    def body(self) -> dict[str, Any]:
        """Return the GenerateContentRequest (the model is in the URL)."""
        speech: dict[str, Any] = {}
        if self.voice:
            speech["voiceConfig"] = {"prebuiltVoiceConfig": {"voiceName": self.voice}}
        if self.language:
            speech["languageCode"] = self.language
        generation: dict[str, Any] = {"responseModalities": ["AUDIO"]}
        if speech:
            generation["speechConfig"] = speech
        return {
            "contents": [{"role": "user", "parts": [{"text": self.text}]}],
            "generationConfig": generation,
        }


async def open_speech(
    http: aiohttp.ClientSession,
    url: str,
    credentials: Credentials,
    request: SpeechRequest,
    *,
    open_timeout: float = SPEECH_OPEN_TIMEOUT,
    read_timeout: float = SPEECH_READ_TIMEOUT,
) -> SpeechStream:
    """Send the request; return its audio stream once the server accepted it.

    Raises `LiveError` subclasses for a refusal (status and Google's error
    body), an unreachable host or a timeout; nothing is left open then.
    """
    if not request.text.strip():
        raise LiveInvalidArgumentError("There is no text to speak")
    host = urlsplit(url).netloc
    async with _network(
        open_timeout,
        timed_out=f"No answer from {host} within {open_timeout} s",
        failed=f"Cannot reach {host}",
    ):
        response = await _post(http, url, credentials, request)
    _LOGGER.debug("Speech synthesis started on %s", host)
    return SpeechStream(response, read_timeout=read_timeout)


async def _post(
    http: aiohttp.ClientSession,
    url: str,
    credentials: Credentials,
    request: SpeechRequest,
) -> aiohttp.ClientResponse:
    """Send the request; return the accepted response, or raise (closed)."""
    headers = await credentials.headers(http)
    response = await http.post(
        url, json=request.body(), headers={**headers, "Accept": "text/event-stream"}
    )
    if response.status == 200:
        return response
    try:
        body = await response.text(errors="replace")
    finally:
        response.close()
    raise error_from_response(response.status, body)


class SpeechStream:
    """The 24 kHz PCM16 of one synthesis, chunk by chunk as events arrive.

    Read it once (`async for`). The connection is closed at the end of the
    audio, at the first error, when a read is cancelled and on `aclose()`.
    Raises `LiveError` subclasses: an error event, a cut stream,
    `read_timeout` s without data, or a stream with no audio at all.
    """

    def __init__(
        self, response: aiohttp.ClientResponse, *, read_timeout: float
    ) -> None:
        """Read `response` (status 200, SSE)."""
        self._response = response
        self._read_timeout = read_timeout
        self._events = EventDecoder()
        self._chunks: deque[bytes] = deque()
        self._audio_bytes = 0
        self._finish_reason: str | None = None
        self._error: LiveError | None = None
        """Raised once the audio received before it was read."""
        self._ended = False

    def __aiter__(self) -> Self:
        """Return the stream itself."""
        return self

    async def __anext__(self) -> bytes:
        """Return the next chunk of PCM."""
        while not self._chunks:
            if self._error is not None:
                error, self._error = self._error, None
                raise error
            if self._ended:
                raise StopAsyncIteration
            try:
                await self._read()
            except BaseException:
                self._close()
                raise
        return self._chunks.popleft()

    async def aclose(self) -> None:
        """Stop reading and close the connection."""
        self._close()

    def _close(self) -> None:
        self._ended = True
        self._response.close()

    async def _read(self) -> None:
        """Read what arrived; queue the audio of its complete events."""
        async with _network(
            self._read_timeout,
            timed_out=f"No speech data for {self._read_timeout} s",
            failed="The speech stream was cut",
        ):
            data = await self._response.content.readany()
        try:
            for event in self._events.feed(data):
                self._take(event)
            if not data:
                self._check_end()
        except LiveError as err:
            self._error = err
            self._close()
        if not data:
            self._close()

    def _check_end(self) -> None:
        """Raise for a stream cut before its finishReason, or without audio."""
        if self._finish_reason is None:
            raise LiveConnectionError("The speech stream ended before its last event")
        if not self._audio_bytes:
            raise LiveServiceUnavailableError(
                f"The TTS model returned no audio (finishReason {self._finish_reason})"
            )

    def _take(self, data: str) -> None:
        """Queue the audio of one event; raise for an error event."""
        try:
            message: Any = json.loads(data)
        except ValueError:
            raise LiveServiceUnavailableError(
                "The speech stream sent an event that is not JSON"
            ) from None
        if not isinstance(message, Mapping):
            raise LiveServiceUnavailableError("The speech stream sent a bad event")
        if "error" in message:
            raise error_from_payload(message)
        for candidate in message.get("candidates") or ():
            if not isinstance(candidate, Mapping):
                continue
            if reason := candidate.get("finishReason"):
                self._finish_reason = str(reason)
            content = candidate.get("content")
            parts = content.get("parts") if isinstance(content, Mapping) else None
            for part in parts if isinstance(parts, list) else ():
                inline = part.get("inlineData") if isinstance(part, Mapping) else None
                if isinstance(inline, Mapping):
                    self._add_audio(inline)

    def _add_audio(self, inline: Mapping[str, Any]) -> None:
        mime = str(inline.get("mimeType") or "")
        kind = mime.split(";", 1)[0].strip().lower()
        if kind not in _PCM_TYPES or audio_rate(mime) != AUDIO_OUT_RATE:
            raise LiveServiceUnavailableError(
                f"The TTS model sent audio of type {mime!r}, not 24 kHz PCM"
            )
        try:
            pcm = decode_base64(str(inline.get("data") or ""))
        except ValueError:
            raise LiveServiceUnavailableError(
                "The TTS model sent audio that is not base64"
            ) from None
        if pcm:
            self._audio_bytes += len(pcm)
            self._chunks.append(pcm)


class EventDecoder:
    """Server-sent events: the `data` of each event, from bytes as they come.

    Lines end with LF or CRLF; an empty line ends an event; its `data:` lines
    (one optional space after the colon) are joined with LF; comments and
    other fields are ignored; an event cut by the end of the stream is not
    one (WHATWG HTML, "Server-sent events"; google-genai reads them alike).
    """

    def __init__(self) -> None:
        """Start with nothing buffered."""
        self._buffer = b""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[str]:
        """Add received bytes; return the events they complete."""
        *lines, self._buffer = (self._buffer + chunk).split(b"\n")
        events = []
        for raw in lines:
            line = raw.removesuffix(b"\r").decode(errors="replace")
            if not line:
                if self._data:
                    events.append("\n".join(self._data))
                self._data = []
                continue
            field, _, value = line.partition(":")
            if field == "data":
                self._data.append(value.removeprefix(" "))
        return events


@contextlib.asynccontextmanager
async def _network(
    seconds: float, *, timed_out: str, failed: str
) -> AsyncIterator[None]:
    """Bound a network wait; raise its failures as Live errors.

    Not chained: aiohttp's errors keep the request, auth headers included.
    """
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        raise LiveTimeoutError(timed_out) from None
    except (aiohttp.ClientError, OSError) as err:
        raise LiveConnectionError(f"{failed}: {type(err).__name__}") from None
