"""The conversation agent's side of a Live turn: the reply in the chat log.

The model's output transcript is streamed into the chat log as assistant
deltas. Its tool calls are recorded as external tool calls and run by
`ToolRunner` (so a slow tool is never cancelled half-way and the model is
answered within a bound), their results recorded as tool results and sent
back to the model. The agent returns when the turn is done, with the whole
answer, so `continue_conversation` follows the real last sentence.

Audio from the start. Home Assistant starts streaming TTS (and tells the
satellite to fetch the audio) once the assistant's text is followed by a tool
call, or after more than 60 characters. Inside a pipeline run (the chat log
has a delta listener) the first delta is therefore a blank text and an
external `AUDIO_TRIGGER` call, which starts the TTS stream before Gemini's
first audio chunk; nothing runs it. When the reply is done the trigger and
the blank are removed again, so the chat log holds the answer as the user
heard it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from typing import Final

from homeassistant.components import conversation
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import llm
from homeassistant.util.json import JsonValueType
from homeassistant.util.ulid import ulid_now

from ..const import DOMAIN, LOGGER
from ..live import (
    FunctionCall,
    Grounding,
    LiveError,
    LiveQuotaError,
    OutputTranscription,
    ToolCall,
)
from ..quota import async_refusal_result
from .manager import SetupFactory, VoiceManager
from .report import turn_report
from .tools import ToolRunner, function_response, tool_input
from .turn import LiveTurn, NextMessage, ReplyEvent

AUDIO_TRIGGER: Final = "stream_live_audio"
"""Name of the external tool call that starts the pipeline's TTS stream."""
GOOGLE_SEARCH: Final = "google_search"
"""Tool name under which Gemini's own searches appear in the chat log."""
SCHEDULING_WHEN_IDLE: Final = "WHEN_IDLE"
"""A NON_BLOCKING result the model says once it finished what it says."""

type DeltaDict = (
    conversation.AssistantContentDeltaDict | conversation.ToolResultContentDeltaDict
)


async def async_handle_message(
    *,
    manager: VoiceManager,
    agent_id: str,
    user_input: conversation.ConversationInput,
    chat_log: conversation.ChatLog,
    setup: SetupFactory,
    tools: ToolRunner,
) -> conversation.ConversationResult:
    """Answer `user_input` with the conversation's Live turn.

    A voice turn the STT entity started for this conversation is claimed;
    otherwise the text is sent in the conversation's session. The answered
    turn is reported to `manager.activity`. Raises a translated
    HomeAssistantError when the Live service fails; a quota or spending-cap
    refusal is answered with a sentence in the user's language instead.
    """
    conversation_id = chat_log.conversation_id
    added_from = len(chat_log.content)
    extra_prompt = chat_log.extra_system_prompt
    turn = manager.claim_voice_turn(conversation_id)
    reply: _Reply | None = None
    try:
        if turn is None:
            turn = await manager.start_text_turn(
                conversation_id,
                user_input.text,
                setup,
                extra_prompt=extra_prompt,
                context_id=user_input.context.id,
            )
        elif extra_prompt:
            turn = await manager.add_extra_prompt(turn, extra_prompt)
        reply = _Reply(turn, tools, stream_audio=chat_log.delta_listener is not None)
        async for _ in chat_log.async_add_delta_content_stream(
            agent_id, reply.deltas()
        ):
            pass
        _tidy(chat_log, added_from, reply.trigger_id, turn, agent_id, failed=False)
        manager.activity.turn_finished(
            turn_report(agent_id, user_input, turn, chat_log.content[added_from:])
        )
    except LiveError as err:
        if reply is not None:
            _tidy(
                chat_log,
                added_from,
                reply.trigger_id,
                reply.turn,
                agent_id,
                failed=True,
            )
        if isinstance(err, LiveQuotaError):
            return await async_refusal_result(user_input, chat_log, agent_id, err)
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
    return conversation.async_get_result_from_chat_log(user_input, chat_log)


class _Reply:
    """A turn's reply as chat-log deltas, its tool calls run on the way."""

    def __init__(
        self, turn: LiveTurn, tools: ToolRunner, *, stream_audio: bool
    ) -> None:
        self.turn = turn
        self.tools = tools
        self.trigger_id = ulid_now() if stream_audio else None

    async def deltas(self) -> AsyncIterator[DeltaDict]:
        """Yield the reply until the turn is done (raises its LiveError).

        Tools run while the reply goes on (the model talks on during a
        NON_BLOCKING call). Their results are recorded where the words after
        them begin (`NextMessage`), so that words of before which arrive late
        stay in their message.
        """
        if self.trigger_id is None:
            yield {"role": "assistant"}
        else:
            yield {"role": "assistant", "content": " "}
            trigger = llm.ToolInput(
                tool_name=AUDIO_TRIGGER, tool_args={}, id=self.trigger_id, external=True
            )
            yield {"tool_calls": [trigger]}
        layout = _Layout()
        running: set[asyncio.Task[tuple[int, list[DeltaDict]]]] = set()
        event_task: asyncio.Task[ReplyEvent | None] | None = None
        try:
            while True:
                if event_task is None:
                    event_task = asyncio.ensure_future(self._next_event())
                done, _ = await asyncio.wait(
                    {event_task, *running}, return_when=asyncio.FIRST_COMPLETED
                )
                for finished in running & done:
                    running.discard(finished)
                    for delta in layout.add_results(*finished.result()):
                        yield delta
                if event_task not in done:
                    continue
                try:
                    event = event_task.result()
                except LiveError:
                    for delta in layout.failed():  # the tools' effects happened
                        yield delta
                    raise
                event_task = None
                match event:
                    case None:
                        for delta in layout.end():
                            yield delta
                        break
                    case NextMessage():
                        for delta in layout.next_message():
                            yield delta
                    case OutputTranscription(text=text):
                        for delta in layout.text(text):
                            yield delta
                    case Grounding():
                        yield {"tool_calls": [_search_call(event)]}
                    case ToolCall(calls=calls):
                        calls = tuple(
                            c for c in calls if not self.turn.is_cancelled(c.id)
                        )
                        if not calls:
                            continue
                        inputs = [tool_input(call) for call in calls]
                        segment = self.turn.segment(calls[0].id)
                        for delta in layout.tool_call(segment, inputs):
                            yield delta
                        for group in self._groups(calls):
                            tools = asyncio.ensure_future(
                                self._run(
                                    [calls[i] for i in group],
                                    [inputs[i] for i in group],
                                )
                            )
                            running.add(tools)
        finally:
            if event_task is not None:
                event_task.cancel()
            for task in running:
                task.cancel()

    def _groups(self, calls: Sequence[FunctionCall]) -> list[list[int]]:
        """Split a tool call: its BLOCKING functions together, the others alone."""
        unwaited = [call.name in self.turn.non_blocking for call in calls]
        waited = [i for i, skip in enumerate(unwaited) if not skip]
        return ([waited] if waited else []) + [
            [i] for i, skip in enumerate(unwaited) if skip
        ]

    async def _run(
        self, calls: Sequence[FunctionCall], inputs: Sequence[llm.ToolInput]
    ) -> tuple[int, list[DeltaDict]]:
        """Run functions of one tool call, answer the model, return the results.

        The results come as chat-log deltas, with the segment of the reply
        whose words follow them. The model waits for BLOCKING
        functions, answered together within the runner's bound. It does not
        wait for a NON_BLOCKING one: its tool runs to the end, and its result
        comes back on its own, WHEN_IDLE (after what the model says
        meanwhile: a result the user asked for is worth saying).
        """
        non_blocking = calls[0].name in self.turn.non_blocking
        results = await asyncio.gather(
            *(self.tools.run(tool, bounded=not non_blocking) for tool in inputs)
        )
        responses = [
            function_response(call, result)
            for call, result in zip(calls, results, strict=True)
        ]
        if non_blocking:
            responses = [replace(r, scheduling=SCHEDULING_WHEN_IDLE) for r in responses]
        return await self.turn.respond(responses), [
            {
                "role": "tool_result",
                "tool_call_id": tool.id,
                "tool_name": tool.tool_name,
                "result": result,
            }
            for tool, result in zip(inputs, results, strict=True)
        ]

    async def _next_event(self) -> ReplyEvent | None:
        """Return the next reply event; after a failure mid-answer, None.

        The user heard the answer up to the failure, so the chat log keeps
        it; a failure before any answer raises.
        """
        try:
            return await self.turn.next_event()
        except LiveError as err:
            if not self.turn.output_transcript:
                raise
            LOGGER.warning("The Live reply ended early: %s", err)
            return None


class _Layout:
    """Where the reply's words, tool calls and results go in the chat log.

    The reply is cut into segments at its pauses (`NextMessage`). A tool
    call joins the message of its segment; its results are recorded where
    the words that may speak of them begin, which then start a new message.
    Late words of a segment therefore stay in its message.
    """

    def __init__(self) -> None:
        self.segment = 0
        self.results: list[tuple[int, list[DeltaDict]]] = []
        """Tool results not recorded yet, by the segment that follows them."""
        self._held: list[tuple[int, list[llm.ToolInput]]] = []
        """Tool calls of segments whose words did not begin yet."""
        self._has_text = False
        self._space = False

    def text(self, text: str) -> list[DeltaDict]:
        """Add words to the current message."""
        if not self._has_text:
            text = text.lstrip()
        elif self._space and not text[:1].isspace():
            text = f" {text}"
        self._space = False
        if not text:
            return []
        self._has_text = True
        return [{"content": text}]

    def tool_call(self, segment: int, inputs: list[llm.ToolInput]) -> list[DeltaDict]:
        """Record a tool call in its segment's message (now, or later)."""
        if segment <= self.segment:
            return [{"tool_calls": inputs}]
        self._held.append((segment, inputs))
        return []

    def add_results(self, segment: int, deltas: list[DeltaDict]) -> list[DeltaDict]:
        """Keep tool results for `segment`; record them now if it began."""
        self.results.append((segment, deltas))
        if segment > self.segment:
            return []
        return self._flush()

    def next_message(self) -> list[DeltaDict]:
        """Begin the next segment: a new message after the earlier results."""
        self.segment += 1
        out = self._flush()
        if not out:
            self._space = self._has_text  # the same message goes on
        out += [{"tool_calls": i} for seg, i in self._held if seg <= self.segment]
        self._held = [(seg, i) for seg, i in self._held if seg > self.segment]
        return out

    def _flush(self) -> list[DeltaDict]:
        """Record the results due by now; the words after them start a message."""
        out: list[DeltaDict] = [
            delta
            for seg, deltas in self.results
            if seg <= self.segment
            for delta in deltas
        ]
        if out:
            out.append({"role": "assistant"})
            self._has_text = False
            self.results = [(seg, d) for seg, d in self.results if seg > self.segment]
        return out

    def end(self) -> list[DeltaDict]:
        """Record what is left; the reply ends with an assistant message."""
        out: list[DeltaDict] = []
        while self._held:
            out += self.next_message()
        if self.results:
            out += [delta for _, deltas in self.results for delta in deltas]
            out.append({"role": "assistant"})
            self.results = []
        return out

    def failed(self) -> list[DeltaDict]:
        """Record the tool calls and results there are (the reply failed)."""
        out: list[DeltaDict] = [{"tool_calls": inputs} for _, inputs in self._held]
        out += [delta for _, deltas in self.results for delta in deltas]
        self._held, self.results = [], []
        return out


def _search_call(grounding: Grounding) -> llm.ToolInput:
    """Record Gemini's own Google Search as an external call of the answer.

    It joins the answer's message (whose text must stay whole), with what
    was searched and the sources the service reported.
    """
    sources: list[JsonValueType] = [
        {"title": s.title, "uri": s.uri} for s in grounding.sources
    ]
    return llm.ToolInput(
        tool_name=GOOGLE_SEARCH,
        tool_args={"queries": list(grounding.queries), "sources": sources},
        id=ulid_now(),
        external=True,
    )


def _tidy(
    chat_log: conversation.ChatLog,
    start: int,
    trigger_id: str | None,
    turn: LiveTurn,
    agent_id: str,
    *,
    failed: bool,
) -> None:
    """Leave the chat log as the user experienced the turn.

    The audio trigger and its blank text go; the user's message becomes the
    whole input transcript when it arrived after the STT result; a reply
    without any words still ends with an (empty) assistant message, unless
    it `failed` (the error is the answer).
    """
    content = chat_log.content
    tidied: list[conversation.Content] = []
    for item in content[start:]:
        if isinstance(item, conversation.AssistantContent) and trigger_id:
            calls = [c for c in item.tool_calls or () if c.id != trigger_id]
            text = (item.content or "").strip() or None
            if not (text or calls or item.thinking_content):
                continue
            tidied.append(replace(item, content=text, tool_calls=calls or None))
        else:
            tidied.append(item)
    content[start:] = tidied
    heard = turn.input_transcript
    if (
        turn.voice
        and start > 0
        and isinstance(user := content[start - 1], conversation.UserContent)
        and len(heard) > len(user.content)
    ):
        content[start - 1] = replace(user, content=heard)
    if not failed and not isinstance(content[-1], conversation.AssistantContent):
        chat_log.async_add_assistant_content_without_tools(
            conversation.AssistantContent(agent_id=agent_id, content=None)
        )
