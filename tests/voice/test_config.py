"""Session setups from the entry options; standalone speech."""

from __future__ import annotations

from typing import Any

from homeassistant.components import conversation
from homeassistant.const import CONF_LLM_HASS_API, CONF_PROMPT
from homeassistant.core import Context
from homeassistant.helpers import llm
import pytest
from pytest_homeassistant_custom_component.common import MockUser

from custom_components.gemini_live.const import (
    CONF_LANGUAGE,
    CONF_TEMPERATURE,
    CONF_VOICE,
    RECOMMENDED_OPTIONS,
)
from custom_components.gemini_live.voice.config import SPEECH_INSTRUCTION
from tests.fake_live import Reply

from .conftest import Voice


def _instruction(setup: dict[str, Any]) -> str:
    return str(setup["systemInstruction"]["parts"][0]["text"])


@pytest.mark.parametrize(
    "entry_options",
    [
        {
            **RECOMMENDED_OPTIONS,
            CONF_PROMPT: "You serve {{ user_name }} at {{ ha_name }}.",
            CONF_VOICE: "Puck",
            CONF_LANGUAGE: "de-DE",
            CONF_TEMPERATURE: 0.5,
        }
    ],
)
async def test_setup_from_options(voice: Voice, hass_admin_user: MockUser) -> None:
    """Prompt (templated), extra prompt, voice, language, temperature, tools."""
    voice.server.queue_reply(Reply(text="Hi."))

    await conversation.async_converse(
        voice.hass,
        "hello",
        None,
        Context(user_id=hass_admin_user.id),
        agent_id=voice.conversation_entity,
        extra_system_prompt="Be brief.",
    )

    config = voice.server.connections[-1].config
    instruction = _instruction(config)
    assert instruction.startswith(f"You serve {hass_admin_user.name} at test home.\n")
    assert instruction.endswith("\nBe brief.")
    generation = config["generationConfig"]
    assert generation["responseModalities"] == ["AUDIO"]
    assert generation["temperature"] == 0.5
    assert generation["thinkingConfig"] == {"thinkingBudget": 0}
    speech_config = generation["speechConfig"]
    assert speech_config["voiceConfig"]["prebuiltVoiceConfig"]["voiceName"] == "Puck"
    assert speech_config["languageCode"] == "de-DE"
    assert config["tools"][0]["functionDeclarations"]
    assert voice.hass.states.get(voice.conversation_entity).attributes[
        "supported_features"
    ] == (conversation.ConversationEntityFeature.CONTROL)


@pytest.mark.parametrize(
    "entry_options", [{**RECOMMENDED_OPTIONS, CONF_PROMPT: "Hello {{ broken"}]
)
async def test_broken_prompt_template(voice: Voice) -> None:
    """A broken template: the session uses the default prompt, the agent errs."""
    voice.server.queue_reply(Reply(text="Hi."))

    run = await voice.run("good morning")

    instruction = _instruction(voice.server.connections[-1].config)
    assert instruction.startswith(llm.DEFAULT_INSTRUCTIONS_PROMPT)
    assert run.speech == "Sorry, I had a problem with my template"


@pytest.mark.parametrize(
    "entry_options", [{**RECOMMENDED_OPTIONS, CONF_LLM_HASS_API: ["missing"]}]
)
async def test_missing_llm_api(voice: Voice) -> None:
    """An unknown LLM API: no tools in the session, the agent reports it."""
    voice.server.queue_reply(Reply(text="Hi."))

    run = await voice.run("good morning")

    assert "tools" not in voice.server.connections[-1].config
    assert run.speech == "Error preparing LLM API"


@pytest.mark.parametrize("entry_options", [{}])
async def test_no_llm_api(voice: Voice) -> None:
    """Without an LLM API the agent has no CONTROL feature and no tools."""
    voice.server.queue_reply(Reply(text="Hi."))

    run = await voice.run("good morning")

    assert run.speech == "Hi."
    config = voice.server.connections[-1].config
    assert "tools" not in config
    assert "Current time is" in _instruction(config)
    state = voice.hass.states.get(voice.conversation_entity)
    assert not state.attributes["supported_features"]
    assert conversation.async_get_conversation_languages(
        voice.hass, voice.conversation_entity
    ) == ("*")


async def test_speak(voice: Voice) -> None:
    """speak() has Gemini read text aloud in a session of its own."""
    voice.server.queue_reply(Reply(text="Good morning, everyone."))

    turn = await voice.manager.speak("Good morning, everyone.")
    audio = b"".join([chunk async for chunk in turn.audio_stream()])

    connection = voice.server.connections[-1]
    assert _instruction(connection.config) == SPEECH_INSTRUCTION
    assert "tools" not in connection.config
    assert connection.turns[0].text == "Good morning, everyone."
    assert audio == connection.audio_out
    assert turn.output_transcript == "Good morning, everyone."
    await connection.wait_closed()
    assert connection.closed_by == "client"
