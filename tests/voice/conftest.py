"""End-to-end harness: Home Assistant's real Assist pipeline on the fake server.

`voice` sets up homeassistant, conversation, assist_pipeline, stt, tts and
ffmpeg, a Gemini Live entry pointing at the fake Live server, and a pipeline
made of the entry's entities; `voice.run(pcm)` drives
`assist_pipeline.async_pipeline_from_audio_stream` with microphone PCM and
returns the run's events. Tests override `entry_options` to change options.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from homeassistant.components import assist_pipeline, conversation, stt
from homeassistant.components.assist_pipeline import (
    PipelineEvent,
    PipelineEventType,
    PipelineStage,
)
from homeassistant.components.assist_pipeline.pipeline import KEY_ASSIST_PIPELINE
from homeassistant.const import CONF_API_KEY, Platform
from homeassistant.core import Context, HomeAssistant
from homeassistant.helpers import chat_session, entity_registry as er
from homeassistant.setup import async_setup_component
import pytest
import pytest_asyncio
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.gemini_live.const import (
    CONF_BASE_URL,
    CONF_PROVIDER,
    PROVIDER_GEMINI_API,
    RECOMMENDED_OPTIONS,
)
from custom_components.gemini_live.voice import VoiceManager
from tests.entries import account_entry, agent, agent_data
from tests.fake_live import FakeLiveServer, chunks, silence, speech

CHUNK_MS = 20


@dataclass(slots=True)
class Run:
    """The events of one pipeline run."""

    events: list[PipelineEvent] = field(default_factory=list)

    def of(self, kind: PipelineEventType) -> list[dict[str, Any]]:
        """Return the data of the events of one type."""
        return [e.data or {} for e in self.events if e.type is kind]

    @property
    def types(self) -> list[PipelineEventType]:
        """Event types in order."""
        return [e.type for e in self.events]

    @property
    def conversation_id(self) -> str:
        """The run's conversation id."""
        return str(self.of(PipelineEventType.RUN_START)[0]["conversation_id"])

    @property
    def heard(self) -> str:
        """The STT result."""
        return str(self.of(PipelineEventType.STT_END)[0]["stt_output"]["text"])

    @property
    def speech(self) -> str:
        """The agent's speech."""
        output = self.of(PipelineEventType.INTENT_END)[0]["intent_output"]
        return str(output["response"]["speech"]["plain"]["speech"])

    @property
    def error(self) -> dict[str, Any] | None:
        """The pipeline error event's data, if any."""
        errors = self.of(PipelineEventType.ERROR)
        return errors[0] if errors else None

    @property
    def tts_token(self) -> str:
        """The token of the run's TTS stream."""
        return str(self.of(PipelineEventType.TTS_END)[0]["tts_output"]["token"])


@dataclass(slots=True)
class Voice:
    """A set-up Gemini Live entry, its pipeline and the fake server."""

    hass: HomeAssistant
    server: FakeLiveServer
    entry: MockConfigEntry
    pipeline_id: str
    stt_entity: str
    conversation_entity: str
    tts_entity: str

    @property
    def manager(self) -> VoiceManager:
        """The entry's voice manager."""
        return self.entry.runtime_data.agents[  # type: ignore[no-any-return]
            agent(self.entry).subentry_id
        ]

    async def run(
        self,
        audio: bytes | str | AsyncIterable[bytes],
        *,
        conversation_id: str | None = None,
        end_stage: PipelineStage = PipelineStage.INTENT,
        device_id: str | None = None,
        tts_audio_output: str | dict[str, Any] | None = None,
        event_callback: Callable[[PipelineEvent], None] | None = None,
    ) -> Run:
        """Run the pipeline on microphone audio, PCM or the speech of a text."""
        if isinstance(audio, str):
            audio = speech(audio, 16000)
        run = Run()

        def on_event(event: PipelineEvent) -> None:
            run.events.append(event)
            if event_callback is not None:
                event_callback(event)

        await assist_pipeline.async_pipeline_from_audio_stream(
            self.hass,
            context=Context(),
            event_callback=on_event,
            stt_metadata=stt.SpeechMetadata(
                language="",
                format=stt.AudioFormats.WAV,
                codec=stt.AudioCodecs.PCM,
                bit_rate=stt.AudioBitRates.BITRATE_16,
                sample_rate=stt.AudioSampleRates.SAMPLERATE_16000,
                channel=stt.AudioChannels.CHANNEL_MONO,
            ),
            stt_stream=microphone(audio) if isinstance(audio, bytes) else audio,
            pipeline_id=self.pipeline_id,
            conversation_id=conversation_id,
            device_id=device_id,
            end_stage=end_stage,
            tts_audio_output=tts_audio_output,
        )
        return run

    async def wait_reply_done(self, conversation_id: str) -> None:
        """Wait until the conversation's current turn finished."""
        async with asyncio.timeout(10):
            while True:
                session = self.manager._sessions.get(conversation_id)
                if session is None or session.turn is None or session.turn.finished:
                    break
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # let the continuation write the chat log

    def chat_log(self, conversation_id: str) -> list[conversation.Content]:
        """Return the content of a conversation's chat log."""
        with (
            chat_session.async_get_chat_session(self.hass, conversation_id) as session,
            conversation.async_get_chat_log(self.hass, session) as chat_log,
        ):
            return list(chat_log.content)


async def microphone(
    pcm: bytes, trailing_silence_ms: int = 1500
) -> AsyncIterator[bytes]:
    """Yield `pcm` in 20 ms chunks, then silence so the pipeline's VAD ends it."""
    for chunk in chunks(pcm + silence(trailing_silence_ms), CHUNK_MS):
        yield chunk
        await asyncio.sleep(0)


async def async_setup_voice_components(hass: HomeAssistant) -> None:
    """Set up what a voice pipeline of this integration needs."""
    for domain in ("homeassistant", "conversation", "assist_pipeline", "stt", "tts"):
        assert await async_setup_component(hass, domain, {})


def fake_account(server: FakeLiveServer) -> dict[str, Any]:
    """Return the entry data of a Developer API account on the fake server."""
    return {
        CONF_PROVIDER: PROVIDER_GEMINI_API,
        CONF_API_KEY: server.api_key,
        CONF_BASE_URL: server.base_url,
    }


async def create_pipeline(
    hass: HomeAssistant, entities: Mapping[str, str], language: str
) -> str:
    """Create a pipeline of these STT, conversation and TTS entities; its id."""
    store = hass.data[KEY_ASSIST_PIPELINE].pipeline_store
    pipeline = await store.async_create_item(
        {
            "conversation_engine": entities["conversation"],
            "conversation_language": language,
            "language": language,
            "name": f"Gemini Live {language}",
            "stt_engine": entities["stt"],
            "stt_language": language,
            "tts_engine": entities["tts"],
            "tts_language": language,
            "tts_voice": None,
            "wake_word_entity": None,
            "wake_word_id": None,
            "prefer_local_intents": False,
        }
    )
    return str(pipeline.id)


@pytest.fixture
def entry_options() -> dict[str, Any]:
    """Options of the Gemini Live entry (override in a test module or test)."""
    return dict(RECOMMENDED_OPTIONS)


@pytest_asyncio.fixture
async def voice(
    hass: HomeAssistant,
    fake_live: FakeLiveServer,
    entry_options: dict[str, Any],
    live_model: str,
) -> AsyncIterator[Voice]:
    """Set up a Gemini Live entry on the fake server and a pipeline of it."""
    await async_setup_voice_components(hass)
    entry = account_entry(
        fake_account(fake_live), agent_data(live_model, entry_options)
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    registry = er.async_get(hass)
    entities = {
        e.domain: e.entity_id
        for e in er.async_entries_for_config_entry(registry, entry.entry_id)
    }
    pipeline_id = await create_pipeline(hass, entities, "en")
    yield Voice(
        hass=hass,
        server=fake_live,
        entry=entry,
        pipeline_id=pipeline_id,
        stt_entity=entities[Platform.STT],
        conversation_entity=entities[Platform.CONVERSATION],
        tts_entity=entities[Platform.TTS],
    )
    await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
