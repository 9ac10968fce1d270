"""The FLAC writer: checksums, and streams a strict decoder takes sample-exact."""

import shutil
import subprocess

import numpy as np
import pytest

from custom_components.gemini_live.flac import FlacWriter, crc8, crc16

FFMPEG = shutil.which("ffmpeg") or "/usr/bin/ffmpeg"
FFPROBE = shutil.which("ffprobe") or "/usr/bin/ffprobe"


def test_checksums_match_the_catalogued_crcs() -> None:
    """FLAC's CRC-8 is CRC-8/SMBUS, its CRC-16 CRC-16/UMTS (check values)."""
    assert crc8(b"123456789") == 0xF4
    assert crc16(b"123456789") == 0xFEE8


def _decode(stream: bytes, channels: int) -> np.ndarray:
    """Decode with ffmpeg, failing on any CRC or format error."""
    out = subprocess.run(  # noqa: S603
        [
            FFMPEG,
            "-v",
            "error",
            "-err_detect",
            "crccheck+bitstream+explode",
            "-f",
            "flac",
            "-i",
            "pipe:0",
            "-f",
            "s16le",
            "pipe:1",
        ],
        input=stream,
        capture_output=True,
        check=True,
    )
    assert out.stderr == b""
    return np.frombuffer(out.stdout, dtype="<i2").reshape(-1, channels)


@pytest.mark.parametrize(
    ("rate", "channels", "count"),
    [(48000, 1, 48000 * 2 + 17), (44100, 2, 5000), (16000, 1, 300), (8000, 2, 1024)],
)
def test_stream_decodes_exactly(rate: int, channels: int, count: int) -> None:
    """Frame numbers past one byte, a short last block, any rate and channels."""
    rng = np.random.default_rng(rate)
    samples = rng.integers(-32768, 32767, size=(count, channels), dtype=np.int16)
    writer = FlacWriter(rate, channels, 1024)
    stream = writer.header() + b"".join(
        writer.frame(samples[start : start + 1024]) for start in range(0, count, 1024)
    )

    assert np.array_equal(_decode(stream, channels), samples)
    probe = subprocess.run(  # noqa: S603
        [
            FFPROBE,
            "-v",
            "error",
            "-show_entries",
            "stream=sample_rate,channels",
            "-of",
            "csv=p=0",
            "-f",
            "flac",
            "-i",
            "pipe:0",
        ],
        input=stream,
        capture_output=True,
        check=True,
        text=False,
    )
    assert probe.stdout.decode().strip() == f"{rate},{channels}"


def test_bad_shapes_are_refused() -> None:
    """Block sizes, channel counts and rates FLAC cannot carry raise."""
    with pytest.raises(ValueError, match="1-8 channels"):
        FlacWriter(48000, 9, 1024)
    with pytest.raises(ValueError, match="sample rates"):
        FlacWriter(1 << 20, 1, 1024)
    writer = FlacWriter(48000, 1, 1024)
    with pytest.raises(ValueError, match="1-1024 samples"):
        writer.frame(np.zeros((1025, 1), dtype=np.int16))
