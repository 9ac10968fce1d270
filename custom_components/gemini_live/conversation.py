"""Conversation entity: answers with the conversation's Live turn.

For a voice run it takes over the turn the STT entity started; for typed input
it sends the text into the conversation's Live session. The reply goes into
the chat log (see `voice.chat` for the streaming and the early return).
"""

from __future__ import annotations

from functools import partial
from typing import Literal

from homeassistant.components import conversation
from homeassistant.components.conversation.models import AbstractConversationAgent
from homeassistant.config_entries import ConfigSubentry
from homeassistant.const import CONF_LLM_HASS_API, CONF_PROMPT, MATCH_ALL
from homeassistant.core import HomeAssistant
from homeassistant.helpers import chat_session
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import DOMAIN
from .entity import GeminiLiveEntity, add_assistant_entities
from .runtime import GeminiLiveConfigEntry
from .voice.chat import async_handle_message
from .voice.config import async_session_setup
from .voice.tools import ToolRunner

PARALLEL_UPDATES = 0
"""Requests run concurrently: each conversation has its own Live session."""


async def async_setup_entry(
    hass: HomeAssistant,
    entry: GeminiLiveConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up the conversation entity."""
    add_assistant_entities(
        entry,
        async_add_entities,
        lambda subentry: [GeminiLiveConversationEntity(entry, subentry)],
    )


class GeminiLiveConversationEntity(
    GeminiLiveEntity,
    conversation.ConversationEntity,
    AbstractConversationAgent,
):
    """A conversation agent backed by Gemini Live sessions."""

    _attr_name = None  # the device's name: the main feature of its device

    _attr_supports_streaming = True

    def __init__(self, entry: GeminiLiveConfigEntry, subentry: ConfigSubentry) -> None:
        """Create the agent of `entry`."""
        super().__init__(entry, subentry, "conversation")
        if subentry.data.get(CONF_LLM_HASS_API):
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

    async def async_prepare(self, language: str | None = None) -> None:
        """Note that the pipeline run about to start will reach this agent.

        The pipeline prepares the agent before its STT stage, in the run's
        chat session: the STT entity then answers the speech instead of only
        transcribing it.
        """
        if (session := chat_session.current_session.get()) is not None:
            self.voice_manager.expect_agent(session.conversation_id)

    async def _async_handle_message(
        self,
        user_input: conversation.ConversationInput,
        chat_log: conversation.ChatLog,
    ) -> conversation.ConversationResult:
        """Answer through the conversation's Live session."""
        options = self.settings
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
            manager=self.voice_manager,
            agent_id=self.entity_id,
            user_input=user_input,
            chat_log=chat_log,
            setup=partial(
                async_session_setup,
                self.hass,
                self.entry,
                self.subentry,
                llm_context,
                history=chat_log.content[:-1],
                extra_system_prompt=chat_log.extra_system_prompt,
            ),
            tools=ToolRunner(
                chat_log.llm_api,
                partial(self.entry.async_create_background_task, self.hass),
            ),
        )
