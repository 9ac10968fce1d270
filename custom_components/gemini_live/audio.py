"""Streaming audio helpers (numpy, no Home Assistant imports).

- `Resampler`: streaming rational polyphase resampler for 16-bit mono PCM with
  a Kaiser-windowed sinc anti-aliasing low-pass. Chunks of any size (odd byte
  counts too) give exactly the samples one call on the whole signal gives.
- PCM16 <-> float32 conversion; packing as 16-, 24-, 32-bit PCM or float.
- `wav_header()`: header of an open-ended (streaming) WAV, PCM or IEEE float.
- `StreamEncoder`s: PCM16 mono chunks in, one stream out, resampled (and
  copied to every channel): `WavStreamEncoder` (open-ended WAV) and
  `FlacStreamEncoder` (FLAC in small blocks, see `flac.py`).

Why float32 WAV: Home Assistant converts TTS audio with ffmpeg whenever a
satellite sets preferred_* options. ffmpeg's WAV reader probes about 64 KiB
ahead on 16-bit PCM input (looking for S/PDIF), which delays its first output
byte by more than a second for live audio; on IEEE float input it does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from math import ceil, gcd, pi
import struct
from typing import Final, Protocol

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
import numpy.typing as npt

from .flac import FlacWriter, integer_bytes

type FloatArray = npt.NDArray[np.float32]

STOPBAND_ATTENUATION_DB: Final = 80.0
"""Kaiser design attenuation of the anti-aliasing filter."""

PASSBAND: Final = 0.9
"""Pass band edge as a fraction of the lower Nyquist frequency; the stop band
starts at that Nyquist frequency, so nothing above it aliases back."""

_BLOCK: Final = 1024
"""Output samples computed per vectorised step (bounds temporary memory)."""

FLAC_BLOCK_MS: Final = 20
"""Duration of a FLAC frame: a frame goes out as soon as its block is
complete, so the stream lags the audio by less than this, at any rate."""

_UNKNOWN_SIZE: Final = 0xFFFFFFFF
_WAVE_FORMAT_PCM: Final = 1
_WAVE_FORMAT_IEEE_FLOAT: Final = 3


class SampleFormat(StrEnum):
    """Sample format of a stream."""

    PCM16 = "s16"
    PCM24 = "s24"
    PCM32 = "s32"
    FLOAT32 = "f32"
    FLOAT64 = "f64"

    @property
    def width(self) -> int:
        """Bytes per sample."""
        return _WIDTHS[self]

    @property
    def is_float(self) -> bool:
        """Whether the samples are IEEE floats rather than integers."""
        return self in (SampleFormat.FLOAT32, SampleFormat.FLOAT64)

    @classmethod
    def pcm(cls, width: int) -> SampleFormat:
        """Return the integer PCM format of `width` bytes per sample."""
        if (sample_format := _PCM_OF_WIDTH.get(width)) is None:
            raise ValueError(f"No PCM format of {width}-byte samples here (2-4)")
        return sample_format


_WIDTHS: Final = {
    SampleFormat.PCM16: 2,
    SampleFormat.PCM24: 3,
    SampleFormat.PCM32: 4,
    SampleFormat.FLOAT32: 4,
    SampleFormat.FLOAT64: 8,
}
_PCM_OF_WIDTH: Final = {
    _WIDTHS[sample_format]: sample_format
    for sample_format in (SampleFormat.PCM16, SampleFormat.PCM24, SampleFormat.PCM32)
}


def pcm16_to_float32(pcm: bytes) -> FloatArray:
    """Decode PCM16LE (even byte count) to float32 in [-1, 1)."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
    samples *= np.float32(1 / 32768)
    return samples


def float32_to_pcm16(samples: FloatArray) -> bytes:
    """Encode float32 samples as PCM16LE, rounding and clipping to full scale."""
    return integer_bytes(to_integers(samples, 16), 2, big_endian=False)


def to_integers(samples: FloatArray, bits: int) -> npt.NDArray[np.int32]:
    """Round and clip float samples in [-1, 1) to `bits`-bit integers (<= 32).

    float32 holds every integer up to 24 bits exactly; only 32 bits take
    float64 (the audio path's usual 16 bits stay in float32).
    """
    top = 1 << (bits - 1)
    wide = samples.astype(np.float64) if bits > 24 else samples
    scaled = np.rint(wide * wide.dtype.type(top))
    np.clip(scaled, -top, top - 1, out=scaled)
    return scaled.astype(np.int32)


def float32_to_bytes(samples: FloatArray) -> bytes:
    """Pack float32 samples as little-endian IEEE float32 (WAV format tag 3)."""
    return samples.astype("<f4", copy=False).tobytes()


def float32_to_float64_bytes(samples: FloatArray) -> bytes:
    """Pack float32 samples as little-endian IEEE float64 (WAV format tag 3)."""
    return samples.astype("<f8").tobytes()


def wav_header(
    sample_rate: int, sample_format: SampleFormat, channels: int = 1
) -> bytes:
    """Header of an open-ended WAV stream (RIFF and data sizes 0xFFFFFFFF).

    ffmpeg treats the maximum data size as "until end of input" and decodes
    while the stream is still being written. Float uses the 18-byte fmt
    chunk (cbSize 0) that non-PCM formats call for.
    """
    width = sample_format.width
    if sample_format.is_float:
        tag, extension = _WAVE_FORMAT_IEEE_FLOAT, struct.pack("<H", 0)
    else:
        tag, extension = _WAVE_FORMAT_PCM, b""
    block_align = channels * width
    fmt = struct.pack(
        "<HHIIHH",
        tag,
        channels,
        sample_rate,
        sample_rate * block_align,
        block_align,
        8 * width,
    )
    fmt += extension
    return b"".join(
        (
            struct.pack("<4sI4s", b"RIFF", _UNKNOWN_SIZE, b"WAVE"),
            struct.pack("<4sI", b"fmt ", len(fmt)),
            fmt,
            struct.pack("<4sI", b"data", _UNKNOWN_SIZE),
        )
    )


@dataclass(frozen=True, slots=True)
class FilterBank:
    """Polyphase decomposition of one anti-aliasing filter.

    Output sample n lies at time n*down + delay on the grid of the input
    upsampled by `up`; it is the dot product of the `taps` input samples ending
    at input index (n*down + delay) // up with row (n*down + delay) % up.
    """

    up: int
    down: int
    taps: int
    delay: int
    phases: FloatArray  # shape (up, taps), rows in input order, gain `up`


def design_filter(in_rate: int, out_rate: int) -> FilterBank:
    """Kaiser-windowed sinc low-pass for in_rate -> out_rate, split in phases."""
    if in_rate <= 0 or out_rate <= 0:
        raise ValueError(f"Sample rates must be positive: {in_rate}, {out_rate}")
    return _design_filter(in_rate, out_rate)


@lru_cache(maxsize=32)
def _design_filter(in_rate: int, out_rate: int) -> FilterBank:
    divisor = gcd(in_rate, out_rate)
    up, down = out_rate // divisor, in_rate // divisor
    upsampled_rate = in_rate * up
    nyquist = min(in_rate, out_rate) / 2
    transition = (1 - PASSBAND) * nyquist
    cutoff = (1 + PASSBAND) / 2 * nyquist  # middle of the transition band
    attenuation = STOPBAND_ATTENUATION_DB
    beta = 0.1102 * (attenuation - 8.7)
    length = ceil((attenuation - 7.95) / (2.285 * 2 * pi * transition / upsampled_rate))
    taps = ceil(length / up)
    length = taps * up - (taps * up + 1) % 2  # odd: the delay is a whole sample
    delay = (length - 1) // 2

    fc = cutoff / upsampled_rate
    offsets = np.arange(length) - delay
    prototype = 2 * fc * np.sinc(2 * fc * offsets) * np.kaiser(length, beta)
    prototype *= up / prototype.sum()

    padded = np.zeros(taps * up)
    padded[:length] = prototype
    # phases[p, m] = padded[(taps - 1 - m) * up + p]: coefficients in the
    # order of the input window x[i - taps + 1 .. i].
    phases = np.ascontiguousarray(padded.reshape(taps, up)[::-1].T, dtype=np.float32)
    phases.flags.writeable = False
    return FilterBank(up=up, down=down, taps=taps, delay=delay, phases=phases)


class Resampler:
    """Streaming resampler for 16-bit mono PCM between any two rates.

    `process()` takes PCM16LE bytes of any length (a trailing odd byte is kept
    for the next call) and returns the float32 samples that are complete so
    far; `flush()` returns the rest, so that the total is
    ceil(input samples * out_rate / in_rate), time-aligned with the input
    (the filter delay is compensated). The object is then ready for a new
    stream. Chunked and one-shot processing give identical samples.
    """

    def __init__(self, in_rate: int, out_rate: int) -> None:
        """Prepare a resampler; filter banks are cached per rate pair."""
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._bank = design_filter(in_rate, out_rate)
        self._reset()

    def _reset(self) -> None:
        self._partial = b""
        # Input samples from absolute index self._start on; zero history first.
        self._buffer: FloatArray = np.zeros(self._bank.taps - 1, dtype=np.float32)
        self._start = 1 - self._bank.taps
        self._inputs = 0
        self._outputs = 0

    def process(self, pcm: bytes) -> FloatArray:
        """Feed PCM16LE bytes; return the output samples now complete."""
        if self._partial:
            pcm = self._partial + pcm
        whole = len(pcm) & ~1
        self._partial = pcm[whole:]
        samples = pcm16_to_float32(pcm[:whole])
        if self.in_rate == self.out_rate:
            return samples
        self._buffer = np.concatenate((self._buffer, samples))
        self._inputs += len(samples)
        bank = self._bank
        ready = (self._inputs * bank.up - 1 - bank.delay) // bank.down + 1
        return self._compute(ready)

    def flush(self) -> FloatArray:
        """Return the remaining output samples and reset for a new stream."""
        bank = self._bank
        total = -(-self._inputs * bank.up // bank.down)
        if self.in_rate == self.out_rate or total <= self._outputs:
            self._reset()
            return np.zeros(0, dtype=np.float32)
        last = ((total - 1) * bank.down + bank.delay) // bank.up
        padding = np.zeros(last + 1 - self._inputs, dtype=np.float32)
        self._buffer = np.concatenate((self._buffer, padding))
        out = self._compute(total)
        self._reset()
        return out

    def _compute(self, end: int) -> FloatArray:
        """Compute outputs self._outputs..end-1 and drop consumed input."""
        bank = self._bank
        count = end - self._outputs
        if count <= 0:
            return np.zeros(0, dtype=np.float32)
        out = np.empty(count, dtype=np.float32)
        windows = sliding_window_view(self._buffer, bank.taps)
        for offset in range(0, count, _BLOCK):
            n = np.arange(
                self._outputs + offset,
                self._outputs + min(offset + _BLOCK, count),
                dtype=np.int64,
            )
            position = n * bank.down + bank.delay
            rows = position // bank.up - (bank.taps - 1) - self._start
            coefficients = bank.phases[position % bank.up]
            out[offset : offset + len(n)] = np.einsum(
                "ij,ij->i", windows[rows], coefficients
            )
        self._outputs += count
        first_needed = (self._outputs * bank.down + bank.delay) // bank.up - (
            bank.taps - 1
        )
        self._buffer = self._buffer[first_needed - self._start :]
        self._start = first_needed
        return out


class StreamEncoder(Protocol):
    """PCM16 mono chunks in, one audio stream out.

    Emit `header()` first, then `encode()` of every chunk, then `flush()`.
    """

    def header(self) -> bytes:
        """Return the stream's header."""

    def encode(self, pcm: bytes) -> bytes:
        """Return the stream bytes ready after a PCM16LE chunk (may be empty)."""

    def flush(self) -> bytes:
        """Return the rest of the stream."""


class WavStreamEncoder:
    """PCM16 mono chunks at `in_rate` -> one open-ended WAV at `out_rate`.

    Every one of the `channels` carries the same audio.
    """

    def __init__(
        self,
        in_rate: int,
        out_rate: int,
        sample_format: SampleFormat = SampleFormat.FLOAT32,
        channels: int = 1,
    ) -> None:
        """Prepare the encoder."""
        self.out_rate = out_rate
        self.sample_format = sample_format
        self.channels = channels
        self._resampler = Resampler(in_rate, out_rate)

    def header(self) -> bytes:
        """Return the WAV header."""
        return wav_header(self.out_rate, self.sample_format, self.channels)

    def encode(self, pcm: bytes) -> bytes:
        """WAV data bytes for a PCM16LE chunk (may be empty)."""
        return self._pack(self._resampler.process(pcm))

    def flush(self) -> bytes:
        """WAV data bytes of the resampler's tail."""
        return self._pack(self._resampler.flush())

    def _pack(self, samples: FloatArray) -> bytes:
        if self.channels > 1:
            samples = np.repeat(samples, self.channels)
        if self.sample_format is SampleFormat.FLOAT32:
            return float32_to_bytes(samples)
        if self.sample_format is SampleFormat.FLOAT64:
            return float32_to_float64_bytes(samples)
        width = self.sample_format.width
        return integer_bytes(to_integers(samples, 8 * width), width, big_endian=False)


class FlacStreamEncoder:
    """PCM16 mono chunks at `in_rate` -> one FLAC stream at `out_rate`.

    Frames of `FLAC_BLOCK_MS` (`flac.FlacWriter`) of integer samples of
    `sample_format`, each returned as soon as its block is complete; `flush`
    returns the shorter last one. Every one of the `channels` carries the
    same audio.
    """

    def __init__(
        self,
        in_rate: int,
        out_rate: int,
        channels: int = 1,
        sample_format: SampleFormat = SampleFormat.PCM16,
    ) -> None:
        """Prepare the encoder."""
        if sample_format.is_float:
            raise ValueError("FLAC holds integer samples")
        self.out_rate = out_rate
        self.channels = channels
        self._bits = 8 * sample_format.width
        self._block = max(16, out_rate * FLAC_BLOCK_MS // 1000)
        self._resampler = Resampler(in_rate, out_rate)
        self._writer = FlacWriter(out_rate, channels, self._block, self._bits)
        self._pending = np.zeros(0, dtype=np.int32)

    def header(self) -> bytes:
        """Return the "fLaC" marker and the STREAMINFO block."""
        return self._writer.header()

    def encode(self, pcm: bytes) -> bytes:
        """Return the frames completed by a PCM16LE chunk (may be empty)."""
        return self._frames(self._resampler.process(pcm), last=False)

    def flush(self) -> bytes:
        """Return the last frames; the stream is then finished."""
        return self._frames(self._resampler.flush(), last=True)

    def _frames(self, samples: FloatArray, *, last: bool) -> bytes:
        pending = np.concatenate((self._pending, to_integers(samples, self._bits)))
        size = self._block
        whole = len(pending) if last else len(pending) - len(pending) % size
        self._pending = pending[whole:]
        return b"".join(
            self._writer.frame(np.repeat(block[:, None], self.channels, axis=1))
            for start in range(0, whole, size)
            if len(block := pending[start : start + size])
        )
