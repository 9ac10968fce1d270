"""Scripting types for the fake Live server: replies, user turns and faults.

A test scripts the model side with `Reply` objects (queued on the server or a
connection, or chosen per user turn by a `Responder`), and injects failures
with the fault types below (`Refuse`, `Close`, `Stall`, `GoAway`, `ErrorFrame`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from .connection import Connection

# Production close reasons (the server truncates every reason to 123 bytes).
INTERNAL_ERROR = "Internal error encountered."
QUOTA_EXCEEDED = (
    "You exceeded your current quota, please check your plan and billing details."
)
SPENDING_CAP = (
    "Your project has exceeded its monthly spending cap. Please go to AI Studio "
    "at https://ai.studio/spend"
)
"""1011 reason when the Developer API project's spending cap is reached (5)."""
INVALID_ARGUMENT = "Request contains an invalid argument."
NOT_SUPPORTED = "Operation is not implemented, or supported, or enabled."
"""1008 reason when a feature is not enabled for the model (live-api.md 5)."""
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
type PrematureTurnComplete = Literal["after_tool_call", "after_tool_response"]
"""Where a Reply with tool calls sends an early, empty `turnComplete`."""
type Scheduling = Literal["INTERRUPT", "WHEN_IDLE", "SILENT"]
"""FunctionResponse.scheduling of a NON_BLOCKING call (live-api.md 2.4)."""


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

    @classmethod
    def spending_cap(cls, after_chunks: int = 0) -> Close:
        """1011 "Your project has exceeded its monthly spending cap. ..."."""
        return cls(code=1011, reason=SPENDING_CAP, after_chunks=after_chunks)


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
    after the turn (after its sessionResumptionUpdate), or in the middle of
    the reply, after `after_chunks` audio chunks, the rest of the reply still
    streaming on the same connection until the abort.
    """

    time_left: float = 2.0
    """Seconds until the 1008 GOAWAY_ABORT close (sent as "2s", "0.500s")."""
    after_chunks: int | None = None
    """In a Reply: send it after this many audio chunks; None: after the turn."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorFrame:
    """Send an `{"error": {code, message, status}}` data frame.

    As a connection fault: instead of setupComplete. In `Reply(error=...)`:
    instead of the reply. The connection stays open.
    """

    code: int = 500
    message: str = INTERNAL_ERROR
    status: str = "INTERNAL"


@dataclass(frozen=True, slots=True, kw_only=True)
class Grounding:
    """Google Search results sent as `serverContent.groundingMetadata` (3.2).

    Sent as `{webSearchQueries, groundingChunks: [{web: {uri, title,
    domain}}], searchEntryPoint?}`; the setup must have a `googleSearch`
    tool ("present when googleSearch was used").
    """

    queries: Sequence[str] = ()
    """webSearchQueries."""
    chunks: Sequence[tuple[str, str] | tuple[str, str, str]] = ()
    """(uri, title) or (uri, title, domain); domain defaults to the uri's
    host without "www."."""
    search_entry_point: Mapping[str, Any] | None = None
    """searchEntryPoint (e.g. {"renderedContent": "<div>..."}); None: left out."""
    after_chunks: int = 0
    """Send it after this many audio chunks of the reply's `text` (0: before
    the first one)."""

    def metadata(self) -> dict[str, Any]:
        """Return the groundingMetadata object."""
        chunks = []
        for uri, title, *rest in self.chunks:
            domain = rest[0] if rest else _domain(uri)
            chunks.append({"web": {"uri": uri, "title": title, "domain": domain}})
        body: dict[str, Any] = {
            "webSearchQueries": list(self.queries),
            "groundingChunks": chunks,
        }
        if self.search_entry_point is not None:
            body["searchEntryPoint"] = dict(self.search_entry_point)
        return body


def _domain(uri: str) -> str:
    host = urlsplit(uri).hostname or ""
    return host.removeprefix("www.")


type Fault = Refuse | Close | Stall | GoAway | ErrorFrame
"""A connection fault, consumed by the next connections (`server.add_fault`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """What the model does for one user turn.

    Sequence sent (defaults first, options in brackets; live-api.md sections
    in parentheses):

    1. [`sessionResumptionUpdate{resumable: false}` when
       `server.resumption_update_interval` is set: the model starts generating.]
    2. inputTranscription fragments of `heard` (the turn's fake STT unless
       scripted), when the setup has inputAudioTranscription and the turn had
       audio. `server.input_transcription = "at_turn_end"` (default): all of
       them here. `"streaming"`: most were already sent while the audio arrived
       (`server.input_transcription_lag` s after the audio that completed each
       word); the last ones follow here, that lag after the end of the turn,
       interleaving with what follows. [`heard_late`: the ones not sent yet
       come after turnComplete instead (step 6).]
    3. `delay` seconds (None: `server.model_delay`); before a continuation,
       the calling reply's `then_delay` if set.
    4. The audio of `text` in ~`chunk_ms` chunks, each chunk's share of the
       word-by-word outputTranscription fragments before it, or
       `transcript_lag` s after it (`server.output_transcript_lag`; then the
       fragments trail generationComplete/turnComplete by up to the lag).
       [`grounding`: `serverContent.groundingMetadata` after
       `Grounding.after_chunks` chunks (a mapping: sent verbatim before the
       first chunk; 3.2, 8.10); `in_progress_after_chunks=N` (3.x families):
       after N chunks (the filler) an early `turnComplete{interactionStatus:
       "IN_PROGRESS"}` without generationComplete, `in_progress_pause` s, then
       the rest of the audio and transcript (3.2); `go_away=GoAway(
       after_chunks=N)`: goAway after N chunks, streaming on; `close`: close
       after `close.after_chunks`; `pause_after_chunks`: wait for a barge-in.]
       A barge-in (speech in server VAD, activityStart, clientContent or
       realtimeInput.text) stops the reply: `interrupted`,
       `toolCallCancellation` (pending BLOCKING calls, 3.4), `turnComplete`
       (never generationComplete), sessionResumptionUpdate; pending lagged
       output fragments are dropped.
    5. With `tool_calls`: toolCall. Each call is BLOCKING or NON_BLOCKING by
       its declaration's `behavior` in the session's current tools, else by
       the family (`Family.default_behavior`: NON_BLOCKING on 3.8 and 3.8
       Extended Thinking, BLOCKING on 2.5 and 3.1; 2.1, 7.1). One Reply's calls
       must all be of one kind.
       a. BLOCKING (3.3): [`premature_turn_complete="after_tool_call"`: an
          empty turnComplete right away], the wait for every matching
          toolResponse, [`"after_tool_response"`: an empty turnComplete, no
          generationComplete, no audio], then the `then` reply continues the
          same model turn from step 3.
       b. NON_BLOCKING (2.4, 7.1): the model does not wait: the audio and
          transcript of `meanwhile` stream at once, then step 6 (3.x:
          `interactionStatus: "IN_PROGRESS"` while a call is pending). Each
          toolResponse message answering such calls puts every result in the
          history (`Turn(role="tool")`) and resolves `then(those responses)`
          by its `scheduling` (FunctionResponse top level, or inside
          `response`, 10.7; default WHEN_IDLE; INTERRUPT wins over WHEN_IDLE
          over SILENT within one message): INTERRUPT cuts a playing output
          (`interrupted`, turnComplete, as a barge-in) and speaks the
          follow-up now; WHEN_IDLE speaks it once the current output ended
          (at once when the model is idle); SILENT speaks nothing (if the
          model is idle, nothing else pending and the last turnComplete said
          IN_PROGRESS: an empty `turnComplete{interactionStatus: "IDLE"}`). A
          follow-up is a new output: steps 3-6 without input transcription.
          User input does not cancel NON_BLOCKING calls.
    6. generationComplete, turnComplete with usageMetadata [3.x families:
       `interactionStatus` "IDLE", or "IN_PROGRESS" while a NON_BLOCKING call
       is pending or a follow-up is due], the last outputTranscription
       fragment (`trailing_transcript`, as in production), [the late input
       transcription], sessionResumptionUpdate (not resumable while a
       NON_BLOCKING call is pending), [goAway of `go_away` without
       `after_chunks`], then the due follow-ups (5b).

    Merged serverContent (3.x families by default, `server.
    merge_server_content`; 3, 8.1): each audio chunk's message also carries
    the outputTranscription of its words (one fragment), and the last chunk's
    carries generationComplete and turnComplete (with interactionStatus,
    turnCompleteReason, waitingForInput, the trailing fragment) plus
    usageMetadata, when the transcript lag is 0 and nothing is scripted after
    the last chunk.

    With `server.transcription_finished_flag`, the last fragment of each
    transcription (input and output) carries `finished: true` (an empty one
    when every word already went out); production never sets it.
    """

    text: str = "OK."
    """Spoken text: outputTranscription, and the audio unless `audio` is given."""
    audio: bytes | None = None
    """24 kHz PCM16 mono to send instead of the espeak-ng speech of `text`."""
    heard: str | None = None
    """Input transcription; None: fake STT of the turn's audio (speech registry).
    When streaming, only its words after those already streamed are sent (none
    when it does not start with them)."""
    heard_late: bool = False
    """Send the input transcription (streaming: the words not sent yet) after
    turnComplete instead of first."""
    tool_calls: Sequence[ToolCall] = ()
    """Calls made after speaking `text`; BLOCKING ones wait for toolResponse."""
    then: Reply | FollowUp | None = None
    """The continuation after the tool responses (a Reply or a callable); for
    NON_BLOCKING calls, the follow-up of each toolResponse message (5b)."""
    meanwhile: str = ""
    """NON_BLOCKING calls: what the model keeps saying right after the toolCall,
    without waiting for the response ("": its output ends there)."""
    then_delay: float | None = None
    """Seconds between the tool responses and the continuation; None: the
    continuation's own `delay`."""
    premature_turn_complete: PrematureTurnComplete | None = None
    """Send an empty turnComplete (no generationComplete, no audio) right after
    the toolCall or after the tool responses, before the continuation, as 2.5
    native-audio models do."""
    delay: float | None = None
    """Seconds before the first model frame; None: `server.model_delay`."""
    chunk_ms: int = 40
    realtime_factor: float | None = None
    """Audio pacing: 1.0 real time, 2.0 twice as fast; None: the server's default
    (`server.realtime_factor`, None = as fast as possible)."""
    pause_after_chunks: int | None = None
    """Stop after this many audio chunks and wait for a barge-in (or close)."""
    in_progress_after_chunks: int | None = None
    """3.x families: after this many audio chunks of `text`, an early
    `turnComplete{interactionStatus: "IN_PROGRESS"}` (e.g. 3.8 Extended
    Thinking after a filler), then the rest (3.2)."""
    in_progress_pause: float = 0.0
    """Seconds between that IN_PROGRESS turnComplete and the rest."""
    grounding: Grounding | Mapping[str, Any] | None = None
    """Google Search grounding sent as `serverContent.groundingMetadata`
    during `text` (a mapping: that object verbatim); needs googleSearch in the
    session's tools (3.2)."""
    trailing_transcript: bool = True
    """Send the last outputTranscription fragment after turnComplete."""
    transcript_lag: float | None = None
    """Seconds each outputTranscription fragment trails its audio chunk; None:
    `server.output_transcript_lag` (default 0: the fragments come first)."""
    usage: Mapping[str, Any] | None = None
    """usageMetadata sent with turnComplete; None: computed (Developer names)."""
    turn_complete_reason: str | None = None
    waiting_for_input: bool | None = None
    close: Close | None = None
    """Close the connection mid-reply (after `close.after_chunks` chunks)."""
    stall: bool = False
    """Never answer this turn."""
    go_away: GoAway | None = None
    """Send goAway after this turn (or mid-reply: `GoAway.after_chunks`)."""
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

    role: Literal["user", "model", "tool"]
    """"tool": the result of a NON_BLOCKING call (its `response` as JSON), in
    the history when it arrives, whatever its scheduling."""
    text: str
    interrupted: bool = False
