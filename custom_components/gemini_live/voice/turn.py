"""LiveTurn: one user turn of a Live session and the model's reply to it.

The session's reader task feeds the turn the service's signals, one event at
a time; up to three consumers read it, each at its own pace:

- the STT entity: `wait_input_transcript()`, the user's words;
- the conversation agent: `next_event()`, the reply's transcript deltas and
  tool calls in order, until the reply ends;
- the TTS entity: `audio_stream()`, the reply's 24 kHz PCM from its first byte.

The turn is a state machine of the service's signals (`Phase`):

    LISTENING --input_ended--> AWAITING --output--> REPLYING <--> TOOLS
    REPLYING --turnComplete--> COMPLETE --transcript final--> DONE

- `turnComplete` ends the reply only when it completes a model answer: one
  that comes while a tool call waits for its response, or before any model
  output since the turn started or since the last tool response (2.5
  native-audio models send such a premature `turnComplete` around tool
  calls), does not. The answer is awaited for up to `SILENT_REPLY_TIMEOUT`.
  With `interactionStatus: IN_PROGRESS` (3.x models) more output follows, so
  it does not end the reply either (again bounded by `SILENT_REPLY_TIMEOUT`).
  A `turnComplete` with a `turnCompleteReason` (a rejected or malformed
  answer), `waitingForInput` or `interactionStatus: IDLE` is final: the
  model will say nothing more (e.g. after a SILENT tool result).
- `interrupted` cuts the reply (unread audio is dropped) and the
  `turnComplete` that follows ends it. An `interrupted` before any output of
  this turn belongs to an earlier generation: it and its `turnComplete` are
  ignored (the first output of this turn clears that).
- At COMPLETE the audio ends. The output transcript trails its audio by up
  to a second and has no reliable end signal (`finished` is rarely set), so
  the turn becomes DONE at a `finished` fragment, `TRANSCRIPT_TAIL` seconds
  after the latest fragment, or at the latest `TRANSCRIPT_TAIL_MAX` seconds
  after the reply's end (also when audio came but no transcript yet).
- Input transcription is independent of the reply and may lag it; the
  transcript is final at a `finished` fragment or once the reply is DONE.
- Where the reply pauses (the model waits for a BLOCKING tool result, or a
  generation ended `IN_PROGRESS`) the words after the pause start a new
  message (`NextMessage`). Transcript fragments trail their audio by a lag
  (measured at the reply's start: first fragment after first audio), so a
  fragment is new once it comes that lag after the new audio (less half the
  pause, within `LAG_JITTER` and `LAG_MARGIN`); without lag, any fragment
  after the pause. A reply may pause several times.

Memory: unread reply audio is bounded by `MAX_AUDIO_SECONDS` of 24 kHz PCM16
(14.4 MB at 300 s); audio beyond it is dropped. A reader frees what it read.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
import contextlib
from dataclasses import dataclass
from enum import Enum, auto
import logging

from ..live import (
    FunctionCall,
    FunctionResponse,
    Grounding,
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
TRANSCRIPT_TAIL = 1.0
"""Quiet time after the latest output transcript fragment that ends it."""
TRANSCRIPT_TAIL_MAX = 3.0
"""Longest wait after the reply's end for its trailing output transcript."""
SILENT_REPLY_TIMEOUT = 10.0
"""Longest wait for the answer after a turnComplete that completed nothing."""
INPUT_GRACE = 0.3
"""Once the model answers, the input transcript settles this long after its
latest fragment (the rest, if any, is taken when the reply is done)."""
INPUT_SETTLE = 0.1
"""Fragments that came after the user's input ended settle this long after
the latest one: the service transcribed the ended turn in one burst."""
INPUT_TIMEOUT = 8.0
"""Longest wait for the input transcript after the user's input ended."""
NO_LAG = 0.1
"""Transcript lag below which fragments are taken to come with their audio."""
LAG_MARGIN = 0.3
"""Most tolerance of a lag varying within one reply, in seconds."""
LAG_JITTER = 0.01
"""Least tolerance: the lag measured at the reply's start is not exact."""
IN_PROGRESS = "IN_PROGRESS"
"""interactionStatus of a turnComplete after which more output follows."""
IDLE = "IDLE"
"""interactionStatus of a turnComplete that ends the interaction."""


class Phase(Enum):
    """Where the turn stands (see the module docstring)."""

    LISTENING = auto()
    AWAITING = auto()
    REPLYING = auto()
    TOOLS = auto()
    COMPLETE = auto()
    DONE = auto()


@dataclass(slots=True)
class _Pause:
    """A pause of the reply: its last audio before, its first audio after."""

    start: float
    """Arrival of the last audio before it (0: there was none)."""
    resumed: float | None = None


@dataclass(frozen=True, slots=True)
class NextMessage:
    """The words that follow belong to the reply after a pause (a tool)."""


type ReplyEvent = (
    OutputTranscription | ToolCall | ToolCallCancellation | Grounding | NextMessage
)
type SendToolResponse = Callable[[Sequence[FunctionResponse]], Awaitable[None]]


class _Feed[T]:
    """FIFO for one reader at a time: each item is delivered once."""

    def __init__(self) -> None:
        self._items: deque[T] = deque()
        self._ended = False
        self._error: LiveError | None = None
        self._wakeup = asyncio.Event()

    @property
    def ended(self) -> bool:
        """Whether the feed takes no more items."""
        return self._ended

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
        non_blocking: frozenset[str] = frozenset(),
    ) -> None:
        """Start an empty turn; `send_tool_response` answers the model."""
        self.conversation_id = conversation_id
        self.non_blocking = non_blocking
        """Functions the model calls NON_BLOCKING (it talks on meanwhile)."""
        self.voice = voice
        """Started by speech (the STT entity), not by text."""
        self.agent_claimed = not voice
        """A conversation agent handles the reply (text turns from the start)."""
        self.phase = Phase.LISTENING if voice else Phase.AWAITING
        self.error: LiveError | None = None
        self.interrupted = False
        self.has_audio = False
        self.usage: dict[str, int | None] = {}
        self._send_tool_response = send_tool_response
        self._loop = asyncio.get_running_loop()
        self._input: list[str] = []
        self._input_final = False
        self._input_at = 0.0
        self._input_ended_at: float | None = None
        self._input_changed = asyncio.Event()
        self._reply_started = asyncio.Event()
        self._output: list[str] = []
        self._output_seen = False
        """Model output (audio, transcript, tool call) since the last request."""
        self._stale_completion = False
        self._generation_open = False
        """The model generates: its turnComplete has not come yet."""
        self._complete_at = 0.0
        self._first_audio_at: float | None = None
        self._first_output_at: float | None = None
        self._last_audio_at: float | None = None
        self._pauses: deque[_Pause] = deque()
        """Pauses whose first words after them did not come yet, in order."""
        self._pause_count = 0
        self._last_pause: _Pause | None = None
        self._call_segments: dict[str, int] = {}
        self._events: _Feed[ReplyEvent] = _Feed()
        self._audio: _Feed[bytes] = _Feed()
        self._audio_unread = 0
        self._audio_claimed = False
        self._audio_read = False
        self._audio_released = False
        self._pending_calls: dict[str, FunctionCall] = {}
        self._cancelled: set[str] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._done_callbacks: list[Callable[[LiveTurn], None]] = []

    # ----------------------------------------------------------- read side

    @property
    def finished(self) -> bool:
        """Whether the turn is over (DONE, or failed)."""
        return self.phase is Phase.DONE

    @property
    def reply_complete(self) -> bool:
        """Whether the model's reply ended (its transcript may still trail)."""
        return self.phase in (Phase.COMPLETE, Phase.DONE)

    @property
    def input_transcript(self) -> str:
        """The user's words heard so far."""
        return "".join(self._input).strip()

    @property
    def output_transcript(self) -> str:
        """The model's words spoken so far."""
        return "".join(self._output).strip()

    @property
    def generation_open(self) -> bool:
        """Whether the model's generation for this turn awaits its turnComplete."""
        return self._generation_open and not self.reply_complete

    @property
    def transcript_trails(self) -> bool:
        """Whether the ended reply's transcript may still come after its audio.

        Not when its words came with their audio (no lag): they are all in.
        """
        if self.finished or not self.reply_complete or not self.has_audio:
            return False
        return self._first_output_at is None or self._lag() >= NO_LAG

    @property
    def tool_calls_pending(self) -> bool:
        """Whether a tool call of the model waits for its response."""
        return bool(self._pending_calls)

    @property
    def audio_available(self) -> bool:
        """Whether the audio can still be claimed by a TTS reader."""
        return not (self._audio_claimed or self._audio_released)

    def is_pending(self, call_id: str) -> bool:
        """Whether this tool call waits for its response."""
        return call_id in self._pending_calls

    def is_cancelled(self, call_id: str) -> bool:
        """Whether the model cancelled this tool call."""
        return call_id in self._cancelled

    async def wait_input_transcript(self) -> str:
        """Return the user's words; call after the user's input ended.

        Final at a `finished` fragment or when the reply is done;
        `INPUT_SETTLE` after the latest fragment when fragments came after
        the input ended; once the model answers, `INPUT_GRACE` after the
        latest fragment; at most `INPUT_TIMEOUT`. Raises the turn's LiveError.
        """
        deadline = self._loop.time() + INPUT_TIMEOUT
        while True:
            if self.error is not None:
                raise self.error
            now = self._loop.time()
            if self._input_final or self.finished or now >= deadline:
                return self.input_transcript
            wait = deadline - now
            if settle := self._input_settle():
                wait = min(wait, self._input_at + settle - now)
                if wait <= 0:
                    return self.input_transcript
            self._input_changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._input_changed.wait()

    def _input_settle(self) -> float | None:
        """Quiet time after the latest fragment that makes the input final."""
        if not self._input:
            return None
        if self._input_ended_at is not None and self._input_at > self._input_ended_at:
            return INPUT_SETTLE
        return INPUT_GRACE if self._output_seen else None

    async def next_event(self) -> ReplyEvent | None:
        """Return the next reply event, None when the reply ended.

        Raises the LiveError that ended the turn.
        """
        return await self._events.get()

    async def wait_reply_started(self) -> None:
        """Wait until the model's reply began (its first output) or ended."""
        await self._reply_started.wait()

    async def wait_done(self) -> None:
        """Wait until the turn is DONE (its transcripts final)."""
        if self.finished:
            return
        done = asyncio.Event()
        self.add_done_callback(lambda _: done.set())
        await done.wait()

    async def respond(self, responses: Sequence[FunctionResponse]) -> int:
        """Answer pending tool calls (cancelled or answered ones are skipped).

        Returns the segment of the reply whose words may speak of them: the
        words after the current pause if the model has not spoken since it
        (it waits, or is idle), else those after the next pause.
        """
        live = [r for r in responses if self._pending_calls.pop(r.id, None)]
        if any(r.name not in self.non_blocking for r in live):
            self._pause()  # the model waited for these results
        segment = self._pause_count
        if self._last_pause is None or self._last_pause.resumed is not None:
            segment += 1
        if self.reply_complete or not live:
            return segment
        self._output_seen = False  # the model owes an answer to the results
        self._generation_open = True
        if not self._pending_calls:
            self._set_phase(Phase.REPLYING)
        await self._send_tool_response(live)
        return segment

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
            self._drop_audio()
            self._audio.end()

    def add_done_callback(self, callback: Callable[[LiveTurn], None]) -> None:
        """Call `callback(turn)` when the turn is DONE (at once if it is)."""
        if self.finished:
            callback(self)
        else:
            self._done_callbacks.append(callback)

    # ---------------------------------------------------------- write side

    def input_ended(self) -> None:
        """Mark the user's input as sent completely: a reply is due."""
        if self.phase is Phase.LISTENING:
            self._set_phase(Phase.AWAITING)
            self._input_ended_at = self._loop.time()

    def add_input(self, text: str, *, finished: bool = False) -> None:
        """Add a fragment of the user's transcript (they may come late)."""
        if self._input_final:
            return
        self._input.append(text)
        self._input_final = finished
        self._input_at = self._loop.time()
        self._input_changed.set()

    def add_output(self, text: str, *, finished: bool = False) -> None:
        """Add a fragment of the model's transcript."""
        if self.finished:
            return
        if text:
            self._output.append(text)
            if self._first_output_at is None:
                self._first_output_at = self._loop.time()
            while self._pauses and self._words_after(self._pauses[0]):
                self._pauses.popleft()
                self._events.put(NextMessage())
            self._events.put(OutputTranscription(text, finished=finished))
        if self.phase is not Phase.COMPLETE:
            if text:
                self._model_output()
        elif finished:
            self._finish()
        elif text:
            self._arm_transcript_tail()

    def add_audio(self, pcm: bytes) -> None:
        """Add a chunk of reply audio (24 kHz PCM16 mono)."""
        if self.reply_complete:
            return
        self._model_output()
        self.has_audio = True
        self._last_audio_at = self._loop.time()
        if self._first_audio_at is None:
            self._first_audio_at = self._last_audio_at
        if self._last_pause is not None and self._last_pause.resumed is None:
            self._last_pause.resumed = self._last_audio_at
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
        if self.reply_complete:
            return
        self._model_output()
        for call in tool_call.calls:
            self._pending_calls[call.id] = call
            self._call_segments[call.id] = self._pause_count
        self._set_phase(Phase.TOOLS)
        self._events.put(tool_call)

    def add_grounding(self, grounding: Grounding) -> None:
        """Add the Google Search results the reply is based on."""
        if not self.reply_complete:
            self._events.put(grounding)

    def cancel_tool_calls(self, cancellation: ToolCallCancellation) -> None:
        """Mark function calls cancelled by the model; they get no response."""
        self._cancelled.update(cancellation.ids)
        for call_id in cancellation.ids:
            self._pending_calls.pop(call_id, None)
        if self.phase is Phase.TOOLS and not self._pending_calls:
            self._set_phase(Phase.REPLYING)
        self._events.put(cancellation)

    def set_usage(self, usage: dict[str, int | None]) -> None:
        """Record the token counts the service reported for this turn."""
        self.usage = usage

    def interrupt(self) -> None:
        """Handle `interrupted`: the reply is cut; its turnComplete follows."""
        if not self._output_seen and not self._output and not self.has_audio:
            self._stale_completion = True  # an earlier generation's
            return
        self.interrupted = True
        self._drop_audio()

    def turn_complete(
        self,
        interaction_status: str | None = None,
        *,
        reason: str | None = None,
        waiting_for_input: bool = False,
    ) -> None:
        """Handle `turnComplete` (see the module docstring)."""
        if self.reply_complete:
            return
        if self._stale_completion:
            self._stale_completion = False
            return
        if interaction_status == IN_PROGRESS or self._pending_calls:
            self._pause()  # a generation ended; more follows
        if interaction_status == IN_PROGRESS:
            if not self._pending_calls:
                self._arm(SILENT_REPLY_TIMEOUT, self._complete)
            return
        self._generation_open = False
        if self.interrupted:
            self._complete()
        elif self._pending_calls or self.phase is Phase.LISTENING:
            return
        elif (
            self._output_seen
            or waiting_for_input
            or _final(reason)
            or interaction_status == IDLE
        ):
            self._complete()
        else:  # nothing answered yet: premature; the answer is awaited, bounded
            self._arm(SILENT_REPLY_TIMEOUT, self._complete)

    def end_reply(self) -> None:
        """End the reply with what came (its connection was left mid-reply)."""
        if not self.reply_complete and self.phase is not Phase.LISTENING:
            self._generation_open = False
            self._complete()

    def finish(self, error: LiveError | None = None) -> None:
        """End the turn now: readers get the rest, then the end (or `error`)."""
        if self.finished:
            return
        self.error = error
        self._finish()

    # ------------------------------------------------------------ internals

    def segment(self, call_id: str) -> int:
        """How many pauses of the reply came before this tool call."""
        return self._call_segments.get(call_id, 0)

    def _pause(self) -> None:
        """Note that the reply paused; its words after this start a message."""
        if self._last_pause is not None and self._last_pause.resumed is None:
            return  # no audio since the last pause: the same pause
        self._last_pause = _Pause(self._last_audio_at or 0.0)
        self._pauses.append(self._last_pause)
        self._pause_count += 1

    def _words_after(self, pause: _Pause) -> bool:
        """Whether a fragment arriving now is of the words after `pause`."""
        if pause.start and (lag := self._lag()) >= NO_LAG:
            if pause.resumed is None:
                return False  # a late fragment of the words before the pause
            gap = pause.resumed - pause.start
            margin = min(max(gap / 2, LAG_JITTER), LAG_MARGIN)
            if self._loop.time() < pause.resumed + lag - margin:
                return False
        return True

    def _lag(self) -> float:
        """How long transcript fragments trail their audio in this reply."""
        if self._first_audio_at is None or self._first_output_at is None:
            return 0.0
        return max(self._first_output_at - self._first_audio_at, 0.0)

    def _model_output(self) -> None:
        self._reply_started.set()
        self._stale_completion = False
        self._generation_open = True
        if not self._output_seen:
            self._output_seen = True
            self._input_changed.set()  # the input transcript may settle now
        self._cancel_timer()
        if self.phase in (Phase.LISTENING, Phase.AWAITING):
            self._set_phase(Phase.REPLYING)

    def _complete(self) -> None:
        """End the reply's audio; its transcript may still trail."""
        self._reply_started.set()
        self._set_phase(Phase.COMPLETE)
        self._audio.end()
        self._complete_at = self._loop.time()
        self._arm_transcript_tail()

    def _arm_transcript_tail(self) -> None:
        """Finish after a quiet `TRANSCRIPT_TAIL`, within `TRANSCRIPT_TAIL_MAX`."""
        left = self._complete_at + TRANSCRIPT_TAIL_MAX - self._loop.time()
        if self._output or not self.has_audio:
            left = min(left, TRANSCRIPT_TAIL)
        self._arm(max(left, 0.0), self._finish)

    def _finish(self) -> None:
        self._reply_started.set()
        self._cancel_timer()
        self.phase = Phase.DONE
        self._events.end(self.error)
        self._audio.end(self.error)
        self._input_changed.set()
        callbacks, self._done_callbacks = self._done_callbacks, []
        for callback in callbacks:
            callback(self)

    def _drop_audio(self) -> None:
        self._audio.clear()
        self._audio_unread = 0

    def _set_phase(self, phase: Phase) -> None:
        if not self.reply_complete:
            self.phase = phase

    def _arm(self, delay: float, action: Callable[[], None]) -> None:
        self._cancel_timer()
        self._timer = self._loop.call_later(delay, action)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _final(reason: str | None) -> bool:
    """Whether a turnCompleteReason says the model will not answer."""
    return reason not in (None, "TURN_COMPLETE_REASON_UNSPECIFIED")
