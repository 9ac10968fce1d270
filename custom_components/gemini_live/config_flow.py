"""Config flow for the Gemini Live integration."""

from __future__ import annotations

from collections.abc import Mapping
import copy
import hashlib
import logging
import re
from typing import Any, Final, override

from homeassistant.config_entries import (
    SOURCE_USER,
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryData,
    ConfigSubentryFlow,
    SubentryFlowResult,
)
from homeassistant.const import (
    CONF_API_KEY,
    CONF_LLM_HASS_API,
    CONF_NAME,
    CONF_PROMPT,
)
from homeassistant.core import Context, HomeAssistant, callback
from homeassistant.data_entry_flow import section
from homeassistant.exceptions import TemplateError
from homeassistant.helpers import llm, template
from homeassistant.helpers.selector import (
    BooleanSelector,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TemplateSelector,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
import probatio
from yarl import URL

from .capabilities import (
    offers_search,
    supported_options,
    thinking_levels,
)
from .const import (
    ACTIVITY_DETECTION_MODES,
    CONF_ACTIVITY_DETECTION,
    CONF_AFFECTIVE_DIALOG,
    CONF_BASE_URL,
    CONF_GOOGLE_SEARCH,
    CONF_IDLE_TIMEOUT,
    CONF_LANGUAGE,
    CONF_LOCATION,
    CONF_MODEL,
    CONF_PROACTIVE_AUDIO,
    CONF_PROJECT_ID,
    CONF_PROVIDER,
    CONF_SERVICE_ACCOUNT,
    CONF_TEMPERATURE,
    CONF_THINKING_BUDGET,
    CONF_THINKING_LEVEL,
    CONF_VOICE,
    DEFAULT_AGENT_TITLE,
    DEFAULT_TITLE,
    DOMAIN,
    MAX_IDLE_TIMEOUT,
    MAX_THINKING_BUDGET,
    MIN_IDLE_TIMEOUT,
    MODELS,
    PROVIDER_GEMINI_API,
    PROVIDER_VERTEX_AI,
    PROVIDERS,
    RECOMMENDED_ACTIVITY_DETECTION,
    RECOMMENDED_AFFECTIVE_DIALOG,
    RECOMMENDED_GOOGLE_SEARCH,
    RECOMMENDED_IDLE_TIMEOUT,
    RECOMMENDED_LOCATION,
    RECOMMENDED_MODEL,
    RECOMMENDED_OPTIONS,
    RECOMMENDED_PROACTIVE_AUDIO,
    RECOMMENDED_TEMPERATURE,
    RECOMMENDED_THINKING_BUDGET,
    RECOMMENDED_VOICE,
    SUBENTRY_AGENT,
    VOICES,
)
from .errors import error_key
from .live import (
    InvalidServiceAccountError,
    LiveError,
    LiveInvalidArgumentError,
    LivePermissionError,
    ModelFamily,
    ServiceAccount,
    Thinking,
    model_family,
)
from .runtime import async_create_live_client, validation_model
from .voice.config import async_validation_config

_LOGGER = logging.getLogger(__name__)

SECTION_ADVANCED_SETTINGS = "advanced_settings"

API_KEY_URL = "https://aistudio.google.com/app/apikey"
SERVICE_ACCOUNT_KEY_URL = (
    "https://cloud.google.com/iam/docs/keys-create-delete#creating"
)

BASE_URL_SCHEMES = frozenset({"http", "https", "ws", "wss"})

# BCP-47 language tags as Gemini uses them: "vi", "en-US", "cmn-CN", "zh-Hans-CN".
LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z]{4})?(-(?:[A-Za-z]{2}|[0-9]{3}))?")

PROVIDER_SELECTOR = SelectSelector(
    SelectSelectorConfig(
        options=list(PROVIDERS),
        translation_key=CONF_PROVIDER,
        mode=SelectSelectorMode.LIST,
    )
)
API_KEY_SELECTOR = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))
SERVICE_ACCOUNT_SELECTOR = TextSelector(TextSelectorConfig(multiline=True))
TEXT_SELECTOR = TextSelector()
BOOLEAN_SELECTOR = BooleanSelector()
URL_SELECTOR = TextSelector(TextSelectorConfig(type=TextSelectorType.URL))


class InvalidBaseUrlError(ValueError):
    """The service endpoint entered is not an http(s) or ws(s) URL."""


def gemini_api_unique_id(api_key: str) -> str:
    """Return the unique id of a Gemini API account: a hash, never the key."""
    return hashlib.sha256(api_key.encode()).hexdigest()


def vertex_ai_unique_id(client_email: str, project_id: str) -> str:
    """Return the unique id of a Vertex AI service account in a project."""
    return f"{client_email}/{project_id}"


def _entry_title(provider: str, project_id: str | None = None) -> str:
    """Return the title of a new config entry."""
    if provider == PROVIDER_VERTEX_AI:
        return f"{DEFAULT_TITLE} (Vertex AI, {project_id})"
    return f"{DEFAULT_TITLE} (Gemini API)"


def _model_selector(provider: str) -> SelectSelector:
    """Return a selector of the native-audio Live models of a provider."""
    return SelectSelector(
        SelectSelectorConfig(
            options=[
                SelectOptionDict(
                    value=model,
                    label=f"{model} (legacy)" if model_family(model).legacy else model,
                )
                for model in MODELS[provider]
            ],
            custom_value=True,
            sort=False,
            mode=SelectSelectorMode.DROPDOWN,
        )
    )


def _advanced_settings_section() -> section:
    """Return the collapsed section holding the service endpoint."""
    return section(
        probatio.Schema({probatio.Optional(CONF_BASE_URL): URL_SELECTOR}),
        {"collapsed": True},
    )


def _base_url_from_input(user_input: Mapping[str, Any]) -> str | None:
    """Return the service endpoint entered, None for Google's own."""
    advanced: Mapping[str, Any] = user_input.get(SECTION_ADVANCED_SETTINGS) or {}
    raw: str = (advanced.get(CONF_BASE_URL) or "").strip()
    if not raw:
        return None
    try:
        url = URL(raw)
    except ValueError as err:
        raise InvalidBaseUrlError from err
    if url.scheme not in BASE_URL_SCHEMES or not url.host:
        raise InvalidBaseUrlError
    return raw


def _advanced_suggestions(base_url: str | None) -> dict[str, Any]:
    """Return the suggested values of the advanced settings section."""
    return {SECTION_ADVANCED_SETTINGS: {CONF_BASE_URL: base_url} if base_url else {}}


def _llm_context(hass: HomeAssistant) -> llm.LLMContext:
    """Return the LLM context of a conversation started from this flow."""
    return llm.LLMContext(
        platform=DOMAIN,
        context=Context(),
        language=hass.config.language,
        assistant="conversation",
        device_id=None,
    )


async def async_validate_input(
    hass: HomeAssistant, data: Mapping[str, Any], options: Mapping[str, Any]
) -> None:
    """Open a Live session with an assistant's conversation setup, then close it.

    `data`: the entry's data with the assistant's model. Raises the Live
    client's errors (LiveError subclasses).
    """
    client = await async_create_live_client(hass, data)
    config = await async_validation_config(
        hass, data[CONF_MODEL], options, _llm_context(hass)
    )
    session = await client.connect(config)
    await session.close()


_ERROR_FIELDS: Final = {
    "invalid_service_account": CONF_SERVICE_ACCOUNT,
    "invalid_location": CONF_LOCATION,
    "model_not_found": CONF_MODEL,
    "model_not_supported": CONF_MODEL,
    "option_rejected": CONF_MODEL,
}
"""The form field an error concerns; the others show at the top of the form."""

_REASON_FIELDS: Final = (
    ("thinking", CONF_THINKING_LEVEL),
    ("affective", CONF_AFFECTIVE_DIALOG),
    ("proactiv", CONF_PROACTIVE_AUDIO),
    ("googlesearch", CONF_GOOGLE_SEARCH),
    ("language", CONF_LANGUAGE),
    ("voice", CONF_VOICE),
    ("temperature", CONF_TEMPERATURE),
    ("activitydetection", CONF_ACTIVITY_DETECTION),
    ("functiondeclarations", CONF_LLM_HASS_API),
)
"""The option a refusal's reason names (lower case, without underscores)."""

_PROBED_OPTIONS: Final = (
    CONF_THINKING_LEVEL,
    CONF_AFFECTIVE_DIALOG,
    CONF_PROACTIVE_AUDIO,
    CONF_GOOGLE_SEARCH,
    CONF_LANGUAGE,
)
"""Options tried one at a time without when a refusal names no field."""


async def _async_rejected_option(
    hass: HomeAssistant,
    data: Mapping[str, Any],
    options: Mapping[str, Any],
    err: LiveError,
) -> str | None:
    """Return the option the model refused the setup for, if one is to blame.

    The reason names the field for some refusals; the usual "Request contains
    an invalid argument." names none, so each option set (other than the
    family's default) is left out in turn until the setup is accepted.
    """
    if not isinstance(err, (LiveInvalidArgumentError, LivePermissionError)):
        return None
    reason = err.reason.lower().replace("_", "")
    for needle, option in _REASON_FIELDS:
        if needle in reason:
            return option
    default_level = model_family(data[CONF_MODEL]).default_thinking_level
    for option in _PROBED_OPTIONS:
        value = options.get(option)
        if not value or (
            option == CONF_THINKING_LEVEL and value.upper() == default_level
        ):
            continue
        try:
            await async_validate_input(
                hass, data, {k: v for k, v in options.items() if k != option}
            )
        except LiveError:
            continue
        return option
    return None


async def _async_validate(
    hass: HomeAssistant,
    data: Mapping[str, Any],
    options: Mapping[str, Any],
    fields: set[str],
) -> dict[str, str]:
    """Validate entry data and options; return the form errors.

    An error that concerns one field is shown at that field when the form has
    it, otherwise at the model field or the top of the form.
    """
    try:
        await async_validate_input(hass, data, options)
    except LiveError as err:
        error = error_key(err)
        if error == "cannot_connect":
            _LOGGER.debug("Cannot open a Live session: %s", err)
        elif option := await _async_rejected_option(hass, data, options, err):
            _LOGGER.debug("The model refused the %s option: %s", option, err)
            if option in fields:
                return {option: "rejected_by_model"}
            error = "option_rejected"
    except Exception:
        _LOGGER.exception("Unexpected exception while opening a Live session")
        error = "unknown"
    else:
        return {}
    field = _ERROR_FIELDS.get(error, "base")
    return {field if field in fields else "base": error}


async def _async_validate_with_endpoint(
    hass: HomeAssistant,
    data: dict[str, Any],
    options: Mapping[str, Any],
    user_input: Mapping[str, Any],
    fields: set[str],
) -> dict[str, str]:
    """Put the form's service endpoint (if any) into `data`, then validate it."""
    try:
        base_url = _base_url_from_input(user_input)
    except InvalidBaseUrlError:
        return {"base": "invalid_url"}
    data.pop(CONF_BASE_URL, None)
    if base_url:
        data[CONF_BASE_URL] = base_url
    return await _async_validate(hass, data, options, fields)


def _first_agent(model: str) -> ConfigSubentryData:
    """Return the assistant a new entry starts with, on the recommended settings."""
    return ConfigSubentryData(
        subentry_type=SUBENTRY_AGENT,
        data={CONF_MODEL: model, **copy.deepcopy(RECOMMENDED_OPTIONS)},
        title=DEFAULT_AGENT_TITLE,
        unique_id=None,
    )


def _checked_agent(entry: ConfigEntry) -> tuple[str, Mapping[str, Any]]:
    """Return the model and settings a credentials check of `entry` uses."""
    model = validation_model(entry)
    for subentry in entry.get_subentries_of_type(SUBENTRY_AGENT):
        return model, subentry.data
    return model, RECOMMENDED_OPTIONS


def _render_prompt(hass: HomeAssistant, prompt: str) -> None:
    """Render an instructions template as the conversation agent will.

    Raises TemplateError when it does not render.
    """
    template.Template(prompt, hass).async_render(
        {
            "ha_name": hass.config.location_name,
            "user_name": None,
            "llm_context": _llm_context(hass),
        },
        parse_result=False,
    )


class GeminiLiveConfigFlow(ConfigFlow, domain=DOMAIN):
    """Handle a config flow for Gemini Live."""

    VERSION = 2
    MINOR_VERSION = 1

    def __init__(self) -> None:
        """Initialize the flow."""
        self._service_account = ""
        self._account: ServiceAccount

    @override
    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask which Google service to use."""
        if user_input is not None:
            if user_input[CONF_PROVIDER] == PROVIDER_VERTEX_AI:
                return await self.async_step_vertex_ai()
            return await self.async_step_gemini_api()
        return self.async_show_form(
            step_id="user",
            data_schema=probatio.Schema(
                {
                    probatio.Required(
                        CONF_PROVIDER, default=PROVIDER_GEMINI_API
                    ): PROVIDER_SELECTOR
                }
            ),
        )

    async def async_step_gemini_api(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for a Gemini Developer API key and the model."""
        errors: dict[str, str] = {}
        suggested: Mapping[str, Any] = {
            CONF_MODEL: RECOMMENDED_MODEL[PROVIDER_GEMINI_API]
        }
        if user_input is not None:
            suggested = user_input
            api_key: str = user_input[CONF_API_KEY].strip()
            await self.async_set_unique_id(gemini_api_unique_id(api_key))
            self._abort_if_unique_id_configured()
            model: str = user_input[CONF_MODEL].strip()
            data: dict[str, Any] = {
                CONF_PROVIDER: PROVIDER_GEMINI_API,
                CONF_API_KEY: api_key,
                CONF_MODEL: model,
            }
            errors = await _async_validate_with_endpoint(
                self.hass,
                data,
                RECOMMENDED_OPTIONS,
                user_input,
                {CONF_API_KEY, CONF_MODEL},
            )
            if not errors:
                del data[CONF_MODEL]
                return self.async_create_entry(
                    title=_entry_title(PROVIDER_GEMINI_API),
                    data=data,
                    subentries=[_first_agent(model)],
                )
        schema = probatio.Schema(
            {
                probatio.Required(CONF_API_KEY): API_KEY_SELECTOR,
                probatio.Required(CONF_MODEL): _model_selector(PROVIDER_GEMINI_API),
                probatio.Optional(
                    SECTION_ADVANCED_SETTINGS
                ): _advanced_settings_section(),
            }
        )
        return self.async_show_form(
            step_id="gemini_api",
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            errors=errors,
            description_placeholders={"api_key_url": API_KEY_URL},
        )

    async def async_step_vertex_ai(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for the JSON key of a Google Cloud service account."""
        errors: dict[str, str] = {}
        if user_input is not None:
            text: str = user_input[CONF_SERVICE_ACCOUNT].strip()
            try:
                self._account = await self.hass.async_add_executor_job(
                    ServiceAccount.from_json, text
                )
            except InvalidServiceAccountError:
                errors[CONF_SERVICE_ACCOUNT] = "invalid_service_account"
            else:
                self._service_account = text
                return await self.async_step_vertex_ai_project()
        return self.async_show_form(
            step_id="vertex_ai",
            data_schema=probatio.Schema(
                {probatio.Required(CONF_SERVICE_ACCOUNT): SERVICE_ACCOUNT_SELECTOR}
            ),
            errors=errors,
            description_placeholders={"key_url": SERVICE_ACCOUNT_KEY_URL},
        )

    async def async_step_vertex_ai_project(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for the project, the location and the model on Vertex AI."""
        errors: dict[str, str] = {}
        suggested: Mapping[str, Any] = {
            CONF_PROJECT_ID: self._account.project_id,
            CONF_LOCATION: RECOMMENDED_LOCATION,
            CONF_MODEL: RECOMMENDED_MODEL[PROVIDER_VERTEX_AI],
        }
        if user_input is not None:
            suggested = user_input
            project_id: str = user_input[CONF_PROJECT_ID].strip()
            await self.async_set_unique_id(
                vertex_ai_unique_id(self._account.client_email, project_id)
            )
            self._abort_if_unique_id_configured()
            model: str = user_input[CONF_MODEL].strip()
            data: dict[str, Any] = {
                CONF_PROVIDER: PROVIDER_VERTEX_AI,
                CONF_SERVICE_ACCOUNT: self._service_account,
                CONF_PROJECT_ID: project_id,
                CONF_LOCATION: user_input[CONF_LOCATION].strip(),
                CONF_MODEL: model,
            }
            errors = await _async_validate_with_endpoint(
                self.hass,
                data,
                RECOMMENDED_OPTIONS,
                user_input,
                {CONF_PROJECT_ID, CONF_LOCATION, CONF_MODEL},
            )
            if not errors:
                del data[CONF_MODEL]
                return self.async_create_entry(
                    title=_entry_title(PROVIDER_VERTEX_AI, project_id),
                    data=data,
                    subentries=[_first_agent(model)],
                )
        schema = probatio.Schema(
            {
                probatio.Required(CONF_PROJECT_ID): TEXT_SELECTOR,
                probatio.Required(CONF_LOCATION): TEXT_SELECTOR,
                probatio.Required(CONF_MODEL): _model_selector(PROVIDER_VERTEX_AI),
                probatio.Optional(
                    SECTION_ADVANCED_SETTINGS
                ): _advanced_settings_section(),
            }
        )
        return self.async_show_form(
            step_id="vertex_ai_project",
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            errors=errors,
            description_placeholders={"client_email": self._account.client_email},
        )

    async def async_step_reauth(
        self, entry_data: Mapping[str, Any]
    ) -> ConfigFlowResult:
        """Start reauthentication after the credentials were refused."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for a new API key or service-account key."""
        entry = self._get_reauth_entry()
        vertex = entry.data[CONF_PROVIDER] == PROVIDER_VERTEX_AI
        field = CONF_SERVICE_ACCOUNT if vertex else CONF_API_KEY
        errors: dict[str, str] = {}
        if user_input is not None:
            secret: str = user_input[field].strip()
            if vertex:
                try:
                    account = await self.hass.async_add_executor_job(
                        ServiceAccount.from_json, secret
                    )
                except InvalidServiceAccountError:
                    errors[field] = "invalid_service_account"
                else:
                    await self.async_set_unique_id(
                        vertex_ai_unique_id(
                            account.client_email, entry.data[CONF_PROJECT_ID]
                        )
                    )
                    self._abort_if_unique_id_mismatch(reason="wrong_account")
            else:
                # A new API key is a new unique id, unless another entry has it.
                await self.async_set_unique_id(gemini_api_unique_id(secret))
                if any(
                    other.unique_id == self.unique_id
                    for other in self._async_current_entries(include_ignore=False)
                    if other.entry_id != entry.entry_id
                ):
                    return self.async_abort(reason="already_configured")
            if not errors:
                model, options = _checked_agent(entry)
                errors = await _async_validate(
                    self.hass,
                    {**entry.data, field: secret, CONF_MODEL: model},
                    options,
                    {field},
                )
            if not errors:
                return self._async_update_and_reload(
                    entry, unique_id=self.unique_id, data_updates={field: secret}
                )
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=probatio.Schema(
                {
                    probatio.Required(field): (
                        SERVICE_ACCOUNT_SELECTOR if vertex else API_KEY_SELECTOR
                    )
                }
            ),
            errors=errors,
            description_placeholders={
                "name": entry.title,
                "api_key_url": API_KEY_URL,
                "key_url": SERVICE_ACCOUNT_KEY_URL,
            },
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the location or the service endpoint."""
        entry = self._get_reconfigure_entry()
        provider: str = entry.data[CONF_PROVIDER]
        errors: dict[str, str] = {}
        suggested: Mapping[str, Any] = {
            **entry.data,
            **_advanced_suggestions(entry.data.get(CONF_BASE_URL)),
        }
        if user_input is not None:
            suggested = user_input
            data = dict(entry.data)
            if provider == PROVIDER_VERTEX_AI:
                data[CONF_LOCATION] = user_input[CONF_LOCATION].strip()
            model, options = _checked_agent(entry)
            checked = {**data, CONF_MODEL: model}
            errors = await _async_validate_with_endpoint(
                self.hass, checked, options, user_input, {CONF_LOCATION}
            )
            if not errors:
                del checked[CONF_MODEL]
                return self._async_update_and_reload(entry, data=checked)
        fields: dict[probatio.Marker, Any] = {}
        if provider == PROVIDER_VERTEX_AI:
            fields[probatio.Required(CONF_LOCATION)] = TEXT_SELECTOR
        fields[probatio.Optional(SECTION_ADVANCED_SETTINGS)] = (
            _advanced_settings_section()
        )
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                probatio.Schema(fields), suggested
            ),
            errors=errors,
            description_placeholders={"name": entry.title},
        )

    @callback
    def _async_update_and_reload(
        self, entry: ConfigEntry, **changes: Any
    ) -> ConfigFlowResult:
        """Update the entry and finish; it reloads once.

        A loaded entry's update listener reloads it; one that failed to set up
        has none, and is reloaded here.
        """
        if entry.update_listeners:
            return self.async_update_and_abort(entry, **changes)
        return self.async_update_reload_and_abort(entry, **changes)

    @classmethod
    @callback
    @override
    def async_get_supported_subentry_types(
        cls, config_entry: ConfigEntry
    ) -> dict[str, type[ConfigSubentryFlow]]:
        """Return the subentry types: the assistants."""
        return {SUBENTRY_AGENT: AgentSubentryFlow}


class AgentSubentryFlow(ConfigSubentryFlow):
    """Add or change an assistant: its model, then its voice and settings."""

    def __init__(self) -> None:
        """Initialize the flow."""
        self._title = DEFAULT_AGENT_TITLE
        self._model = ""
        self._current: Mapping[str, Any] = RECOMMENDED_OPTIONS

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Ask for the new assistant's name and model."""
        provider: str = self._get_entry().data[CONF_PROVIDER]
        errors: dict[str, str] = {}
        suggested: Mapping[str, Any] = {
            CONF_NAME: DEFAULT_AGENT_TITLE,
            CONF_MODEL: RECOMMENDED_MODEL[provider],
        }
        if user_input is not None:
            suggested = user_input
            self._title = user_input[CONF_NAME].strip() or DEFAULT_AGENT_TITLE
            self._model = user_input[CONF_MODEL].strip()
            if not (errors := await self._async_check_model()):
                return await self.async_step_set_options()
        schema = probatio.Schema(
            {
                probatio.Required(CONF_NAME): TEXT_SELECTOR,
                probatio.Required(CONF_MODEL): _model_selector(provider),
            }
        )
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            errors=errors,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Ask for the assistant's model (the settings follow)."""
        subentry = self._get_reconfigure_subentry()
        errors: dict[str, str] = {}
        suggested: Mapping[str, Any] = subentry.data
        if user_input is not None:
            suggested = user_input
            self._title = subentry.title
            self._model = user_input[CONF_MODEL].strip()
            if not (errors := await self._async_check_model()):
                # A new model keeps only the settings its family accepts.
                self._current = supported_options(self._family, subentry.data)
                return await self.async_step_set_options()
        schema = probatio.Schema(
            {
                probatio.Required(CONF_MODEL): _model_selector(
                    self._get_entry().data[CONF_PROVIDER]
                )
            }
        )
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            errors=errors,
            description_placeholders={"name": subentry.title},
        )

    async def _async_check_model(self) -> dict[str, str]:
        """Open a Live session on the model with no settings; return the errors.

        So that a model the service does not serve is reported at the model
        field; the settings are checked on the next step.
        """
        return await _async_validate(
            self.hass,
            {**self._get_entry().data, CONF_MODEL: self._model},
            {},
            {CONF_MODEL},
        )

    async def async_step_set_options(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Ask for the voice, instructions and conversation settings."""
        errors: dict[str, str] = {}
        options: Mapping[str, Any] = self._current
        if user_input is not None:
            options = user_input
            if not user_input.get(CONF_LLM_HASS_API):
                user_input.pop(CONF_LLM_HASS_API, None)
            language: str = (user_input.pop(CONF_LANGUAGE, None) or "").strip()
            if language:
                if LANGUAGE_TAG.fullmatch(language):
                    user_input[CONF_LANGUAGE] = language
                else:
                    errors[CONF_LANGUAGE] = "invalid_language"
            if prompt := user_input.get(CONF_PROMPT):
                try:
                    _render_prompt(self.hass, prompt)
                except TemplateError as err:
                    _LOGGER.debug("Instructions template does not render: %s", err)
                    errors[CONF_PROMPT] = "invalid_template"
            else:
                user_input.pop(CONF_PROMPT, None)
            user_input = supported_options(self._family, user_input)
            if not errors:
                errors = await _async_validate(
                    self.hass,
                    {**self._get_entry().data, CONF_MODEL: self._model},
                    user_input,
                    {str(key) for key in self._schema(user_input).schema},
                )
            if not errors:
                data = {CONF_MODEL: self._model, **user_input}
                if self.source == SOURCE_USER:
                    return self.async_create_entry(title=self._title, data=data)
                return self.async_update_and_abort(
                    self._get_entry(), self._get_reconfigure_subentry(), data=data
                )
            options = {**user_input, CONF_LANGUAGE: language}
        suggested = dict(options)
        if apis := suggested.get(CONF_LLM_HASS_API):
            # Only offer the APIs that still exist, as core's LLM integrations do.
            known = {api.id for api in llm.async_get_apis(self.hass)}
            if isinstance(apis, str):
                apis = [apis]
            suggested[CONF_LLM_HASS_API] = [api for api in apis if api in known]
        return self.async_show_form(
            step_id="set_options",
            data_schema=self.add_suggested_values_to_schema(
                self._schema(options), suggested
            ),
            errors=errors,
            description_placeholders={"name": self._title, "model": self._model},
        )

    @property
    def _family(self) -> ModelFamily:
        """The family of the assistant's model."""
        return model_family(self._model)

    def _schema(self, options: Mapping[str, Any]) -> probatio.Schema:
        """Return the options schema: only the settings the model accepts."""
        hass_apis = [
            SelectOptionDict(label=api.name, value=api.id)
            for api in llm.async_get_apis(self.hass)
        ]
        family = self._family
        capabilities: dict[probatio.Marker, Any] = {}
        if levels := thinking_levels(family):
            capabilities[
                probatio.Required(
                    CONF_THINKING_LEVEL,
                    default=(family.default_thinking_level or levels[0]).lower(),
                )
            ] = SelectSelector(
                SelectSelectorConfig(
                    options=levels,
                    translation_key=CONF_THINKING_LEVEL,
                    mode=SelectSelectorMode.DROPDOWN,
                )
            )
        if family.thinking is Thinking.BUDGET:
            capabilities[
                probatio.Required(
                    CONF_THINKING_BUDGET, default=RECOMMENDED_THINKING_BUDGET
                )
            ] = NumberSelector(
                NumberSelectorConfig(
                    min=0, max=MAX_THINKING_BUDGET, step=1, mode=NumberSelectorMode.BOX
                )
            )
        if family.affective_dialog:
            capabilities[
                probatio.Required(
                    CONF_AFFECTIVE_DIALOG, default=RECOMMENDED_AFFECTIVE_DIALOG
                )
            ] = BOOLEAN_SELECTOR
        if family.proactive_audio:
            capabilities[
                probatio.Required(
                    CONF_PROACTIVE_AUDIO, default=RECOMMENDED_PROACTIVE_AUDIO
                )
            ] = BOOLEAN_SELECTOR
        if offers_search(family, options):
            capabilities[
                probatio.Required(CONF_GOOGLE_SEARCH, default=RECOMMENDED_GOOGLE_SEARCH)
            ] = BOOLEAN_SELECTOR
        return probatio.Schema(
            {
                probatio.Required(
                    CONF_VOICE, default=RECOMMENDED_VOICE
                ): SelectSelector(
                    SelectSelectorConfig(
                        options=list(VOICES),
                        custom_value=True,
                        sort=True,
                        mode=SelectSelectorMode.DROPDOWN,
                    )
                ),
                probatio.Optional(CONF_LANGUAGE): TEXT_SELECTOR,
                probatio.Optional(
                    CONF_PROMPT,
                    description={
                        "suggested_value": options.get(
                            CONF_PROMPT, llm.DEFAULT_INSTRUCTIONS_PROMPT
                        )
                    },
                ): TemplateSelector(),
                probatio.Optional(CONF_LLM_HASS_API): SelectSelector(
                    SelectSelectorConfig(options=hass_apis, multiple=True)
                ),
                probatio.Required(
                    CONF_TEMPERATURE, default=RECOMMENDED_TEMPERATURE
                ): NumberSelector(
                    NumberSelectorConfig(
                        min=0, max=2, step=0.05, mode=NumberSelectorMode.SLIDER
                    )
                ),
                **capabilities,
                probatio.Required(
                    CONF_ACTIVITY_DETECTION, default=RECOMMENDED_ACTIVITY_DETECTION
                ): SelectSelector(
                    SelectSelectorConfig(
                        options=list(ACTIVITY_DETECTION_MODES),
                        translation_key=CONF_ACTIVITY_DETECTION,
                        mode=SelectSelectorMode.LIST,
                    )
                ),
                probatio.Required(
                    CONF_IDLE_TIMEOUT, default=RECOMMENDED_IDLE_TIMEOUT
                ): probatio.All(
                    NumberSelector(
                        NumberSelectorConfig(
                            min=MIN_IDLE_TIMEOUT,
                            max=MAX_IDLE_TIMEOUT,
                            step=1,
                            unit_of_measurement="s",
                            mode=NumberSelectorMode.BOX,
                        )
                    ),
                    probatio.Coerce(int),
                ),
            }
        )
