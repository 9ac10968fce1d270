"""Announcements through Home Assistant: text spoken word for word, cached.

`tts.speak` of a sentence with a question in it must be heard as written.
The fake's native-audio Live model, told to read aloud, answers the question
instead (tests/fake_live/reading.py), so the Gemini TTS model is what speaks
it; the Live session reads only where the credentials are refused that model.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from homeassistant.components import media_source, tts
from homeassistant.components.tts.const import DATA_COMPONENT
from homeassistant.components.tts.entity import TTSAudioRequest
from homeassistant.config_entries import SOURCE_REAUTH
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
import pytest
import pytest_asyncio
from pytest_homeassistant_custom_component.common import async_mock_service
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.gemini_live.audio import SampleFormat, wav_header
from custom_components.gemini_live.const import (
    CONF_BASE_URL,
    CONF_LOCATION,
    CONF_PROJECT_ID,
    CONF_PROVIDER,
    CONF_SERVICE_ACCOUNT,
    PROVIDER_VERTEX_AI,
    RECOMMENDED_OPTIONS,
    RECOMMENDED_VOICE,
    SPEECH_MODELS,
)
from custom_components.gemini_live.tts import GeminiLiveTtsEntity
from custom_components.gemini_live.voice.config import SPEECH_INSTRUCTION
from tests.entries import account_entry, agent_data
from tests.fake_live import (
    READING_ANSWER,
    FakeLiveServer,
    SpeechError,
    SpeechStall,
    recognize,
)
from tests.voice import conftest as harness
from tests.voice.conftest import Voice
from tests.voice.satellite import async_setup_satellite

voice = harness.voice
entry_options = harness.entry_options

QUESTION = "Is the garage door closed? I will check it now."
STATEMENT = "The washing machine is done."
RATE = 24000
PCM16_HEADER = wav_header(RATE, SampleFormat.PCM16)


@pytest_asyncio.fixture
async def speaker(hass: HomeAssistant) -> list[Any]:
    """Set up media sources; return the recorded `media_player.play_media` calls."""
    assert await async_setup_component(hass, "media_source", {})
    return async_mock_service(hass, "media_player", "play_media")


async def speak(hass: HomeAssistant, engine: str, message: str, **options: Any) -> None:
    """Call tts.speak on a media player."""
    await hass.services.async_call(
        tts.DOMAIN,
        "speak",
        {
            "entity_id": engine,
            "media_player_entity_id": "media_player.kitchen",
            "message": message,
            **({"options": options} if options else {}),
        },
        blocking=True,
    )


async def heard(
    hass: HomeAssistant, client: ClientSessionGenerator, play_media: Any
) -> str | None:
    """Fetch what a play_media call plays from the TTS proxy; recognise it."""
    media_id = play_media.data["media_content_id"]
    played = await media_source.async_resolve_media(hass, media_id, None)
    assert played.url.startswith("/api/tts_proxy/")
    response = await (await client()).get(played.url)
    assert response.status == 200
    data = await response.read()
    assert data.startswith(PCM16_HEADER)
    return recognize(data[len(PCM16_HEADER) :], RATE)


async def test_a_question_is_spoken_verbatim_and_cached(
    voice: Voice,
    speaker: list[Any],
    hass_client: ClientSessionGenerator,
    tmp_path: Path,
) -> None:
    """tts.speak twice: heard word for word both times, synthesised once."""
    voice.server.speech.serve()

    await speak(voice.hass, voice.tts_entity, QUESTION)
    first = await heard(voice.hass, hass_client, speaker[0])
    await speak(voice.hass, voice.tts_entity, QUESTION)
    second = await heard(voice.hass, hass_client, speaker[1])
    await voice.hass.async_block_till_done()

    assert first == second == QUESTION
    (call,) = voice.server.speech.syntheses
    assert (call.model, call.text, call.voice) == (
        SPEECH_MODELS["gemini_api"],
        QUESTION,
        RECOMMENDED_VOICE,
    )
    assert call.finished
    assert len(voice.server.connections) == 1  # the setup check; no Live read
    assert len(list((tmp_path / "tts").glob("*.wav"))) == 1


async def test_a_satellite_announcement_is_spoken_verbatim(
    voice: Voice, hass_client: ClientSessionGenerator
) -> None:
    """assist_satellite.announce through the satellite's Gemini Live pipeline."""
    voice.server.speech.serve()
    satellite = await async_setup_satellite(voice.hass, voice)

    await voice.hass.services.async_call(
        "assist_satellite",
        "announce",
        {"entity_id": satellite.entity_id, "message": QUESTION, "preannounce": False},
        blocking=True,
    )

    (announcement,) = satellite.announcements
    response = await (await hass_client()).get(urlsplit(announcement.media_id).path)
    data = await response.read()
    assert data.startswith(PCM16_HEADER)
    assert recognize(data[len(PCM16_HEADER) :], RATE) == QUESTION
    assert [call.text for call in voice.server.speech.syntheses] == [QUESTION]


async def test_the_requested_voice_is_used(
    voice: Voice, speaker: list[Any], hass_client: ClientSessionGenerator
) -> None:
    """The voice option of tts.speak picks the TTS model's voice."""
    voice.server.speech.serve()

    await speak(voice.hass, voice.tts_entity, STATEMENT, voice="Puck")

    assert await heard(voice.hass, hass_client, speaker[0]) == STATEMENT
    assert [call.voice for call in voice.server.speech.syntheses] == ["Puck"]


async def test_a_refused_tts_model_falls_back_to_a_live_read(
    voice: Voice, speaker: list[Any], hass_client: ClientSessionGenerator
) -> None:
    """Credentials without the TTS model: a Live session reads a statement."""
    await speak(voice.hass, voice.tts_entity, STATEMENT)

    assert await heard(voice.hass, hass_client, speaker[0]) == STATEMENT
    (refused,) = voice.server.speech.calls
    assert refused.status == 404
    reading = voice.server.connections[-1]
    assert reading.system_instruction == SPEECH_INSTRUCTION
    assert [turn.text for turn in reading.turns] == [STATEMENT]


async def test_the_live_read_would_answer_the_question(
    voice: Voice, speaker: list[Any], hass_client: ClientSessionGenerator
) -> None:
    """Why the TTS model speaks: the Live model answers instead of reading.

    The same announcement as above, with the TTS model refused: the Live
    session was asked to read it word for word and answered it.
    """
    await speak(voice.hass, voice.tts_entity, QUESTION)

    answer = await heard(voice.hass, hass_client, speaker[0])

    assert answer == READING_ANSWER != QUESTION
    assert voice.server.connections[-1].turns[0].text == QUESTION


async def test_audio_streams_while_it_is_synthesised(voice: Voice) -> None:
    """The first audio reaches Home Assistant before the TTS stream ends."""
    voice.server.speech.serve()
    voice.server.speech.add_fault(SpeechStall(after_chunks=1))
    audio = await stream_tts(voice, QUESTION)

    assert await anext(audio) == PCM16_HEADER
    first = await anext(audio)
    call = voice.server.speech.calls[0]
    assert (first, call.finished) == (call.audio, False)

    voice.server.speech.release()
    rest = b"".join([chunk async for chunk in audio])

    assert recognize(first + rest, RATE) == QUESTION
    assert call.finished


async def test_a_tts_failure_is_translated_without_live_read(voice: Voice) -> None:
    """Quota on the TTS model: a translated error, no Live session instead."""
    voice.server.speech.serve()
    voice.server.speech.add_fault(SpeechError.quota())

    with pytest.raises(HomeAssistantError) as err:
        b"".join([chunk async for chunk in await stream_tts(voice, STATEMENT)])

    assert err.value.translation_key == "live_error"
    assert "quota" in str(err.value.translation_placeholders)
    assert len(voice.server.connections) == 1


async def test_a_refused_key_starts_reauthentication(voice: Voice) -> None:
    """The TTS request refuses the API key: the reauth flow starts at once."""
    voice.server.speech.serve()
    voice.server.api_key = "AIzaSyREVOKED-" + "x" * 25

    with pytest.raises(HomeAssistantError):
        b"".join([chunk async for chunk in await stream_tts(voice, STATEMENT)])
    await voice.hass.async_block_till_done()

    flows = voice.hass.config_entries.flow.async_progress_by_handler("gemini_live")
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]


async def stream_tts(voice: Voice, message: str) -> AsyncGenerator[bytes]:
    """Return the entity's WAV stream of `message` (no pipeline run)."""
    entity = voice.hass.data[DATA_COMPONENT].get_entity(voice.tts_entity)
    assert isinstance(entity, GeminiLiveTtsEntity)

    async def text() -> AsyncIterator[str]:
        yield message

    response = await entity.async_stream_tts_audio(
        TTSAudioRequest("en", {"preferred_format": "wav"}, text())
    )
    return response.data_gen


@pytest_asyncio.fixture
async def vertex_engine(hass: HomeAssistant, fake_live: FakeLiveServer) -> str:
    """Set up a Vertex AI entry on the fake server; return its TTS entity id."""
    for domain in ("homeassistant", "tts"):
        assert await async_setup_component(hass, domain, {})
    entry = account_entry(
        {
            CONF_PROVIDER: PROVIDER_VERTEX_AI,
            CONF_SERVICE_ACCOUNT: fake_live.service_account_json(),
            CONF_PROJECT_ID: "test-project",
            CONF_LOCATION: "europe-west4",
            CONF_BASE_URL: fake_live.base_url,
        },
        agent_data("gemini-live-2.5-flash-native-audio", RECOMMENDED_OPTIONS),
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    registry = er.async_get(hass)
    return next(
        e.entity_id
        for e in er.async_entries_for_config_entry(registry, entry.entry_id)
        if e.domain == tts.DOMAIN
    )


async def test_vertex_ai_speaks_verbatim(
    hass: HomeAssistant,
    fake_live: FakeLiveServer,
    vertex_engine: str,
    speaker: list[Any],
    hass_client: ClientSessionGenerator,
) -> None:
    """Vertex AI: the TTS model of the global location speaks the question."""
    fake_live.speech.serve("vertex_ai")

    await speak(hass, vertex_engine, QUESTION)

    assert await heard(hass, hass_client, speaker[0]) == QUESTION
    (call,) = fake_live.speech.syntheses
    assert call.provider == "vertex_ai"
    assert "/locations/global/" in call.path
    assert call.model == SPEECH_MODELS[PROVIDER_VERTEX_AI]
