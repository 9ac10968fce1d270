"""Debian's Chromium, headless, driven by Playwright, with a fake microphone."""

from __future__ import annotations

from collections.abc import AsyncIterator
import contextlib
from pathlib import Path
import wave

from playwright.async_api import Browser, Page, async_playwright, expect

from tests.fake_live.speech import silence, speech
from tests.instance.provision import Owner

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these Chromium calls Google's hosts, refused on closed networks.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
)
VIEWPORT = {"width": 1280, "height": 900}
TIMEOUT_MS = 20_000
"""Bound of every page action and wait."""
MIC_RATE = 16000

expect.set_options(timeout=TIMEOUT_MS)


def write_microphone(path: Path, text: str) -> Path:
    """Write the espeak-ng speech of `text` as the fake microphone's WAV.

    Half a second of silence before (the dialog starts listening), two and a
    half after (the pipeline's voice activity detection ends the command).
    """
    pcm = silence(500, MIC_RATE) + speech(text, MIC_RATE) + silence(2500, MIC_RATE)
    with wave.open(str(path), "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(MIC_RATE)
        file.writeframes(pcm)
    return path


@contextlib.asynccontextmanager
async def chromium(microphone: Path) -> AsyncIterator[Browser]:
    """Launch headless Chromium whose microphone plays `microphone` once."""
    flags = [*FLAGS, f"--use-file-for-fake-audio-capture={microphone}%noloop"]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=flags, headless=True, timeout=TIMEOUT_MS
        )
        try:
            yield browser
        finally:
            await browser.close()


async def log_in(browser: Browser, url: str, owner: Owner) -> Page:
    """Open Home Assistant and log in through its login page; the page."""
    context = await browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    await page.goto(url)
    await page.get_by_role("textbox", name="Username").fill(owner.username)
    await page.get_by_role("textbox", name="Password").fill(owner.password)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url(f"{url}/home/**")
    return page
