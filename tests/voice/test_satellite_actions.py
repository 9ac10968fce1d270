"""assist_satellite.start_conversation and .announce with the Gemini Live pipeline.

A test satellite (the public assist_satellite platform) runs this
integration's pipeline. What the user hears is checked by the fake's
recogniser: the start message word for word, then an answer that only a
model knowing the start message and its prompt gives to "yes please".
"""

from __future__ import annotations

from urllib.parse import urlsplit

from homeassistant.components.assist_satellite import AssistSatelliteAnnouncement
import pytest
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from tests.fake_live import Reply, UserTurn, recognize, speech
from tests.test_actions import PCM16_HEADER, RATE, heard

from .conftest import Voice
from .satellite import Satellite, async_setup_satellite
from .test_assistant import _speech, _tts_bytes

START = "The garage door is still open. Shall I close it?"
CLOSING = "Closing the garage door now."
PUZZLED = "Yes to what?"
ANNOUNCEMENT = "Is anybody home? The parcel has arrived."


def garage_model(turn: UserTurn) -> Reply:
    """Answer "yes" in context: knowing the question asked and asked to act on it.

    Knowing it means: the question is in the session's history (the start
    message) and, as the extra system prompt, in the system instruction or
    the user's text.
    """
    conn = turn.connection
    history = [t.text for t in conn.history]
    asked = any(text == START for text in history)
    prompted = START in (conn.system_instruction or "") or any(
        START in text for text in history[1:]
    )
    agreed = any("yes" in t.text for t in conn.history if t.role == "user")
    return Reply(text=CLOSING if asked and prompted and agreed else PUZZLED)


async def start_conversation(voice: Voice, satellite: Satellite) -> None:
    """Start a conversation from the satellite with START (no extra prompt)."""
    await voice.hass.services.async_call(
        "assist_satellite",
        "start_conversation",
        {"entity_id": satellite.entity_id, "start_message": START},
        blocking=True,
    )


async def played(
    voice: Voice, client: ClientSessionGenerator, item: AssistSatelliteAnnouncement
) -> str | None:
    """Recognise the speech of an announcement the satellite got."""
    return await heard(voice.hass, client, urlsplit(item.media_id).path)


@pytest.mark.parametrize(
    "live_model",
    ["gemini-2.5-flash-native-audio-preview-12-2025", "gemini-3.8-live"],
)
async def test_the_answer_to_the_start_message_is_understood(
    voice: Voice, hass_client: ClientSessionGenerator, live_model: str
) -> None:
    """start_message spoken verbatim; the user's "yes please" answered in context.

    Without an extra system prompt Home Assistant makes the start message the
    prompt; the model gets it as history (the question it asked) and as the
    prompt (contextUpdate on 3.8, with the request on 2.5). The user hears
    only the answer given in that context.
    """
    voice.server.speech.serve()
    voice.server.responder = garage_model
    satellite = await async_setup_satellite(voice.hass, voice)

    await start_conversation(voice, satellite)
    (start,) = satellite.announcements
    assert start.message == START
    assert await played(voice, hass_client, start) == START

    events = await satellite.listen(speech("yes please", 16000))

    assert _speech(events) == CLOSING
    audio = await _tts_bytes(voice, events)
    assert audio.startswith(PCM16_HEADER)
    assert recognize(audio[len(PCM16_HEADER) :], RATE) == CLOSING
    conn = voice.server.connections[-1]
    assert [(t.role, t.text) for t in conn.history][:2] == [
        ("model", START),
        ("user", "yes please"),
    ]
    if live_model == "gemini-3.8-live":
        (instruction,) = conn.system_instruction_updates
        assert instruction.endswith(START)
    else:
        assert START in (conn.turns[-1].text or "")


async def test_an_announcement_leaves_the_conversation_alone(
    voice: Voice, hass_client: ClientSessionGenerator
) -> None:
    """An announcement between two turns: verbatim, and outside the conversation.

    The announcement is the TTS model's reading of the text; the
    conversation's Live session neither hears it nor speaks it, and the next
    "yes" still continues the conversation.
    """
    voice.server.speech.serve()
    voice.server.responder = garage_model
    satellite = await async_setup_satellite(voice.hass, voice)
    await start_conversation(voice, satellite)
    first = await satellite.listen(speech("no", 16000))
    assert _speech(first) == PUZZLED
    conn = voice.server.connections[-1]
    turns = len(conn.turns)

    await voice.hass.services.async_call(
        "assist_satellite",
        "announce",
        {"entity_id": satellite.entity_id, "message": ANNOUNCEMENT},
        blocking=True,
    )

    announcement = satellite.announcements[-1]
    assert announcement.message == ANNOUNCEMENT
    assert await played(voice, hass_client, announcement) == ANNOUNCEMENT
    assert [call.text for call in voice.server.speech.syntheses] == [
        START,
        ANNOUNCEMENT,
    ]
    assert len(conn.turns) == turns
    assert all(ANNOUNCEMENT not in t.text for t in conn.history)

    again = await satellite.listen(speech("yes please", 16000))

    assert _speech(again) == CLOSING
    assert voice.server.connections[-1] is conn
