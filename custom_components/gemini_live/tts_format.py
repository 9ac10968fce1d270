"""Which stream the TTS entity emits for the options Home Assistant passes it.

The entity lists every preferred option (format, sample rate, channels,
sample width, bitrate) in `supported_options`, so it always sees them.
Whether Home Assistant still runs ffmpeg on the stream depends on its
version:

* 2026.10 converts whenever the preferred format differs from the stream's,
  or any preferred rate, channel count, sample width or bitrate is set. The
  entity then serves float64 WAV at the preferred rate (see tts.py for why),
  and plain 24 kHz PCM16 WAV otherwise.
* 2026.11 leaves the preferences the entity supports to the entity and
  converts only when the format differs (`PASSES_THROUGH`). The entity then
  emits exactly what was asked for the formats satellites ask for: PCM WAV
  (ESPHome, Wyoming) or FLAC (Voice PE), at the preferred rate, channel
  count and sample width (16 bits unless asked; 24 or 32), with no ffmpeg;
  any other format (mp3 ...) is still converted from float64 WAV at the
  preferred rate. A width PCM cannot carry raises ValueError, as do a rate
  (`MAX_RATE`, `MAX_RATE_STEPS`) or channel count out of bounds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from math import gcd
from typing import Any, Final

from homeassistant.components import tts
from homeassistant.components.tts import (
    ATTR_PREFERRED_BITRATE,
    ATTR_PREFERRED_FORMAT,
    ATTR_PREFERRED_SAMPLE_BYTES,
    ATTR_PREFERRED_SAMPLE_CHANNELS,
    ATTR_PREFERRED_SAMPLE_RATE,
)

from .audio import FlacStreamEncoder, SampleFormat, StreamEncoder, WavStreamEncoder
from .voice.turn import AUDIO_RATE

CONVERTED_OPTIONS: Final = (
    ATTR_PREFERRED_SAMPLE_RATE,
    ATTR_PREFERRED_SAMPLE_CHANNELS,
    ATTR_PREFERRED_SAMPLE_BYTES,
    ATTR_PREFERRED_BITRATE,
)
"""The preferences besides the format that make 2026.10 convert."""

PASSES_THROUGH: Final = hasattr(tts, "async_create_audio_stream")
"""Whether Home Assistant serves the stream as it is when the entity honours
the preferences it supports (2026.11's rule, which came with
`tts.async_create_audio_stream`)."""

WAV: Final = "wav"
FLAC: Final = "flac"
MAX_RATE: Final = 384000
"""Highest sample rate emitted."""
MAX_RATE_STEPS: Final = 160
"""Most output samples per `gcd` step of 24 kHz (the resampler's filter bank
and its cost grow with it): 147 for the 44.1 kHz family, 1 or 2 for the
others. A rate like 44101 Hz would take seconds and gigabytes."""
MAX_CHANNELS: Final = 8


@dataclass(frozen=True, slots=True)
class OutputFormat:
    """The stream the entity emits: container, rate, channels, samples."""

    extension: str
    rate: int
    channels: int = 1
    sample_format: SampleFormat = SampleFormat.PCM16
    """Float only in WAV."""

    def encoder(self) -> StreamEncoder:
        """Return an encoder of 24 kHz reply audio into this format."""
        if self.extension == FLAC:
            return FlacStreamEncoder(
                AUDIO_RATE, self.rate, self.channels, self.sample_format
            )
        return WavStreamEncoder(
            AUDIO_RATE, self.rate, self.sample_format, self.channels
        )


def output_format(
    options: Mapping[str, Any], *, passthrough: bool | None = None
) -> OutputFormat:
    """Return the stream to emit for the request's `options`.

    `passthrough`: whether Home Assistant serves the stream unconverted when
    it is exactly the preferred format (None: `PASSES_THROUGH`).
    """
    if passthrough is None:
        passthrough = PASSES_THROUGH
    preferred = options.get(ATTR_PREFERRED_FORMAT)
    rate = int(options.get(ATTR_PREFERRED_SAMPLE_RATE) or AUDIO_RATE)
    if not 1 <= rate <= MAX_RATE or rate // gcd(rate, AUDIO_RATE) > MAX_RATE_STEPS:
        raise ValueError(
            f"No sample rate of {rate} Hz here (up to {MAX_RATE} Hz, in a simple"
            f" ratio to {AUDIO_RATE} Hz)"
        )
    if passthrough and preferred in (WAV, FLAC):
        channels = int(options.get(ATTR_PREFERRED_SAMPLE_CHANNELS) or 1)
        if not 1 <= channels <= MAX_CHANNELS:
            raise ValueError(f"No {channels} channels here (1-{MAX_CHANNELS})")
        width = int(options.get(ATTR_PREFERRED_SAMPLE_BYTES) or 2)
        return OutputFormat(preferred, rate, channels, SampleFormat.pcm(width))
    converted = preferred != WAV or any(
        options.get(option) is not None for option in CONVERTED_OPTIONS
    )
    if not converted:
        return OutputFormat(WAV, AUDIO_RATE)
    return OutputFormat(WAV, rate, sample_format=SampleFormat.FLOAT64)
