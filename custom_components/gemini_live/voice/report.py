"""The report of a turn the conversation agent answered, from its chat log."""

from __future__ import annotations

from collections.abc import Sequence

from homeassistant.components import conversation
from homeassistant.helpers import llm

from .activity import Tokens, ToolCallReport, ToolStatus, TurnReport
from .tools import IN_PROGRESS
from .turn import LiveTurn


def turn_report(
    agent_id: str,
    user_input: conversation.ConversationInput,
    turn: LiveTurn,
    added: Sequence[conversation.Content],
) -> TurnReport:
    """Report `turn`, whose reply added `added` to the chat log.

    The tool calls are those Home Assistant ran (external ones, like Gemini's
    own search, have no result); the words are the whole transcripts.
    """
    results = {
        item.tool_call_id: item.result
        for item in added
        if isinstance(item, conversation.ToolResultContent)
    }
    calls = tuple(
        ToolCallReport(
            name=call.tool_name,
            arguments=call.tool_args,
            status=_status(results[call.id]),
        )
        for item in added
        if isinstance(item, conversation.AssistantContent)
        for call in item.tool_calls or ()
        if call.id in results
    )
    return TurnReport(
        agent_id=agent_id,
        conversation_id=turn.conversation_id,
        voice=turn.voice,
        user_text=turn.input_transcript or user_input.text,
        answer_text=turn.output_transcript,
        tool_calls=calls,
        tokens=Tokens.of(turn.usage),
        error=turn.error,
    )


def _status(result: llm.ToolResult) -> ToolStatus:
    """How a tool call went (still running: the bound came first)."""
    if result.error:
        return "error"
    if result.data.get("status") == IN_PROGRESS:
        return "in_progress"
    return "success"
