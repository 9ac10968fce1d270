"""The reply streamed into a chat log: tool calls, cancellations, no transcript."""

from __future__ import annotations

from collections.abc import Sequence

from homeassistant.components import conversation
from homeassistant.core import Context, HomeAssistant
from homeassistant.helpers import chat_session, llm
from homeassistant.setup import async_setup_component
import probatio

from custom_components.gemini_live.live import (
    FunctionCall,
    FunctionResponse,
    ToolCall,
    ToolCallCancellation,
)
from custom_components.gemini_live.voice.activity import Activity
from custom_components.gemini_live.voice.chat import async_handle_message
from custom_components.gemini_live.voice.tools import ToolRunner
from custom_components.gemini_live.voice.turn import LiveTurn


class Lamp(llm.Tool):
    """Records its calls."""

    name = "lamp"
    description = "Switches the lamp"
    parameters = probatio.Schema({})

    def __init__(self) -> None:
        """Start without calls."""
        self.calls: list[str] = []

    async def async_call(
        self,
        hass: HomeAssistant,
        tool_input: llm.ToolInput,
        llm_context: llm.LLMContext,
    ) -> llm.ToolResult:
        """Record the call."""
        self.calls.append(tool_input.id)
        return llm.ToolResult(data={"done": True})


LAMP = Lamp()


class LampAPI(llm.API):
    """An API with the lamp tool."""

    async def async_get_api_instance(
        self, llm_context: llm.LLMContext
    ) -> llm.APIInstance:
        """Return the lamp tool."""
        return llm.APIInstance(self, "", llm_context, [LAMP])


class Manager:
    """Stands in for the VoiceManager: hands out one voice turn."""

    def __init__(self, turn: LiveTurn) -> None:
        """Hold the turn."""
        self.turn = turn
        self.released: list[LiveTurn] = []
        self.activity = Activity()

    def claim_voice_turn(self, conversation_id: str) -> LiveTurn:
        """Return the turn."""
        return self.turn

    def release_turn(self, turn: LiveTurn) -> None:
        """Record the release."""
        self.released.append(turn)


async def _handle(
    hass: HomeAssistant, turn: LiveTurn, api: str | None = None
) -> conversation.ConversationResult:
    user_input = conversation.ConversationInput(
        text="hi",
        context=Context(),
        conversation_id=None,
        device_id=None,
        satellite_id=None,
        language="en",
        agent_id="conversation.test",
    )
    with (
        chat_session.async_get_chat_session(hass) as session,
        conversation.async_get_chat_log(hass, session, user_input) as chat_log,
    ):
        await chat_log.async_provide_llm_data(
            user_input.as_llm_context("test"), api, None, None
        )
        return await async_handle_message(
            manager=Manager(turn),  # type: ignore[arg-type]
            agent_id="conversation.test",
            user_input=user_input,
            chat_log=chat_log,
            setup=None,  # type: ignore[arg-type]
            tools=ToolRunner(chat_log.llm_api, hass.async_create_task),
        )


async def test_cancelled_tool_call_does_not_run(hass: HomeAssistant) -> None:
    """Calls the model cancelled before the agent read them never run."""
    assert await async_setup_component(hass, "homeassistant", {})
    assert await async_setup_component(hass, "conversation", {})
    llm.async_register_api(hass, LampAPI(hass=hass, id="lamp", name="Lamp"))
    LAMP.calls.clear()
    sent: list[FunctionResponse] = []

    async def send(responses: Sequence[FunctionResponse]) -> None:
        sent.extend(responses)
        turn.add_output("Done.")
        turn.add_audio(b"\x00\x00")
        turn.turn_complete()
        turn.add_output("", finished=True)

    turn = LiveTurn("conv", voice=False, send_tool_response=send)
    calls = (
        FunctionCall(id="c1", name="lamp", args={}),
        FunctionCall(id="c2", name="lamp", args={}),
    )
    turn.add_tool_call(ToolCall(calls))
    turn.cancel_tool_calls(ToolCallCancellation(("c1",)))

    result = await _handle(hass, turn, "lamp")

    assert LAMP.calls == ["c2"]
    assert [r.id for r in sent] == ["c2"]
    assert result.response.speech["plain"]["speech"] == "Done."


async def test_reply_without_transcript(hass: HomeAssistant) -> None:
    """Audio without a transcript ends with an empty assistant message."""
    assert await async_setup_component(hass, "homeassistant", {})
    assert await async_setup_component(hass, "conversation", {})
    turn = LiveTurn("conv", voice=False, send_tool_response=None)  # type: ignore[arg-type]
    turn.add_audio(b"\x00\x00")
    turn.finish()

    result = await _handle(hass, turn)

    assert result.response.speech["plain"]["speech"] == ""
