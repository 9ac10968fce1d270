"""VoiceSession: one Live session serving the turns of one conversation.

One reader task receives every server event and routes it to a turn. A new
turn starts while the previous reply may still be streaming (a barge-in): the
previous turn then keeps receiving the events of its generation until its
`turnComplete`, so none of them reaches the new turn.

The session keeps the WebSocket open between turns so the next request of the
conversation reuses the model's context, and closes it `idle_timeout` seconds
after the last turn ended. Every wait is bounded: the server must send
something within `REPLY_TIMEOUT` while a reply is due, and a tool call nobody
answers within `UNANSWERED_TOOL_TIMEOUT` gets an error response. Any error
ends the current turn with that error and closes the session; the next
request opens a new one (with the conversation's history).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Callable, Coroutine, Sequence
import logging
from typing import Any

from ..live import (
    AudioChunk,
    FunctionResponse,
    Grounding,
    HistoryTurn,
    InputTranscription,
    Interrupted,
    LiveConnectionError,
    LiveError,
    LiveEvent,
    LiveSession,
    LiveTimeoutError,
    OutputTranscription,
    Resumed,
    ToolCall,
    ToolCallCancellation,
    TurnComplete,
    UsageMetadata,
)
from .activity import Activity
from .turn import LiveTurn

_LOGGER = logging.getLogger(__name__)

REPLY_TIMEOUT = 20.0
"""Seconds of server silence, while a reply is due, before the turn fails."""
UNANSWERED_TOOL_TIMEOUT = 15.0
"""Seconds after which a tool call nobody answered gets an error response."""
UNANSWERED_NON_BLOCKING_TIMEOUT = 120.0
"""The same for NON_BLOCKING calls (the model talks on; a script may run long)."""

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
        instructions: str | None = None,
        non_blocking: frozenset[str] = frozenset(),
        context_update: bool = False,
        activity: Activity | None = None,
    ) -> None:
        """Wrap an open Live session; call `start()` to begin reading.

        `activity` counts its turns, usage, resumptions and failure.
        """
        self.conversation_id = conversation_id
        self.manual_activity = manual_activity
        """Activity is signalled by the client (activityStart/activityEnd)."""
        self.instructions = instructions
        """The system instruction the session was set up with."""
        self.extra_prompts: set[str] = set()
        """Extra system prompts the model has received."""
        self.non_blocking = non_blocking
        """Functions the model calls NON_BLOCKING in this session."""
        self.context_update = context_update
        """The model accepts `contextUpdate` (a new system instruction)."""
        self.turn: LiveTurn | None = None
        self.closed = False
        self._live = live
        self._draining: LiveTurn | None = None
        self._idle_timeout = idle_timeout
        self._spawn = spawn
        self._on_close = on_close
        self._loop = asyncio.get_running_loop()
        self._idle: asyncio.TimerHandle | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._last_event = 0.0
        self._tool_timers: list[asyncio.TimerHandle] = []
        self._activity = activity or Activity()

    @property
    def live(self) -> LiveSession:
        """The Live session (for messages the voice core does not wrap)."""
        return self._live

    def start(self) -> None:
        """Start the reader task."""
        self._spawn(self._read(), f"gemini_live reader {self.conversation_id}")

    def new_turn(self, *, voice: bool) -> LiveTurn:
        """Start a turn; a previous reply still streaming is cut off."""
        if (previous := self.turn) is not None:
            if previous.generation_open:
                self._draining = previous  # its generation's events follow
            previous.finish()
        self._cancel_timer(self._idle)
        self._cancel_timer(self._watchdog)
        turn = LiveTurn(
            self.conversation_id,
            voice=voice,
            send_tool_response=self._respond,
            non_blocking=self.non_blocking,
        )
        turn.add_done_callback(self._turn_done)
        self.turn = turn
        self._activity.turn_started()
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
        turn.input_ended()
        self._await_reply()

    async def send_text(self, turn: LiveTurn, text: str) -> None:
        """Send a typed user turn."""
        await self._live.send_text(text)
        turn.input_ended()
        self._await_reply()

    async def close(self) -> None:
        """Close the Live session; the current turn ends (an error if unfinished)."""
        if self.closed:
            return
        self._closed(LiveConnectionError("The Live session was closed"))
        await self._live.close()

    async def _respond(self, responses: Sequence[FunctionResponse]) -> None:
        await self._live.send_tool_response(responses)
        self._await_reply()

    async def _read(self) -> None:
        error: LiveError = LiveConnectionError("The Live session ended")
        try:
            async for event in self._live.receive():
                self._last_event = self._loop.time()
                self._dispatch(event)
        except LiveError as err:
            _LOGGER.debug("Live session %s failed: %s", self.conversation_id, err)
            error = err
            if not self.closed:
                self._activity.session_failed(err)
        finally:
            if not self.closed:
                self._closed(error)
                self._spawn(self._live.close(), "gemini_live close")

    def _dispatch(self, event: LiveEvent) -> None:
        if isinstance(event, Resumed):
            self._activity.session_resumed()
        if isinstance(event, InputTranscription):
            if self.turn is not None:
                self.turn.add_input(event.text, finished=event.finished)
            return
        turn = self._draining or self.turn
        if turn is None:
            return
        match event:
            case AudioChunk(data=data):
                turn.add_audio(data)
            case OutputTranscription(text=text, finished=finished):
                turn.add_output(text, finished=finished)
            case ToolCall():
                if turn is self._draining:
                    self._reject_calls(event)
                else:
                    turn.add_tool_call(event)
                    self._bound_tool_calls(turn, event)
            case ToolCallCancellation():
                turn.cancel_tool_calls(event)
            case Grounding():
                turn.add_grounding(event)
            case Interrupted():
                turn.interrupt()
            case TurnComplete():
                if turn is self._draining:
                    self._draining = None
                else:
                    turn.turn_complete(
                        event.interaction_status,
                        reason=event.reason,
                        waiting_for_input=event.waiting_for_input,
                    )
            case Resumed(reply_cut=True):
                self._resumed_mid_reply(turn)
            case UsageMetadata():
                self._activity.add_usage(turn, event)

    def _resumed_mid_reply(self, turn: LiveTurn) -> None:
        """End a reply cut by a goAway; tell the resumed model what was said.

        The connection was resumed from a handle older than this turn, so the
        model never saw it: its words so far are replayed as history.
        """
        self._draining = None
        turn.end_reply()
        if self.turn is not None and self.turn is not turn:
            self.turn.end_reply()
        history = [
            HistoryTurn(role="user", text=turn.input_transcript),
            HistoryTurn(role="model", text=turn.output_transcript),
        ]
        history = [item for item in history if item.text]
        self._spawn(self._send_history_quietly(history), "gemini_live history")

    async def _send_history_quietly(self, turns: Sequence[HistoryTurn]) -> None:
        try:
            await self._live.send_history(turns)
        except LiveError as err:
            _LOGGER.debug("History not replayed: %s", err)

    def _reject_calls(self, tool_call: ToolCall) -> None:
        """Answer a cut-off generation's tool calls without running them."""
        responses = [
            FunctionResponse(
                id=call.id,
                name=call.name,
                response={"error": {"status": "cancelled", "retryable": False}},
            )
            for call in tool_call.calls
        ]
        self._spawn(self._send_quietly(responses), "gemini_live tool response")

    def _bound_tool_calls(self, turn: LiveTurn, tool_call: ToolCall) -> None:
        """Arm the bound of each function: longer for NON_BLOCKING ones."""
        for unwaited, bound in (
            (False, UNANSWERED_TOOL_TIMEOUT),
            (True, UNANSWERED_NON_BLOCKING_TIMEOUT),
        ):
            calls = tuple(
                c for c in tool_call.calls if (c.name in self.non_blocking) is unwaited
            )
            if calls:
                self._tool_timers.append(
                    self._loop.call_later(
                        bound, self._answer_unanswered, turn, ToolCall(calls)
                    )
                )

    def _answer_unanswered(self, turn: LiveTurn, tool_call: ToolCall) -> None:
        """Answer this call's still pending functions with an error."""
        if self.closed or turn is not self.turn:
            return
        pending = [c for c in tool_call.calls if turn.is_pending(c.id)]
        if not pending:
            return
        _LOGGER.warning("No answer to tool calls %s", [c.name for c in pending])
        responses = [
            FunctionResponse(
                id=call.id,
                name=call.name,
                response={"error": {"status": "no_answer", "retryable": False}},
            )
            for call in pending
        ]
        self._spawn(_answer(turn, responses), "gemini_live tool response")

    async def _send_quietly(self, responses: Sequence[FunctionResponse]) -> None:
        try:
            await self._live.send_tool_response(responses)
        except LiveError as err:
            _LOGGER.debug("Tool response not sent: %s", err)

    def _closed(self, error: LiveError) -> None:
        self.closed = True
        self._cancel_timers()
        if self.turn is not None:
            self.turn.finish(error)
        self._on_close(self)

    def _turn_done(self, turn: LiveTurn) -> None:
        if turn is self.turn and not self.closed:
            self._cancel_timers()
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
        if self.closed or turn is None or turn.reply_complete:
            return
        remaining = self._last_event + REPLY_TIMEOUT - self._loop.time()
        if remaining > 0 or turn.tool_calls_pending:
            self._watchdog = self._loop.call_later(
                max(remaining, 1.0), self._check_reply
            )
            return
        _LOGGER.warning("No reply from the Live service; closing the session")
        error = LiveTimeoutError("The Live service did not reply in time")
        self._activity.session_failed(error)
        turn.finish(error)
        self._spawn(self.close(), "gemini_live watchdog close")

    def _cancel_timers(self) -> None:
        for timer in (self._idle, self._watchdog, *self._tool_timers):
            self._cancel_timer(timer)
        self._tool_timers.clear()

    @staticmethod
    def _cancel_timer(timer: asyncio.TimerHandle | None) -> None:
        if timer is not None:
            timer.cancel()


async def _answer(turn: LiveTurn, responses: Sequence[FunctionResponse]) -> None:
    """Answer tool calls of a turn (from a task of its own)."""
    await turn.respond(responses)
