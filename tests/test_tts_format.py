"""The TTS stream chosen per request: 2026.10's conversion, 2026.11's passthrough."""

from __future__ import annotations

from typing import Any

import pytest

from custom_components.gemini_live import tts_format
from custom_components.gemini_live.audio import SampleFormat
from custom_components.gemini_live.tts_format import OutputFormat, output_format

# What the callers send (ha-pipeline-levers.md A.2).
ESPHOME = {
    "preferred_format": "wav",
    "preferred_sample_rate": 16000,
    "preferred_sample_channels": 1,
    "preferred_sample_bytes": 2,
}
VOICE_PE = {
    "preferred_format": "flac",
    "preferred_sample_rate": 48000,
    "preferred_sample_channels": 1,
    "preferred_sample_bytes": 2,
}
WYOMING = {
    "preferred_format": "wav",
    "preferred_sample_rate": 22050,
    "preferred_sample_channels": 1,
    "preferred_sample_bytes": 2,
}
BROWSER = {"preferred_format": "wav"}  # the entity's default options
MP3 = {"preferred_format": "mp3", "preferred_bitrate": 64}
F64 = SampleFormat.FLOAT64


@pytest.mark.parametrize(
    ("options", "on_2026_10", "on_2026_11"),
    [
        (ESPHOME, OutputFormat("wav", 16000, 1, F64), OutputFormat("wav", 16000)),
        (WYOMING, OutputFormat("wav", 22050, 1, F64), OutputFormat("wav", 22050)),
        (VOICE_PE, OutputFormat("wav", 48000, 1, F64), OutputFormat("flac", 48000)),
        (BROWSER, OutputFormat("wav", 24000), OutputFormat("wav", 24000)),
        (MP3, OutputFormat("wav", 24000, 1, F64), OutputFormat("wav", 24000, 1, F64)),
        (
            {"preferred_format": "flac", "preferred_sample_channels": "2"},
            OutputFormat("wav", 24000, 1, F64),
            OutputFormat("flac", 24000, 2),
        ),
        (
            {"preferred_format": "wav", "preferred_sample_bytes": 4},
            OutputFormat("wav", 24000, 1, F64),
            OutputFormat("wav", 24000, 1, SampleFormat.PCM32),
        ),
        (
            {"preferred_format": "flac", "preferred_sample_bytes": "3"},
            OutputFormat("wav", 24000, 1, F64),
            OutputFormat("flac", 24000, 1, SampleFormat.PCM24),
        ),
        ({}, OutputFormat("wav", 24000, 1, F64), OutputFormat("wav", 24000, 1, F64)),
    ],
)
def test_format_per_request(
    options: dict[str, Any], on_2026_10: OutputFormat, on_2026_11: OutputFormat
) -> None:
    """2026.10: float64 WAV for ffmpeg; 2026.11: exactly the satellite's format."""
    assert output_format(options, passthrough=False) == on_2026_10
    assert output_format(options, passthrough=True) == on_2026_11


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"preferred_sample_bytes": 1}, "1-byte samples"),
        ({"preferred_sample_bytes": 5}, "5-byte samples"),
        ({"preferred_sample_bytes": "8"}, "8-byte samples"),
        ({"preferred_sample_channels": 9}, "9 channels"),
        ({"preferred_sample_channels": -1}, "-1 channels"),
    ],
)
def test_what_pcm_cannot_carry_is_refused(options: dict[str, Any], error: str) -> None:
    """Passthrough: a width or channel count out of bounds is an error."""
    for container in ("wav", "flac"):
        with pytest.raises(ValueError, match=error):
            output_format({"preferred_format": container, **options}, passthrough=True)
    assert output_format(
        {"preferred_format": "wav", **options}, passthrough=False
    ) == OutputFormat("wav", 24000, 1, F64)


@pytest.mark.parametrize("rate", [-16000, 400000, 2**31, 44101, 96001])
def test_a_rate_out_of_bounds_is_refused(rate: int) -> None:
    """No version resamples to a rate whose filter bank would take gigabytes."""
    for passthrough in (False, True):
        with pytest.raises(ValueError, match=f"{rate} Hz"):
            output_format(
                {"preferred_format": "flac", "preferred_sample_rate": rate},
                passthrough=passthrough,
            )


@pytest.mark.parametrize(
    "rate", [8000, 11025, 16000, 22050, 32000, 44100, 48000, 88200, 96000, 192000]
)
def test_the_usual_rates_are_emitted(rate: int) -> None:
    """Every usual sample rate is served, on both versions."""
    options = {"preferred_format": "wav", "preferred_sample_rate": rate}
    assert output_format(options, passthrough=True) == OutputFormat("wav", rate)
    assert output_format(options, passthrough=False).rate == rate


def test_this_home_assistant_converts() -> None:
    """The suite's Home Assistant (2026.10.4) has no passthrough rule.

    The real 2026.11.0 process of tests/ha_versions shows the other side.
    """
    assert tts_format.PASSES_THROUGH is False
    assert output_format(VOICE_PE) == OutputFormat("wav", 48000, 1, F64)
