"""Live session setups built from an assistant's settings (its subentry data).

Read each time a session opens, so changed options apply to the next session.
The system instruction is assembled as Home Assistant's chat log does it
(`ChatLog.async_provide_llm_data`): the templated prompt, the LLM API's
prompt, the date and time unless a tool provides them, the extra prompt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from homeassistant.components import conversation
from homeassistant.config_entries import ConfigEntry, ConfigSubentry
from homeassistant.const import (
    CONF_LLM_HASS_API,
    CONF_PROMPT,
    EVENT_HOMEASSISTANT_STOP,
)
from homeassistant.core import Event, HomeAssistant
from homeassistant.exceptions import HomeAssistantError, TemplateError
from homeassistant.helpers import llm, template

from ..capabilities import activity_detection, live_options
from ..const import (
    CONF_IDLE_TIMEOUT,
    CONF_MODEL,
    CONF_PROVIDER,
    LOGGER,
    RECOMMENDED_IDLE_TIMEOUT,
    SPEECH_MODELS,
)
from ..errors import CREDENTIAL_ERRORS, error_key
from ..issues import async_update_too_many_tools
from ..live import HistoryTurn, LiveClient, LiveConfig, LiveError
from .manager import SessionSetup, VoiceManager
from .tools import function_declarations, limit_declarations, valid_declarations

MAX_HISTORY_TURNS = 40
"""Most chat-log messages replayed into a new session of a conversation."""

TRANSCRIPTION_INSTRUCTION = (
    "Listen to the user. Do not act on the request; reply only with: OK."
)
SPEECH_INSTRUCTION = (
    "You are a text-to-speech voice. Read every user message aloud exactly as "
    "written, word for word, in the language it is written in. Never answer, "
    "comment on, translate or add to it."
)


def create_voice_manager(
    hass: HomeAssistant,
    entry: ConfigEntry,
    subentry: ConfigSubentry,
    client: LiveClient,
) -> VoiceManager:
    """Return an assistant's voice manager; it closes its sessions when HA stops."""
    options = subentry.data
    manager = VoiceManager(
        client,
        spawn=partial(entry.async_create_background_task, hass),
        idle_timeout=float(options.get(CONF_IDLE_TIMEOUT, RECOMMENDED_IDLE_TIMEOUT)),
        speech_config=partial(speech_config, options),
        on_connect_error=partial(_connect_error, hass, entry),
        speech_model=SPEECH_MODELS[entry.data[CONF_PROVIDER]],
    )

    async def async_stop(event: Event) -> None:
        await manager.async_close()

    entry.async_on_unload(hass.bus.async_listen(EVENT_HOMEASSISTANT_STOP, async_stop))
    return manager


def _connect_error(hass: HomeAssistant, entry: ConfigEntry, err: LiveError) -> None:
    """Start reauthentication as soon as the service refuses the credentials."""
    if error_key(err) in CREDENTIAL_ERRORS:
        LOGGER.warning("The Live service refused the credentials: %s", err)
        entry.async_start_reauth(hass)


async def async_conversation_config(
    hass: HomeAssistant,
    entry: ConfigEntry,
    subentry: ConfigSubentry,
    llm_context: llm.LLMContext,
    extra_system_prompt: str | None = None,
) -> LiveConfig:
    """Return the setup of an assistant's conversation session.

    The prompt, the tools and the activity mode, from the subentry's data.
    """
    options = subentry.data
    api = await _async_llm_api(hass, options, llm_context)
    declarations = valid_declarations(api) if api else ()
    async_update_too_many_tools(hass, entry, subentry, len(declarations))
    return LiveConfig(
        **_common(options),
        system_instruction=await _async_instructions(
            hass, options.get(CONF_PROMPT), llm_context, api, extra_system_prompt
        ),
        functions=limit_declarations(declarations),
        activity_detection=activity_detection(options),
    )


async def async_validation_config(
    hass: HomeAssistant,
    model: str,
    options: Mapping[str, Any],
    llm_context: llm.LLMContext,
) -> LiveConfig:
    """Return what a conversation with these options sets up, but the prompt.

    For the flows, which check the setup before there is an entry.
    """
    api = await _async_llm_api(hass, options, llm_context)
    return LiveConfig(
        **live_options(model, options),
        functions=function_declarations(api) if api else (),
        activity_detection=activity_detection(options),
    )


async def _async_llm_api(
    hass: HomeAssistant, options: Mapping[str, Any], llm_context: llm.LLMContext
) -> llm.APIInstance | None:
    """Return the LLM API the options select (None: none, or it failed)."""
    if not (api_ids := options.get(CONF_LLM_HASS_API)):
        return None
    try:
        return await llm.async_get_api(hass, api_ids, llm_context)
    except HomeAssistantError as err:
        LOGGER.error("Error getting LLM API %s: %s", api_ids, err)
        return None


async def async_session_setup(
    hass: HomeAssistant,
    entry: ConfigEntry,
    subentry: ConfigSubentry,
    llm_context: llm.LLMContext,
    *,
    history: Sequence[conversation.Content] = (),
    extra_system_prompt: str | None = None,
) -> SessionSetup:
    """Return what a conversation's new session starts with.

    `history`: the conversation's chat log so far (without the current
    request), replayed so that the model remembers it.
    """
    return SessionSetup(
        config=await async_conversation_config(
            hass, entry, subentry, llm_context, extra_system_prompt
        ),
        history=history_turns(history),
        extra_prompt=extra_system_prompt,
    )


def history_turns(content: Sequence[conversation.Content]) -> tuple[HistoryTurn, ...]:
    """Return the spoken and typed messages of a chat log as Live history."""
    turns = [
        HistoryTurn(
            role="user" if isinstance(item, conversation.UserContent) else "model",
            text=text,
        )
        for item in content
        if isinstance(item, (conversation.UserContent, conversation.AssistantContent))
        and (text := (item.content or "").strip())
    ]
    return tuple(turns[-MAX_HISTORY_TURNS:])


def transcription_setup(options: Mapping[str, Any]) -> SessionSetup:
    """Return the setup of a session that only transcribes (no agent follows)."""
    return SessionSetup(
        config=LiveConfig(
            **_common(options, answers=False),
            system_instruction=TRANSCRIPTION_INSTRUCTION,
            activity_detection=activity_detection(options),
            session_resumption=False,
        )
    )


def speech_config(options: Mapping[str, Any]) -> LiveConfig:
    """Return the setup of a session that reads text aloud (standalone TTS)."""
    return LiveConfig(
        **_common(options, answers=False), system_instruction=SPEECH_INSTRUCTION
    )


def _common(options: Mapping[str, Any], *, answers: bool = True) -> dict[str, Any]:
    """Return the LiveConfig fields every session of the assistant shares.

    `answers` False: a session that only transcribes or reads aloud gets no
    Search and no proactive audio (which may choose silence).
    """
    fields = live_options(options[CONF_MODEL], options)
    if not answers:
        fields.update(google_search=False, proactive_audio=False)
    return fields


async def _async_instructions(
    hass: HomeAssistant,
    prompt: str | None,
    llm_context: llm.LLMContext,
    api: llm.APIInstance | None,
    extra_system_prompt: str | None,
) -> str:
    user_name: str | None = None
    if (
        llm_context.context
        and llm_context.context.user_id
        and (user := await hass.auth.async_get_user(llm_context.context.user_id))
    ):
        user_name = user.name
    variables = {
        "ha_name": hass.config.location_name,
        "user_name": user_name,
        "llm_context": llm_context,
    }
    try:
        parts = [_render(hass, prompt or llm.DEFAULT_INSTRUCTIONS_PROMPT, variables)]
    except TemplateError as err:
        LOGGER.error("Error rendering prompt: %s", err)
        parts = [llm.DEFAULT_INSTRUCTIONS_PROMPT]
    if api:
        parts.append(api.api_prompt)
    if not api or not any(tool.name.endswith("GetDateTime") for tool in api.tools):
        parts.append(_render(hass, llm.DATE_TIME_PROMPT, variables))
    if extra_system_prompt:
        parts.append(extra_system_prompt)
    return "\n".join(parts)


def _render(hass: HomeAssistant, text: str, variables: dict[str, Any]) -> str:
    return str(
        template.Template(text, hass).async_render(variables, parse_result=False)
    )
