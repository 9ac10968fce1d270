"""Text-to-speech entity: speaks with the Live turn's own audio.

In a pipeline run the reply audio already exists: Gemini produced it while the
conversation agent streamed the transcript. The entity therefore ignores the
text of a pipeline run and streams the claimed turn's 24 kHz audio, found by
the run's conversation id (`chat_session.current_session`) or, outside a
chat session, by the text the turn's transcript starts with. Text no turn
produced (`tts.speak`, announcements) is spoken word for word by the
provider's Gemini TTS model (`VoiceManager.announce`), streamed; only where
the credentials are refused that model does a short Live session read it.

Output format (chosen by `tts_format`). Home Assistant 2026.10 runs ffmpeg
on the result whenever a preferred format other than WAV, or any preferred
sample rate, channel count, sample width or bitrate is set. ffmpeg's WAV
reader probes ~64 KiB ahead on 16-bit PCM (over a second of 24 kHz audio)
but not on IEEE float, and it decodes 4096-byte packets, so in that case the
entity serves float64 WAV, already resampled (anti-aliased, in-process) to
the preferred rate: a 40 ms chunk of reply audio then fills a packet by
itself (float32 at 16 kHz would wait for the next chunk), and ffmpeg only
converts the sample format. Otherwise nothing converts the stream, and it is
plain 24 kHz PCM16 WAV that any player takes. From 2026.11 Home Assistant
passes the stream through when it is exactly what was asked, so for the
satellites' formats the entity emits just that, with no ffmpeg: PCM16 WAV
(ESPHome, Wyoming) or FLAC in small blocks (Voice PE) at the preferred rate
and channel count; other formats are converted from float64 WAV as before.

Voice. The `voice` option is accepted (pipelines send one), but a pipeline
reply keeps the assistant's voice: it was spoken before TTS starts. Other
text is spoken in the requested voice, else the assistant's.

Cache. A pipeline run streams its TTS (the agent starts the stream at once,
see `voice.chat`), and Home Assistant never caches a streamed result, so a
reply is never replayed for another. Text spoken outside a Live turn
(`tts.speak`, announcements) is cached by Home Assistant as usual, by text,
voice and options.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
import contextlib
from typing import Any, Final

from homeassistant.components import tts
from homeassistant.components.tts import ATTR_PREFERRED_FORMAT, ATTR_VOICE
from homeassistant.components.tts.entity import TTSAudioRequest
from homeassistant.config_entries import ConfigSubentry
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import chat_session
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .audio import StreamEncoder
from .const import CONF_VOICE, DOMAIN, RECOMMENDED_VOICE, VOICES
from .entity import GeminiLiveEntity, add_assistant_entities
from .live import LiveError
from .runtime import GeminiLiveConfigEntry
from .tts_format import CONVERTED_OPTIONS, output_format
from .voice import LiveTurn
from .voice.languages import LANGUAGES
from .voice.turn import AUDIO_RATE

PARALLEL_UPDATES = 0

KEEPALIVE_AFTER: Final = 1.0
"""Seconds without reply audio before silence keeps the stream alive."""
SILENCE_FRAME: Final = 0.1
"""Seconds of silence per keepalive frame."""
KEEPALIVE_INTERVAL: Final = 1.0
"""Longest time without a frame while the listener still has audio buffered."""
MAX_SILENCE: Final = 30.0
"""Most silence one stream gets (the voice session gives up after 20 s)."""


async def async_setup_entry(
    hass: HomeAssistant,
    entry: GeminiLiveConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Set up the text-to-speech entity."""
    add_assistant_entities(
        entry,
        async_add_entities,
        lambda subentry: [GeminiLiveTtsEntity(entry, subentry)],
    )


class GeminiLiveTtsEntity(GeminiLiveEntity, tts.TextToSpeechEntity):
    """Streams Live reply audio; reads other text aloud through Gemini."""

    _attr_default_language = "en"
    _attr_has_entity_name = False

    def __init__(self, entry: GeminiLiveConfigEntry, subentry: ConfigSubentry) -> None:
        """Create the entity of `entry`."""
        super().__init__(entry, subentry, "tts")
        self._attr_supported_languages = list(LANGUAGES)
        self._attr_supported_options = [
            ATTR_VOICE,
            ATTR_PREFERRED_FORMAT,
            *CONVERTED_OPTIONS,
        ]

    @property
    def name(self) -> str:
        """Return the assistant's title.

        Home Assistant's TTS refuses an engine without a name, and a device-named
        entity has none; like OpenAI's TTS entity, this one is named itself.
        """
        return self.subentry.title

    @property
    def default_options(self) -> Mapping[str, Any]:
        """Return WAV, served as is when the caller asks for no other format."""
        return {ATTR_PREFERRED_FORMAT: "wav"}

    @callback
    def async_get_supported_voices(self, language: str) -> list[tts.Voice]:
        """Return the prebuilt voices, the assistant's voice first."""
        current = self.settings.get(CONF_VOICE, RECOMMENDED_VOICE)
        ordered = sorted(VOICES, key=lambda name: name != current)
        return [tts.Voice(name, name) for name in ordered]

    async def async_stream_tts_audio(
        self, request: TTSAudioRequest
    ) -> tts.TTSAudioResponse:
        """Stream the run's Live turn audio, or have Gemini say the text."""
        try:
            stream_format = output_format(request.options)
            encoder = stream_format.encoder()
        except ValueError as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="unsupported_audio_format",
                translation_placeholders={"reason": str(err)},
            ) from err
        session = chat_session.current_session.get()
        conversation_id = session.conversation_id if session is not None else None
        messages = aiter(request.message_gen)
        first = ""
        async for chunk in messages:
            if first := chunk:
                break
        turn = self.voice_manager.claim_turn_for_speech(conversation_id, first)
        # Read the rest of the text now, so that its producer never waits on us.
        text = self.hass.async_create_task(
            _join(first, messages), "gemini_live tts text", eager_start=False
        )
        return tts.TTSAudioResponse(
            stream_format.extension,
            self._async_audio(turn, text, encoder, request.options.get(tts.ATTR_VOICE)),
        )

    async def _async_audio(
        self,
        turn: LiveTurn | None,
        text: asyncio.Task[str],
        encoder: StreamEncoder,
        voice: str | None,
    ) -> AsyncGenerator[bytes]:
        """Yield the turn's audio (or that of `text` spoken) as one stream."""
        try:
            if turn is None:
                if not (message := (await text).strip()):
                    yield encoder.header()
                    return
                pcm = await self.voice_manager.announce(message, voice=voice)
            else:
                pcm = turn.audio_stream()
            yield encoder.header()
            async with contextlib.aclosing(_keep_alive(pcm, encoder)) as audio:
                async for chunk in audio:
                    yield chunk
            yield encoder.flush()
        except LiveError as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="live_error",
                translation_placeholders={"reason": err.reason or str(err)},
            ) from err
        finally:
            text.cancel()


async def _join(first: str, rest: AsyncIterator[str]) -> str:
    """Return `first` and the rest of a text stream, joined."""
    return first + "".join([chunk async for chunk in rest])


async def _keep_alive(
    audio: AsyncIterator[bytes], encoder: StreamEncoder
) -> AsyncGenerator[bytes]:
    """Encode `audio`, adding silence while it pauses (e.g. during a tool call).

    A Voice PE stalls when its stream gaps for more than ~5 s. After
    `KEEPALIVE_AFTER` s without audio, a frame of silence goes out whenever
    a real-time listener would have less than a frame left to play (assuming
    playback starts with the stream), and at least every
    `KEEPALIVE_INTERVAL` s; `MAX_SILENCE` s in all at most.
    """
    loop = asyncio.get_running_loop()
    silence = bytes(2 * round(AUDIO_RATE * SILENCE_FRAME))
    last_audio = last_frame = runs_out = loop.time()
    frames_left = round(MAX_SILENCE / SILENCE_FRAME)
    pending: asyncio.Future[bytes] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(audio))
            now = loop.time()
            if now - last_audio < KEEPALIVE_AFTER:
                timeout: float | None = last_audio + KEEPALIVE_AFTER - now
            else:
                timeout = SILENCE_FRAME if frames_left else None
            done, _ = await asyncio.wait((pending,), timeout=timeout)
            now = loop.time()
            if not done:
                if (
                    frames_left
                    and now - last_audio >= KEEPALIVE_AFTER
                    and (
                        runs_out - now < SILENCE_FRAME
                        or now - last_frame >= KEEPALIVE_INTERVAL
                    )
                ):
                    frames_left -= 1
                    last_frame = now
                    runs_out = max(runs_out, now) + SILENCE_FRAME
                    yield encoder.encode(silence)
                continue
            try:
                chunk = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            last_audio = last_frame = now
            runs_out = max(runs_out, now) + len(chunk) / (2 * AUDIO_RATE)
            yield encoder.encode(chunk)
    finally:
        if pending is not None and not pending.done():
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await pending
