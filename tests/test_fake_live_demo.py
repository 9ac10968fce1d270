"""The fake server's demo model: standalone server, hearing by sound, times in words."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys

import aiohttp
import pytest

from custom_components.gemini_live.live import (
    ApiKeyCredentials,
    LiveClient,
    LiveConfig,
    LiveEndpoint,
    OutputTranscription,
    Provider,
    TurnComplete,
)
from tests.fake_live import silence, speech
from tests.fake_live.demo import HELP, PHRASES
from tests.fake_live.demo.hearing import closest_phrase
from tests.fake_live.demo.words import spoken_time
from tests.instance import REPOSITORY

MODEL = "gemini-2.5-flash-native-audio-preview-12-2025"


def through_sox(pcm: bytes, *effects: str, rate: int = 16000) -> bytes:
    """Run PCM16 mono through sox effects (resampling, gain, tempo)."""
    raw = ["-t", "raw", "-e", "signed-integer", "-b", "16", "-c", "1", "-L"]
    command = ["sox", *raw, "-r", str(rate), "-", *raw, "-r", str(rate), "-", *effects]
    return subprocess.run(command, input=pcm, capture_output=True, check=True).stdout  # noqa: S603


@pytest.mark.parametrize("phrase", PHRASES)
@pytest.mark.parametrize(
    "effects",
    [
        ("vol", "2.5"),  # louder, clipped
        ("vol", "0.3", "dither"),
        ("speed", "1.04", "rate", "16000"),
        ("highpass", "120", "lowpass", "6000"),
    ],
)
def test_phrase_heard_by_sound(phrase: str, effects: tuple[str, ...]) -> None:
    """Speech of a demo phrase altered as a microphone path alters it is heard."""
    pcm = silence(400) + through_sox(speech(phrase, 16000), *effects) + silence(800)
    assert closest_phrase(pcm, 16000, PHRASES) == phrase


@pytest.mark.parametrize(
    "sound",
    ["play some music in the living room", "hello there", "silence", "nothing"],
)
def test_other_sounds_not_heard(sound: str) -> None:
    """Other speech, silence and nothing match no phrase."""
    pcm = {"silence": silence(1500), "nothing": b""}.get(sound) or speech(sound, 16000)
    assert closest_phrase(pcm, 16000, PHRASES) is None


@pytest.mark.parametrize(
    ("hour", "minute", "said"),
    [
        (0, 0, "It is twelve o'clock in the morning."),
        (9, 5, "It is nine oh five in the morning."),
        (12, 30, "It is twelve thirty in the afternoon."),
        (17, 59, "It is five fifty nine in the afternoon."),
        (23, 14, "It is eleven fourteen in the evening."),
    ],
)
def test_spoken_time(hour: int, minute: int, said: str) -> None:
    """Times of day in words."""
    assert spoken_time(hour, minute) == said


def test_spoken_time_refuses_no_time() -> None:
    """A value that is no time of day is an error."""
    with pytest.raises(ValueError, match="24:00"):
        spoken_time(24, 0)


async def _answer(
    http: aiohttp.ClientSession, url: str, key: str, text: str, instruction: str
) -> str:
    """Type `text` to the model at `url`; the transcript of its answer.

    The last transcript fragment may come just after turnComplete (live-api.md
    3.2), so reading goes on for half a second after it.
    """
    endpoint = LiveEndpoint(provider=Provider.GEMINI_API, base_url=url)
    client = LiveClient(http, endpoint, ApiKeyCredentials(key))
    config = LiveConfig(model=MODEL, system_instruction=instruction)
    words: list[str] = []
    async with asyncio.timeout(15), await client.connect(config) as session:
        await session.send_text(text)
        events = session.receive()
        async for event in events:
            if isinstance(event, OutputTranscription):
                words.append(event.text)
            elif isinstance(event, TurnComplete):
                break
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.5):
                async for event in events:  # the fragments so far count
                    if isinstance(event, OutputTranscription):
                        words.append(event.text)  # noqa: PERF401
    return "".join(words).strip()


async def test_standalone_server(socket_enabled: None) -> None:
    """`python -m tests.fake_live` prints its URL and key, answers, stops on SIGTERM."""
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "tests.fake_live", "--key", "demo-key"),
        cwd=REPOSITORY,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(15):
            url = (
                (await process.stdout.readline()).decode().removeprefix("url: ").strip()
            )
            key = (
                (await process.stdout.readline()).decode().removeprefix("key: ").strip()
            )
        assert url.startswith("http://127.0.0.1:")
        assert key == "demo-key"
        async with aiohttp.ClientSession() as http:
            clock = "Current time is 09:05:00. Today's date is 2026-12-02."
            assert (
                await _answer(http, url, key, "What time is it?", clock)
                == "It is nine oh five in the morning."
            )
            assert await _answer(http, url, key, "Sing a song", clock) == HELP
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            assert await process.wait() == 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
