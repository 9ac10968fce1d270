"""End the user's turn as soon as they stop speaking.

The pipeline ends the microphone stream after 0.7 s of silence (the
satellite's "finished speaking detection" default). The STT entity may
return earlier: the pipeline then stops reading the microphone and moves on
at once. So, in manual activity mode, a local voice activity detector (the
one Home Assistant's pipeline uses) ends the user's turn after
`EARLY_SILENCE_SECONDS` of silence. A satellite set to "relaxed" or
"aggressive" keeps its own choice.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

from homeassistant.components.assist_pipeline.vad import (
    VadSensitivity,
    VoiceCommandSegmenter,
)
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from pymicro_vad import MicroVad

EARLY_SILENCE_SECONDS = 0.4
"""Silence that ends the user's turn (the pipeline's default is 0.7 s)."""
MIN_COMMAND_SECONDS = 0.6
"""Shortest command before silence may end it."""
_FRAME_BYTES = 320
"""10 ms of 16 kHz PCM16, the detector's frame."""


def ends_early(hass: HomeAssistant, device_id: str | None) -> bool:
    """Return whether a run from this device may end before the pipeline's VAD.

    True unless the satellite's finished-speaking detection is set to
    something other than its default.
    """
    if device_id is None:
        return True
    registry = er.async_get(hass)
    for entry in er.async_entries_for_device(registry, device_id):
        if entry.domain == Platform.SELECT and entry.unique_id.endswith(
            "-vad_sensitivity"
        ):
            state = hass.states.get(entry.entity_id)
            return state is None or state.state == VadSensitivity.DEFAULT
    return True


async def until_end_of_speech(stream: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """Yield 16 kHz PCM16 chunks of `stream` until the speaker stops.

    Stops reading `stream` once speech was followed by
    `EARLY_SILENCE_SECONDS` of silence (or at the detector's 15 s timeout).
    """
    vad = MicroVad()
    segmenter = VoiceCommandSegmenter(
        command_seconds=MIN_COMMAND_SECONDS, silence_seconds=EARLY_SILENCE_SECONDS
    )
    pending = b""
    async for chunk in stream:
        yield chunk
        pending += chunk
        while len(pending) >= _FRAME_BYTES:
            frame, pending = pending[:_FRAME_BYTES], pending[_FRAME_BYTES:]
            if not segmenter.process(0.01, vad.Process10ms(frame)):
                return
