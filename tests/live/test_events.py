"""Server message parsing: every message type, several fields, encodings, errors."""

import base64
import json
import logging

import pytest

from custom_components.gemini_live.live import (
    AudioChunk,
    FunctionCall,
    GenerationComplete,
    GoAway,
    Grounding,
    InputTranscription,
    Interrupted,
    LiveAuthError,
    LiveQuotaError,
    LiveServiceUnavailableError,
    ModelText,
    OutputTranscription,
    SessionResumptionUpdate,
    SetupComplete,
    ToolCall,
    ToolCallCancellation,
    TurnComplete,
    UsageMetadata,
    WebSource,
    parse_server_message,
)
from custom_components.gemini_live.live.events import decode_base64, parse_duration

PCM = bytes(range(251)) * 3


def parse(message: object) -> list[object]:
    return list(parse_server_message(json.dumps(message)))


def test_setup_complete() -> None:
    assert parse({"setupComplete": {}}) == [SetupComplete(None)]
    assert parse({"setupComplete": {"sessionId": "abc"}}) == [SetupComplete("abc")]


def test_bytes_and_str_payloads() -> None:
    payload = json.dumps({"setupComplete": {}})
    assert parse_server_message(payload.encode()) == parse_server_message(payload)


def test_audio_chunk_rates() -> None:
    data = base64.b64encode(PCM).decode()
    message = {
        "serverContent": {
            "modelTurn": {
                "role": "model",
                "parts": [
                    {"inlineData": {"mimeType": "audio/pcm;rate=24000", "data": data}},
                    {"inlineData": {"mimeType": "audio/pcm; rate=16000", "data": data}},
                    {"inlineData": {"mimeType": "audio/pcm", "data": data}},
                    {"inlineData": {"mimeType": "audio/pcm;codec=x", "data": data}},
                    {"inlineData": {"data": data}},
                ],
            }
        }
    }
    assert parse(message) == [
        AudioChunk(PCM, 24000),
        AudioChunk(PCM, 16000),
        AudioChunk(PCM, 24000),
        AudioChunk(PCM, 24000),
        AudioChunk(PCM, 24000),
    ]


@pytest.mark.parametrize(
    "encode",
    [
        base64.b64encode,
        base64.urlsafe_b64encode,
        lambda data: base64.b64encode(data).rstrip(b"="),
        lambda data: base64.urlsafe_b64encode(data).rstrip(b"="),
    ],
)
def test_permissive_base64(encode: object) -> None:
    for size in (1, 2, 3, 4, 250):
        data = bytes(range(256))[-size:]
        assert decode_base64(encode(data).decode()) == data  # type: ignore[operator]


def test_bad_base64_raises() -> None:
    message = {
        "serverContent": {"modelTurn": {"parts": [{"inlineData": {"data": "a"}}]}}
    }
    with pytest.raises(LiveServiceUnavailableError, match="base64"):
        parse(message)


def test_text_and_thought_parts() -> None:
    message = {
        "serverContent": {
            "modelTurn": {
                "parts": [
                    {"text": "**Thinking**", "thought": True},
                    {"text": "Hello"},
                    {"inlineData": {"mimeType": "image/png", "data": "AAAA"}},
                    {"executableCode": {"language": "PYTHON", "code": "1"}},
                    "junk",
                ]
            }
        }
    }
    assert parse(message) == [
        ModelText("**Thinking**", True),
        ModelText("Hello", False),
    ]


def test_several_fields_in_order() -> None:
    data = base64.b64encode(PCM).decode()
    message = {
        "serverContent": {
            "turnComplete": True,
            "generationComplete": True,
            "interrupted": True,
            "outputTranscription": {"text": " world"},
            "inputTranscription": {"text": "hi", "finished": True},
            "modelTurn": {
                "parts": [
                    {"inlineData": {"mimeType": "audio/pcm;rate=24000", "data": data}}
                ]
            },
            "turnCompleteReason": "NEED_MORE_INPUT",
            "waitingForInput": True,
        },
        "usageMetadata": {
            "promptTokenCount": 10,
            "responseTokenCount": 5,
            "totalTokenCount": 15,
        },
    }
    assert parse(message) == [
        AudioChunk(PCM, 24000),
        InputTranscription("hi", True),
        OutputTranscription(" world", False),
        Interrupted(),
        GenerationComplete(),
        TurnComplete("NEED_MORE_INPUT", True),
        UsageMetadata(10, 5, 15),
    ]


def test_turn_complete_defaults() -> None:
    assert parse({"serverContent": {"turnComplete": True}}) == [
        TurnComplete(None, False)
    ]
    assert parse({"serverContent": {"turnComplete": True}})[0] == TurnComplete(
        None, False, None
    )
    assert parse({"serverContent": {"turnComplete": False, "interrupted": False}}) == []


def test_empty_transcriptions_skipped() -> None:
    message = {
        "serverContent": {
            "inputTranscription": {},
            "outputTranscription": {"text": "", "finished": True},
        }
    }
    assert parse(message) == [OutputTranscription("", True)]


def test_tool_call() -> None:
    message = {
        "toolCall": {
            "functionCalls": [
                {"id": "1", "name": "HassTurnOn", "args": {"device_name": "lamp"}},
                {"name": "no_args"},
                "junk",
            ]
        }
    }
    assert parse(message) == [
        ToolCall(
            (
                FunctionCall(id="1", name="HassTurnOn", args={"device_name": "lamp"}),
                FunctionCall(id="", name="no_args", args={}),
            )
        )
    ]


def test_tool_call_cancellation() -> None:
    assert parse({"toolCallCancellation": {"ids": ["a", "b"]}}) == [
        ToolCallCancellation(("a", "b"))
    ]
    assert parse({"toolCallCancellation": {}}) == [ToolCallCancellation(())]


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("50s", 50.0),
        ("3.000000001s", 3.000000001),
        ("0.5s", 0.5),
        (7, 7.0),
        ("soon", None),
        (None, None),
        (True, None),
    ],
)
def test_go_away(value: object, seconds: float | None) -> None:
    assert parse({"goAway": {"timeLeft": value}}) == [GoAway(seconds)]
    assert parse_duration(value) == seconds


def test_session_resumption_update() -> None:
    assert parse(
        {
            "sessionResumptionUpdate": {
                "newHandle": "h1",
                "resumable": True,
                "lastConsumedClientMessageIndex": "123",
            }
        }
    ) == [SessionResumptionUpdate("h1", True)]
    assert parse(
        {"sessionResumptionUpdate": {"newHandle": "", "resumable": False}}
    ) == [SessionResumptionUpdate(None, False)]


def test_usage_metadata_alone_and_vertex_names() -> None:
    assert parse({"usageMetadata": {"promptTokenCount": "12"}}) == [
        UsageMetadata(12, None, None)
    ]
    assert parse(
        {"usageMetadata": {"candidatesTokenCount": 4, "totalTokenCount": True}}
    ) == [UsageMetadata(None, 4, None)]


def test_usage_alongside_other_messages() -> None:
    assert parse(
        {"goAway": {"timeLeft": "1s"}, "usageMetadata": {"totalTokenCount": 3}}
    ) == [
        GoAway(1.0),
        UsageMetadata(None, None, 3),
    ]


def test_unknown_keys_are_logged_and_ignored(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, "custom_components.gemini_live.live")
    message = {
        "voiceActivity": {"type": "ACTIVITY_START"},
        "voiceActivityDetectionSignal": {"vadSignalType": "VAD_SIGNAL_TYPE_SOS"},
        "setupComplete": {},
    }
    assert parse(message) == [SetupComplete(None)]
    assert "voiceActivity" in caplog.text
    assert parse({}) == []
    assert parse({"serverContent": "junk", "toolCall": None}) == []
    # "code" beside a known key is not an error frame.
    assert parse({"setupComplete": {}, "code": 0}) == [SetupComplete(None)]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            {
                "error": {
                    "code": 429,
                    "message": "Resource has been exhausted",
                    "status": "RESOURCE_EXHAUSTED",
                }
            },
            LiveQuotaError,
        ),
        ({"code": 401, "message": "API key not valid."}, LiveAuthError),
        ({"error": {"code": 401}, "usageMetadata": {}}, LiveAuthError),
        (
            {
                "error": {
                    "code": 500,
                    "message": "Internal error encountered.",
                    "status": "INTERNAL",
                }
            },
            LiveServiceUnavailableError,
        ),
    ],
)
def test_error_frames(message: object, expected: type[Exception]) -> None:
    with pytest.raises(expected):
        parse(message)


@pytest.mark.parametrize("payload", [b"\xff\xfe", "not json", "[1, 2]", '"text"'])
def test_malformed_frames(payload: bytes | str) -> None:
    with pytest.raises(LiveServiceUnavailableError, match="Malformed"):
        parse_server_message(payload)


@pytest.mark.parametrize("status", ["IN_PROGRESS", "IDLE"])
def test_turn_complete_interaction_status(status: str) -> None:
    message = {"serverContent": {"turnComplete": True, "interactionStatus": status}}
    assert parse(message) == [TurnComplete(None, False, status)]
    (event,) = parse(message)
    assert isinstance(event, TurnComplete)
    assert event.interaction_status == status


def test_finished_transcriptions_and_waiting_for_input() -> None:
    message = {
        "serverContent": {
            "inputTranscription": {"text": "", "finished": True},
            "outputTranscription": {"text": "bye", "finished": True},
            "generationComplete": True,
            "turnComplete": True,
            "waitingForInput": True,
        }
    }
    assert parse(message) == [
        InputTranscription("", True),
        OutputTranscription("bye", True),
        GenerationComplete(),
        TurnComplete(None, True),
    ]
    assert parse({"serverContent": {"interrupted": True}}) == [Interrupted()]


def test_usage_thoughts_and_cached_tokens() -> None:
    usage = {
        "promptTokenCount": 10,
        "cachedContentTokenCount": 4,
        "responseTokenCount": 5,
        "thoughtsTokenCount": "7",
        "totalTokenCount": 22,
    }
    assert parse({"usageMetadata": usage}) == [
        UsageMetadata(10, 5, 22, thoughts_tokens=7, cached_tokens=4)
    ]
    assert parse({"usageMetadata": {}}) == [UsageMetadata(None, None, None)]


def test_grounding_metadata() -> None:
    """Search queries and web sources; malformed chunks are skipped."""
    message = {
        "serverContent": {
            "groundingMetadata": {
                "webSearchQueries": ["weather Paris", 3],
                "groundingChunks": [
                    {"web": {"uri": "https://a.example/", "title": "A"}},
                    {"web": {"uri": "https://b.example/"}},
                    {"retrievedContext": {}},
                    "junk",
                ],
                "searchEntryPoint": {"renderedContent": "<div></div>"},
            }
        }
    }
    assert parse(message) == [
        Grounding(
            ("weather Paris",),
            (
                WebSource("https://a.example/", "A"),
                WebSource("https://b.example/", "https://b.example/"),
            ),
        )
    ]
