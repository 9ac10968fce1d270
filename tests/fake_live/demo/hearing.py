"""Hear known phrases in audio that went through a real audio path.

`recognize` (speech.py) wants the very bytes espeak-ng produced; audio played
by a browser's fake microphone comes back resampled, gain-controlled and
re-quantized, and TTS audio may be MP3. `closest_phrase` compares the sound
instead: log mel energies per 10 ms, normalized per band, aligned by dynamic
time warping against the espeak-ng speech of each candidate phrase.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numpy as np
from numpy.typing import NDArray

from ..speech import speech

FRAME_MS = 25
HOP_MS = 10
BANDS = 24
MAX_HZ = 4000.0
SPEECH_PEAK = 300
"""PCM16 peak under which audio counts as silence (about -40 dBFS)."""
MIN_FRAMES = 20
"""Shortest sound compared (0.2 s)."""
SILENCE_DB = 35.0
"""Frames this far below the loudest are leading or trailing silence."""
MATCH_DISTANCE = 0.35
"""Mean aligned distance under which a phrase counts as heard: espeak-ng
speech through Chromium's microphone path (resampled, gain-controlled,
clipped) measured 0.23 from its phrase, other phrases 0.45 and more."""

type Features = NDArray[np.float64]


def _mel(hz: NDArray[np.float64] | float) -> NDArray[np.float64]:
    return np.asarray(2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0))


def _filterbank(rate: int, size: int) -> NDArray[np.float64]:
    """Triangular mel filters over the FFT bins up to MAX_HZ."""
    bins = np.fft.rfftfreq(size, 1.0 / rate)
    edges = np.linspace(_mel(60.0), _mel(min(MAX_HZ, rate / 2)), BANDS + 2)
    hz = 700.0 * (10.0 ** (edges / 2595.0) - 1.0)
    bank = np.zeros((BANDS, bins.size))
    for band in range(BANDS):
        low, mid, high = hz[band : band + 3]
        rising = (bins - low) / (mid - low)
        falling = (high - bins) / (high - mid)
        bank[band] = np.clip(np.minimum(rising, falling), 0.0, None)
    return bank


def features(pcm: bytes, rate: int) -> Features:
    """Return normalized log mel energies (frames x bands) of PCM16 speech."""
    samples = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float64)
    frame, hop = rate * FRAME_MS // 1000, rate * HOP_MS // 1000
    if samples.size < frame or np.abs(samples).max() < SPEECH_PEAK:
        return np.zeros((0, BANDS))
    count = 1 + (samples.size - frame) // hop
    index = np.arange(frame)[None, :] + hop * np.arange(count)[:, None]
    frames = samples[index] * np.hanning(frame)
    size = 1 << (frame - 1).bit_length()
    power = np.abs(np.fft.rfft(frames, size)) ** 2
    energy = 10.0 * np.log10(power @ _filterbank(rate, size).T + 1e-3)
    loudness = energy.max(axis=1)
    voiced = np.flatnonzero(loudness > loudness.max() - SILENCE_DB)
    if voiced[-1] + 1 - voiced[0] < MIN_FRAMES:
        return np.zeros((0, BANDS))
    energy = energy[voiced[0] : voiced[-1] + 1]
    energy -= energy.mean(axis=0)
    normalized: Features = energy / (energy.std() + 1e-9)
    return normalized


def distance(heard: Features, reference: Features) -> float:
    """Mean frame distance along the best time alignment (inf if empty)."""
    if not heard.size or not reference.size:
        return float("inf")
    cost = np.sqrt(((heard[:, None, :] - reference[None, :, :]) ** 2).mean(axis=2))
    rows, cols = cost.shape
    total = np.full((rows + 1, cols + 1), np.inf)
    total[0, 0] = 0.0
    for row in range(1, rows + 1):
        previous, current = total[row - 1], total[row]
        # Diagonal and vertical steps at once, then horizontal ones in order.
        current[1:] = cost[row - 1] + np.minimum(previous[:-1], previous[1:])
        for col in range(1, cols + 1):
            current[col] = min(current[col], cost[row - 1, col - 1] + current[col - 1])
    return float(total[rows, cols] / (rows + cols))


@cache
def _reference(phrase: str, rate: int) -> Features:
    return features(speech(phrase, rate), rate)


def closest_phrase(
    pcm: bytes, rate: int, phrases: Sequence[str], limit: float = MATCH_DISTANCE
) -> str | None:
    """Return the phrase whose espeak-ng speech sounds like `pcm`, or None."""
    heard = features(pcm, rate)
    scored = sorted((distance(heard, _reference(p, rate)), p) for p in phrases)
    if scored and scored[0][0] < limit:
        return scored[0][1]
    return None
