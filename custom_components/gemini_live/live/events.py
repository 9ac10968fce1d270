"""Typed server events and the parser of server messages."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
import json
import logging
from typing import Any

from .errors import LiveServiceUnavailableError, error_from_payload

_LOGGER = logging.getLogger(__name__)

AUDIO_OUT_RATE = 24000


@dataclass(frozen=True, slots=True)
class SetupComplete:
    """The server accepted the setup message."""

    session_id: str | None


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """Model speech: PCM16LE mono at ``sample_rate``."""

    data: bytes
    sample_rate: int


@dataclass(frozen=True, slots=True)
class ModelText:
    """Model text (a thought when ``thought`` is set)."""

    text: str
    thought: bool


@dataclass(frozen=True, slots=True)
class InputTranscription:
    """A fragment of the transcript of the user's speech."""

    text: str
    finished: bool


@dataclass(frozen=True, slots=True)
class OutputTranscription:
    """A fragment of the transcript of the model's speech."""

    text: str
    finished: bool


@dataclass(frozen=True, slots=True)
class GenerationComplete:
    """The model finished generating this turn."""


@dataclass(frozen=True, slots=True)
class TurnComplete:
    """The model finished its turn.

    ``interaction_status`` is the server's ``IN_PROGRESS`` (more output may
    follow, e.g. from async tools) or ``IDLE``, when sent.
    """

    reason: str | None
    waiting_for_input: bool
    interaction_status: str | None = None


@dataclass(frozen=True, slots=True)
class Interrupted:
    """User activity cancelled the generation; drop queued audio."""


@dataclass(frozen=True, slots=True)
class FunctionCall:
    """One function the model wants called."""

    id: str
    name: str
    args: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """Functions to call; answer each with a ``FunctionResponse``."""

    calls: tuple[FunctionCall, ...]


@dataclass(frozen=True, slots=True)
class ToolCallCancellation:
    """Pending function calls that must not run (or be undone)."""

    ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class GoAway:
    """The server will end the connection after ``time_left`` seconds."""

    time_left: float | None


@dataclass(frozen=True, slots=True)
class SessionResumptionUpdate:
    """A new resumption handle (usable only when ``resumable``)."""

    new_handle: str | None
    resumable: bool


@dataclass(frozen=True, slots=True)
class WebSource:
    """A web page a grounded answer is based on."""

    uri: str
    title: str


@dataclass(frozen=True, slots=True)
class Grounding:
    """Google Search results the model used (``groundingMetadata``)."""

    queries: tuple[str, ...]
    sources: tuple[WebSource, ...]


@dataclass(frozen=True, slots=True)
class Resumed:
    """The session moved to a resumed connection after a goAway (client event).

    ``reply_cut``: the old connection was left at its deadline while the model
    still owed a reply; that reply will not continue on the new connection.
    """

    reply_cut: bool


@dataclass(frozen=True, slots=True)
class UsageMetadata:
    """Token counts reported by the server."""

    prompt_tokens: int | None
    response_tokens: int | None
    total_tokens: int | None
    thoughts_tokens: int | None = None
    cached_tokens: int | None = None


type LiveEvent = (
    SetupComplete
    | AudioChunk
    | ModelText
    | InputTranscription
    | OutputTranscription
    | GenerationComplete
    | Grounding
    | TurnComplete
    | Interrupted
    | ToolCall
    | ToolCallCancellation
    | GoAway
    | SessionResumptionUpdate
    | Resumed
    | UsageMetadata
)


_KNOWN_KEYS = frozenset(
    {
        "setupComplete",
        "serverContent",
        "toolCall",
        "toolCallCancellation",
        "goAway",
        "sessionResumptionUpdate",
        "usageMetadata",
    }
)


def decode_base64(data: str) -> bytes:
    """Decode standard or URL-safe base64, with or without padding."""
    text = "".join(data.split()).replace("-", "+").replace("_", "/").rstrip("=")
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def parse_duration(value: Any) -> float | None:
    """Parse a protobuf Duration (``"50s"``, ``"3.000000001s"``) into seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip().removesuffix("s"))
        except ValueError:
            pass
    return None


def _rate(mime_type: str) -> int:
    """Return the ``rate=`` parameter of an audio MIME type (24 kHz if absent)."""
    for param in mime_type.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key.lower() == "rate" and value.isdigit():
            return int(value)
    return AUDIO_OUT_RATE


def _int(value: Any) -> int | None:
    """Read an int32 (number) or int64 (string) field."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _transcript(value: Any) -> tuple[str, bool] | None:
    if not isinstance(value, Mapping):
        return None
    text = value.get("text") or ""
    finished = bool(value.get("finished"))
    if not text and not finished:
        return None
    return str(text), finished


def _parts(content: Mapping[str, Any]) -> list[LiveEvent]:
    events: list[LiveEvent] = []
    turn = content.get("modelTurn")
    parts = turn.get("parts") if isinstance(turn, Mapping) else None
    for part in parts if isinstance(parts, list) else ():
        if not isinstance(part, Mapping):
            continue
        inline = part.get("inlineData")
        if isinstance(inline, Mapping):
            mime = str(inline.get("mimeType") or "")
            if mime.startswith("audio/pcm") or mime == "":
                events.append(
                    AudioChunk(
                        decode_base64(str(inline.get("data") or "")), _rate(mime)
                    )
                )
            else:
                _LOGGER.debug("Ignoring inline data of type %s", mime)
        elif isinstance(part.get("text"), str):
            events.append(ModelText(part["text"], bool(part.get("thought"))))
        else:
            _LOGGER.debug("Ignoring model part with keys %s", sorted(part))
    return events


def _grounding(value: Mapping[str, Any]) -> Grounding:
    queries = value.get("webSearchQueries")
    chunks = value.get("groundingChunks")
    sources = []
    for chunk in chunks if isinstance(chunks, list) else ():
        web = chunk.get("web") if isinstance(chunk, Mapping) else None
        if isinstance(web, Mapping) and isinstance(uri := web.get("uri"), str):
            title = web.get("title")
            sources.append(WebSource(uri, title if isinstance(title, str) else uri))
    return Grounding(
        tuple(q for q in queries if isinstance(q, str))
        if isinstance(queries, list)
        else (),
        tuple(sources),
    )


def _server_content(content: Mapping[str, Any]) -> list[LiveEvent]:
    events = _parts(content)
    if isinstance(grounding := content.get("groundingMetadata"), Mapping):
        events.append(_grounding(grounding))
    if (heard := _transcript(content.get("inputTranscription"))) is not None:
        events.append(InputTranscription(*heard))
    if (spoken := _transcript(content.get("outputTranscription"))) is not None:
        events.append(OutputTranscription(*spoken))
    if content.get("interrupted"):
        events.append(Interrupted())
    if content.get("generationComplete"):
        events.append(GenerationComplete())
    if content.get("turnComplete"):
        reason = content.get("turnCompleteReason")
        status = content.get("interactionStatus")
        events.append(
            TurnComplete(
                reason if isinstance(reason, str) else None,
                bool(content.get("waitingForInput")),
                status if isinstance(status, str) else None,
            )
        )
    return events


def _tool_call(value: Mapping[str, Any]) -> ToolCall:
    calls = value.get("functionCalls")
    return ToolCall(
        tuple(
            FunctionCall(
                id=str(call.get("id") or ""),
                name=str(call.get("name") or ""),
                args=args if isinstance(args := call.get("args"), Mapping) else {},
            )
            for call in (calls if isinstance(calls, list) else ())
            if isinstance(call, Mapping)
        )
    )


def _usage(value: Mapping[str, Any]) -> UsageMetadata:
    response = value.get("responseTokenCount", value.get("candidatesTokenCount"))
    return UsageMetadata(
        prompt_tokens=_int(value.get("promptTokenCount")),
        response_tokens=_int(response),
        total_tokens=_int(value.get("totalTokenCount")),
        thoughts_tokens=_int(value.get("thoughtsTokenCount")),
        cached_tokens=_int(value.get("cachedContentTokenCount")),
    )


def _section(message: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    value = message.get(key)
    return value if isinstance(value, Mapping) else None


def parse_server_message(payload: bytes | str) -> list[LiveEvent]:
    """Parse one server frame into events, in a stable order.

    Several fields of one message give several events: model parts,
    transcriptions, interrupted, generation and turn completion, then tool,
    goAway and resumption events, and usage last. Error frames raise
    ``LiveError``; unknown keys are logged and ignored.
    """
    try:
        message = json.loads(payload)
    except UnicodeDecodeError, ValueError:
        raise LiveServiceUnavailableError(
            "Malformed server message (not JSON)"
        ) from None
    if not isinstance(message, Mapping):
        raise LiveServiceUnavailableError("Malformed server message (not an object)")
    if "error" in message or ("code" in message and not _KNOWN_KEYS & message.keys()):
        raise error_from_payload(message)
    if unknown := message.keys() - _KNOWN_KEYS:
        _LOGGER.debug("Ignoring unknown server message keys %s", sorted(unknown))
    events: list[LiveEvent] = []
    try:
        if (setup := _section(message, "setupComplete")) is not None:
            session_id = setup.get("sessionId")
            events.append(SetupComplete(str(session_id) if session_id else None))
        if (content := _section(message, "serverContent")) is not None:
            events.extend(_server_content(content))
        if (tool_call := _section(message, "toolCall")) is not None:
            events.append(_tool_call(tool_call))
        if (cancel := _section(message, "toolCallCancellation")) is not None:
            ids = cancel.get("ids")
            events.append(
                ToolCallCancellation(
                    tuple(str(i) for i in (ids if isinstance(ids, list) else ()))
                )
            )
        if (go_away := _section(message, "goAway")) is not None:
            events.append(GoAway(parse_duration(go_away.get("timeLeft"))))
        if (update := _section(message, "sessionResumptionUpdate")) is not None:
            handle = update.get("newHandle")
            events.append(
                SessionResumptionUpdate(
                    str(handle) if handle else None, bool(update.get("resumable"))
                )
            )
    except binascii.Error:
        raise LiveServiceUnavailableError(
            "Malformed server message (bad base64 audio)"
        ) from None
    if (usage := _section(message, "usageMetadata")) is not None:
        events.append(_usage(usage))
    return events
