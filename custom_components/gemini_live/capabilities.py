"""Entry options per model family: which ones a model takes, and their setup.

The options flow offers, reconfigure keeps and every Live session sends only
what the model's family accepts (live/models.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.const import CONF_LLM_HASS_API

from .const import (
    ACTIVITY_DETECTION_MANUAL,
    CONF_ACTIVITY_DETECTION,
    CONF_AFFECTIVE_DIALOG,
    CONF_GOOGLE_SEARCH,
    CONF_LANGUAGE,
    CONF_PROACTIVE_AUDIO,
    CONF_TEMPERATURE,
    CONF_THINKING_BUDGET,
    CONF_THINKING_LEVEL,
    CONF_VOICE,
    RECOMMENDED_ACTIVITY_DETECTION,
    RECOMMENDED_AFFECTIVE_DIALOG,
    RECOMMENDED_GOOGLE_SEARCH,
    RECOMMENDED_PROACTIVE_AUDIO,
    RECOMMENDED_THINKING_BUDGET,
)
from .live import ActivityDetection, ModelFamily, Thinking


def thinking_levels(family: ModelFamily) -> list[str]:
    """Return the thinking levels offered for a family (option values)."""
    if family.thinking is not Thinking.LEVEL:
        return []
    return [level.lower() for level in family.thinking_levels]


def offers_search(family: ModelFamily, options: Mapping[str, Any]) -> bool:
    """Tell whether Google Search can be used with these options."""
    return family.search_with_functions or not options.get(CONF_LLM_HASS_API)


def supported_options(
    family: ModelFamily, options: Mapping[str, Any]
) -> dict[str, Any]:
    """Return the options without those the family rejects."""
    rejected = {
        CONF_THINKING_LEVEL: options.get(CONF_THINKING_LEVEL)
        not in thinking_levels(family),
        CONF_THINKING_BUDGET: family.thinking is not Thinking.BUDGET,
        CONF_AFFECTIVE_DIALOG: not family.affective_dialog,
        CONF_PROACTIVE_AUDIO: not family.proactive_audio,
        CONF_GOOGLE_SEARCH: not offers_search(family, options),
    }
    return {key: value for key, value in options.items() if not rejected.get(key)}


def live_options(model: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Return the LiveConfig fields every session of an entry shares."""
    level: str | None = options.get(CONF_THINKING_LEVEL)
    return {
        "model": model,
        "voice": options.get(CONF_VOICE),
        "language": options.get(CONF_LANGUAGE) or None,
        "temperature": options.get(CONF_TEMPERATURE),
        "thinking_budget": int(
            options.get(CONF_THINKING_BUDGET, RECOMMENDED_THINKING_BUDGET)
        ),
        "thinking_level": level.upper() if level else None,
        "affective_dialog": options.get(
            CONF_AFFECTIVE_DIALOG, RECOMMENDED_AFFECTIVE_DIALOG
        ),
        "proactive_audio": options.get(
            CONF_PROACTIVE_AUDIO, RECOMMENDED_PROACTIVE_AUDIO
        ),
        "google_search": options.get(CONF_GOOGLE_SEARCH, RECOMMENDED_GOOGLE_SEARCH),
    }


def activity_detection(options: Mapping[str, Any]) -> ActivityDetection:
    """Return the voice activity detection the options ask for."""
    mode = options.get(CONF_ACTIVITY_DETECTION, RECOMMENDED_ACTIVITY_DETECTION)
    return ActivityDetection(disabled=mode == ACTIVITY_DETECTION_MANUAL)
