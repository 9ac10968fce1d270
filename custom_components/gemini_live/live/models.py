"""What each Live model family accepts: one row per family.

Every setup field that a family rejects (the service closes with 1007) and
every behaviour that differs between families is decided here, from the
model id alone, so the setup, the options form and the turn lifecycle agree.
An unknown model id gets the conservative row: only fields every Live model
accepts.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Thinking(StrEnum):
    """How a family's thinking is controlled (`generationConfig.thinkingConfig`)."""

    NONE = "none"
    """No thinkingConfig at all (3.8 Live rejects one)."""
    BUDGET = "budget"
    """`thinkingBudget` tokens (2.5 native audio; 0 = off)."""
    LEVEL = "level"
    """`thinkingLevel` (3.1 Flash Live, 3.8 Extended Thinking)."""


class ToolBehavior(StrEnum):
    """Function calling modes (`functionDeclarations[].behavior`)."""

    BLOCKING = "BLOCKING"
    NON_BLOCKING = "NON_BLOCKING"


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelFamily:
    """The capabilities of one family of Live models."""

    name: str
    thinking: Thinking = Thinking.NONE
    thinking_levels: tuple[str, ...] = ()
    default_thinking_level: str | None = None
    """The level sent by default (tuned for voice latency)."""
    affective_dialog: bool = False
    """Accepts `enableAffectiveDialog`."""
    proactive_audio: bool = False
    """Accepts `proactivity.proactiveAudio` (False: never send it)."""
    tool_behaviors: tuple[ToolBehavior, ...] = (ToolBehavior.BLOCKING,)
    """Behaviours it accepts; the first is what tools use by default."""
    interaction_status: bool = False
    """Signals the end of an interaction with `interactionStatus: IDLE`."""
    context_update: bool = False
    """Accepts `contextUpdate` messages mid-session."""
    search_with_functions: bool = True
    """Google Search and function declarations in one setup."""
    alpha_api_for: frozenset[str] = frozenset()
    """Setup fields that need the Developer API's v1alpha."""
    legacy: bool = False


GEMINI_3_8 = ModelFamily(
    name="3.8",
    tool_behaviors=(ToolBehavior.NON_BLOCKING, ToolBehavior.BLOCKING),
    interaction_status=True,
    context_update=True,
)
GEMINI_3_8_EXTENDED_THINKING = ModelFamily(
    name="3.8-extended-thinking",
    thinking=Thinking.LEVEL,
    thinking_levels=("LOW", "MEDIUM", "HIGH"),
    default_thinking_level="LOW",
    tool_behaviors=(ToolBehavior.NON_BLOCKING,),
    interaction_status=True,
    context_update=True,
)
GEMINI_3_1 = ModelFamily(
    name="3.1",
    thinking=Thinking.LEVEL,
    thinking_levels=("MINIMAL", "LOW", "MEDIUM", "HIGH"),
    default_thinking_level="MINIMAL",
    interaction_status=True,
    context_update=True,
    legacy=True,
)
GEMINI_2_5 = ModelFamily(
    name="2.5",
    thinking=Thinking.BUDGET,
    affective_dialog=True,
    proactive_audio=True,
    tool_behaviors=(ToolBehavior.BLOCKING, ToolBehavior.NON_BLOCKING),
    alpha_api_for=frozenset({"affective_dialog", "proactive_audio"}),
)
UNKNOWN = ModelFamily(name="unknown")
"""Any other model: only what every Live model accepts."""

_PREFIXES: tuple[tuple[str, ModelFamily], ...] = (
    ("gemini-3.8-live-extended-thinking", GEMINI_3_8_EXTENDED_THINKING),
    ("gemini-3.8-live", GEMINI_3_8),
    ("gemini-3.1-flash-live", GEMINI_3_1),
    ("gemini-2.5-flash-native-audio", GEMINI_2_5),
    ("gemini-live-2.5-flash-native-audio", GEMINI_2_5),
    ("gemini-live-2.5-flash-preview-native-audio", GEMINI_2_5),
)


def model_family(model: str) -> ModelFamily:
    """Return the family of a model id (with or without `models/`)."""
    model_id = model.rsplit("/", 1)[-1]
    for prefix, family in _PREFIXES:
        if model_id.startswith(prefix):
            return family
    return UNKNOWN
