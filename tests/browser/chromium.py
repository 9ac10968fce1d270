"""Debian's Chromium, headless, driven by Playwright, with a fake microphone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import contextlib
import io
from pathlib import Path
import shutil
import wave

import numpy as np
from PIL import Image
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.fake_live.speech import silence, speech
from tests.instance.provision import Owner

CHROMIUM_NAMES = ("chromium", "chromium-browser")
"""Debian's and Ubuntu's names of the browser (scripts/setup installs it)."""
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
SCREENSHOT_CHANGED = 0.005
"""Share of pixels that must differ before a screenshot file is rewritten.

Below it the difference is a clock or a rendering jitter, and the committed
file stays as it is (the tree stays clean after a test run)."""
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


def chromium_executable() -> str:
    """Return the path of the installed Chromium (AssertionError when none is)."""
    for name in CHROMIUM_NAMES:
        if path := shutil.which(name):
            return path
    raise AssertionError("Chromium is not installed: run scripts/setup")


async def save_screenshot(page: Page, path: Path) -> None:
    """Write a screenshot of `page` to `path`, unless it looks as the file does.

    Transitions still running (a panel opening) are taken at their end.
    """
    png = await page.screenshot(animations="disabled")
    await asyncio.to_thread(_write_if_changed, path, png)


def _write_if_changed(path: Path, png: bytes) -> None:
    if path.exists():
        with Image.open(path) as old_file, Image.open(io.BytesIO(png)) as new_file:
            old = np.asarray(old_file.convert("RGB"), dtype=np.int16)
            new = np.asarray(new_file.convert("RGB"), dtype=np.int16)
        if old.shape == new.shape:
            changed = (np.abs(old - new).max(axis=2) > 16).mean()
            if changed < SCREENSHOT_CHANGED:
                return
    path.write_bytes(png)


@contextlib.asynccontextmanager
async def chromium(microphone: Path) -> AsyncIterator[Browser]:
    """Launch headless Chromium whose microphone plays `microphone` once."""
    flags = [*FLAGS, f"--use-file-for-fake-audio-capture={microphone}%noloop"]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium_executable(),
            args=flags,
            headless=True,
            timeout=TIMEOUT_MS,
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
