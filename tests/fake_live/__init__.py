"""Fake Gemini Live server for tests.

Use the `fake_live` fixture (plugin.py): a started `FakeLiveServer` on
127.0.0.1. Point a client at `fake_live.base_url` with `fake_live.api_key`
(Developer API) or `fake_live.service_account_json()` (Vertex AI). Script the
model with `Reply` (queued with `queue_reply`, or chosen per `UserTurn` by
`fake_live.responder`), inject failures with `add_fault(Refuse | Close | Stall
| GoAway | ErrorFrame)` or `Reply(close=..., stall=..., go_away=..., error=...)`,
make microphone audio with `speech(text, rate=16000)` (recognised back by the
server's fake STT), and inspect `fake_live.connections`::

    fake_live.queue_reply(
        Reply(
            text="Let me check.",
            tool_calls=[ToolCall(name="HassTurnOn", args={"name": "lamp"})],
            then=lambda responses: Reply(text="The lamp is on."),
        )
    )
    ...  # the client sends speech("turn on the lamp", 16000) + silence(600)
    conn = await fake_live.wait_for_connection()
    await conn.wait_for_tool_responses(1)
    assert conn.history[-1].text == "Let me check. The lamp is on."

Production behaviours are opt-in (defaults keep the simple sequence of
`Reply`): on the server `input_transcription = "streaming"` (with
`input_transcription_lag`), `output_transcript_lag`,
`transcription_finished_flag`, `connection_lifetime` (with `go_away_notice`),
`resumption_update_interval` and `expire_handles()`; per reply
`transcript_lag`, `premature_turn_complete`, `then_delay` and
`go_away=GoAway(after_chunks=...)`. `SpeechStream` is the incremental fake STT
behind streamed input transcription.

Each model family has its production contract (families.py, live-api.md 2.1,
3, 7): setup rejections (`conn.rejected_field`), `interactionStatus`, merged
serverContent (`server.merge_server_content`), NON_BLOCKING calls with
`scheduling` (`Reply(meanwhile=...)`, `conn.tool_results`), Extended Thinking's
`Reply(in_progress_after_chunks=..., in_progress_pause=...)`, Search grounding
(`Reply(grounding=Grounding(...))`) and contextUpdate
(`conn.system_instruction`); `server.strict_families` adds the rules the
reference does not state as rejections.

The Gemini TTS models' `streamGenerateContent` (SSE) of both providers is
`server.speech` (speech_endpoint.py): real espeak-ng speech of the exact text
in several events, the same auth checks as the WebSocket routes, Google's
JSON errors, faults (`SpeechError`, `SpeechStall`) and every request in
`server.speech.calls`. It serves no model until `server.speech.serve()` (as
for credentials the TTS models are refused to). A Live session whose system
instruction asks it to read aloud behaves as a native-audio model does by
default (reading.py): with no reply scripted it reads typed text, but answers
a text with a question in it (`READING_ANSWER`) instead of reading it.
"""

from .connection import Connection, Session, ToolResult
from .families import FAMILIES, RULES, Family, Rule, family_of
from .reading import ANSWER as READING_ANSWER
from .scenario import (
    API_KEY_INVALID,
    GOAWAY_ABORT,
    INTERNAL_ERROR,
    INVALID_ARGUMENT,
    INVALID_CREDENTIALS,
    MISSING_CREDENTIALS,
    NOT_SUPPORTED,
    QUOTA_EXCEEDED,
    SPENDING_CAP,
    UNREGISTERED_CALLER,
    Close,
    ErrorFrame,
    Fault,
    GoAway,
    Grounding,
    Refuse,
    Reply,
    Responder,
    Stall,
    ToolCall,
    Turn,
    UserTurn,
)
from .server import FakeLiveServer
from .speech import SpeechStream, chunks, recognize, silence, speech
from .speech_endpoint import SpeechCall, SpeechError, SpeechService, SpeechStall

__all__ = [
    "API_KEY_INVALID",
    "FAMILIES",
    "GOAWAY_ABORT",
    "INTERNAL_ERROR",
    "INVALID_ARGUMENT",
    "INVALID_CREDENTIALS",
    "MISSING_CREDENTIALS",
    "NOT_SUPPORTED",
    "QUOTA_EXCEEDED",
    "READING_ANSWER",
    "RULES",
    "SPENDING_CAP",
    "UNREGISTERED_CALLER",
    "Close",
    "Connection",
    "ErrorFrame",
    "FakeLiveServer",
    "Family",
    "Fault",
    "GoAway",
    "Grounding",
    "Refuse",
    "Reply",
    "Responder",
    "Rule",
    "Session",
    "SpeechCall",
    "SpeechError",
    "SpeechService",
    "SpeechStall",
    "SpeechStream",
    "Stall",
    "ToolCall",
    "ToolResult",
    "Turn",
    "UserTurn",
    "chunks",
    "family_of",
    "recognize",
    "silence",
    "speech",
]
