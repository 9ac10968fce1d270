"""Real speech for tests: espeak-ng + sox PCM, a disk cache and a fake STT.

`speech(text, rate)` returns PCM16LE mono of `text` spoken by espeak-ng and
resampled by sox. Results are cached on disk (per text, rate and voice) and in
memory, and every result is remembered in a registry so that the fake server
can "recognise" audio a client sends: `recognize(pcm, rate)` returns the text
whose speech occurs in `pcm`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
import hashlib
import os
from pathlib import Path
import subprocess
import tempfile

VOICE = "en-us"
WORDS_PER_MINUTE = 175
_VERSION = "1"  # bump to invalidate the disk cache

_cache_dir: Path | None = None
_memory: dict[tuple[str, int], bytes] = {}
_registry: dict[int, dict[str, bytes]] = {}


def set_cache_dir(path: Path | None) -> None:
    """Store generated speech under `path` (the plugin uses pytest's cache)."""
    global _cache_dir  # noqa: PLW0603
    _cache_dir = path


def cache_dir() -> Path:
    """Return the folder holding cached speech files."""
    path = _cache_dir or Path(tempfile.gettempdir()) / "gemini-live-fake-speech"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _cache_file(text: str, rate: int) -> Path:
    key = f"{_VERSION}\0{VOICE}\0{WORDS_PER_MINUTE}\0{rate}\0{text}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return cache_dir() / f"{digest}-{rate}.pcm"


def _commands(rate: int) -> tuple[list[str], list[str]]:
    espeak = ["espeak-ng", "-v", VOICE, "-s", str(WORDS_PER_MINUTE)]
    espeak += ["--stdin", "--stdout"]
    sox = ["sox", "-D", "-t", "wav", "-", "-t", "raw", "-e", "signed-integer"]
    sox += ["-b", "16", "-c", "1", "-r", str(rate), "-L", "-"]
    return espeak, sox


def _remember(text: str, rate: int, pcm: bytes) -> bytes:
    _memory[text, rate] = pcm
    if pcm:
        _registry.setdefault(rate, {})[text] = pcm
    return pcm


def _cached(text: str, rate: int) -> bytes | None:
    if (pcm := _memory.get((text, rate))) is not None:
        return _remember(text, rate, pcm)
    path = _cache_file(text, rate)
    if path.exists():
        return _remember(text, rate, path.read_bytes())
    return None


def _store(text: str, rate: int, pcm: bytes) -> bytes:
    path = _cache_file(text, rate)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "wb") as file:
        file.write(pcm)
    Path(tmp).replace(path)  # atomic, safe with pytest-xdist workers
    return _remember(text, rate, pcm)


def speech(text: str, rate: int = 24000) -> bytes:
    """PCM16LE mono of `text` spoken by espeak-ng, at `rate` Hz (cached).

    Use rate=16000 for microphone input a client sends, 24000 for model audio.
    An empty text gives b"".
    """
    if not text.strip():
        return b""
    if (pcm := _cached(text, rate)) is not None:
        return pcm
    espeak, sox = _commands(rate)
    wav = subprocess.run(espeak, input=text.encode(), capture_output=True, check=True)  # noqa: S603
    raw = subprocess.run(sox, input=wav.stdout, capture_output=True, check=True)  # noqa: S603
    return _store(text, rate, raw.stdout)


async def _run(cmd: list[str], data: bytes) -> bytes:
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(data)
    if proc.returncode:
        raise RuntimeError(f"{cmd[0]} failed: {err.decode(errors='replace')}")
    return out


async def async_speech(text: str, rate: int = 24000) -> bytes:
    """`speech()` without blocking the event loop (used by the server)."""
    if not text.strip():
        return b""
    if (pcm := _cached(text, rate)) is not None:
        return pcm
    espeak, sox = _commands(rate)
    raw = await _run(sox, await _run(espeak, text.encode()))
    return _store(text, rate, raw)


def silence(ms: int, rate: int = 16000) -> bytes:
    """`ms` milliseconds of digital silence (PCM16LE mono)."""
    return bytes(2 * (rate * ms // 1000))


def chunks(pcm: bytes, ms: int = 20, rate: int = 16000) -> Iterator[bytes]:
    """Split PCM16 mono into `ms`-millisecond chunks (the last may be shorter)."""
    size = 2 * (rate * ms // 1000)
    for start in range(0, len(pcm), size):
        yield pcm[start : start + size]


def duration(pcm: bytes, rate: int) -> float:
    """Seconds of PCM16 mono audio."""
    return len(pcm) / (2 * rate)


def recognize(pcm: bytes, rate: int = 16000) -> str | None:
    """Fake STT: the texts whose `speech()` audio occurs in `pcm`, in order.

    A registered utterance matches when its PCM occurs in `pcm` byte for byte,
    or when its middle half does (tolerates clipped edges). Overlapping matches
    keep the longest utterance; several are joined with a space. None when
    nothing matches.
    """
    spans: list[tuple[int, int, str]] = []
    for text, ref in _registry.get(rate, {}).items():
        if (start := pcm.find(ref)) >= 0:
            spans.append((start, start + len(ref), text))
        elif len(ref) >= 64:
            quarter = len(ref) // 8 * 2
            if (middle := pcm.find(ref[quarter : len(ref) - quarter])) >= 0:
                spans.append((middle - quarter, middle - quarter + len(ref), text))
    chosen: list[tuple[int, int, str]] = []
    for span in sorted(spans, key=lambda s: s[0] - s[1]):  # longest first
        if all(span[1] <= c[0] or span[0] >= c[1] for c in chosen):
            chosen.append(span)
    return " ".join(text for *_, text in sorted(chosen)) or None
