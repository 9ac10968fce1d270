"""Home Assistant's own frontend in headless Chromium, on the demo setup.

One Home Assistant process (tests/instance, as scripts/develop provisions it)
on the fake Live server with the demo model. Through the browser: log in,
speak "turn on the kitchen light" into the Assist dialog's microphone, then
type a question; check what the user sees and hears and that the demo light
switched. The same run writes the README's screenshots (docs/screenshots/).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
import re

from playwright.async_api import Locator, Page, ViewportSize, expect
import pytest

from tests.fake_live import FakeLiveServer, recognize, speech
from tests.fake_live.demo import demo_responder
from tests.fake_live.demo.words import spoken_time
from tests.instance import (
    REPOSITORY,
    GeminiApiAccount,
    HomeAssistantClient,
    Owner,
    home_assistant,
    provision,
    sign_in,
)

from .chromium import MIC_RATE, chromium, log_in, save_screenshot, write_microphone

pytestmark = pytest.mark.timeout(180)

SCREENSHOTS = REPOSITORY / "docs" / "screenshots"
SPOKEN = "turn on the kitchen light"
ANSWER = "The kitchen lights are on."
LIGHT = "light.kitchen_lights"
REPLY_RATE = 24000
OPTIONS_VIEWPORT: ViewportSize = {"width": 1280, "height": 1900}


async def decode(audio: bytes, rate: int) -> bytes:
    """Decode any audio file to PCM16 mono at `rate` with ffmpeg."""
    ffmpeg = await asyncio.create_subprocess_exec(
        *("ffmpeg", "-v", "error", "-i", "pipe:0"),
        *("-f", "s16le", "-ac", "1", "-ar", str(rate), "pipe:1"),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(20):
        out, err = await ffmpeg.communicate(audio)
    assert ffmpeg.returncode == 0, err.decode(errors="replace")
    return out


def assist_dialog(page: Page) -> Locator:
    """Return the Assist dialog."""
    return page.locator("ha-voice-command-dialog")


async def open_assist(page: Page) -> Locator:
    """Open the Assist dialog with its keyboard shortcut ("a")."""
    await page.keyboard.press("a")
    dialog = assist_dialog(page)
    await expect(dialog.get_by_text("How can I assist?")).to_be_visible()
    return dialog


async def speak(page: Page, dialog: Locator) -> str:
    """Press the microphone button; the URL of the answer's audio it played."""
    async with page.expect_response(lambda r: "/api/tts_proxy/" in r.url) as audio:
        await dialog.get_by_role("button", name="Start listening").click()
        await expect(dialog.get_by_text(SPOKEN, exact=True)).to_be_visible()
        await expect(dialog.get_by_text(ANSWER, exact=True)).to_be_visible()
    response = await audio.value
    assert response.ok, response.status
    return response.url


async def ask_time(dialog: Locator) -> str:
    """Type "what time is it"; the answer shown."""
    box = dialog.get_by_role("textbox", name="Enter a request")
    await box.fill("what time is it")
    await box.press("Enter")
    answer = dialog.get_by_text(
        re.compile(r"^It is .+ in the (morning|afternoon|evening)\.$")
    )
    await expect(answer).to_be_visible()
    return (await answer.inner_text()).strip()


async def screenshot_config_flow(page: Page, url: str) -> None:
    """Screenshots of a new entry's flow (service, key) and an assistant's options."""
    await page.goto(f"{url}/config/integrations/dashboard/add?domain=gemini_live")
    await page.get_by_role("button", name="OK").click()  # "Set up Gemini Live?"
    flow = page.locator("dialog-data-entry-flow")
    await expect(flow.get_by_text("Choose a service")).to_be_visible()
    # The step's description and field help render after its title.
    await expect(flow.get_by_text("Gemini API uses an API key")).to_be_visible()
    await save_screenshot(page, SCREENSHOTS / "config-flow-service.png")
    await flow.get_by_role("button", name="Submit").click()
    # The panel's content is "visible" to Playwright even while it is closed.
    advanced = flow.locator("ha-expansion-panel", has_text="Advanced settings")
    await advanced.get_by_text("Advanced settings").click()
    await expect(advanced).to_have_attribute("expanded", "")
    await save_screenshot(page, SCREENSHOTS / "config-flow-gemini-api.png")
    await flow.get_by_role("button", name="Close").click()

    await page.goto(f"{url}/config/integrations/integration/gemini_live")
    await page.get_by_role("button", name="Reconfigure assistant").click()
    await flow.get_by_role("button", name="Submit").click()  # keeps the model
    await expect(flow.get_by_text("End of speech detection")).to_be_visible()
    await page.set_viewport_size(OPTIONS_VIEWPORT)  # the whole form, unscrolled
    await save_screenshot(page, SCREENSHOTS / "assistant-options.png")
    await flow.get_by_role("button", name="Close").click()


async def test_assist_dialog_in_chromium(
    fake_live: FakeLiveServer, tmp_path: Path
) -> None:
    """Speak and type in the Assist dialog; the answers, their audio, the light."""
    fake_live.responder = demo_responder
    microphone = write_microphone(tmp_path / "microphone.wav", SPOKEN)
    owner = Owner.create()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    account = GeminiApiAccount(api_key=fake_live.api_key, base_url=fake_live.base_url)
    async with (
        home_assistant(tmp_path / "config") as ha,
        HomeAssistantClient(ha.url, await sign_in(ha.url, owner)) as client,
    ):
        assistant = await provision(client, account)
        assert assistant is not None
        # As a browser or the companion app: microphone frames over the
        # WebSocket (the fake's recogniser hears the very espeak-ng bytes).
        run = await client.run_pipeline(speech("what time is it", MIC_RATE))
        assert run.error is None, run.error
        assert run.heard == "what time is it"
        assert run.speech.startswith("It is ")
        _, audio = await client.fetch(run.tts_url)
        assert recognize(await decode(audio, REPLY_RATE), REPLY_RATE) == run.speech

        await client.call_service("light", "turn_off", {"entity_id": LIGHT})
        await client.wait_state(LIGHT, "off")

        async with chromium(microphone) as browser:
            page = await log_in(browser, ha.url, owner)
            dialog = await open_assist(page)
            # The preferred pipeline is the one the dialog runs.
            pipeline = dialog.locator("ha-button[slot=trigger]")
            await expect(pipeline).to_have_text("Gemini Live")

            tts_url = await speak(page, dialog)
            assert (await client.state(LIGHT))["state"] == "on"
            content_type, audio = await client.fetch(tts_url)
            assert content_type.startswith("audio/")
            assert recognize(await decode(audio, REPLY_RATE), REPLY_RATE) == ANSWER

            now = datetime.now(UTC)
            answer = await ask_time(dialog)
            said = {
                spoken_time(t.hour, t.minute)
                for t in (
                    now - timedelta(minutes=1),
                    now,
                    now + timedelta(minutes=1),
                )
            }
            assert answer in said
            await save_screenshot(page, SCREENSHOTS / "assist-dialog.png")
            await screenshot_config_flow(page, ha.url)

    errors = [
        line
        for line in ha.log_text().splitlines()
        if " ERROR " in line and "gemini_live" in line
    ]
    assert not errors, "\n".join(errors)
