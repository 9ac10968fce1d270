"""What people do every day with a voice assistant, end to end.

Each test drives Home Assistant's real pipeline (from a test satellite where
the satellite matters) with espeak-ng speech against the fake Live server,
and checks what the user gets: the answer, its audio, the tool's effect, the
chat log.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from homeassistant.components import conversation, tts
from homeassistant.components.assist_pipeline import PipelineEventType, PipelineStage
from homeassistant.components.intent import (
    TimerEventType,
    TimerInfo,
    async_register_timer_handler,
)
from homeassistant.components.intent.const import TIMER_DATA
from homeassistant.const import CONF_LLM_HASS_API
from homeassistant.core import Context
from homeassistant.helpers import llm
import probatio
import pytest

from custom_components.gemini_live import stt as stt_module
from custom_components.gemini_live.const import CONF_IDLE_TIMEOUT, RECOMMENDED_OPTIONS
from tests.entries import update_agent
from tests.fake_live import (
    Close,
    GoAway,
    Reply,
    ToolCall,
    UserTurn,
    chunks,
    silence,
    speech,
)

from .conftest import Voice
from .satellite import Satellite, async_setup_satellite
from .test_pipeline import LIGHT, _kitchen_light

LONG_ANSWER = (
    "It is sunny and warm today, with a light breeze from the west and a high"
    " of twenty four degrees."
)


def _data(events: list[Any], kind: PipelineEventType) -> list[dict[str, Any]]:
    return [e.data or {} for e in events if e.type is kind]


def _speech(events: list[Any]) -> str:
    output = _data(events, PipelineEventType.INTENT_END)[0]["intent_output"]
    return str(output["response"]["speech"]["plain"]["speech"])


async def _tts_bytes(voice: Voice, events: list[Any]) -> bytes:
    token = _data(events, PipelineEventType.TTS_END)[0]["tts_output"]["token"]
    stream = tts.async_get_stream(voice.hass, token)
    assert stream is not None
    return b"".join([chunk async for chunk in stream.async_stream_result()])


@pytest.fixture
async def satellite(voice: Voice) -> Satellite:
    """Return a satellite in the Kitchen whose pipeline is Gemini Live's."""
    return await async_setup_satellite(voice.hass, voice)


async def test_timer_on_a_satellite(voice: Voice, satellite: Satellite) -> None:
    """Say "set a timer for five minutes": it starts on that satellite (failure 3).

    The session opened at the STT stage already knows the satellite's device:
    the timer tools are declared and the instructions name its area.
    """
    await _kitchen_light(voice.hass)  # area guidance needs something exposed
    assert satellite.device_entry is not None
    device_id = satellite.device_entry.id
    timers: list[tuple[TimerEventType, TimerInfo]] = []
    async_register_timer_handler(
        voice.hass, device_id, lambda kind, info: timers.append((kind, info))
    )

    def responder(turn: UserTurn) -> Reply:
        declared = turn.connection.config["tools"][0]["functionDeclarations"]
        start_timer = next(d["name"] for d in declared if "StartTimer" in d["name"])
        return Reply(
            text="",
            tool_calls=[ToolCall(name=start_timer, args={"minutes": 5})],
            then=Reply(text="Your five minute timer has started."),
        )

    voice.server.responder = responder

    events = await satellite.listen(speech("set a timer for five minutes", 16000))

    assert _speech(events) == "Your five minute timer has started."
    assert [(kind, info.seconds, info.device_id) for kind, info in timers] == [
        (TimerEventType.STARTED, 300, device_id)
    ]
    connection = voice.server.connections[-1]
    assert "Kitchen" in connection.config["systemInstruction"]["parts"][0]["text"]
    assert len(await _tts_bytes(voice, events)) > 24000  # the answer is heard
    manager = voice.hass.data[TIMER_DATA]
    for timer_id in list(manager.timers):
        manager.cancel_timer(timer_id)


async def _yes_to_start_conversation(
    voice: Voice, satellite: Satellite, prompt: str
) -> list[Any]:
    """Ask from the satellite with `prompt`; return the run of the user's yes.

    The start message is read by the TTS model, as in production, so the last
    Live session is the conversation's.
    """
    voice.server.speech.serve()
    await voice.hass.services.async_call(
        "assist_satellite",
        "start_conversation",
        {
            "entity_id": satellite.entity_id,
            "start_message": "Shall I turn the kitchen light on?",
            "extra_system_prompt": prompt,
            "preannounce": False,
        },
        blocking=True,
    )
    return await satellite.listen(speech("yes please", 16000))


@pytest.mark.parametrize(
    ("first_lag", "again_lag", "model_delay"),
    [(0.0, 0.0, 0.0), (0.8, 0.8, 0.0), (2.5, 2.5, 0.0), (0.8, 0.0, 0.0), (0, 0, 0.5)],
)
async def test_start_conversation_prompt_reaches_the_model(
    voice: Voice,
    satellite: Satellite,
    first_lag: float,
    again_lag: float,
    model_delay: float,
) -> None:
    """start_conversation: the user's "yes" is understood in context (failure 4).

    The start message is in the session's history, and the extra system
    prompt reaches the model before the answer the user hears. The first
    answer's words may trail its audio (`first_lag`): they never join the
    answer the model gives again with the prompt, also when it is asked again
    before the first answer began (`model_delay`).
    """
    prompt = "You offered to turn on the kitchen light. If the user agrees, say so."
    voice.server.model_delay = model_delay

    def responder(turn: UserTurn) -> Reply:
        if turn.text and prompt in turn.text:
            return Reply(
                text="Great, turning on the kitchen light.", transcript_lag=again_lag
            )
        if any("kitchen light on" in t.text for t in turn.connection.history):
            return Reply(text="Yes to what exactly?", transcript_lag=first_lag)
        return Reply(text="Okay.")

    voice.server.responder = responder
    events = await _yes_to_start_conversation(voice, satellite, prompt)

    assert _speech(events) == "Great, turning on the kitchen light."
    connection = voice.server.connections[-1]
    assert [(t.role, t.text) for t in connection.history][:2] == [
        ("model", "Shall I turn the kitchen light on?"),
        ("user", "yes please"),
    ]
    played = await _tts_bytes(voice, events)
    assert len(played) > 24000


@pytest.mark.parametrize("live_model", ["gemini-3.8-live"])
async def test_start_conversation_prompt_as_context_update(
    voice: Voice, satellite: Satellite
) -> None:
    """On 3.8 the extra system prompt joins the system instruction.

    It goes as a `contextUpdate` (the model accepts one), not inside the
    user's words, and the answer heard follows it.
    """
    prompt = "You offered to turn on the kitchen light. If the user agrees, say so."

    def responder(turn: UserTurn) -> Reply:
        if prompt in (turn.connection.system_instruction or ""):
            return Reply(text="Great, turning on the kitchen light.")
        return Reply(text="Okay.")

    voice.server.responder = responder
    events = await _yes_to_start_conversation(voice, satellite, prompt)

    assert _speech(events) == "Great, turning on the kitchen light."
    connection = voice.server.connections[-1]
    (update,) = connection.system_instruction_updates
    assert update.endswith(prompt)
    assert all(prompt not in (turn.text or "") for turn in connection.turns)


@pytest.mark.parametrize(
    "entry_options", [{**RECOMMENDED_OPTIONS, CONF_IDLE_TIMEOUT: 0.2}]
)
async def test_memory_outlives_the_session(voice: Voice) -> None:
    """After the idle timeout a follow-up still knows the earlier turn (failure 5)."""

    def responder(turn: UserTurn) -> Reply:
        if "what is my name" in turn.query:
            known = any("Bob" in t.text for t in turn.connection.history)
            return Reply(text="Your name is Bob." if known else "I don't know.")
        return Reply(text="Nice to meet you, Bob.")

    voice.server.responder = responder
    first = await voice.run("my name is bob")
    await voice.server.connections[-1].wait_closed()

    again = await voice.run("what is my name", conversation_id=first.conversation_id)

    assert again.speech == "Your name is Bob."
    _setup_check, first_session, second_session = voice.server.connections
    assert first_session.closed_by == "client"
    assert [(t.role, t.text) for t in second_session.history][:2] == [
        ("user", "my name is bob"),
        ("model", "Nice to meet you, Bob."),
    ]


async def test_one_session_for_concurrent_first_requests(voice: Voice) -> None:
    """Two first requests of one new conversation share one session (failure 6)."""
    voice.server.responder = lambda turn: Reply(text=f"You said {turn.query}.")

    results = await asyncio.gather(
        *(
            conversation.async_converse(
                voice.hass,
                text,
                "new-conversation",
                Context(),
                agent_id=voice.conversation_entity,
            )
            for text in ("first", "second")
        )
    )

    _setup_check, *sessions = voice.server.connections
    assert len(sessions) == 1
    assert [t.text for t in sessions[0].turns] == ["first", "second"]
    assert {r.conversation_id for r in results} == {"new-conversation"}
    assert [r.response.speech["plain"]["speech"] for r in results] == [
        "You said first.",
        "You said second.",
    ]


async def test_tts_speak_is_cached(voice: Voice, tmp_path: Path) -> None:
    """tts.speak of the same sentence is synthesised once (failure 7)."""
    sentence = "Dinner is ready. Who wants dessert?"
    urls = []
    for _ in range(2):
        stream = tts.async_create_stream(voice.hass, voice.tts_entity, "en")
        stream.async_set_message(sentence)
        urls.append(stream.url)
        data = b"".join([chunk async for chunk in stream.async_stream_result()])
        assert len(data) > 24000
    await voice.hass.async_block_till_done()

    _setup_check, *sessions = voice.server.connections
    assert [t.text for c in sessions for t in c.turns] == [sentence]


async def test_voice_replies_leave_no_tts_cache_files(
    voice: Voice, tmp_path: Path
) -> None:
    """A spoken reply is streamed, never written to the TTS cache (failure 7)."""
    voice.server.queue_reply(Reply(text="Sure."), Reply(text="Sure."))
    for _ in range(2):
        run = await voice.run("hello", end_stage=tts_end())
        token = run.tts_token
        stream = tts.async_get_stream(voice.hass, token)
        assert stream is not None
        assert b"".join([c async for c in stream.async_stream_result()])
    await voice.hass.async_block_till_done()

    assert not list((tmp_path / "tts").glob("*"))


def tts_end() -> Any:
    """Return the TTS end stage."""

    return PipelineStage.TTS


async def test_pipeline_behaviour_the_design_rests_on(voice: Voice) -> None:
    """Pin Home Assistant behaviour that is not a contract.

    A blank text followed by an external tool call makes the pipeline start
    streaming TTS at once and never run that call; an upgrade that changes
    this fails here (the design of voice.chat rests on it).
    """
    voice.server.model_delay = 0.5
    voice.server.queue_reply(Reply(text="Hi."))

    run = await voice.run("hello", end_stage=tts_end())

    progress = run.of(PipelineEventType.INTENT_PROGRESS)
    assert progress[0]["chat_log_delta"] == {"role": "assistant", "content": " "}
    assert progress[1]["chat_log_delta"]["tool_calls"][0].external
    assert progress[2] == {"tts_start_streaming": True}
    assert run.speech == "Hi."


async def test_satellite_state_comes_before_stt(
    voice: Voice, satellite: Satellite
) -> None:
    """Pin: the satellite turns `listening` in the task that calls STT.

    The STT entity learns the satellite from that; tools get its device.
    """
    seen: list[str | None] = []

    class WhereTool(llm.Tool):
        name = "where_am_i"
        description = "Where the user is"
        parameters = probatio.Schema({})

        async def async_call(
            self, hass: Any, tool_input: llm.ToolInput, llm_context: llm.LLMContext
        ) -> llm.ToolResult:
            seen.append(llm_context.device_id)
            return llm.ToolResult(data={"area": "Kitchen"})

    class WhereAPI(llm.API):
        async def async_get_api_instance(
            self, llm_context: llm.LLMContext
        ) -> llm.APIInstance:
            seen.append(llm_context.device_id)
            return llm.APIInstance(self, "", llm_context, [WhereTool()])

    llm.async_register_api(voice.hass, WhereAPI(hass=voice.hass, id="w", name="w"))
    update_agent(voice.hass, voice.entry, **{CONF_LLM_HASS_API: ["w"]})
    await voice.hass.async_block_till_done()
    voice.server.queue_reply(
        Reply(
            text="",
            tool_calls=[ToolCall(name="where_am_i")],
            then=Reply(text="In the kitchen."),
        )
    )

    events = await satellite.listen(speech("where am i", 16000))

    assert _speech(events) == "In the kitchen."
    assert satellite.device_entry is not None
    # STT-time setup, agent-time API and the tool call: all the satellite's.
    assert seen == [satellite.device_entry.id] * 3


async def test_stt_result_is_the_whole_utterance(voice: Voice) -> None:
    """Input transcription in fragments while the user speaks (failure 6).

    The last words arrive after the end of speech; the STT result still holds
    them.
    """
    voice.server.input_transcription = "streaming"
    voice.server.input_transcription_lag = 0.3
    voice.server.model_delay = 0.1
    voice.server.queue_reply(Reply(text="Done."))

    run = await voice.run("turn on the kitchen light")

    assert run.heard == "turn on the kitchen light"
    log = voice.chat_log(run.conversation_id)
    assert log[1].content == "turn on the kitchen light"


async def test_transcript_lagging_the_audio_is_kept(voice: Voice) -> None:
    """Output transcription trailing its audio by 0.8 s is not cut (failure 6)."""
    voice.server.output_transcript_lag = 0.8
    voice.server.queue_reply(Reply(text=LONG_ANSWER))

    run = await voice.run("tell me about the weather", end_stage=tts_end())

    assert run.speech == LONG_ANSWER
    assert voice.chat_log(run.conversation_id)[-1].content == LONG_ANSWER


async def test_transcript_lagging_more_than_a_second_is_kept(voice: Voice) -> None:
    """Fragments 1.5 s behind their audio: the question mark still arrives.

    The follow-up question's last words come after the reply's end; the
    transcript tail waits for them, so the microphone reopens.
    """
    question = "Which light do you mean, the kitchen or the hall?"
    voice.server.output_transcript_lag = 1.5
    voice.server.queue_reply(Reply(text=question))

    run = await voice.run("turn on the light")

    assert run.speech == question
    assert _data(run.events, PipelineEventType.INTENT_END)[0]["intent_output"][
        "continue_conversation"
    ]


async def test_failure_after_a_tool_call_leaves_a_clean_chat_log(
    voice: Voice,
) -> None:
    """The connection fails after a tool ran: the chat log stays clean.

    It shows the tool call and its result, nothing of the audio trigger; the
    next request works.
    """
    await _kitchen_light(voice.hass)
    voice.server.queue_reply(
        Reply(
            text="",
            tool_calls=[
                ToolCall(name="intent__HassTurnOn", args={"name": "Kitchen light"})
            ],
            then=Reply(text="The kitchen light is on.", close=Close.internal()),
        ),
        Reply(text="Yes, it is on."),
    )

    run = await voice.run("turn on the kitchen light")

    light = voice.hass.states.get(LIGHT)
    assert light is not None
    assert light.state == "on"
    assert run.speech == "Gemini Live could not answer: Internal error encountered."
    log = voice.chat_log(run.conversation_id)
    assert [type(item).__name__ for item in log] == [
        "SystemContent",
        "UserContent",
        "AssistantContent",
        "ToolResultContent",
    ]
    (call,) = log[2].tool_calls or ()
    assert call.tool_name == "intent__HassTurnOn"
    assert log[2].content is None
    again = await voice.run(
        "is it on", conversation_id=run.conversation_id, end_stage=tts_end()
    )
    assert again.speech == "Yes, it is on."
    history = voice.server.connections[-1].history
    assert all(turn.text.strip() for turn in history)


async def test_answer_seconds_after_a_premature_turn_complete(voice: Voice) -> None:
    """TurnComplete after the tool response, the answer 3 s later (failure 6)."""
    await _kitchen_light(voice.hass)
    voice.server.queue_reply(
        Reply(
            text="",
            tool_calls=[
                ToolCall(name="intent__HassTurnOn", args={"name": "Kitchen light"})
            ],
            premature_turn_complete="after_tool_response",
            then_delay=3.0,
            then=Reply(text="The kitchen light is on."),
        )
    )

    run = await voice.run("turn on the kitchen light")

    assert voice.hass.states.get("light.kitchen_light").state == "on"
    assert run.speech == "The kitchen light is on."


async def test_go_away_in_the_middle_of_a_reply(voice: Voice) -> None:
    """GoAway mid-reply: the reply finishes, then the session moves on (failure 6)."""
    voice.server.realtime_factor = 4.0
    voice.server.queue_reply(
        Reply(text=LONG_ANSWER, go_away=GoAway(after_chunks=5, time_left=3.0)),
        Reply(text="Still here."),
    )

    run = await voice.run("tell me about the weather", end_stage=tts_end())
    audio = await _tts_bytes(voice, run.events)
    first = next(c for c in voice.server.connections if c.go_away_sent)

    assert run.speech == LONG_ANSWER
    assert len(audio) - 44 >= len(first.audio_out) // 2  # float32 WAV at 24 kHz
    again = await voice.run(
        "are you there", conversation_id=run.conversation_id, end_stage=tts_end()
    )
    assert again.speech == "Still here."
    resumed = voice.server.connections[-1]
    assert resumed is not first
    assert resumed.resumed
    assert first.closed_by == "client"
    assert first.close_code != 1008


async def test_end_of_speech_before_the_pipeline_vad(
    voice: Voice, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The user's turn ends 0.3 s sooner than the pipeline's own VAD ends it.

    Both use Home Assistant's detector; the pipeline waits for 0.7 s of
    silence, the STT entity for 0.4 s. Measured in microphone chunks the
    pipeline pulled, with and without the early end, in the same test.
    """
    pcm = speech("what time is it", 16000)

    async def pulled_seconds() -> float:
        pulled = 0

        async def microphone() -> AsyncIterator[bytes]:
            nonlocal pulled
            for chunk in chunks(pcm + silence(3000), 20):
                pulled += 1
                yield chunk
                await asyncio.sleep(0)

        voice.server.queue_reply(Reply(text="It is noon."))
        run = await voice.run(microphone())
        assert run.heard == "what time is it"
        return pulled * 0.02

    early = await pulled_seconds()
    monkeypatch.setattr(stt_module, "ends_early", lambda hass, device_id: False)
    pipeline = await pulled_seconds()

    assert pipeline - early == pytest.approx(0.3, abs=0.06)


async def test_transcript_lagging_across_a_tool_call(voice: Voice) -> None:
    """Words said before a tool call, transcribed 1 s late, stay before it.

    The final message, the answer shown, is what came after the tool.
    """
    await _kitchen_light(voice.hass)
    voice.server.output_transcript_lag = 1.0
    voice.server.realtime_factor = 1.0
    voice.server.queue_reply(
        Reply(
            text="Let me switch it on.",
            tool_calls=[
                ToolCall(name="intent__HassTurnOn", args={"name": "Kitchen light"})
            ],
            then=Reply(text="The kitchen light is on."),
        )
    )

    run = await voice.run("turn on the kitchen light")

    assert run.speech == "The kitchen light is on."
    log = voice.chat_log(run.conversation_id)
    assert [getattr(item, "content", None) for item in log[2:]] == [
        "Let me switch it on.",
        None,
        "The kitchen light is on.",
    ]


async def test_transcript_lagging_across_two_tool_calls(voice: Voice) -> None:
    """Two tools in a row, words 1 s late: each message keeps its own words."""
    await _kitchen_light(voice.hass)
    voice.server.output_transcript_lag = 1.0
    voice.server.realtime_factor = 2.0  # production streams faster than real time
    voice.server.model_delay = 0.3  # the model's time to go on after a result
    turn_on = ToolCall(name="intent__HassTurnOn", args={"name": "Kitchen light"})
    voice.server.queue_reply(
        Reply(
            text="First the light.",
            tool_calls=[turn_on],
            then=Reply(
                text="Now once more.",
                tool_calls=[turn_on],
                then=Reply(text="Both are done."),
            ),
        )
    )

    run = await voice.run("turn on the kitchen light twice")

    assert run.speech == "Both are done."
    log = voice.chat_log(run.conversation_id)
    assert [getattr(item, "content", None) for item in log[2:]] == [
        "First the light.",
        None,
        "Now once more.",
        None,
        "Both are done.",
    ]
    assert all(
        len(item.tool_calls or ()) == 1
        for item in log[2:]
        if isinstance(item, conversation.AssistantContent)
        and item.content != "Both are done."
    )


@pytest.mark.parametrize("live_model", ["gemini-3.8-live-extended-thinking"])
async def test_transcript_lagging_after_a_filler_and_a_tool(voice: Voice) -> None:
    """Extended Thinking: filler, words meanwhile, a tool, 1 s late words.

    The filler and the words meanwhile are one message with the tool call;
    the answer after the tool result is the last message.
    """
    await _kitchen_light(voice.hass)
    voice.server.output_transcript_lag = 1.0
    voice.server.realtime_factor = 2.0  # production streams faster than real time
    voice.server.model_delay = 0.3  # the model's time to go on after a result
    voice.server.queue_reply(
        Reply(
            text="Let me think about that.",
            in_progress_after_chunks=3,
            in_progress_pause=1.0,
            meanwhile="Switching it on.",
            tool_calls=[
                ToolCall(name="intent__HassTurnOn", args={"name": "Kitchen light"})
            ],
            then=Reply(text="The kitchen light is on."),
        )
    )

    run = await voice.run("turn on the kitchen light")

    assert run.speech == "The kitchen light is on."
    first = voice.chat_log(run.conversation_id)[2]
    assert isinstance(first, conversation.AssistantContent)
    assert first.content == "Let me think about that. Switching it on."
    assert [call.tool_name for call in first.tool_calls or ()] == ["intent__HassTurnOn"]
