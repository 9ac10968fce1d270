"""Conversation entity: answers with the conversation's Live turn.

For a voice run it takes over the turn the STT entity started; for typed input
it sends the text into the conversation's Live session. The reply goes into
the chat log (see `voice.chat` for the streaming and the early return).
"""

from __future__ import annotations

from functools import partial
from typing import Literal

from homeassistant.components import assist_pipeline, conversation
from homeassistant.components.conversation.models import AbstractConversationAgent
from homeassistant.const import CONF_LLM_HASS_API, CONF_PROMPT, MATCH_ALL, Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import DOMAIN
from .entity import GeminiLiveEntity, unique_id
from .runtime import GeminiLiveConfigEntry
from .voice.chat import async_handle_message
from .voice.config import async_conversation_config

PARALLEL_UPDATES = 0
"""Requests run concurrently: each conversation has its own Live session."""


async def async_setup_entry(
    hass: HomeAssistant,
    entry: GeminiLiveConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up the conversation entity."""
    async_add_entities([GeminiLiveConversationEntity(entry)])


class GeminiLiveConversationEntity(
    GeminiLiveEntity,
    conversation.ConversationEntity,
    AbstractConversationAgent,
):
    """A conversation agent backed by Gemini Live sessions."""

    _attr_supports_streaming = True

    def __init__(self, entry: GeminiLiveConfigEntry) -> None:
        """Create the agent of `entry`."""
        super().__init__(entry, "conversation")
        if entry.options.get(CONF_LLM_HASS_API):
            self._attr_supported_features = (
                conversation.ConversationEntityFeature.CONTROL
            )

    @property
    def supported_languages(self) -> list[str] | Literal["*"]:
        """Return all languages."""
        return MATCH_ALL

    async def async_added_to_hass(self) -> None:
        """Register the agent."""
        await super().async_added_to_hass()
        conversation.async_set_agent(self.hass, self.entry, self)

    async def async_will_remove_from_hass(self) -> None:
        """Unregister the agent."""
        conversation.async_unset_agent(self.hass, self.entry)
        await super().async_will_remove_from_hass()

    async def _async_handle_message(
        self,
        user_input: conversation.ConversationInput,
        chat_log: conversation.ChatLog,
    ) -> conversation.ConversationResult:
        """Answer through the conversation's Live session."""
        options = self.entry.options
        llm_context = user_input.as_llm_context(DOMAIN)
        try:
            await chat_log.async_provide_llm_data(
                llm_context,
                options.get(CONF_LLM_HASS_API),
                options.get(CONF_PROMPT),
                user_input.extra_system_prompt,
            )
        except conversation.ConverseError as err:
            return err.as_conversation_result()
        return await async_handle_message(
            self.hass,
            manager=self.entry.runtime_data.voice,
            agent_id=self.entity_id,
            early_audio=self._pipelines_play_live_audio(),
            user_input=user_input,
            chat_log=chat_log,
            config=partial(
                async_conversation_config,
                self.hass,
                self.entry,
                llm_context,
                user_input.extra_system_prompt,
            ),
        )

    def _pipelines_play_live_audio(self) -> bool:
        """Return whether the Assist pipelines of this agent play the Live audio.

        True when every pipeline with this entry's STT and agent has this
        entry's TTS: only then may a voice turn return early (see voice.chat),
        since another TTS engine would speak just the partial text.
        """
        if assist_pipeline.DOMAIN not in self.hass.config.components:
            return False
        registry = er.async_get(self.hass)
        stt_id = registry.async_get_entity_id(
            Platform.STT, DOMAIN, unique_id(self.entry, Platform.STT)
        )
        tts_id = registry.async_get_entity_id(
            Platform.TTS, DOMAIN, unique_id(self.entry, Platform.TTS)
        )
        return tts_id is not None and all(
            pipeline.tts_engine == tts_id
            for pipeline in assist_pipeline.async_get_pipelines(self.hass)
            if pipeline.stt_engine == stt_id
            and pipeline.conversation_engine == self.entity_id
        )
