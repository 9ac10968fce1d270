"""The FLAC writer: checksums, and streams a strict decoder takes sample-exact."""

import shutil
import subprocess

import numpy as np
import pytest

from custom_components.gemini_live.flac import FlacWriter, crc8, crc16

FFMPEG = shutil.which("ffmpeg") or "/usr/bin/ffmpeg"
FFPROBE = shutil.which("ffprobe") or "/usr/bin/ffprobe"
FLAC = shutil.which("flac") or "/usr/bin/flac"


def decode_with_libflac(stream: bytes, channels: int, width: int) -> np.ndarray:
    """Decode with libFLAC's `flac` (checks every CRC) to (count, channels).

    It takes 32-bit FLAC, which Debian's ffmpeg 5.1 does not.
    """
    raw_pcm = ["--force-raw-format", "--endian=little", "--sign=signed"]
    out = subprocess.run(  # noqa: S603
        [FLAC, "-d", "-s", "-c", *raw_pcm, "-"],
        input=stream,
        capture_output=True,
        check=True,
        timeout=30,
    )
    raw = np.frombuffer(out.stdout, dtype=np.uint8).reshape(-1, width)
    words = np.zeros((len(raw), 4), dtype=np.uint8)
    words[:, 4 - width :] = raw
    return (words.view("<i4")[:, 0] >> (32 - 8 * width)).reshape(-1, channels)


def test_checksums_match_the_catalogued_crcs() -> None:
    """FLAC's CRC-8 is CRC-8/SMBUS, its CRC-16 CRC-16/UMTS (check values)."""
    assert crc8(b"123456789") == 0xF4
    assert crc16(b"123456789") == 0xFEE8


def _decode(stream: bytes, channels: int, width: int = 2) -> np.ndarray:
    """Decode with ffmpeg, failing on any CRC or format error.

    Samples of `width` bytes come back as they are (24-bit in 32-bit words,
    shifted up by ffmpeg, shifted back here).
    """
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
            "s16le" if width == 2 else "s32le",
            "pipe:1",
        ],
        input=stream,
        capture_output=True,
        check=True,
    )
    assert out.stderr == b""
    if width == 2:
        return np.frombuffer(out.stdout, dtype="<i2").reshape(-1, channels)
    words = np.frombuffer(out.stdout, dtype="<i4").reshape(-1, channels)
    return words >> (32 - 8 * width)


@pytest.mark.parametrize(
    ("rate", "channels", "count", "block", "bits"),
    [
        (48000, 1, 48000 * 2 + 17, 960, 16),
        (44100, 2, 5000, 882, 16),
        (16000, 1, 300, 320, 16),
        (8000, 2, 1024, 160, 16),
        (22050, 1, 2048 * 16 + 5, 16, 16),
        (48000, 2, 4000, 960, 24),
        (16000, 1, 4000, 1024, 32),
    ],
)
def test_stream_decodes_exactly(
    rate: int, channels: int, count: int, block: int, bits: int
) -> None:
    """Any rate, channels, block size, width; long streams; short last block.

    Frame numbers past one and two bytes of their coding; full scale included.
    """
    rng = np.random.default_rng(rate)
    top = 1 << (bits - 1)
    samples = rng.integers(-top, top, size=(count, channels), dtype=np.int64)
    samples[:2] = [[-top] * channels, [top - 1] * channels]
    writer = FlacWriter(rate, channels, block, bits)
    stream = writer.header() + b"".join(
        writer.frame(samples[start : start + block]) for start in range(0, count, block)
    )

    if bits < 32:
        assert np.array_equal(_decode(stream, channels, bits // 8), samples)
    assert np.array_equal(decode_with_libflac(stream, channels, bits // 8), samples)
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
    with pytest.raises(ValueError, match="16, 24 or 32 bits"):
        FlacWriter(48000, 1, 1024, 20)
    writer = FlacWriter(48000, 1, 1024)
    with pytest.raises(ValueError, match="1-1024 samples"):
        writer.frame(np.zeros((1025, 1), dtype=np.int16))
