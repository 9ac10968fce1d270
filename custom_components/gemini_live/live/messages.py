"""Pure builders of client messages (camelCase dicts, ready for ``json.dumps``)."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .config import ActivityDetection, FunctionDeclaration, LiveConfig
from .models import ModelFamily, Thinking, ToolBehavior, model_family

AUDIO_IN_RATE = 16000


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionResponse:
    """The result of one function call, answered by id."""

    id: str
    name: str
    response: Mapping[str, Any]
    scheduling: str | None = None
    will_continue: bool | None = None


@dataclass(frozen=True, slots=True)
class HistoryTurn:
    """One earlier turn of the conversation, to seed a session's history."""

    role: Literal["user", "model"]
    text: str


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _plain(value: Any) -> Any:
    """Copy mappings and sequences into JSON types, keeping every key as is."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def setup_message(
    config: LiveConfig, model_resource: str, resumption_handle: str | None = None
) -> dict[str, Any]:
    """Build the ``setup`` message of a connection (resuming when a handle is given)."""
    generation: dict[str, Any] = {"responseModalities": ["AUDIO"]}
    if config.temperature is not None:
        generation["temperature"] = config.temperature
    speech: dict[str, Any] = {}
    if config.voice:
        speech["voiceConfig"] = {"prebuiltVoiceConfig": {"voiceName": config.voice}}
    if config.language:
        speech["languageCode"] = config.language
    if speech:
        generation["speechConfig"] = speech
    family = model_family(config.model)
    if thinking := _thinking(config, family):
        generation["thinkingConfig"] = thinking
    if config.affective_dialog and family.affective_dialog:
        generation["enableAffectiveDialog"] = True
    setup: dict[str, Any] = {"model": model_resource, "generationConfig": generation}
    if config.system_instruction:
        setup["systemInstruction"] = {"parts": [{"text": config.system_instruction}]}
    tools = _tools(config, family)
    if tools:
        setup["tools"] = tools
    if config.proactive_audio and family.proactive_audio:
        setup["proactivity"] = {"proactiveAudio": True}
    setup["realtimeInputConfig"] = {
        "automaticActivityDetection": _activity_detection(config.activity_detection)
    }
    if config.input_transcription:
        setup["inputAudioTranscription"] = {}
    if config.output_transcription:
        setup["outputAudioTranscription"] = {}
    if resumption_handle:
        setup["sessionResumption"] = {"handle": resumption_handle}
    elif config.session_resumption:
        setup["sessionResumption"] = {}
    if (compression := config.context_window_compression) is not None:
        window: dict[str, Any] = {}
        if compression.target_tokens is not None:
            window["targetTokens"] = compression.target_tokens
        setup["contextWindowCompression"] = {"slidingWindow": window}
        if compression.trigger_tokens is not None:
            setup["contextWindowCompression"]["triggerTokens"] = (
                compression.trigger_tokens
            )
    return {"setup": setup}


def _thinking(config: LiveConfig, family: ModelFamily) -> dict[str, Any] | None:
    """Return the thinkingConfig the family takes (None: send none)."""
    if family.thinking is Thinking.BUDGET and config.thinking_budget is not None:
        return {"thinkingBudget": config.thinking_budget}
    if family.thinking is Thinking.LEVEL:
        level = config.thinking_level or family.default_thinking_level
        if level in family.thinking_levels:
            return {"thinkingLevel": level}
    return None


def tool_behavior(config: LiveConfig, family: ModelFamily) -> ToolBehavior | None:
    """Return the behavior to declare functions with (None: leave it out)."""
    if config.non_blocking_tools is None:
        return None
    wanted = (
        ToolBehavior.NON_BLOCKING
        if config.non_blocking_tools
        else ToolBehavior.BLOCKING
    )
    if wanted not in family.tool_behaviors or len(family.tool_behaviors) == 1:
        return None
    return wanted


def function_behavior(
    function: FunctionDeclaration, config: LiveConfig, family: ModelFamily
) -> ToolBehavior | None:
    """Return the behavior to declare a function with (None: leave it out).

    The function's own where the family offers a choice, else the session's.
    """
    if function.behavior in family.tool_behaviors and len(family.tool_behaviors) > 1:
        return function.behavior
    return tool_behavior(config, family)


def non_blocking_functions(config: LiveConfig) -> frozenset[str]:
    """Return the names of the functions the model calls NON_BLOCKING.

    The declared behavior, else the family's default (its first one).
    """
    family = model_family(config.model)
    return frozenset(
        function.name
        for function in config.functions
        if (function_behavior(function, config, family) or family.tool_behaviors[0])
        is ToolBehavior.NON_BLOCKING
    )


def _tools(config: LiveConfig, family: ModelFamily) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = []
    if config.functions:
        declarations: list[dict[str, Any]] = []
        for function in config.functions:
            declaration: dict[str, Any] = {"name": function.name}
            if (behavior := function_behavior(function, config, family)) is not None:
                declaration["behavior"] = str(behavior)
            if function.description:
                declaration["description"] = function.description
            if function.parameters is not None:
                declaration["parameters"] = _plain(function.parameters)
            declarations.append(declaration)
        tools.append({"functionDeclarations": declarations})
    if config.google_search and (family.search_with_functions or not config.functions):
        tools.append({"googleSearch": {}})
    return tools


def _activity_detection(detection: ActivityDetection) -> dict[str, Any]:
    result: dict[str, Any] = {"disabled": detection.disabled}
    if detection.start_sensitivity is not None:
        result["startOfSpeechSensitivity"] = str(detection.start_sensitivity)
    if detection.end_sensitivity is not None:
        result["endOfSpeechSensitivity"] = str(detection.end_sensitivity)
    if detection.prefix_padding_ms is not None:
        result["prefixPaddingMs"] = detection.prefix_padding_ms
    if detection.silence_duration_ms is not None:
        result["silenceDurationMs"] = detection.silence_duration_ms
    return result


def audio_message(pcm: bytes, sample_rate: int = AUDIO_IN_RATE) -> dict[str, Any]:
    """Build a realtime audio chunk (PCM16LE mono)."""
    return {
        "realtimeInput": {
            "audio": {"mimeType": f"audio/pcm;rate={sample_rate}", "data": _b64(pcm)}
        }
    }


def video_message(jpeg: bytes) -> dict[str, Any]:
    """Build a realtime video frame (one JPEG image)."""
    return {"realtimeInput": {"video": {"mimeType": "image/jpeg", "data": _b64(jpeg)}}}


def activity_start_message() -> dict[str, Any]:
    """Build the manual start-of-speech signal."""
    return {"realtimeInput": {"activityStart": {}}}


def activity_end_message() -> dict[str, Any]:
    """Build the manual end-of-speech signal."""
    return {"realtimeInput": {"activityEnd": {}}}


def audio_stream_end_message() -> dict[str, Any]:
    """Build the signal that the microphone stream paused (automatic VAD)."""
    return {"realtimeInput": {"audioStreamEnd": True}}


def text_message(text: str, turn_complete: bool = True) -> dict[str, Any]:
    """Build an ordered user text turn (``clientContent``)."""
    return {
        "clientContent": {
            "turns": [{"role": "user", "parts": [{"text": text}]}],
            "turnComplete": turn_complete,
        }
    }


def history_message(turns: Sequence[HistoryTurn]) -> dict[str, Any]:
    """Build a history seed: the turns in order, without asking for a reply."""
    return {
        "clientContent": {
            "turns": [
                {"role": turn.role, "parts": [{"text": turn.text}]} for turn in turns
            ],
            "turnComplete": False,
        }
    }


def context_update_message(*, system_instruction: str | None = None) -> dict[str, Any]:
    """Build a ``contextUpdate`` replacing only the fields given."""
    update: dict[str, Any] = {}
    if system_instruction is not None:
        update["systemInstruction"] = {"parts": [{"text": system_instruction}]}
    return {"contextUpdate": update}


def realtime_text_message(text: str) -> dict[str, Any]:
    """Build realtime text input."""
    return {"realtimeInput": {"text": text}}


def tool_response_message(responses: Sequence[FunctionResponse]) -> dict[str, Any]:
    """Build the answer to a tool call; ``response`` keys are kept verbatim."""
    items: list[dict[str, Any]] = []
    for resp in responses:
        item: dict[str, Any] = {
            "id": resp.id,
            "name": resp.name,
            "response": _plain(resp.response),
        }
        if resp.scheduling is not None:
            item["scheduling"] = resp.scheduling
        if resp.will_continue is not None:
            item["willContinue"] = resp.will_continue
        items.append(item)
    return {"toolResponse": {"functionResponses": items}}
