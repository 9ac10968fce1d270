"""VoiceSession: one Live session serving the turns of one conversation.

One reader task receives every server event and hands it to the current turn;
starting a new turn ends the previous one. The session keeps the WebSocket
open between turns so the next request of the conversation reuses the model's
context, and closes it `idle_timeout` seconds after the last turn ended. A
watchdog fails the turn and closes the session when the server stays silent
for `REPLY_TIMEOUT` seconds while a reply is due. Any error ends the current
turn with that error and closes the session; the next request opens a new one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Callable, Coroutine, Sequence
import logging
from typing import Any

from ..live import (
    AudioChunk,
    FunctionResponse,
    GenerationComplete,
    InputTranscription,
    LiveConnectionError,
    LiveError,
    LiveEvent,
    LiveSession,
    LiveTimeoutError,
    OutputTranscription,
    ToolCall,
    ToolCallCancellation,
    TurnComplete,
)
from .turn import LiveTurn

_LOGGER = logging.getLogger(__name__)

REPLY_TIMEOUT = 20.0
"""Seconds of server silence, while a reply is due, before the turn fails.

Longer than a tool call may take (`tools.TOOL_TIMEOUT`)."""

type Spawn = Callable[[Coroutine[Any, Any, None], str], object]
"""Starts a background task (the config entry's, so unloading cancels it)."""


class VoiceSession:
    """A Live session, its reader task and its current turn."""

    def __init__(
        self,
        live: LiveSession,
        conversation_id: str | None,
        *,
        manual_activity: bool,
        idle_timeout: float,
        spawn: Spawn,
        on_close: Callable[[VoiceSession], None],
    ) -> None:
        """Wrap an open Live session; call `start()` to begin reading."""
        self.conversation_id = conversation_id
        self.manual_activity = manual_activity
        """Activity is signalled by the client (activityStart/activityEnd)."""
        self.turn: LiveTurn | None = None
        self.closed = False
        self._live = live
        self._idle_timeout = idle_timeout
        self._spawn = spawn
        self._on_close = on_close
        self._loop = asyncio.get_running_loop()
        self._idle: asyncio.TimerHandle | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._last_event = 0.0

    def start(self) -> None:
        """Start the reader task."""
        self._spawn(self._read(), f"gemini_live reader {self.conversation_id}")

    def new_turn(self, *, voice: bool) -> LiveTurn:
        """Start a turn; the previous one ends here."""
        if self.turn is not None:
            self.turn.finish()
        self._cancel_timer(self._idle)
        self._cancel_timer(self._watchdog)
        turn = LiveTurn(
            self.conversation_id, voice=voice, send_tool_response=self._respond
        )
        turn.add_done_callback(self._turn_done)
        self.turn = turn
        return turn

    async def stream_audio(self, turn: LiveTurn, audio: AsyncIterable[bytes]) -> None:
        """Send the user's speech (16 kHz PCM16) as it arrives, then end it.

        Manual activity brackets it with activityStart/activityEnd, which makes
        the model reply. With Gemini's own activity detection the model may
        reply before the stream ends; streaming stops then, and audioStreamEnd
        flushes the server's buffer otherwise.
        """
        if self.manual_activity:
            await self._live.send_activity_start()
        async for chunk in audio:
            if turn.finished or (not self.manual_activity and turn.has_audio):
                break
            await self._live.send_audio(chunk)
        if self.manual_activity:
            await self._live.send_activity_end()
        elif not turn.has_audio:
            await self._live.send_audio_stream_end()
        self._await_reply()

    async def send_text(self, text: str) -> None:
        """Send a typed user turn."""
        await self._live.send_text(text)
        self._await_reply()

    async def close(self) -> None:
        """Close the Live session; the current turn ends (an error if unfinished)."""
        if self.closed:
            return
        self._closed(LiveConnectionError("The Live session was closed"))
        await self._live.close()

    async def _respond(self, responses: Sequence[FunctionResponse]) -> None:
        await self._live.send_tool_response(responses)
        self._last_event = self._loop.time()

    async def _read(self) -> None:
        error: LiveError = LiveConnectionError("The Live session ended")
        try:
            async for event in self._live.receive():
                self._last_event = self._loop.time()
                self._dispatch(event)
        except LiveError as err:
            _LOGGER.debug("Live session %s failed: %s", self.conversation_id, err)
            error = err
        finally:
            if not self.closed:
                self._closed(error)
                self._spawn(self._live.close(), "gemini_live close")

    def _dispatch(self, event: LiveEvent) -> None:
        if (turn := self.turn) is None:
            return
        match event:
            case AudioChunk(data=data):
                turn.add_audio(data)
            case OutputTranscription(text=text):
                turn.add_output(text)
            case InputTranscription(text=text):
                turn.add_input(text)
            case ToolCall():
                turn.add_tool_call(event)
            case ToolCallCancellation():
                turn.cancel_tool_calls(event)
            case GenerationComplete() | TurnComplete():
                turn.model_done()

    def _closed(self, error: LiveError) -> None:
        self.closed = True
        self._cancel_timer(self._idle)
        self._cancel_timer(self._watchdog)
        if self.turn is not None:
            self.turn.finish(error)
        self._on_close(self)

    def _turn_done(self, turn: LiveTurn) -> None:
        if turn is self.turn and not self.closed:
            self._cancel_timer(self._watchdog)
            self._idle = self._loop.call_later(self._idle_timeout, self._idle_close)

    def _idle_close(self) -> None:
        _LOGGER.debug("Closing idle Live session %s", self.conversation_id)
        self._spawn(self.close(), "gemini_live idle close")

    def _await_reply(self) -> None:
        """Arm the watchdog: the server owes the current turn a reply."""
        self._last_event = self._loop.time()
        self._cancel_timer(self._watchdog)
        self._watchdog = self._loop.call_later(REPLY_TIMEOUT, self._check_reply)

    def _check_reply(self) -> None:
        turn = self.turn
        if self.closed or turn is None or turn.finished:
            return
        remaining = self._last_event + REPLY_TIMEOUT - self._loop.time()
        if remaining > 0 or turn.tool_calls_pending:
            self._watchdog = self._loop.call_later(
                max(remaining, 1.0), self._check_reply
            )
            return
        _LOGGER.warning("No reply from the Live service; closing the session")
        turn.finish(LiveTimeoutError("The Live service did not reply in time"))
        self._spawn(self.close(), "gemini_live watchdog close")

    @staticmethod
    def _cancel_timer(timer: asyncio.TimerHandle | None) -> None:
        if timer is not None:
            timer.cancel()
