"""Typed options of a Live session (the content of the setup message)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .models import ToolBehavior


class Provider(StrEnum):
    """Which Google API serves the Live session."""

    GEMINI_API = "gemini_api"
    VERTEX_AI = "vertex_ai"


class StartSensitivity(StrEnum):
    """Start-of-speech sensitivity of the server's voice activity detection."""

    HIGH = "START_SENSITIVITY_HIGH"
    LOW = "START_SENSITIVITY_LOW"


class EndSensitivity(StrEnum):
    """End-of-speech sensitivity of the server's voice activity detection."""

    HIGH = "END_SENSITIVITY_HIGH"
    LOW = "END_SENSITIVITY_LOW"


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivityDetection:
    """Server voice activity detection; ``disabled`` means manual activity signals."""

    disabled: bool = False
    start_sensitivity: StartSensitivity | None = None
    end_sensitivity: EndSensitivity | None = None
    prefix_padding_ms: int | None = None
    silence_duration_ms: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionDeclaration:
    """A function the model may call; ``parameters`` is sent verbatim."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] | None = None
    behavior: ToolBehavior | None = None
    """This function's own behavior where the model accepts a choice; None:
    the session's (`LiveConfig.non_blocking_tools`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ContextWindowCompression:
    """Sliding-window compression; None fields use the server defaults."""

    trigger_tokens: int | None = None
    target_tokens: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveConfig:
    """Options of one Live session."""

    model: str
    voice: str | None = None
    language: str | None = None
    system_instruction: str | None = None
    temperature: float | None = None
    thinking_budget: int | None = None
    """Thinking tokens, for families that take a budget (2.5; 0 = off)."""
    thinking_level: str | None = None
    """Thinking level, for families that take one (None: the family's default)."""
    affective_dialog: bool = False
    """Ask for affective dialog where the family accepts it."""
    proactive_audio: bool = False
    """Ask for proactive audio where the family accepts it."""
    non_blocking_tools: bool | None = None
    """Declare functions NON_BLOCKING (True) or BLOCKING (False) where the
    family accepts that behaviour; None: the family's default."""
    input_transcription: bool = True
    output_transcription: bool = True
    functions: tuple[FunctionDeclaration, ...] = ()
    google_search: bool = False
    activity_detection: ActivityDetection = ActivityDetection()
    session_resumption: bool = True
    context_window_compression: ContextWindowCompression | None = (
        ContextWindowCompression()
    )
