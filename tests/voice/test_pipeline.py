"""End-to-end runs of Home Assistant's Assist pipeline on the fake Live server.

The pipeline is made of this integration's STT and conversation entities (TTS
paths are in test_tts_pipeline.py); microphone audio is espeak-ng speech.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from homeassistant.components import assist_pipeline, conversation
from homeassistant.components.assist_pipeline import PipelineEventType, PipelineStage
from homeassistant.components.homeassistant.exposed_entities import (
    async_expose_entity,
)
from homeassistant.const import CONF_LLM_HASS_API, EVENT_HOMEASSISTANT_STOP
from homeassistant.core import Context, HomeAssistant
from homeassistant.helpers import llm
from homeassistant.setup import async_setup_component
import probatio
import pytest

from custom_components.gemini_live.const import (
    ACTIVITY_DETECTION_AUTOMATIC,
    CONF_ACTIVITY_DETECTION,
    CONF_IDLE_TIMEOUT,
    RECOMMENDED_OPTIONS,
)
from custom_components.gemini_live.voice import manager, tools
from tests.entries import update_agent
from tests.fake_live import Close, Reply, ToolCall, UserTurn, speech

from .conftest import Voice, microphone

LIGHT = "light.kitchen_light"
TURN_ON = "intent__HassTurnOn"
WEATHER = "It is sunny and warm today, with a light breeze from the west."


async def _kitchen_light(hass: HomeAssistant) -> None:
    """Set up an (optimistic) template light, exposed to Assist."""
    assert await async_setup_component(
        hass,
        "template",
        {
            "template": [
                {"light": [{"name": "Kitchen light", "turn_on": [], "turn_off": []}]}
            ]
        },
    )
    await hass.async_block_till_done()
    async_expose_entity(hass, conversation.DOMAIN, LIGHT, True)


def _assistant_texts(log: list[conversation.Content]) -> list[str | None]:
    return [c.content for c in log if isinstance(c, conversation.AssistantContent)]


async def test_voice_turn(voice: Voice) -> None:
    """STT returns Gemini's input transcript; the agent the reply's words."""
    voice.server.queue_reply(Reply(text=WEATHER))

    run = await voice.run("what is the weather like")

    assert run.error is None
    assert run.heard == "what is the weather like"
    assert run.speech == WEATHER
    deltas = [
        d["chat_log_delta"]
        for d in run.of(PipelineEventType.INTENT_PROGRESS)
        if "chat_log_delta" in d
    ]
    assert "".join(d.get("content", "") for d in deltas).strip() == WEATHER
    log = voice.chat_log(run.conversation_id)
    assert [(type(c).__name__, c.content) for c in log[1:]] == [
        ("UserContent", "what is the weather like"),
        ("AssistantContent", WEATHER),
    ]
    assert log[-1].tool_calls is None
    connection = voice.server.connections[-1]
    assert connection.turns[0].ended_by == "activityEnd"
    assert connection.config["realtimeInputConfig"] == {
        "automaticActivityDetection": {"disabled": True}
    }


async def test_spoken_answer_is_whole(voice: Voice) -> None:
    """With live pacing the agent still returns the whole answer (failure 1).

    The TTS stream starts at once (the pipeline's streaming trigger), and the
    chat log holds the answer as one message, with no trace of the trigger.
    """
    voice.server.realtime_factor = 1.0
    voice.server.queue_reply(Reply(text=WEATHER))

    run = await voice.run("what is the weather like", end_stage=PipelineStage.TTS)

    assert run.speech == WEATHER
    progress = run.of(PipelineEventType.INTENT_PROGRESS)
    assert progress.index({"tts_start_streaming": True}) <= 2
    log = voice.chat_log(run.conversation_id)
    assert _assistant_texts(log) == [WEATHER]
    assert all(
        not isinstance(c, conversation.AssistantContent) or c.tool_calls is None
        for c in log
    )


async def test_follow_up_question_reopens_the_microphone(voice: Voice) -> None:
    """An answer ending in a question continues the conversation (failure 2)."""
    voice.server.realtime_factor = 1.0
    question = "Which light do you mean, the kitchen or the hall?"
    voice.server.queue_reply(Reply(text=question))

    run = await voice.run("turn on the light")

    output = run.of(PipelineEventType.INTENT_END)[0]["intent_output"]
    assert output["continue_conversation"] is True
    assert run.speech == question


async def test_tool_call_switches_light(voice: Voice) -> None:
    """A tool call runs through the LLM API; its result goes back to Gemini."""
    await _kitchen_light(voice.hass)
    voice.server.queue_reply(
        Reply(
            text="Sure.",
            tool_calls=[ToolCall(name=TURN_ON, args={"name": "Kitchen light"})],
            then=Reply(text="The kitchen light is on."),
        )
    )

    run = await voice.run("turn on the kitchen light")

    assert voice.hass.states.get(LIGHT).state == "on"
    assert run.speech == "The kitchen light is on."
    connection = voice.server.connections[-1]
    declared = connection.config["tools"][0]["functionDeclarations"]
    assert TURN_ON in {d["name"] for d in declared}
    (response,) = connection.tool_responses
    assert response["name"] == TURN_ON
    output = response["response"]["output"]
    assert output["status"] == "success"
    assert output["result"]["response_type"] == "action_done"
    log = voice.chat_log(run.conversation_id)
    assert [(type(c).__name__, getattr(c, "content", None)) for c in log[1:]] == [
        ("UserContent", "turn on the kitchen light"),
        ("AssistantContent", "Sure."),
        ("ToolResultContent", None),
        ("AssistantContent", "The kitchen light is on."),
    ]
    assert [c.tool_name for c in log[2].tool_calls] == [TURN_ON]
    assert log[2].tool_calls[0].id == connection.tool_calls[0]["id"]


async def test_follow_up_reuses_the_session(voice: Voice) -> None:
    """The next request of the conversation uses the same WebSocket."""
    voice.server.queue_reply(Reply(text=WEATHER), Reply(text="Rain tomorrow."))
    first = await voice.run("what is the weather like")
    connections = len(voice.server.connections)

    second = await voice.run("and tomorrow", conversation_id=first.conversation_id)

    assert second.conversation_id == first.conversation_id
    assert second.speech == "Rain tomorrow."
    assert len(voice.server.connections) == connections
    assert [t.heard for t in voice.server.connections[-1].turns] == [
        "what is the weather like",
        "and tomorrow",
    ]


async def test_typed_chat(voice: Voice) -> None:
    """Typed input opens a session, returns the whole reply, reuses the session."""
    voice.server.realtime_factor = 1.0
    voice.server.queue_reply(Reply(text="Hello! How can I help?"), Reply(text="Bye."))

    result = await conversation.async_converse(
        voice.hass, "hello there", None, Context(), agent_id=voice.conversation_entity
    )
    connections = len(voice.server.connections)
    response = await voice.hass.services.async_call(
        conversation.DOMAIN,
        "process",
        {
            "text": "goodbye",
            "agent_id": voice.conversation_entity,
            "conversation_id": result.conversation_id,
        },
        blocking=True,
        return_response=True,
    )

    assert result.response.speech["plain"]["speech"] == "Hello! How can I help?"
    assert result.continue_conversation
    assert response["response"]["speech"]["plain"]["speech"] == "Bye."
    assert len(voice.server.connections) == connections
    assert [t.text for t in voice.server.connections[-1].turns] == [
        "hello there",
        "goodbye",
    ]


async def test_typed_follow_up_of_voice_turn(voice: Voice) -> None:
    """Assist chat in a voice conversation continues the same Live session."""
    voice.server.queue_reply(Reply(text=WEATHER), Reply(text="You're welcome."))
    run = await voice.run("what is the weather like")

    result = await conversation.async_converse(
        voice.hass,
        "thanks",
        run.conversation_id,
        Context(),
        agent_id=voice.conversation_entity,
    )

    assert result.response.speech["plain"]["speech"] == "You're welcome."
    assert len(voice.server.connections[-1].turns) == 2


async def test_stt_only_run_leaves_nothing(
    voice: Voice, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An STT-only run (assist_satellite.ask_question) leaves nothing behind.

    No tool runs, and the unclaimed reply's session closes soon after STT.
    """
    monkeypatch.setattr(manager, "CLAIM_TIMEOUT", 0.2)
    await _kitchen_light(voice.hass)
    voice.server.queue_reply(
        Reply(
            text="Okay.",
            tool_calls=[ToolCall(name=TURN_ON, args={"name": "Kitchen light"})],
            then=Reply(text="Done."),
        )
    )

    run = await voice.run("yes please", end_stage=PipelineStage.STT)

    assert run.heard == "yes please"
    assert PipelineEventType.INTENT_START not in run.types
    connection = voice.server.connections[-1]
    await connection.wait_closed()
    assert connection.closed_by == "client"
    assert connection.tool_calls
    assert not connection.tool_responses
    assert voice.hass.states.get(LIGHT).state != "on"
    assert not voice.manager._sessions
    assert not voice.manager._timers


@pytest.mark.parametrize(
    "entry_options", [{**RECOMMENDED_OPTIONS, CONF_IDLE_TIMEOUT: 0.3}]
)
async def test_unclaimed_audio_and_idle_session_expire(
    voice: Voice, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Audio no TTS fetches is dropped; the idle session closes."""
    monkeypatch.setattr(manager, "AUDIO_CLAIM_TIMEOUT", 0.1)
    voice.server.queue_reply(Reply(text=WEATHER))

    run = await voice.run("what is the weather like")
    turn = voice.manager._sessions[run.conversation_id].turn
    await asyncio.sleep(0.2)

    assert turn is not None
    assert not turn.audio_available
    assert turn._audio_unread == 0
    connection = voice.server.connections[-1]
    await connection.wait_closed()
    assert connection.closed_by == "client"
    assert not voice.manager._sessions
    assert not voice.manager._timers


async def test_abandoned_run_closes_the_session(voice: Voice) -> None:
    """A run cancelled mid-speech (satellite gone) closes its session."""
    started = asyncio.Event()
    pcm = speech("what is the weather like", 16000)

    async def endless_microphone() -> AsyncIterator[bytes]:
        async for chunk in microphone(pcm, trailing_silence_ms=0):
            yield chunk
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(voice.run(endless_microphone()))
    await started.wait()
    connection = voice.server.connections[-1]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    await connection.wait_closed()
    assert not voice.manager._sessions


async def test_abandoned_agent_closes_the_session(voice: Voice) -> None:
    """A run cancelled while the agent waits for the reply closes the session."""
    voice.server.queue_reply(Reply(text=WEATHER, delay=5))
    intent_started = asyncio.Event()

    def on_event(event: Any) -> None:
        if event.type is PipelineEventType.INTENT_START:
            intent_started.set()

    task = asyncio.create_task(
        voice.run("what is the weather like", event_callback=on_event)
    )
    await intent_started.wait()
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    await voice.server.connections[-1].wait_closed()
    assert not voice.manager._sessions


async def test_live_error_during_stt(voice: Voice) -> None:
    """A Live error mid-turn is a pipeline error; the next run works."""
    voice.server.queue_reply(Reply(text=WEATHER, close=Close.internal()))

    failed = await voice.run("what is the weather like")

    assert failed.error is not None
    assert failed.error["code"] == "stt-stream-failed"
    voice.server.queue_reply(Reply(text="Still here."))
    run = await voice.run("are you there", conversation_id=failed.conversation_id)
    assert run.error is None
    assert run.speech == "Still here."


async def test_live_error_during_agent(voice: Voice) -> None:
    """A Live error while the agent waits gives a translated error response."""
    await _kitchen_light(voice.hass)
    voice.server.queue_reply(
        Reply(
            text="",
            tool_calls=[ToolCall(name=TURN_ON, args={"name": "Kitchen light"})],
            then=Reply(close=Close.internal()),
        )
    )

    failed = await voice.run("turn on the kitchen light")

    output = failed.of(PipelineEventType.INTENT_END)[0]["intent_output"]
    assert output["response"]["response_type"] == "error"
    assert failed.speech == "Gemini Live could not answer: Internal error encountered."
    voice.server.queue_reply(Reply(text="Still here."))
    run = await voice.run("are you there", conversation_id=failed.conversation_id)
    assert run.speech == "Still here."


async def test_slow_tool_finishes_and_the_model_hears_in_time(
    voice: Voice, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tool slower than the bound is not cancelled (failure 7).

    The model is told within the bound that it is still running, the tool
    finishes afterwards, and the answer is whole.
    """
    monkeypatch.setattr(tools, "TOOL_TIMEOUT", 0.1)
    release, finished = asyncio.Event(), asyncio.Event()

    async def slow(llm_context: llm.LLMContext) -> dict[str, Any]:
        await release.wait()
        finished.set()
        return {"done": True}

    await _use_tool(voice, "slow_tool", slow)
    voice.server.queue_reply(
        Reply(
            text="Let me see.",
            tool_calls=[ToolCall(name="slow_tool")],
            then=Reply(text="It is running."),
        )
    )

    run = await voice.run("do the slow thing")

    assert run.speech == "It is running."
    (response,) = voice.server.connections[-1].tool_responses
    assert response["response"]["output"]["status"] == "in_progress"
    assert not finished.is_set()
    release.set()
    async with asyncio.timeout(2):
        await finished.wait()


@pytest.mark.parametrize(
    "entry_options",
    [{**RECOMMENDED_OPTIONS, CONF_ACTIVITY_DETECTION: ACTIVITY_DETECTION_AUTOMATIC}],
)
async def test_automatic_activity_detection(voice: Voice) -> None:
    """With Gemini's activity detection the client sends no activity signals."""
    voice.server.queue_reply(Reply(text=WEATHER))

    run = await voice.run("what is the weather like")

    assert run.heard == "what is the weather like"
    assert run.speech == WEATHER
    connection = voice.server.connections[-1]
    assert not connection.manual_activity
    assert not any(
        "activityStart" in m.get("realtimeInput", {}) for m in connection.messages
    )


async def test_concurrent_satellites(voice: Voice) -> None:
    """Ten simultaneous runs each get the answer to their own question."""
    questions = [f"question number {n}" for n in range(1, 11)]

    def responder(turn: UserTurn) -> Reply:
        return Reply(text=f"The answer to {turn.query}.")

    voice.server.responder = responder
    voice.server.realtime_factor = 4.0

    runs = await asyncio.gather(*(voice.run(q) for q in questions))

    assert [run.heard for run in runs] == questions
    assert len({run.conversation_id for run in runs}) == 10
    for question, run in zip(questions, runs, strict=True):
        assert run.speech == f"The answer to {question}."
        log = voice.chat_log(run.conversation_id)
        assert _assistant_texts(log) == [f"The answer to {question}."]


async def test_tools_get_the_satellite_device(voice: Voice) -> None:
    """The satellite's device reaches the tools through the LLM context."""
    seen: list[str | None] = []

    async def where(llm_context: llm.LLMContext) -> dict[str, Any]:
        seen.append(llm_context.device_id)
        return {"area": "kitchen"}

    await _use_tool(voice, "where_am_i", where)
    voice.server.queue_reply(
        Reply(
            text="",
            tool_calls=[ToolCall(name="where_am_i")],
            then=Reply(text="You are in the kitchen."),
        )
    )

    run = await voice.run("where am I", device_id="satellite-device")

    assert run.speech == "You are in the kitchen."
    assert seen == ["satellite-device"]


# Firing the stop event by hand leaves Home Assistant's chat session cleanup timer.
@pytest.mark.parametrize("expected_lingering_timers", [True])
async def test_home_assistant_stop_closes_sessions(voice: Voice) -> None:
    """Stopping Home Assistant closes the open Live sessions."""
    voice.server.queue_reply(Reply(text="Hi."))
    await voice.run("good morning")
    connection = voice.server.connections[-1]
    assert not connection.closed

    voice.hass.bus.async_fire(EVENT_HOMEASSISTANT_STOP)
    await voice.hass.async_block_till_done()

    await connection.wait_closed()
    assert not voice.manager._sessions


async def test_no_early_return_without_live_tts(voice: Voice) -> None:
    """With another (or no) TTS engine the agent returns the whole reply."""
    pipeline = assist_pipeline.async_get_pipeline(voice.hass, voice.pipeline_id)
    await assist_pipeline.async_update_pipeline(
        voice.hass, pipeline, tts_engine=None, tts_language=None
    )
    voice.server.realtime_factor = 1.0
    voice.server.queue_reply(Reply(text="Sunny, warm."))

    run = await voice.run("what is the weather like")

    assert run.speech == "Sunny, warm."


async def _use_tool(
    voice: Voice,
    name: str,
    call: Callable[[llm.LLMContext], Awaitable[dict[str, Any]]],
) -> None:
    """Give the agent an LLM API whose one tool, `name`, runs `call`."""

    class OneTool(llm.Tool):
        description = "A test tool"
        parameters = probatio.Schema({})

        async def async_call(
            self,
            hass: HomeAssistant,
            tool_input: llm.ToolInput,
            llm_context: llm.LLMContext,
        ) -> llm.ToolResult:
            return llm.ToolResult(data=await call(llm_context))

    tool = OneTool()
    tool.name = name

    class OneToolAPI(llm.API):
        async def async_get_api_instance(
            self, llm_context: llm.LLMContext
        ) -> llm.APIInstance:
            return llm.APIInstance(self, "", llm_context, [tool])

    llm.async_register_api(voice.hass, OneToolAPI(hass=voice.hass, id=name, name=name))
    update_agent(voice.hass, voice.entry, **{CONF_LLM_HASS_API: [name]})
    await voice.hass.async_block_till_done()  # the entry reloads
