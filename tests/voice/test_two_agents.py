"""Two assistants on one key, side by side: each its voice, language, pipeline.

One entry (one API key) with two assistant subentries; each assistant's
STT, conversation and TTS entities make its own pipeline, and both pipelines
run at the same time on real speech.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from homeassistant.components.assist_pipeline import PipelineStage
from homeassistant.config_entries import ConfigSubentry
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest_asyncio

from custom_components.gemini_live.audio import float32_to_pcm16
from custom_components.gemini_live.const import (
    CONF_LANGUAGE,
    CONF_VOICE,
    RECOMMENDED_OPTIONS,
    SUBENTRY_AGENT,
)
from tests.entries import account_entry, agent_data
from tests.fake_live import FakeLiveServer, Reply, UserTurn, recognize

from .conftest import (
    Voice,
    async_setup_voice_components,
    create_pipeline,
    fake_account,
)
from .test_tts_pipeline import decode_wav, tts_audio

VOICE_DOMAINS = ("conversation", "stt", "tts")

KITCHEN = {**RECOMMENDED_OPTIONS, CONF_VOICE: "Kore", CONF_LANGUAGE: "en"}
OFFICE = {**RECOMMENDED_OPTIONS, CONF_VOICE: "Puck", CONF_LANGUAGE: "vi"}


def assistant_entities(hass: HomeAssistant, subentry: ConfigSubentry) -> dict[str, str]:
    """Return an assistant's STT, conversation and TTS entity ids by domain."""
    return {
        e.domain: e.entity_id
        for e in er.async_get(hass).entities.values()
        if e.config_subentry_id == subentry.subentry_id and e.domain in VOICE_DOMAINS
    }


@pytest_asyncio.fixture
async def assistants(
    hass: HomeAssistant, fake_live: FakeLiveServer, live_model: str
) -> AsyncIterator[tuple[Voice, Voice]]:
    """Set up one entry with two assistants, each in its own pipeline."""
    await async_setup_voice_components(hass)
    entry = account_entry(
        fake_account(fake_live),
        agent_data(live_model, KITCHEN, title="Kitchen"),
        agent_data(live_model, OFFICE, title="Office"),
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    voices: list[Voice] = []
    for subentry in entry.get_subentries_of_type(SUBENTRY_AGENT):
        entities = assistant_entities(hass, subentry)
        voices.append(
            Voice(
                hass=hass,
                server=fake_live,
                entry=entry,
                pipeline_id=await create_pipeline(
                    hass, entities, subentry.data[CONF_LANGUAGE]
                ),
                stt_entity=entities["stt"],
                conversation_entity=entities["conversation"],
                tts_entity=entities["tts"],
            )
        )
    kitchen, office = voices
    yield kitchen, office
    await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


def _speech_config(turn: UserTurn) -> dict[str, Any]:
    return dict(turn.connection.config["generationConfig"]["speechConfig"])


async def test_two_assistants_answer_side_by_side(
    assistants: tuple[Voice, Voice],
) -> None:
    """Both pipelines run at once; each hears its own assistant's answer.

    The fake model answers neither question before both were heard, so the
    two runs overlap; each answer is chosen by the voice its session set up.
    """
    kitchen, office = assistants
    server = kitchen.server
    questions = {"Kore": "turn on the kitchen light", "Puck": "tắt đèn văn phòng"}
    answers = {"Kore": "The kitchen light is on.", "Puck": "Đèn văn phòng đã tắt."}

    async def responder(turn: UserTurn) -> Reply:
        await server.wait_for(
            lambda: sum(bool(c.turns) for c in server.connections) == 2,
            timeout=10,
            what="both questions heard",
        )
        voice = _speech_config(turn)["voiceConfig"]["prebuiltVoiceConfig"]
        return Reply(text=answers[voice["voiceName"]])

    server.responder = responder

    kitchen_run, office_run = await asyncio.gather(
        kitchen.run(questions["Kore"], end_stage=PipelineStage.TTS),
        office.run(questions["Puck"], end_stage=PipelineStage.TTS),
    )

    for run, voice, language in (
        (kitchen_run, "Kore", "en"),
        (office_run, "Puck", "vi"),
    ):
        assert run.error is None
        assert run.heard == questions[voice]
        assert run.speech == answers[voice]
        _, samples = decode_wav(await tts_audio(kitchen, run))
        assert recognize(float32_to_pcm16(samples), 24000) == answers[voice]
        # The session that heard this question was set up with its voice and
        # language, and its answer is in this conversation's chat log.
        (connection,) = (
            c for c in server.connections if c.turns and c.turns[0].heard == run.heard
        )
        assert _speech_config(connection.turns[0]) == {
            "voiceConfig": {"prebuiltVoiceConfig": {"voiceName": voice}},
            "languageCode": language,
        }
        log = kitchen.chat_log(run.conversation_id)
        assert [c.content for c in log[1:]] == [questions[voice], answers[voice]]
    assert kitchen_run.conversation_id != office_run.conversation_id
    # Two conversation sessions (besides the setup's check), one per assistant.
    assert sum(bool(c.turns) for c in server.connections) == 2
