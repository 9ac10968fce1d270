"""Real speech for tests: espeak-ng + sox PCM, a disk cache and a fake STT.

`speech(text, rate)` returns PCM16LE mono of `text` spoken by espeak-ng and
resampled by sox. Results are cached on disk (per text, rate and voice) and in
memory, and every result is remembered in a registry so that the fake server
can "recognise" audio a client sends: `recognize(pcm, rate)` returns the text
whose speech occurs in `pcm`, and `SpeechStream` hears the words of registered
speech while its audio is still arriving.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
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


# ------------------------------------------------------------ streaming STT

_ANCHOR = 64
"""Bytes of an utterance's first sound that must arrive to start a match."""


@dataclass(frozen=True, slots=True)
class _Utterance:
    """A registered utterance prepared for streaming recognition."""

    text: str
    source: bytes
    core: bytes
    """The PCM without its leading and trailing digital silence."""
    words: tuple[str, ...]
    shares: tuple[float, ...]
    """Share of `core` by the end of each word (by characters)."""

    @classmethod
    def of(cls, text: str, pcm: bytes) -> _Utterance:
        start = (len(pcm) - len(pcm.lstrip(b"\0"))) // 2 * 2
        end = (len(pcm.rstrip(b"\0")) + 1) // 2 * 2
        words = tuple(text.split())
        total, shares = sum(map(len, words)) or 1, []
        for word in words:
            shares.append((shares[-1] if shares else 0) + len(word) / total)
        if shares:
            shares[-1] = 1.0  # no rounding short of the whole utterance
        return cls(text, pcm, pcm[start:end], words, tuple(shares))


_prepared: dict[tuple[int, str], _Utterance] = {}


def _utterances(rate: int) -> list[_Utterance]:
    """Return the registered utterances at `rate`, prepared (cached)."""
    out = []
    for text, pcm in _registry.get(rate, {}).items():
        utterance = _prepared.get((rate, text))
        if utterance is None or utterance.source is not pcm:
            utterance = _prepared[rate, text] = _Utterance.of(text, pcm)
        if len(utterance.core) >= _ANCHOR and utterance.words:
            out.append(utterance)
    return out


@dataclass(slots=True)
class _Match:
    """An utterance whose PCM the stream matches from `start` on, so far."""

    utterance: _Utterance
    start: int
    matched: int = 0

    @property
    def end(self) -> int:
        return self.start + self.matched

    def words(self) -> list[str]:
        """Return the words covered by the share of the utterance matched so far."""
        utterance = self.utterance
        share = self.matched / len(utterance.core)
        return list(utterance.words[: bisect_right(utterance.shares, share)])


class SpeechStream:
    """Incremental fake STT: the words of registered speech heard so far.

    `feed` PCM16 mono as it arrives; `words` grows while a registered
    utterance's PCM arrives byte for byte from its first sound on (digital
    silence at its edges ignored). A word counts as heard once the share of
    the utterance's audio received reaches the share of its characters up to
    the end of that word, so a whole utterance is heard only once all of its
    sound arrived. Candidates that diverge from the audio are dropped; of
    overlapping ones the longest match wins (candidates matching the very same
    audio keep only the words they agree on). Speech clipped at its start is
    not heard while streaming (`recognize` of the whole audio still finds it).
    """

    def __init__(self, rate: int = 16000) -> None:
        """Start an empty stream of PCM at `rate` Hz."""
        self.rate = rate
        self._pcm = bytearray()
        self._matches: list[_Match] = []

    def feed(self, pcm: bytes) -> list[str]:
        """Add received audio; return the words heard so far."""
        first = max(len(self._pcm) - _ANCHOR + 1, 0)  # starts not searched yet
        self._pcm += pcm
        self._matches = [m for m in self._matches if self._extend(m)]
        for utterance in _utterances(self.rate):
            anchor = utterance.core[:_ANCHOR]
            start = self._pcm.find(anchor, first)
            while start >= 0:
                match = _Match(utterance, start)
                if self._extend(match):
                    self._matches.append(match)
                start = self._pcm.find(anchor, start + 1)
        return self.words

    @property
    def words(self) -> list[str]:
        """The words heard so far, in the order spoken."""
        chosen: list[tuple[int, int, list[str]]] = []
        for match in sorted(self._matches, key=lambda m: -m.matched):
            words = match.words()
            for start, end, kept in chosen:
                if (start, end) == (match.start, match.end):
                    del kept[_common_prefix(kept, words) :]
                    break
                if match.start < end and start < match.end:
                    break
            else:
                chosen.append((match.start, match.end, words))
        return [
            word for *_, words in sorted(chosen, key=lambda c: c[0]) for word in words
        ]

    def _extend(self, match: _Match) -> bool:
        """Compare the newly arrived audio; False once it diverged."""
        core, done = match.utterance.core, match.matched
        count = min(len(core) - done, len(self._pcm) - match.end)
        if self._pcm[match.end : match.end + count] != core[done : done + count]:
            return False
        match.matched += count
        return True


def _common_prefix(first: list[str], second: list[str]) -> int:
    """Count the leading words two lists share."""
    count = 0
    for a, b in zip(first, second, strict=False):
        if a != b:
            break
        count += 1
    return count
