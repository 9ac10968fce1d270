"""A streaming FLAC writer for 16-, 24- and 32-bit PCM (RFC 9639), no dependency.

Frames are fixed-size and their subframes VERBATIM (the samples as they
are): no compression, which costs nothing on a satellite's local link and
keeps each frame's encoding to a copy and two checksums. The STREAMINFO
block leaves the length, the frame sizes and the MD5 unknown (zero), as a
live stream's does, so the stream is never rewritten.
"""

from __future__ import annotations

import struct
from typing import Final

import numpy as np
import numpy.typing as npt

_SYNC_FIXED: Final = b"\xff\xf8"
"""Frame sync code with the fixed-blocksize strategy."""
_SUBFRAME_VERBATIM: Final = b"\x02"
"""Subframe header: VERBATIM, no wasted bits."""
_SAMPLE_SIZE_CODES: Final = {16: 0b100, 24: 0b110, 32: 0b111}
"""Frame header's code of the bits per sample."""


def integer_bytes(
    samples: npt.NDArray[np.integer], width: int, *, big_endian: bool
) -> bytes:
    """Pack integer samples into `width` bytes each (2-4), in either order."""
    if width == 2:
        return samples.astype(">i2" if big_endian else "<i2").tobytes()
    words = samples.astype(">i4" if big_endian else "<i4").view(np.uint8)
    words = words.reshape(-1, 4)
    return (words[:, 4 - width :] if big_endian else words[:, :width]).tobytes()


def _crc_table(poly: int, width: int) -> tuple[int, ...]:
    top, mask = 1 << (width - 1), (1 << width) - 1
    table = []
    for byte in range(256):
        crc = byte << (width - 8)
        for _ in range(8):
            crc = ((crc << 1) ^ poly) if crc & top else crc << 1
        table.append(crc & mask)
    return tuple(table)


_CRC8: Final = _crc_table(0x07, 8)
_CRC16: Final = _crc_table(0x8005, 16)


def crc8(data: bytes) -> int:
    """Return the CRC-8 of a frame header (polynomial x^8 + x^2 + x + 1)."""
    crc = 0
    for byte in data:
        crc = _CRC8[crc ^ byte]
    return crc


def crc16(data: bytes) -> int:
    """Return the CRC-16 of a frame (polynomial x^16 + x^15 + x^2 + 1)."""
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16[(crc >> 8) ^ byte]
    return crc


def _coded_number(number: int) -> bytes:
    """Return a frame number in FLAC's UTF-8-like coding (up to 31 bits)."""
    if number < 0x80:
        return bytes((number,))
    length = 2
    while number >= 1 << (5 * length + 1):
        length += 1
    tail = [0x80 | (number >> (6 * i)) & 0x3F for i in range(length - 1)]
    lead = (0xFF << (8 - length)) & 0xFF | number >> (6 * (length - 1))
    return bytes((lead, *reversed(tail)))


class FlacWriter:
    """Integer PCM in, FLAC out: a header, then one frame per block."""

    def __init__(
        self, rate: int, channels: int, block_size: int, bits: int = 16
    ) -> None:
        """Write `channels` channels of `bits`-bit samples at `rate` Hz.

        Every frame but the last holds `block_size` samples per channel.
        """
        if not 16 <= block_size <= 65535 or not 1 <= channels <= 8:
            raise ValueError("FLAC takes 16-65535 samples per block, 1-8 channels")
        if not 1 <= rate < 1 << 20:
            raise ValueError("FLAC takes sample rates below 1,048,576 Hz")
        if bits not in _SAMPLE_SIZE_CODES:
            raise ValueError("This writer takes 16, 24 or 32 bits per sample")
        self.rate = rate
        self.channels = channels
        self.block_size = block_size
        self.bits = bits
        self._frames = 0

    def header(self) -> bytes:
        """Return the "fLaC" marker and the STREAMINFO block (the last one)."""
        info = struct.pack(">HH", self.block_size, self.block_size)
        info += bytes(6)  # minimum and maximum frame size: unknown
        packed = (
            self.rate << 44 | (self.channels - 1) << 41 | (self.bits - 1) << 36
            # total samples (36 bits): unknown
        )
        info += packed.to_bytes(8, "big") + bytes(16)  # MD5: not computed
        return b"fLaC" + bytes((0x80,)) + len(info).to_bytes(3, "big") + info

    def frame(self, samples: npt.NDArray[np.integer]) -> bytes:
        """Return the frame of one block: `samples` shaped (count, channels).

        Every frame but the last holds `block_size` samples per channel.
        """
        count = len(samples)
        if not 1 <= count <= self.block_size:
            raise ValueError(f"A frame holds 1-{self.block_size} samples")
        header = bytearray(_SYNC_FIXED)
        # Block size: 16-bit (count - 1) after the number; rate from STREAMINFO.
        header.append(0b0111 << 4)
        # Channels independent; the sample size, then the reserved zero bit.
        header.append((self.channels - 1) << 4 | _SAMPLE_SIZE_CODES[self.bits] << 1)
        header += _coded_number(self._frames)
        header += (count - 1).to_bytes(2, "big")
        header.append(crc8(bytes(header)))
        self._frames += 1
        body = b"".join(
            _SUBFRAME_VERBATIM
            + integer_bytes(samples[:, channel], self.bits // 8, big_endian=True)
            for channel in range(self.channels)
        )
        frame = bytes(header) + body
        return frame + crc16(frame).to_bytes(2, "big")
