"""Constants for the Gemini Live integration."""

from __future__ import annotations

import logging
from typing import Final

from homeassistant.const import CONF_LLM_HASS_API, CONF_PROMPT
from homeassistant.helpers import llm

LOGGER: Final = logging.getLogger(__package__)

DOMAIN: Final = "gemini_live"
DEFAULT_TITLE: Final = "Gemini Live"
DEFAULT_AGENT_TITLE: Final = "Gemini Live"
"""Title of the assistant a new entry starts with."""

# Subentries: the assistants of an entry (each with its own device, model,
# voice and options, and its STT, conversation and TTS entities).
SUBENTRY_AGENT: Final = "conversation"

# Config entry data (the account; the model is an assistant's).
CONF_PROVIDER: Final = "provider"
CONF_SERVICE_ACCOUNT: Final = "service_account"
CONF_PROJECT_ID: Final = "project_id"
CONF_LOCATION: Final = "location"
CONF_MODEL: Final = "model"
CONF_BASE_URL: Final = "base_url"

PROVIDER_GEMINI_API: Final = "gemini_api"
PROVIDER_VERTEX_AI: Final = "vertex_ai"
PROVIDERS: Final = (PROVIDER_GEMINI_API, PROVIDER_VERTEX_AI)

# Live models offered per provider, recommended (default) model first. What
# each accepts is in live/models.py.
GEMINI_API_MODELS: Final = (
    "gemini-3.8-live",
    "gemini-3.8-live-extended-thinking",
    "gemini-3.1-flash-live-preview",
    "gemini-2.5-flash-native-audio-preview-12-2025",
)
VERTEX_AI_MODELS: Final = (
    "gemini-3.8-live",
    "gemini-live-2.5-flash-native-audio",
)
MODELS: Final[dict[str, tuple[str, ...]]] = {
    PROVIDER_GEMINI_API: GEMINI_API_MODELS,
    PROVIDER_VERTEX_AI: VERTEX_AI_MODELS,
}
RECOMMENDED_MODEL: Final[dict[str, str]] = {
    provider: models[0] for provider, models in MODELS.items()
}
RECOMMENDED_LOCATION: Final = "us-central1"

# The Gemini TTS model that says text no Live turn produced (tts.speak,
# announcements) word for word, per provider; where the credentials are
# refused it, a Live session reads the text instead.
SPEECH_MODELS: Final[dict[str, str]] = {
    PROVIDER_GEMINI_API: "gemini-3.8-flash-lite-tts",
    PROVIDER_VERTEX_AI: "gemini-3.8-flash-lite-tts",
}

# Assistant (subentry) data, besides CONF_MODEL.
CONF_VOICE: Final = "voice"
CONF_LANGUAGE: Final = "language"
CONF_TEMPERATURE: Final = "temperature"
CONF_ACTIVITY_DETECTION: Final = "activity_detection"
CONF_IDLE_TIMEOUT: Final = "idle_timeout"
# Offered only where the model's family accepts them (live/models.py).
CONF_THINKING_LEVEL: Final = "thinking_level"
CONF_THINKING_BUDGET: Final = "thinking_budget"
CONF_AFFECTIVE_DIALOG: Final = "affective_dialog"
CONF_PROACTIVE_AUDIO: Final = "proactive_audio"
CONF_GOOGLE_SEARCH: Final = "google_search"

# The 30 prebuilt voices native-audio Live models accept.
VOICES: Final = (
    "Zephyr",
    "Puck",
    "Charon",
    "Kore",
    "Fenrir",
    "Leda",
    "Orus",
    "Aoede",
    "Callirrhoe",
    "Autonoe",
    "Enceladus",
    "Iapetus",
    "Umbriel",
    "Algieba",
    "Despina",
    "Erinome",
    "Algenib",
    "Rasalgethi",
    "Laomedeia",
    "Achernar",
    "Alnilam",
    "Schedar",
    "Gacrux",
    "Pulcherrima",
    "Achird",
    "Zubenelgenubi",
    "Vindemiatrix",
    "Sadachbia",
    "Sadaltager",
    "Sulafat",
)

# "manual": Home Assistant's voice activity detection ends the user's turn
# (the client sends activityStart/activityEnd); "automatic": Gemini's own.
ACTIVITY_DETECTION_MANUAL: Final = "manual"
ACTIVITY_DETECTION_AUTOMATIC: Final = "automatic"
ACTIVITY_DETECTION_MODES: Final = (
    ACTIVITY_DETECTION_MANUAL,
    ACTIVITY_DETECTION_AUTOMATIC,
)

RECOMMENDED_VOICE: Final = "Kore"
RECOMMENDED_TEMPERATURE: Final = 1.0
RECOMMENDED_ACTIVITY_DETECTION: Final = ACTIVITY_DETECTION_MANUAL
RECOMMENDED_IDLE_TIMEOUT: Final = 60
MIN_IDLE_TIMEOUT: Final = 5
MAX_IDLE_TIMEOUT: Final = 3600
# The recommended thinking level is the family's default (tuned for latency).
RECOMMENDED_THINKING_BUDGET: Final = 0
"""Tokens of thinking on budget models: none, for the fastest first audio."""
MAX_THINKING_BUDGET: Final = 24576
RECOMMENDED_AFFECTIVE_DIALOG: Final = False
RECOMMENDED_PROACTIVE_AUDIO: Final = False
RECOMMENDED_GOOGLE_SEARCH: Final = False

RECOMMENDED_OPTIONS: Final[dict[str, object]] = {
    CONF_VOICE: RECOMMENDED_VOICE,
    CONF_PROMPT: llm.DEFAULT_INSTRUCTIONS_PROMPT,
    CONF_TEMPERATURE: RECOMMENDED_TEMPERATURE,
    CONF_LLM_HASS_API: [llm.LLM_API_ASSIST],
    CONF_ACTIVITY_DETECTION: RECOMMENDED_ACTIVITY_DETECTION,
    CONF_IDLE_TIMEOUT: RECOMMENDED_IDLE_TIMEOUT,
}
