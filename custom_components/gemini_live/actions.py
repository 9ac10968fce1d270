"""The `gemini_live.ask` action: ask an assistant from an automation.

The request takes the path of typed Assist input: `conversation.async_converse`
to the assistant's conversation entity, its chat log and its Live session, so
`conversation_id` continues a conversation of either. Its images (images.py)
are attached to the request's context and sent as video frames just before
its text. The response holds the whole answer transcript, the conversation id
and the turn's tokens, from the assistant's report of the turn.

`speak_on` plays the answer through the assistant's TTS entity: media players
get its TTS media source, satellites an announcement of it. That entity plays
the turn's own audio when it is fetched in time, else it says the text word
for word in the same voice.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Final

from homeassistant.components import conversation, tts
from homeassistant.components.media_player import const as media_player
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import ATTR_ENTITY_ID, Platform
from homeassistant.core import (
    Context,
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
    split_entity_id,
)
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import config_validation as cv, entity_registry as er, intent
from homeassistant.util.json import JsonValueType
import probatio

from .const import DOMAIN
from .entity import unique_id
from .images import (
    MAX_IMAGES,
    async_read_images,
    image_reference,
    validation_error,
)
from .runtime import GeminiLiveConfigEntry
from .voice import VoiceManager
from .voice.activity import ActivityEvent, Tokens, TurnReport

SERVICE_ASK: Final = "ask"
ATTR_AGENT: Final = "agent"
ATTR_PROMPT: Final = "prompt"
ATTR_IMAGES: Final = "images"
ATTR_CONVERSATION_ID: Final = "conversation_id"
ATTR_SPEAK_ON: Final = "speak_on"
ATTR_LANGUAGE: Final = "language"

SPEAKER_DOMAINS: Final = (Platform.MEDIA_PLAYER, Platform.ASSIST_SATELLITE)
ASK_TIMEOUT: Final = 300.0
"""Longest wait for an answer (the session's own bounds come first)."""
SPEAK_TIMEOUT: Final = 120.0
"""Longest wait for the speakers (a satellite returns once it played it)."""

ASK_SCHEMA: Final = probatio.Schema(
    {
        probatio.Required(ATTR_AGENT): cv.entity_domain(Platform.CONVERSATION),
        probatio.Required(ATTR_PROMPT): probatio.All(cv.string, probatio.Length(min=1)),
        probatio.Optional(ATTR_IMAGES, default=list): probatio.All(
            cv.ensure_list, [image_reference], probatio.Length(max=MAX_IMAGES)
        ),
        probatio.Optional(ATTR_CONVERSATION_ID): cv.string,
        probatio.Optional(ATTR_SPEAK_ON, default=list): probatio.All(
            cv.entity_ids, [cv.entity_domain(list(SPEAKER_DOMAINS))]
        ),
        probatio.Optional(ATTR_LANGUAGE): cv.language,
    }
)


@dataclass(frozen=True, slots=True)
class _Assistant:
    """The entities and Live sessions of the assistant an action addresses."""

    conversation_entity: str
    tts_entity: str
    manager: VoiceManager


@dataclass(frozen=True, slots=True)
class _Answer:
    """The answer to an ask: its whole transcript and the turn's tokens."""

    text: str
    conversation_id: str
    tokens: Tokens


@callback
def async_setup_actions(hass: HomeAssistant) -> None:
    """Register the integration's actions."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_ASK,
        _async_ask,
        schema=ASK_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )


async def _async_ask(call: ServiceCall) -> ServiceResponse:
    """Ask the assistant; speak the answer; return it as response data."""
    hass = call.hass
    assistant = _assistant(hass, call.data[ATTR_AGENT])
    speakers: list[str] = call.data[ATTR_SPEAK_ON]
    for speaker in speakers:
        if hass.states.get(speaker) is None:
            raise validation_error("speaker_not_found", entity=speaker)
    if speakers and hass.states.get(assistant.tts_entity) is None:
        raise validation_error("tts_unavailable", entity=assistant.tts_entity)
    frames = await async_read_images(hass, call.data[ATTR_IMAGES])
    # A context of its own: the key of this request's frames.
    context = Context(user_id=call.context.user_id, parent_id=call.context.id)
    answer = await _async_answer(call, assistant, frames, context)
    if speakers and answer.text:
        await _async_speak(hass, assistant.tts_entity, answer.text, speakers, context)
    if not call.return_response:
        return None
    usage: dict[str, JsonValueType] = {**answer.tokens.as_dict()}
    return {
        "text": answer.text,
        "conversation_id": answer.conversation_id,
        "usage": usage,
    }


async def _async_answer(
    call: ServiceCall,
    assistant: _Assistant,
    frames: list[bytes],
    context: Context,
) -> _Answer:
    """Send the request (its frames first) the way typed Assist input goes."""
    reports: list[TurnReport] = []

    def on_activity(event: ActivityEvent) -> None:
        if isinstance(event, TurnReport):
            reports.append(event)

    unsubscribe = assistant.manager.activity.subscribe(on_activity)
    detach = assistant.manager.attach_frames(context.id, frames)
    try:
        async with asyncio.timeout(ASK_TIMEOUT):
            result = await conversation.async_converse(
                call.hass,
                call.data[ATTR_PROMPT],
                call.data.get(ATTR_CONVERSATION_ID),
                context,
                call.data.get(ATTR_LANGUAGE),
                agent_id=assistant.conversation_entity,
            )
    except TimeoutError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="ask_timeout",
            translation_placeholders={
                "agent": assistant.conversation_entity,
                "seconds": str(int(ASK_TIMEOUT)),
            },
        ) from err
    finally:
        detach()
        unsubscribe()
    speech = result.response.speech.get("plain", {}).get("speech", "")
    if result.response.response_type is intent.IntentResponseType.ERROR:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="ask_failed",
            translation_placeholders={
                "agent": assistant.conversation_entity,
                "reason": speech,
            },
        )
    conversation_id = result.conversation_id or ""
    for report in reversed(reports):
        if report.conversation_id == conversation_id:
            return _Answer(report.answer_text, conversation_id, report.tokens)
    return _Answer(speech, conversation_id, Tokens())


def _assistant(hass: HomeAssistant, entity_id: str) -> _Assistant:
    """Return the assistant of a conversation entity of a loaded entry."""
    registry = er.async_get(hass)
    entity = registry.async_get(entity_id)
    entry: GeminiLiveConfigEntry | None = None
    if entity is not None and entity.platform == DOMAIN and entity.config_entry_id:
        entry = hass.config_entries.async_get_entry(entity.config_entry_id)
    if (
        entity is None
        or entry is None
        or entry.state is not ConfigEntryState.LOADED
        or (subentry := entry.subentries.get(entity.config_subentry_id or "")) is None
        or (manager := entry.runtime_data.agents.get(subentry.subentry_id)) is None
        or (
            tts_entity := registry.async_get_entity_id(
                Platform.TTS, DOMAIN, unique_id(subentry, "tts")
            )
        )
        is None
    ):
        raise validation_error("agent_not_found", agent=entity_id)
    return _Assistant(entity_id, tts_entity, manager)


async def _async_speak(
    hass: HomeAssistant,
    engine: str,
    text: str,
    speakers: list[str],
    context: Context,
) -> None:
    """Play `text` through the TTS entity `engine` on media players and satellites."""
    media_id = tts.generate_media_source_id(hass, text, engine=engine)
    players = [s for s in speakers if split_entity_id(s)[0] == Platform.MEDIA_PLAYER]
    satellites = [s for s in speakers if s not in players]
    calls = []
    if players:
        calls.append(
            hass.services.async_call(
                Platform.MEDIA_PLAYER,
                media_player.SERVICE_PLAY_MEDIA,
                {
                    ATTR_ENTITY_ID: players,
                    media_player.ATTR_MEDIA_CONTENT_ID: media_id,
                    media_player.ATTR_MEDIA_CONTENT_TYPE: media_player.MediaType.MUSIC,
                    media_player.ATTR_MEDIA_ANNOUNCE: True,
                },
                blocking=True,
                context=context,
            )
        )
    if satellites:
        calls.append(
            hass.services.async_call(
                Platform.ASSIST_SATELLITE,
                "announce",
                {ATTR_ENTITY_ID: satellites, "media_id": media_id, "message": text},
                blocking=True,
                context=context,
            )
        )
    try:
        async with asyncio.timeout(SPEAK_TIMEOUT):
            await asyncio.gather(*calls)
    except (HomeAssistantError, TimeoutError) as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="speak_failed",
            translation_placeholders={
                "entities": ", ".join(speakers),
                "reason": str(err) or type(err).__name__,
            },
        ) from err
