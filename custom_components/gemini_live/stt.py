"""Speech-to-text entity: the user's speech streamed into the Live session.

The pipeline runs inside a chat session, so the run's conversation id is
`chat_session.current_session`; the speech goes into that conversation's Live
session (opened here with the run's user, or reused), where the model starts
replying as soon as the speech ends. The conversation and TTS entities pick
up that reply. A session opened here starts with the conversation's chat log
so far, read without opening a turn of it: from Home Assistant 2026.11 an
open turn holds the conversation (another request gets intent-busy).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from functools import partial

from homeassistant.components import conversation, stt
from homeassistant.components.conversation.chat_log import DATA_CHAT_LOGS
from homeassistant.config_entries import ConfigSubentry
from homeassistant.core import Context, HomeAssistant
from homeassistant.helpers import chat_session, llm
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .audio import Resampler, float32_to_pcm16
from .const import (
    ACTIVITY_DETECTION_MANUAL,
    CONF_ACTIVITY_DETECTION,
    DOMAIN,
    LOGGER,
    RECOMMENDED_ACTIVITY_DETECTION,
)
from .endpointing import ends_early, until_end_of_speech
from .entity import GeminiLiveEntity, add_assistant_entities
from .live import LiveError
from .owner import may_continue, run_context
from .runtime import GeminiLiveConfigEntry
from .satellites import SatelliteRun
from .voice.config import async_session_setup, transcription_setup
from .voice.languages import LANGUAGES
from .voice.manager import SessionSetup

INPUT_RATE = 16000
"""Sample rate of the audio sent to the Live API."""

PARALLEL_UPDATES = 0
"""Requests run concurrently: each conversation has its own Live session."""


async def async_setup_entry(
    hass: HomeAssistant,
    entry: GeminiLiveConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up the speech-to-text entity."""
    add_assistant_entities(
        entry,
        async_add_entities,
        lambda subentry: [GeminiLiveSttEntity(entry, subentry)],
    )


class GeminiLiveSttEntity(GeminiLiveEntity, stt.SpeechToTextEntity):
    """Transcribes speech through the conversation's Live session."""

    _attr_name = None  # the device's name: the main feature of its device

    def __init__(self, entry: GeminiLiveConfigEntry, subentry: ConfigSubentry) -> None:
        """Create the entity of `entry`."""
        super().__init__(entry, subentry, "stt")

    @property
    def supported_languages(self) -> list[str]:
        """Return the languages of the Live API."""
        return list(LANGUAGES)

    @property
    def supported_formats(self) -> list[stt.AudioFormats]:
        """Return the supported format (raw PCM in a WAV-described stream)."""
        return [stt.AudioFormats.WAV]

    @property
    def supported_codecs(self) -> list[stt.AudioCodecs]:
        """Return the supported codec."""
        return [stt.AudioCodecs.PCM]

    @property
    def supported_bit_rates(self) -> list[stt.AudioBitRates]:
        """Return the supported sample width."""
        return [stt.AudioBitRates.BITRATE_16]

    @property
    def supported_sample_rates(self) -> list[stt.AudioSampleRates]:
        """Return every sample rate; all but 16 kHz are resampled."""
        return list(stt.AudioSampleRates)

    @property
    def supported_channels(self) -> list[stt.AudioChannels]:
        """Return the supported channel count."""
        return [stt.AudioChannels.CHANNEL_MONO]

    async def async_process_audio_stream(
        self, metadata: stt.SpeechMetadata, stream: AsyncIterable[bytes]
    ) -> stt.SpeechResult:
        """Stream the speech into the Live session; return what Gemini heard.

        A run that goes on to this entry's agent (it was prepared for this
        conversation, and its user may continue it) is answered in the
        conversation's session, set up with the run's user, the satellite's
        device and the conversation's history; any other run is only
        transcribed.
        """
        session = chat_session.current_session.get()
        conversation_id = session.conversation_id if session is not None else None
        manager = self.voice_manager
        satellite = self.entry.runtime_data.satellites.pop()
        context = run_context(satellite)
        respond = manager.agent_expected(conversation_id) and may_continue(
            session, context
        )
        audio = _resampled(stream, metadata.sample_rate)
        if self._manual_activity() and ends_early(
            self.hass, satellite.device_id if satellite else None
        ):
            audio = until_end_of_speech(audio)
        try:
            text = await manager.transcribe(
                conversation_id,
                audio,
                partial(
                    self._async_setup, session, satellite, context, metadata.language
                )
                if respond
                else partial(self._async_transcription_setup),
                respond=respond,
            )
        except LiveError as err:
            LOGGER.warning("Speech-to-text failed: %s", err)
            return stt.SpeechResult(None, stt.SpeechResultState.ERROR)
        return stt.SpeechResult(text, stt.SpeechResultState.SUCCESS)

    async def _async_setup(
        self,
        session: chat_session.ChatSession | None,
        satellite: SatelliteRun | None,
        context: Context | None,
        language: str,
    ) -> SessionSetup:
        """Set the conversation's session up for the run's user and device."""
        llm_context = llm.LLMContext(
            platform=DOMAIN,
            context=context,
            language=language,
            assistant=conversation.DOMAIN,
            device_id=satellite.device_id if satellite else None,
        )
        history: list[conversation.Content] = []
        extra_prompt: str | None = None
        chat_logs = self.hass.data.get(DATA_CHAT_LOGS) or {}
        if session is not None and (chat_log := chat_logs.get(session.conversation_id)):
            history = list(chat_log.content)
            extra_prompt = chat_log.extra_system_prompt
        return await async_session_setup(
            self.hass,
            self.entry,
            self.subentry,
            llm_context,
            history=history,
            extra_system_prompt=extra_prompt,
        )

    def _manual_activity(self) -> bool:
        mode = self.settings.get(
            CONF_ACTIVITY_DETECTION, RECOMMENDED_ACTIVITY_DETECTION
        )
        return bool(mode == ACTIVITY_DETECTION_MANUAL)

    async def _async_transcription_setup(self) -> SessionSetup:
        return transcription_setup(self.settings)


async def _resampled(stream: AsyncIterable[bytes], rate: int) -> AsyncIterator[bytes]:
    """Yield `stream` (PCM16 mono at `rate`) as 16 kHz PCM16, chunk by chunk."""
    if rate == INPUT_RATE:
        async for chunk in stream:
            yield chunk
        return
    resampler = Resampler(rate, INPUT_RATE)
    async for chunk in stream:
        if pcm := float32_to_pcm16(resampler.process(chunk)):
            yield pcm
    if pcm := float32_to_pcm16(resampler.flush()):
        yield pcm
