"""The conversation agent's side of a Live turn: the reply in the chat log.

The model's output transcript is streamed into the chat log as assistant
deltas; its tool calls become `llm.ToolInput` deltas, so the chat log runs
them through the LLM API, and each tool result goes back to the model.

Early audio. Home Assistant starts TTS only when the agent returns (or after
more than 60 characters of streamed text, or text followed by a tool call),
and satellites fetch the audio only then. The Live reply's audio exists long
before its transcript is complete, so for a voice turn the agent returns as
soon as the first audio chunk arrived and the current message has words, with
those words as its speech (never a placeholder: empty speech skips TTS). Tool
calls before that point run inside the agent. A continuation task then follows
the rest of the reply and writes it, later tool calls included (run through
the same chat-log path), into a re-opened chat log of the same chat session,
replacing the partial message; closing that chat log fires its UPDATED event.
Typed input, a reply the pipeline already streams to TTS, and pipelines whose
TTS engine is not this integration's (it would speak only the partial text)
return the complete reply.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from homeassistant.components import conversation
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import chat_session

from ..const import DOMAIN, LOGGER
from ..live import LiveError, OutputTranscription, ToolCall
from .manager import ConfigFactory, VoiceManager
from .tools import BoundedAPIInstance, function_response, tool_input
from .turn import LiveTurn

STREAM_RESPONSE_CHARS = 60
"""Assistant characters after which the pipeline streams TTS by itself."""
UNTRANSCRIBED_SPEECH = "…"
"""Speech of a reply that has audio but no transcript (so TTS still runs)."""


async def async_handle_message(
    hass: HomeAssistant,
    *,
    manager: VoiceManager,
    agent_id: str,
    early_audio: bool,
    user_input: conversation.ConversationInput,
    chat_log: conversation.ChatLog,
    config: ConfigFactory,
) -> conversation.ConversationResult:
    """Answer `user_input` with the conversation's Live turn.

    A voice turn the STT entity started for this conversation is claimed;
    otherwise the text is sent in the conversation's session. `early_audio`:
    the pipeline's TTS plays the Live audio, so a voice turn may return early.
    Raises a translated HomeAssistantError when the Live service fails.
    """
    if chat_log.llm_api is not None:
        chat_log.llm_api = BoundedAPIInstance.wrap(chat_log.llm_api)
    conversation_id = chat_log.conversation_id
    turn = manager.claim_voice_turn(conversation_id)
    try:
        if turn is None:
            turn = await manager.start_text_turn(
                conversation_id, user_input.text, config
            )
        reply = _Reply(turn, chat_log, early=early_audio and turn.voice)
        partial = await reply.stream(agent_id)
    except LiveError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="live_error",
            translation_placeholders={"reason": err.reason or str(err)},
        ) from err
    except asyncio.CancelledError:
        if turn is not None:
            manager.abandon_turn(turn)
        raise
    finally:
        if turn is not None:
            manager.release_turn(turn)
    if reply.returned_early and partial is not None:
        manager.spawn(
            _async_complete(hass, conversation_id, agent_id, turn, partial),
            f"{DOMAIN} reply {conversation_id}",
        )
    if not isinstance(chat_log.content[-1], conversation.AssistantContent):
        chat_log.async_add_assistant_content_without_tools(
            conversation.AssistantContent(
                agent_id=agent_id,
                content=UNTRANSCRIBED_SPEECH if turn.has_audio else None,
            )
        )
    return conversation.async_get_result_from_chat_log(user_input, chat_log)


async def _async_complete(
    hass: HomeAssistant,
    conversation_id: str,
    agent_id: str,
    turn: LiveTurn,
    partial: conversation.AssistantContent,
) -> None:
    """Write the rest of an early-returned reply over its partial message."""
    # The pipeline stores the run's chat log in the step the agent returned in.
    await asyncio.sleep(0)
    with chat_session.async_get_chat_session(hass, conversation_id) as session:
        if session.conversation_id != conversation_id:
            return  # the chat session expired
        with conversation.async_get_chat_log(hass, session) as chat_log:
            if not any(content is partial for content in chat_log.content):
                return
            reply = _Reply(turn, chat_log, early=False, prefix=partial.content or "")
            try:
                await reply.stream(agent_id)
            except LiveError as err:
                LOGGER.debug("Reply of %s ended early: %s", conversation_id, err)
                return
            chat_log.content[:] = [c for c in chat_log.content if c is not partial]


class _Reply:
    """One stretch of a turn's reply, streamed into a chat log."""

    def __init__(
        self,
        turn: LiveTurn,
        chat_log: conversation.ChatLog,
        *,
        early: bool,
        prefix: str = "",
    ) -> None:
        self.turn = turn
        self.chat_log = chat_log
        self.early = early
        self.returned_early = False
        self._text = prefix
        """Text of the current assistant message."""
        self._chars = 0
        self._pipeline_streams = False

    async def stream(self, agent_id: str) -> conversation.AssistantContent | None:
        """Stream into the chat log; return the last assistant message added."""
        last: conversation.AssistantContent | None = None
        async for content in self.chat_log.async_add_delta_content_stream(
            agent_id, self._deltas()
        ):
            if isinstance(content, conversation.ToolResultContent):
                await self.turn.respond([function_response(content)])
            else:
                last = content
        return last

    def _may_return(self) -> bool:
        turn = self.turn
        return (
            self.early
            and not self._pipeline_streams
            and bool(self._text)
            and turn.has_audio
            and not turn.tool_calls_pending
            and not turn.events_pending
        )

    async def _deltas(self) -> AsyncIterator[conversation.AssistantContentDeltaDict]:
        turn = self.turn
        yield {"role": "assistant", "content": self._text}
        while not self._may_return():
            match await turn.next_event():
                case None:
                    return
                case OutputTranscription(text=text):
                    if text := text if self._text else text.lstrip():
                        self._text += text
                        self._chars += len(text)
                        self._pipeline_streams |= self._chars > STREAM_RESPONSE_CHARS
                        yield {"content": text}
                case ToolCall(calls=calls):
                    calls = tuple(c for c in calls if not turn.is_cancelled(c.id))
                    if not calls:
                        continue
                    self._pipeline_streams |= self._chars > 0
                    yield {"tool_calls": [tool_input(call) for call in calls]}
                    # A new message: the chat log runs the tools and hands the
                    # results to stream() before asking for the next delta.
                    yield {"role": "assistant"}
                    self._text = ""
        self.returned_early = True
