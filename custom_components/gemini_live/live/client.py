"""LiveClient: opens Live sessions, validates settings and synthesises speech."""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit

import aiohttp

from .auth import Credentials
from .config import LiveConfig
from .endpoint import LiveEndpoint
from .errors import (
    LiveConnectionError,
    LiveResumptionError,
    LiveServiceUnavailableError,
    LiveTimeoutError,
    error_from_http_status,
)
from .events import LiveEvent, SetupComplete, parse_server_message
from .messages import setup_message
from .session import (
    Connection,
    LiveSession,
    close_error,
    close_socket,
    dumps,
    send_frame,
)
from .speech import SPEECH_READ_TIMEOUT, SpeechRequest, SpeechStream, open_speech

_LOGGER = logging.getLogger(__name__)

# Bounds the wait for the server's close reply when we close a connection.
CLOSE_TIMEOUT = 3.0

HEARTBEAT = 90.0
"""Seconds without incoming data before a ping. aiohttp then waits half of it
(45 s) for the pong: Gemini's pongs can lag 8-30 s."""


class LiveClient:
    """Opens Live API sessions over the given aiohttp session."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        endpoint: LiveEndpoint,
        credentials: Credentials,
        *,
        connect_timeout: float = 10.0,
        setup_timeout: float = 10.0,
        heartbeat: float | None = HEARTBEAT,
    ) -> None:
        """Keep the connection settings; nothing is opened yet.

        ``heartbeat``: seconds of silence from the server before a ping; the
        connection counts as lost when no pong (or other data) follows within
        ``heartbeat / 2`` seconds (aiohttp's rule). None disables it.
        """
        self._http = http
        self.endpoint = endpoint
        self._credentials = credentials
        self._connect_timeout = connect_timeout
        self._setup_timeout = setup_timeout
        self._heartbeat = heartbeat

    async def connect(
        self, config: LiveConfig, *, resumption_handle: str | None = None
    ) -> LiveSession:
        """Open a session: connect, send setup, wait for setupComplete.

        Raises ``LiveError`` subclasses; bad endpoint settings (such as the
        Vertex location "global") are rejected before any network I/O.
        """

        async def opener(handle: str | None) -> Connection:
            return await self._open(config, handle)

        connection = await opener(resumption_handle)
        return LiveSession(
            opener,
            connection,
            resumption=config.session_resumption,
            resumption_handle=resumption_handle,
        )

    async def validate(self, model: str) -> None:
        """Check endpoint, credentials and model by opening and closing a session."""
        config = LiveConfig(
            model=model,
            input_transcription=False,
            output_transcription=False,
            session_resumption=False,
            context_window_compression=None,
        )
        session = await self.connect(config)
        await session.close()

    async def synthesize(
        self,
        model: str,
        text: str,
        *,
        voice: str | None = None,
        language: str | None = None,
        read_timeout: float = SPEECH_READ_TIMEOUT,
    ) -> SpeechStream:
        """Have a Gemini TTS model say `text` word for word; stream its audio.

        Returns once the server accepted the request (within the connect
        timeout); the stream yields 24 kHz PCM16 as it arrives and fails after
        `read_timeout` s without data. `language` (BCP-47) is sent as
        `languageCode`; None lets the model take the text's language. Raises
        ``LiveError`` subclasses (``LiveModelNotFoundError`` or
        ``LivePermissionError`` when the model is refused to these credentials).
        """
        return await open_speech(
            self._http,
            self.endpoint.speech_url(model),
            self._credentials,
            SpeechRequest(text=text, voice=voice, language=language),
            open_timeout=self._connect_timeout,
            read_timeout=read_timeout,
        )

    async def _open(self, config: LiveConfig, handle: str | None) -> Connection:
        """Connect, send the setup and wait for setupComplete."""
        url = self.endpoint.websocket_url(config)
        setup = dumps(
            setup_message(config, self.endpoint.model_resource(config.model), handle)
        )
        ws = await self._connect(url)
        try:
            setup_complete, pending = await self._handshake(ws, setup, handle)
        except BaseException as err:
            await close_socket(ws)
            if isinstance(err, TimeoutError):
                raise LiveTimeoutError(
                    f"No setupComplete within {self._setup_timeout} s"
                ) from None
            raise
        _LOGGER.debug("Live session set up (resumed: %s)", handle is not None)
        return Connection(ws, setup_complete, pending)

    async def _handshake(
        self, ws: aiohttp.ClientWebSocketResponse, setup: str, handle: str | None
    ) -> tuple[SetupComplete, list[LiveEvent]]:
        """Send the setup; return setupComplete and any events sent with it.

        A server close in answer to a resuming setup raises
        ``LiveResumptionError``.
        """
        await send_frame(ws, setup)
        async with asyncio.timeout(self._setup_timeout):
            msg = await ws.receive()
        if msg.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
            error = close_error(ws, msg)
            if handle is not None and msg.type is aiohttp.WSMsgType.CLOSE:
                raise LiveResumptionError.from_error(error) from error
            raise error
        match parse_server_message(msg.data):
            case [SetupComplete() as setup_complete, *rest]:
                return setup_complete, rest
        raise LiveServiceUnavailableError(
            "The server did not answer the setup with setupComplete"
        )

    async def _connect(self, url: str) -> aiohttp.ClientWebSocketResponse:
        """Open the WebSocket with fresh credentials, within the connect timeout."""
        host = urlsplit(url).netloc
        _LOGGER.debug("Connecting to %s", host)
        try:
            async with asyncio.timeout(self._connect_timeout):
                headers = await self._credentials.headers(self._http)
                return await self._http.ws_connect(
                    url,
                    headers=headers,
                    heartbeat=self._heartbeat,
                    autoping=True,
                    timeout=aiohttp.ClientWSTimeout(ws_close=CLOSE_TIMEOUT),
                )
        except TimeoutError:
            raise LiveTimeoutError(
                f"Connecting to {host} timed out after {self._connect_timeout} s"
            ) from None
        except aiohttp.WSServerHandshakeError as err:
            # Not chained: the error's request info holds the auth headers.
            raise error_from_http_status(err.status, err.message) from None
        except (aiohttp.ClientError, OSError) as err:
            raise LiveConnectionError(f"Cannot connect to {host}: {err}") from err
