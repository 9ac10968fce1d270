"""Client message builders: exact camelCase shapes of the reference (§2)."""

import base64
import json
from types import MappingProxyType

from custom_components.gemini_live.live import (
    ActivityDetection,
    ContextWindowCompression,
    EndSensitivity,
    FunctionDeclaration,
    FunctionResponse,
    HistoryTurn,
    LiveConfig,
    StartSensitivity,
    activity_end_message,
    activity_start_message,
    audio_message,
    audio_stream_end_message,
    context_update_message,
    history_message,
    realtime_text_message,
    setup_message,
    text_message,
    tool_response_message,
    video_message,
)

MODEL = "models/gemini-2.5-flash-native-audio-preview-12-2025"
PARAMETERS = {
    "type": "OBJECT",
    "properties": {
        "device_name": {"type": "STRING"},
        "brightnessPct": {"type": "INTEGER"},
    },
    "required": ["device_name"],
}


def test_minimal_setup() -> None:
    config = LiveConfig(
        model="m",
        input_transcription=False,
        output_transcription=False,
        session_resumption=False,
        context_window_compression=None,
    )
    assert setup_message(config, MODEL) == {
        "setup": {
            "model": MODEL,
            "generationConfig": {"responseModalities": ["AUDIO"]},
            "realtimeInputConfig": {"automaticActivityDetection": {"disabled": False}},
        }
    }


def test_default_setup_matches_reference() -> None:
    """The reference's recommended setup (§2.6), built from LiveConfig."""
    config = LiveConfig(
        model="gemini-2.5-flash-native-audio-preview-12-2025",
        voice="Kore",
        thinking_budget=0,
        system_instruction="You are a Home Assistant voice assistant...",
        functions=(
            FunctionDeclaration(
                name="HassTurnOn",
                description="...",
                parameters={
                    "type": "OBJECT",
                    "properties": {"name": {"type": "STRING"}},
                },
            ),
        ),
        activity_detection=ActivityDetection(disabled=True),
    )
    assert setup_message(config, MODEL) == {
        "setup": {
            "model": MODEL,
            "generationConfig": {
                "responseModalities": ["AUDIO"],
                "speechConfig": {
                    "voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Kore"}}
                },
                "thinkingConfig": {"thinkingBudget": 0},
            },
            "systemInstruction": {
                "parts": [{"text": "You are a Home Assistant voice assistant..."}]
            },
            "tools": [
                {
                    "functionDeclarations": [
                        {
                            "name": "HassTurnOn",
                            "description": "...",
                            "parameters": {
                                "type": "OBJECT",
                                "properties": {"name": {"type": "STRING"}},
                            },
                        }
                    ]
                }
            ],
            "realtimeInputConfig": {"automaticActivityDetection": {"disabled": True}},
            "inputAudioTranscription": {},
            "outputAudioTranscription": {},
            "sessionResumption": {},
            "contextWindowCompression": {"slidingWindow": {}},
        }
    }


def test_full_setup() -> None:
    config = LiveConfig(
        model="m",
        voice="Puck",
        language="de-DE",
        temperature=0.7,
        functions=(
            FunctionDeclaration(name="no_args"),
            FunctionDeclaration(
                name="set_light", parameters=MappingProxyType(PARAMETERS)
            ),
        ),
        google_search=True,
        activity_detection=ActivityDetection(
            start_sensitivity=StartSensitivity.LOW,
            end_sensitivity=EndSensitivity.HIGH,
            prefix_padding_ms=20,
            silence_duration_ms=500,
        ),
        context_window_compression=ContextWindowCompression(
            trigger_tokens=25600, target_tokens=12800
        ),
    )
    setup = setup_message(config, MODEL, resumption_handle="handle-1")["setup"]
    assert setup["generationConfig"] == {
        "responseModalities": ["AUDIO"],
        "temperature": 0.7,
        "speechConfig": {
            "voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Puck"}},
            "languageCode": "de-DE",
        },
    }
    assert setup["tools"] == [
        {
            "functionDeclarations": [
                {"name": "no_args"},
                {"name": "set_light", "parameters": PARAMETERS},
            ]
        },
        {"googleSearch": {}},
    ]
    assert setup["realtimeInputConfig"] == {
        "automaticActivityDetection": {
            "disabled": False,
            "startOfSpeechSensitivity": "START_SENSITIVITY_LOW",
            "endOfSpeechSensitivity": "END_SENSITIVITY_HIGH",
            "prefixPaddingMs": 20,
            "silenceDurationMs": 500,
        }
    }
    assert setup["sessionResumption"] == {"handle": "handle-1"}
    assert setup["contextWindowCompression"] == {
        "slidingWindow": {"targetTokens": 12800},
        "triggerTokens": 25600,
    }
    assert "systemInstruction" not in setup
    # Plain JSON: parameters are copied verbatim (keys not re-cased).
    assert json.loads(json.dumps(setup))["tools"][0]["functionDeclarations"][1] == {
        "name": "set_light",
        "parameters": PARAMETERS,
    }


def test_search_only_and_handle_without_resumption() -> None:
    config = LiveConfig(model="m", google_search=True, session_resumption=False)
    setup = setup_message(config, MODEL)["setup"]
    assert setup["tools"] == [{"googleSearch": {}}]
    assert "sessionResumption" not in setup
    resumed = setup_message(config, MODEL, "h")["setup"]
    assert resumed["sessionResumption"] == {"handle": "h"}


def test_audio_message() -> None:
    pcm = bytes(range(256)) * 4
    message = audio_message(pcm)
    audio = message["realtimeInput"]["audio"]
    assert audio["mimeType"] == "audio/pcm;rate=16000"
    assert base64.b64decode(audio["data"], validate=True) == pcm
    assert "+" in audio["data"] or "/" in audio["data"]  # standard alphabet
    assert audio_message(b"", 24000)["realtimeInput"]["audio"] == {
        "mimeType": "audio/pcm;rate=24000",
        "data": "",
    }


def test_video_message() -> None:
    assert video_message(b"\xff\xd8\xff") == {
        "realtimeInput": {"video": {"mimeType": "image/jpeg", "data": "/9j/"}}
    }


def test_activity_messages() -> None:
    assert activity_start_message() == {"realtimeInput": {"activityStart": {}}}
    assert activity_end_message() == {"realtimeInput": {"activityEnd": {}}}
    assert audio_stream_end_message() == {"realtimeInput": {"audioStreamEnd": True}}


def test_text_messages() -> None:
    assert text_message("Hi there") == {
        "clientContent": {
            "turns": [{"role": "user", "parts": [{"text": "Hi there"}]}],
            "turnComplete": True,
        }
    }
    assert (
        text_message("x", turn_complete=False)["clientContent"]["turnComplete"] is False
    )
    assert realtime_text_message("hello") == {"realtimeInput": {"text": "hello"}}


def test_tool_response_message() -> None:
    message = tool_response_message(
        [
            FunctionResponse(
                id="call-1",
                name="turn_on",
                response=MappingProxyType(
                    {"result": {"snake_key": [1, {"camelKey": None}]}}
                ),
            ),
            FunctionResponse(
                id="2",
                name="f",
                response={"output": "ok"},
                scheduling="INTERRUPT",
                will_continue=False,
            ),
        ]
    )
    assert message == {
        "toolResponse": {
            "functionResponses": [
                {
                    "id": "call-1",
                    "name": "turn_on",
                    "response": {"result": {"snake_key": [1, {"camelKey": None}]}},
                },
                {
                    "id": "2",
                    "name": "f",
                    "response": {"output": "ok"},
                    "scheduling": "INTERRUPT",
                    "willContinue": False,
                },
            ]
        }
    }
    json.dumps(message)


def test_history_message() -> None:
    """§2.2: turns appended in order; turnComplete false makes the server wait."""
    turns = (HistoryTurn("user", "My name is Ada."), HistoryTurn("model", "Hi Ada!"))
    assert history_message(turns) == {
        "clientContent": {
            "turns": [
                {"role": "user", "parts": [{"text": "My name is Ada."}]},
                {"role": "model", "parts": [{"text": "Hi Ada!"}]},
            ],
            "turnComplete": False,
        }
    }
    assert history_message([])["clientContent"]["turns"] == []


def test_context_update_message() -> None:
    """§2.5: only the fields given are replaced."""
    assert context_update_message(system_instruction="Be brief.") == {
        "contextUpdate": {"systemInstruction": {"parts": [{"text": "Be brief."}]}}
    }
    assert context_update_message(system_instruction="") == {
        "contextUpdate": {"systemInstruction": {"parts": [{"text": ""}]}}
    }
    assert context_update_message() == {"contextUpdate": {}}
