"""LiveTurn: one user turn of a Live session and the model's reply to it.

The session's reader task writes into the turn, one server event at a time;
up to three consumers read it, each at its own pace:

- the STT entity: `wait_input_transcript()`, the user's words once settled;
- the conversation entity: `next_event()`, the reply's transcript deltas and
  tool calls in order, each delivered once (the agent reads the first part, a
  continuation task the rest);
- the TTS entity: `audio_stream()`, the reply's 24 kHz PCM from its first byte.

When the reply ends: Gemini sends generationComplete and turnComplete, but 2.5
native-audio models also send turnComplete before any audio around tool calls,
and output transcription trails turnComplete. So a completion signal only arms
a settle timer: `OUTPUT_GRACE` when audio arrived since the last tool response,
`QUIET_GRACE` when none did (the model may still speak), and none while a tool
call is unanswered. Audio or a tool call disarms it: the model went on.

Memory: unread reply audio is bounded by `MAX_AUDIO_SECONDS` of 24 kHz PCM16
(14.4 MB at 300 s); audio beyond it is dropped. A reader frees what it read.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
import contextlib
from dataclasses import dataclass
import logging

from ..live import (
    FunctionCall,
    FunctionResponse,
    LiveError,
    OutputTranscription,
    ToolCall,
    ToolCallCancellation,
)

_LOGGER = logging.getLogger(__name__)

AUDIO_RATE = 24000
"""Sample rate of the reply audio (PCM16 mono)."""
MAX_AUDIO_SECONDS = 300
"""Bound of the unread reply audio of one turn, in seconds."""
OUTPUT_GRACE = 0.4
"""Seconds the reply stays open after its completion for trailing transcript."""
QUIET_GRACE = 2.0
"""Seconds a completion without (post-tool) audio waits for more output."""
INPUT_GRACE = 0.25
"""The input transcript settles this long after its latest fragment."""
INPUT_TIMEOUT = 5.0
"""Longest wait for the first input fragment after the user's audio ended."""
LATE_INPUT_GRACE = 1.0
"""Longest wait for a first input fragment once the reply has ended."""


@dataclass(frozen=True, slots=True)
class AudioStarted:
    """Marker event: the reply's first audio chunk arrived."""


type ReplyEvent = OutputTranscription | AudioStarted | ToolCall | ToolCallCancellation
type SendToolResponse = Callable[[Sequence[FunctionResponse]], Awaitable[None]]


class _Feed[T]:
    """FIFO for one reader at a time: each item is delivered once."""

    def __init__(self) -> None:
        self._items: deque[T] = deque()
        self._ended = False
        self._error: LiveError | None = None
        self._wakeup = asyncio.Event()

    @property
    def pending(self) -> bool:
        """Whether an item is ready."""
        return bool(self._items)

    def put(self, item: T) -> None:
        if not self._ended:
            self._items.append(item)
            self._wakeup.set()

    def end(self, error: LiveError | None = None) -> None:
        if not self._ended:
            self._ended = True
            self._error = error
            self._wakeup.set()

    def clear(self) -> None:
        self._items.clear()

    async def get(self) -> T | None:
        """Next item; None at the end; the feed's error after the last item."""
        while not self._items:
            if self._ended:
                if self._error is not None:
                    raise self._error
                return None
            self._wakeup.clear()
            await self._wakeup.wait()
        return self._items.popleft()


class LiveTurn:
    """One user turn (speech or text) and the model's reply."""

    def __init__(
        self,
        conversation_id: str | None,
        *,
        voice: bool,
        send_tool_response: SendToolResponse,
    ) -> None:
        """Start an empty turn; `send_tool_response` answers the model."""
        self.conversation_id = conversation_id
        self.voice = voice
        """Started by speech (the STT entity), not by text."""
        self.agent_claimed = not voice
        """A conversation agent handles the reply (text turns from the start)."""
        self.has_audio = False
        self.finished = False
        self.error: LiveError | None = None
        self._send_tool_response = send_tool_response
        self._loop = asyncio.get_running_loop()
        self._input: list[str] = []
        self._input_at = 0.0
        self._input_changed = asyncio.Event()
        self._output: list[str] = []
        self._events: _Feed[ReplyEvent] = _Feed()
        self._audio: _Feed[bytes] = _Feed()
        self._audio_unread = 0
        self._audio_claimed = False
        self._audio_read = False
        self._audio_released = False
        self._pending_calls: dict[str, FunctionCall] = {}
        self._cancelled: set[str] = set()
        self._audio_since_response = False
        self._completion_seen = False
        self._finished_at = 0.0
        self._settle: asyncio.TimerHandle | None = None
        self._done_callbacks: list[Callable[[LiveTurn], None]] = []

    # ----------------------------------------------------------- read side

    @property
    def input_transcript(self) -> str:
        """The user's words heard so far."""
        return "".join(self._input).strip()

    @property
    def output_transcript(self) -> str:
        """The model's words spoken so far."""
        return "".join(self._output).strip()

    @property
    def events_pending(self) -> bool:
        """Whether `next_event()` has an event ready."""
        return self._events.pending

    @property
    def tool_calls_pending(self) -> bool:
        """Whether a tool call of the model waits for its response."""
        return bool(self._pending_calls)

    @property
    def audio_available(self) -> bool:
        """Whether the audio can still be claimed by a TTS reader."""
        return not (self._audio_claimed or self._audio_released)

    def is_cancelled(self, call_id: str) -> bool:
        """Whether the model cancelled this tool call."""
        return call_id in self._cancelled

    async def wait_input_transcript(self) -> str:
        """Return the user's words once settled; call after the user's input ended.

        Fragments can arrive late, even after the reply: the transcript
        settles `INPUT_GRACE` after its latest fragment. Without any fragment
        it gives up after `INPUT_TIMEOUT` (or `LATE_INPUT_GRACE` after the
        reply ended) and returns "". Raises the turn's LiveError.
        """
        deadline = self._loop.time() + INPUT_TIMEOUT
        while True:
            if self.error is not None:
                raise self.error
            now = self._loop.time()
            if self._input:
                wait = self._input_at + INPUT_GRACE - now
            elif self.finished:
                wait = min(deadline, self._finished_at + LATE_INPUT_GRACE) - now
            else:
                wait = deadline - now
            if wait <= 0:
                return self.input_transcript
            self._input_changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._input_changed.wait()

    async def next_event(self) -> ReplyEvent | None:
        """Return the next reply event, None when the reply ended.

        Raises the LiveError that ended the turn.
        """
        return await self._events.get()

    async def respond(self, responses: Sequence[FunctionResponse]) -> None:
        """Answer tool calls; responses to cancelled calls are not sent."""
        for response in responses:
            self._pending_calls.pop(response.id, None)
        if not self.finished and (
            live := [r for r in responses if r.id not in self._cancelled]
        ):
            self._audio_since_response = False
            await self._send_tool_response(live)
        self._arm_settle()

    def claim_audio(self) -> bool:
        """Reserve the audio for one TTS reader; False if claimed or released."""
        if not self.audio_available:
            return False
        self._audio_claimed = True
        return True

    def audio_stream(self) -> AsyncIterator[bytes]:
        """Return the reply's 24 kHz PCM16 mono, from its first byte, live.

        Claims the audio at once (call `claim_audio()` first to reserve it);
        ends with the reply and raises the turn's LiveError after the audio
        received before the failure. One reader only.
        """
        if self._audio_read:
            raise RuntimeError("The audio of this turn is already being read")
        self._audio_read = self._audio_claimed = True
        return self._read_audio()

    async def _read_audio(self) -> AsyncIterator[bytes]:
        while (chunk := await self._audio.get()) is not None:
            self._audio_unread -= len(chunk)
            yield chunk

    def release_audio(self) -> None:
        """Drop the unclaimed audio (no reader came); later audio is ignored."""
        if self.audio_available:
            self._audio_released = True
            self._audio.clear()
            self._audio_unread = 0
            self._audio.end()

    def add_done_callback(self, callback: Callable[[LiveTurn], None]) -> None:
        """Call `callback(turn)` when the turn finishes (at once if it has)."""
        if self.finished:
            callback(self)
        else:
            self._done_callbacks.append(callback)

    # ---------------------------------------------------------- write side

    def add_input(self, text: str) -> None:
        """Add a fragment of the user's transcript (they may come late)."""
        self._input.append(text)
        self._input_at = self._loop.time()
        self._input_changed.set()

    def add_output(self, text: str) -> None:
        """Add a fragment of the model's transcript."""
        if not self.finished:
            self._output.append(text)
            self._events.put(OutputTranscription(text, finished=False))

    def add_audio(self, pcm: bytes) -> None:
        """Add a chunk of reply audio (24 kHz PCM16 mono)."""
        if self.finished:
            return
        self._model_continues()
        self._audio_since_response = True
        if not self.has_audio:
            self.has_audio = True
            self._events.put(AudioStarted())
        if self._audio_released:
            return
        if self._audio_unread + len(pcm) > MAX_AUDIO_SECONDS * AUDIO_RATE * 2:
            _LOGGER.warning(
                "Unread reply audio exceeds %s s; dropping", MAX_AUDIO_SECONDS
            )
            return
        self._audio_unread += len(pcm)
        self._audio.put(pcm)

    def add_tool_call(self, tool_call: ToolCall) -> None:
        """Add function calls of the model (answered through `respond()`)."""
        if self.finished:
            return
        self._model_continues()
        for call in tool_call.calls:
            self._pending_calls[call.id] = call
        self._events.put(tool_call)

    def cancel_tool_calls(self, cancellation: ToolCallCancellation) -> None:
        """Mark function calls cancelled by the model; they get no response."""
        self._cancelled.update(cancellation.ids)
        for call_id in cancellation.ids:
            self._pending_calls.pop(call_id, None)
        self._events.put(cancellation)
        self._arm_settle()

    def model_done(self) -> None:
        """Handle generationComplete / turnComplete (see the module docstring)."""
        self._completion_seen = True
        self._arm_settle()

    def finish(self, error: LiveError | None = None) -> None:
        """End the turn: readers get the rest, then the end (or `error`)."""
        if self.finished:
            return
        self.finished = True
        self.error = error
        self._finished_at = self._loop.time()
        if self._settle is not None:
            self._settle.cancel()
        self._events.end(error)
        self._audio.end(error)
        self._input_changed.set()
        callbacks, self._done_callbacks = self._done_callbacks, []
        for callback in callbacks:
            callback(self)

    def _model_continues(self) -> None:
        if self._completion_seen:
            self._completion_seen = False
            if self._settle is not None:
                self._settle.cancel()

    def _arm_settle(self) -> None:
        if self._settle is not None:
            self._settle.cancel()
        if self.finished or not self._completion_seen or self._pending_calls:
            return
        delay = OUTPUT_GRACE if self._audio_since_response else QUIET_GRACE
        self._settle = self._loop.call_later(delay, self.finish)
