"""Scripting types for the fake Live server: replies, user turns and faults.

A test scripts the model side with `Reply` objects (queued on the server or a
connection, or chosen per user turn by a `Responder`), and injects failures
with the fault types below (`Refuse`, `Close`, `Stall`, `GoAway`, `ErrorFrame`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from .connection import Connection

# Production close reasons (the server truncates every reason to 123 bytes).
INTERNAL_ERROR = "Internal error encountered."
QUOTA_EXCEEDED = (
    "You exceeded your current quota, please check your plan and billing details."
)
INVALID_ARGUMENT = "Request contains an invalid argument."
API_KEY_INVALID = "API key not valid. Please pass a valid API key."
UNREGISTERED_CALLER = (
    "Method doesn't allow unregistered callers (callers without established "
    "identity). Please use API Key or other form of API consumer identity to "
    "call this API."
)
INVALID_CREDENTIALS = (
    "Request had invalid authentication credentials. Expected OAuth 2 access "
    "token, login cookie or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project."
)
MISSING_CREDENTIALS = (
    "Request is missing required authentication credential. Expected OAuth 2 "
    "access token, login cookie or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project."
)
GOAWAY_ABORT = (
    "Connection aborted because the client failed to close the connection after "
    "receiving a GoAway signal once the session duration limit was reached."
)

type TurnEnd = Literal[
    "activityEnd", "audioStreamEnd", "silence", "clientContent", "text"
]


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCall:
    """One function call the model makes (`toolCall.functionCalls[]`)."""

    name: str
    args: Mapping[str, Any] = field(default_factory=dict)
    id: str | None = None
    """The call id; None: the server generates a unique one."""


type FollowUp = Callable[[list[dict[str, Any]]], Reply | Awaitable[Reply]]
"""Picks the reply after a tool call from the received `functionResponses`."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Close:
    """Close the WebSocket with a production code and reason.

    As a connection fault (`server.add_fault`): close right after the setup
    frame arrives, instead of `setupComplete`. In `Reply(close=...)`: close in
    the middle of the reply, after `after_chunks` audio chunks.
    """

    code: int = 1011
    reason: str = INTERNAL_ERROR
    after_chunks: int = 0

    @classmethod
    def internal(cls, after_chunks: int = 0) -> Close:
        """1011 "Internal error encountered."."""
        return cls(code=1011, reason=INTERNAL_ERROR, after_chunks=after_chunks)

    @classmethod
    def quota(cls, after_chunks: int = 0) -> Close:
        """1011 "You exceeded your current quota, ..."."""
        return cls(code=1011, reason=QUOTA_EXCEEDED, after_chunks=after_chunks)


@dataclass(frozen=True, slots=True, kw_only=True)
class Refuse:
    """Connection fault: answer the WebSocket upgrade with an HTTP status."""

    status: int = 503
    body: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Stall:
    """Connection fault: accept the setup frame but never send setupComplete."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GoAway:
    """Send `goAway{timeLeft}`; close 1008 if the client is still there after.

    As a connection fault: right after setupComplete. In `Reply(go_away=...)`:
    after the turn (after its sessionResumptionUpdate).
    """

    time_left: float = 2.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorFrame:
    """Send an `{"error": {code, message, status}}` data frame.

    As a connection fault: instead of setupComplete. In `Reply(error=...)`:
    instead of the reply. The connection stays open.
    """

    code: int = 500
    message: str = INTERNAL_ERROR
    status: str = "INTERNAL"


type Fault = Refuse | Close | Stall | GoAway | ErrorFrame
"""A connection fault, consumed by the next connections (`server.add_fault`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """What the model does for one user turn.

    Sequence sent: inputTranscription fragments (the `heard` text), an optional
    `delay`, the audio of `text` in ~`chunk_ms` chunks interleaved with word-by-
    word outputTranscription fragments, then either a toolCall (when
    `tool_calls`; after the matching toolResponse the `then` reply continues
    the same model turn) or generationComplete, turnComplete with
    usageMetadata, the last outputTranscription fragment (trailing, as in
    production) and sessionResumptionUpdate.
    """

    text: str = "OK."
    """Spoken text: outputTranscription, and the audio unless `audio` is given."""
    audio: bytes | None = None
    """24 kHz PCM16 mono to send instead of the espeak-ng speech of `text`."""
    heard: str | None = None
    """Input transcription; None: fake STT of the turn's audio (speech registry)."""
    heard_late: bool = False
    """Send the input transcription after turnComplete instead of first."""
    tool_calls: Sequence[ToolCall] = ()
    """Calls made after speaking `text`; the server then waits for toolResponse."""
    then: Reply | FollowUp | None = None
    """The continuation after the tool responses (a Reply or a callable)."""
    delay: float | None = None
    """Seconds before the first model frame; None: `server.model_delay`."""
    chunk_ms: int = 40
    realtime_factor: float | None = None
    """Audio pacing: 1.0 real time, 2.0 twice as fast; None: the server's default
    (`server.realtime_factor`, None = as fast as possible)."""
    pause_after_chunks: int | None = None
    """Stop after this many audio chunks and wait for a barge-in (or close)."""
    trailing_transcript: bool = True
    """Send the last outputTranscription fragment after turnComplete."""
    usage: Mapping[str, Any] | None = None
    """usageMetadata sent with turnComplete; None: computed (Developer names)."""
    turn_complete_reason: str | None = None
    waiting_for_input: bool | None = None
    close: Close | None = None
    """Close the connection mid-reply (after `close.after_chunks` chunks)."""
    stall: bool = False
    """Never answer this turn."""
    go_away: GoAway | None = None
    """Send goAway after this turn."""
    error: ErrorFrame | None = None
    """Send this error frame instead of the reply."""


@dataclass(frozen=True, slots=True, kw_only=True)
class UserTurn:
    """A completed user turn, as handed to a `Responder`."""

    connection: Connection
    index: int
    """0-based turn number on this connection."""
    ended_by: TurnEnd
    audio: bytes
    """PCM16 mono received during the turn."""
    sample_rate: int
    heard: str | None
    """Fake-STT text of `audio` (None when no registered speech matched)."""
    text: str | None
    """Typed text (clientContent user parts or realtimeInput.text)."""

    @property
    def query(self) -> str:
        """The user's words: typed text, else the recognised speech, else ""."""
        return self.text or self.heard or ""


type Responder = Callable[[UserTurn], Reply | Awaitable[Reply] | None]
"""Chooses the reply for a user turn; None falls back to the default reply."""


@dataclass(slots=True, kw_only=True)
class Turn:
    """One entry of a session's conversation history."""

    role: Literal["user", "model"]
    text: str
    interrupted: bool = False
