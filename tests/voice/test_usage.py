"""Token sensors and the `gemini_live_conversation` event, through the pipeline.

The fake server reports usageMetadata with each completed reply; the sensors
must add up exactly what it sent, keep it over a restart, and each answered
turn (spoken or typed) fires one event describing it.
"""

from __future__ import annotations

from collections.abc import Callable

from homeassistant.components import conversation
from homeassistant.components.sensor import ATTR_STATE_CLASS, SensorStateClass
from homeassistant.const import ATTR_UNIT_OF_MEASUREMENT
from homeassistant.core import Context, Event
from homeassistant.helpers import entity_registry as er, restore_state
from pytest_homeassistant_custom_component.common import async_capture_events

from custom_components.gemini_live import logbook
from custom_components.gemini_live.const import DOMAIN
from custom_components.gemini_live.monitor import EVENT_CONVERSATION
from tests.entries import agent
from tests.fake_live import Reply, ToolCall

from .conftest import Voice
from .test_pipeline import LIGHT, TURN_ON, _kitchen_light


def _sent_usage(voice: Voice) -> list[dict[str, int]]:
    """Return the usageMetadata the fake sent, over every connection, in order."""
    return [
        {
            "input": message["usageMetadata"]["promptTokenCount"],
            "output": message["usageMetadata"]["responseTokenCount"],
            "total": message["usageMetadata"]["totalTokenCount"],
        }
        for connection in voice.server.connections
        for message in connection.sent
        if "usageMetadata" in message
    ]


def _sensor(voice: Voice, kind: str) -> str:
    """Return the entity id of the assistant's `kind` token sensor."""
    registry = er.async_get(voice.hass)
    entity_id = registry.async_get_entity_id(
        "sensor", DOMAIN, f"{agent(voice.entry).subentry_id}-{kind}_tokens"
    )
    assert entity_id is not None
    return entity_id


def _tokens(voice: Voice) -> dict[str, tuple[int, int]]:
    """Return each sensor's state and last-turn attribute."""
    result = {}
    for kind in ("input", "output", "total"):
        state = voice.hass.states.get(_sensor(voice, kind))
        assert state is not None
        result[kind] = (int(state.state), state.attributes["last_turn"])
    return result


async def _restart(voice: Voice) -> None:
    """Stop the entry as at shutdown (states saved), reload what was stored."""
    data = restore_state.async_get(voice.hass)
    await data.async_dump_states()
    assert await voice.hass.config_entries.async_unload(voice.entry.entry_id)
    await voice.hass.async_block_till_done()
    data.last_states = {}
    await data.async_load()  # what the next start reads from storage
    assert await voice.hass.config_entries.async_setup(voice.entry.entry_id)
    await voice.hass.async_block_till_done()


async def test_token_sensors_add_up_what_the_server_reported(voice: Voice) -> None:
    """Two voice turns: each sensor is the sum of the fake's usageMetadata.

    The totals (and the last turn's figures) come back after a restart, and
    the next turn adds to them.
    """
    voice.server.queue_reply(
        Reply(text="It is sunny and warm today."),
        Reply(text="Tomorrow brings rain in the afternoon."),
    )
    first = await voice.run("what is the weather like")
    second = await voice.run("and tomorrow", conversation_id=first.conversation_id)
    assert second.speech == "Tomorrow brings rain in the afternoon."
    await voice.wait_reply_done(first.conversation_id)

    sent = _sent_usage(voice)
    assert len(sent) == 2
    assert all(usage["input"] > 0 and usage["output"] > 0 for usage in sent)
    expected = {
        kind: (sent[0][kind] + sent[1][kind], sent[1][kind])
        for kind in ("input", "output", "total")
    }
    assert _tokens(voice) == expected
    state = voice.hass.states.get(_sensor(voice, "total"))
    assert state is not None
    assert state.attributes[ATTR_STATE_CLASS] == SensorStateClass.TOTAL_INCREASING
    assert state.attributes[ATTR_UNIT_OF_MEASUREMENT] == "tokens"
    assert state.name == "Gemini Live Total tokens"

    await _restart(voice)

    assert _tokens(voice) == expected
    voice.server.queue_reply(Reply(text="Yes."))
    third = await voice.run("are you there")
    assert third.speech == "Yes."
    await voice.wait_reply_done(third.conversation_id)
    last = _sent_usage(voice)[-1]
    assert _tokens(voice) == {
        kind: (expected[kind][0] + last[kind], last[kind])
        for kind in ("input", "output", "total")
    }


def _describe(voice: Voice, event: Event) -> dict[str, str]:
    """Return the logbook entry of a conversation event."""
    described: dict[tuple[str, str], Callable[[Event], dict[str, str]]] = {}
    logbook.async_describe_events(
        voice.hass,
        lambda domain, event_type, describe: described.update(
            {(domain, event_type): describe}
        ),
    )
    return described[(DOMAIN, EVENT_CONVERSATION)](event)


async def test_event_of_a_voice_turn_with_tools(voice: Voice) -> None:
    """The event names the tools with their arguments and how each went."""
    await _kitchen_light(voice.hass)
    events = async_capture_events(voice.hass, EVENT_CONVERSATION)
    voice.server.queue_reply(
        Reply(
            text="",
            tool_calls=[
                ToolCall(name=TURN_ON, args={"name": "Kitchen light"}),
                ToolCall(name=TURN_ON, args={"name": "Garage door"}),
            ],
            then=Reply(text="The kitchen light is on; I found no garage door."),
        )
    )

    run = await voice.run("turn on the kitchen light and the garage door")

    assert run.speech == "The kitchen light is on; I found no garage door."
    state = voice.hass.states.get(LIGHT)
    assert state is not None
    assert state.state == "on"
    await voice.hass.async_block_till_done()
    (event,) = events
    usage = _sent_usage(voice)
    assert len(usage) == 1  # the reply's one completed output
    assert event.data == {
        "entity_id": voice.conversation_entity,
        "conversation_id": run.conversation_id,
        "voice": True,
        "user_text": "turn on the kitchen light and the garage door",
        "answer_text": "The kitchen light is on; I found no garage door.",
        "tool_calls": [
            {
                "name": TURN_ON,
                "arguments": {"name": "Kitchen light"},
                "status": "success",
            },
            {
                "name": TURN_ON,
                "arguments": {"name": "Garage door"},
                "status": "error",
            },
        ],
        "usage": usage[0],
    }
    entry = _describe(voice, event)
    assert entry == {
        "name": "Gemini Live",
        "message": 'answered "turn on the kitchen light and the garage door": '
        '"The kitchen light is on; I found no garage door." '
        f"(using {TURN_ON}, {TURN_ON})",
        "entity_id": voice.conversation_entity,
    }


async def test_event_of_a_typed_turn(voice: Voice) -> None:
    """A typed request fires the event too, with its own usage."""
    events = async_capture_events(voice.hass, EVENT_CONVERSATION)
    voice.server.queue_reply(Reply(text="Hello! How can I help?"))

    result = await conversation.async_converse(
        voice.hass, "hello there", None, Context(), agent_id=voice.conversation_entity
    )

    assert result.response.speech["plain"]["speech"] == "Hello! How can I help?"
    await voice.hass.async_block_till_done()
    (event,) = events
    (usage,) = _sent_usage(voice)
    assert event.data == {
        "entity_id": voice.conversation_entity,
        "conversation_id": result.conversation_id,
        "voice": False,
        "user_text": "hello there",
        "answer_text": "Hello! How can I help?",
        "tool_calls": [],
        "usage": usage,
    }
