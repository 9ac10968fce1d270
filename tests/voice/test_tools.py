"""HA LLM tools as Live function declarations; tool inputs and responses."""

from __future__ import annotations

import datetime
import logging
from typing import Any

from homeassistant.components import conversation
from homeassistant.const import CONF_LLM_HASS_API
from homeassistant.core import Context, HomeAssistant
from homeassistant.helpers import config_validation as cv, issue_registry as ir, llm
from homeassistant.setup import async_setup_component
import probatio
import pytest

from custom_components.gemini_live.const import DOMAIN
from custom_components.gemini_live.issues import async_update_too_many_tools
from custom_components.gemini_live.live import (
    FunctionCall,
    LiveConfig,
    non_blocking_functions,
    setup_message,
)
from custom_components.gemini_live.voice.tools import (
    MAX_FUNCTIONS,
    format_schema,
    function_declarations,
    function_response,
    tool_input,
)
from tests.entries import account_entry, agent, agent_data, update_agent
from tests.fake_live import Reply

from .conftest import Voice


class Tool(llm.Tool):
    """A tool with a given schema."""

    def __init__(self, name: str, parameters: probatio.Schema) -> None:
        """Name the tool and set its parameters."""
        self.name = name
        self.description = f"Tool {name}"
        self.parameters = parameters

    async def async_call(
        self,
        hass: HomeAssistant,
        tool_input: llm.ToolInput,
        llm_context: llm.LLMContext,
    ) -> llm.ToolResult:
        """Do nothing."""
        return llm.ToolResult(data={})


class API(llm.API):
    """An API whose instances have `tools` (changeable)."""

    def __init__(self, hass: HomeAssistant, api_id: str, tools: list[llm.Tool]) -> None:
        """Name the API after its id."""
        super().__init__(hass=hass, id=api_id, name=api_id.title())
        self.tools = tools

    async def async_get_api_instance(
        self, llm_context: llm.LLMContext
    ) -> llm.APIInstance:
        """Return an instance with the current tools."""
        return llm.APIInstance(self, "", llm_context, list(self.tools))


CONTEXT = llm.LLMContext("test", None, None, "conversation", None)


def _api(
    hass: HomeAssistant,
    tools: list[llm.Tool],
    serializer: Any = llm.selector_serializer,
) -> llm.APIInstance:
    return llm.APIInstance(API(hass, "test", tools), "", CONTEXT, tools, serializer)


def test_format_schema() -> None:
    """Unsupported keys go, types are upper case, enums become strings."""
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "format": "email", "minLength": 1},
            "when": {"type": "string", "format": "date-time"},
            "level": {"type": "integer", "enum": [1, 2, 3], "format": "int32"},
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
            "extra": {"type": "object"},
            "either": {"allOf": [{"description": "no type"}, {"type": "number"}]},
        },
        "required": ["name"],
    }

    assert format_schema(schema) == {
        "type": "OBJECT",
        "properties": {
            "name": {"type": "STRING"},
            "when": {"type": "STRING", "format": "date-time"},
            "level": {"type": "STRING", "enum": ["1", "2", "3"], "format": "int32"},
            "tags": {"type": "ARRAY", "items": {"type": "STRING"}, "maxItems": 3},
            "extra": {
                "type": "OBJECT",
                "properties": {"json": {"type": "STRING"}},
                "required": [],
            },
            "either": {"type": "NUMBER"},
        },
        "required": ["name"],
    }


async def test_function_declarations(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    """Tools become declarations, at most MAX_FUNCTIONS of them."""
    tools: list[llm.Tool] = [
        Tool("with_args", probatio.Schema({probatio.Required("name"): cv.string})),
        Tool("no_args", probatio.Schema({})),
    ]
    tools += [Tool(f"t{n}", probatio.Schema({})) for n in range(MAX_FUNCTIONS)]

    declarations = function_declarations(_api(hass, tools))

    assert len(declarations) == MAX_FUNCTIONS
    assert declarations[0].name == "with_args"
    assert declarations[0].description == "Tool with_args"
    assert declarations[0].parameters == {
        "type": "OBJECT",
        "properties": {"name": {"type": "STRING"}},
        "required": ["name"],
    }
    assert declarations[1].parameters is None
    assert "only the first 128" in caplog.text


async def test_every_selected_api(hass: HomeAssistant) -> None:
    """Assist and another API selected together: every tool of both."""
    for domain in ("homeassistant", "llm", "intent"):
        assert await async_setup_component(hass, domain, {})
    custom: list[llm.Tool] = [
        Tool("lookup", probatio.Schema({probatio.Required("query"): cv.string})),
        Tool("GetDateTime", probatio.Schema({})),
    ]
    llm.async_register_api(hass, API(hass, "custom", custom))
    assist = await llm.async_get_api(hass, llm.LLM_API_ASSIST, CONTEXT)

    merged = await llm.async_get_api(hass, [llm.LLM_API_ASSIST, "custom"], CONTEXT)
    declarations = function_declarations(merged)

    names = [declaration.name for declaration in declarations]
    assert names == [tool.name for tool in merged.tools]
    assert len(names) == len(assist.tools) + 2 == len(set(names))
    assert names[-2:] == ["custom__lookup", "custom__GetDateTime"]
    assert declarations[-2].parameters == {
        "type": "OBJECT",
        "properties": {"query": {"type": "STRING"}},
        "required": ["query"],
    }


@pytest.mark.parametrize(
    "name", ["HassTurnOn", "_private", "a.b:c-d", "assist__HassTurnOn", "n" * 64]
)
async def test_valid_name(hass: HomeAssistant, name: str) -> None:
    """Letters, digits and _ . : -, a letter or _ first, at most 64."""
    declarations = function_declarations(_api(hass, [Tool(name, probatio.Schema({}))]))
    assert [declaration.name for declaration in declarations] == [name]


@pytest.mark.parametrize(
    "name", ["", "1tool", "-tool", "turn on", "tool/x", "bật_đèn", "n" * 65]
)
async def test_invalid_name_is_left_out(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    """A tool the Gemini API would refuse is left out; the others stay."""
    tools: list[llm.Tool] = [
        Tool(name, probatio.Schema({})),
        Tool("ok", probatio.Schema({})),
    ]

    with caplog.at_level(logging.WARNING):
        declarations = function_declarations(_api(hass, tools))

    assert [declaration.name for declaration in declarations] == ["ok"]
    assert f"Tool {name!r} left out of Live sessions" in caplog.text


def _weird(value: Any) -> Any:
    """Validate nothing; the test's serializer decides the OpenAPI form."""
    return value


@pytest.mark.parametrize(
    ("shape", "reason"),
    [
        ({"type": ["string", "null"]}, "cannot be converted"),
        ({"type": "file"}, "unsupported type 'FILE'"),
        ({"type": "array"}, "an array without items"),
        ({"type": "array", "items": {"type": "tuple"}}, "unsupported type 'TUPLE'"),
        (
            {
                "type": "object",
                "properties": {"a": {"type": "string"}},
                "required": ["b"],
            },
            "required but undefined: b",
        ),
    ],
)
async def test_unconvertible_schema_is_left_out(
    hass: HomeAssistant,
    caplog: pytest.LogCaptureFixture,
    shape: dict[str, Any],
    reason: str,
) -> None:
    """A schema the Gemini API would refuse leaves its tool out, with a warning."""

    def serializer(value: Any) -> Any:
        return shape if value is _weird else probatio.UNSUPPORTED

    tools: list[llm.Tool] = [
        Tool("broken", probatio.Schema({probatio.Required("x"): _weird})),
        Tool("fine", probatio.Schema({probatio.Optional("y"): cv.string})),
    ]

    declarations = function_declarations(_api(hass, tools, serializer))

    assert [declaration.name for declaration in declarations] == ["fine"]
    assert "Tool 'broken' left out of Live sessions" in caplog.text
    assert reason in caplog.text


async def test_untyped_schema_is_kept(hass: HomeAssistant) -> None:
    """A property without a type (a dropped anyOf, as in GetLiveContext) is valid."""

    def serializer(value: Any) -> Any:
        if value is _weird:
            return {"anyOf": [{"type": "string"}, {"type": "array"}]}
        return probatio.UNSUPPORTED

    tool = Tool("flexible", probatio.Schema({probatio.Optional("domain"): _weird}))

    (declaration,) = function_declarations(_api(hass, [tool], serializer))

    assert declaration.parameters == {"type": "OBJECT", "properties": {"domain": {}}}


async def test_duplicate_name_is_left_out(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    """Two tools of one name: the first is declared."""
    tools: list[llm.Tool] = [
        Tool("same", probatio.Schema({probatio.Required("a"): cv.string})),
        Tool("same", probatio.Schema({})),
    ]

    (declaration,) = function_declarations(_api(hass, tools))

    assert declaration.parameters is not None
    assert "another tool has the same name" in caplog.text


async def test_too_many_tools_raise_a_repairs_issue(
    voice: Voice, caplog: pytest.LogCaptureFixture
) -> None:
    """Over the limit: the first tools, a warning and an issue, until they fit."""
    hass = voice.hass
    many: list[llm.Tool] = [
        Tool(f"tool_{n}", probatio.Schema({})) for n in range(MAX_FUNCTIONS + 5)
    ]
    many.insert(0, Tool("not valid", probatio.Schema({})))
    api = API(hass, "many", many)
    llm.async_register_api(hass, api)
    update_agent(hass, voice.entry, **{CONF_LLM_HASS_API: [llm.LLM_API_ASSIST, "many"]})
    await hass.async_block_till_done()
    issue_id = f"too_many_tools_{voice.entry.entry_id}_{agent(voice.entry).subentry_id}"

    async def converse() -> conversation.ConversationResult:
        voice.server.queue_reply(Reply(text="Hi."))
        return await conversation.async_converse(
            hass, "hello", None, Context(), agent_id=voice.conversation_entity
        )

    result = await converse()

    assert result.response.speech["plain"]["speech"] == "Hi."
    setup = voice.server.connections[-1].config
    names = [d["name"] for d in setup["tools"][0]["functionDeclarations"]]
    assert len(names) == MAX_FUNCTIONS
    assert "many__not valid" not in names
    assert "only the first 128 fit in a Live session" in caplog.text
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.severity is ir.IssueSeverity.WARNING
    assert not issue.is_fixable
    assert issue.translation_key == "too_many_tools"
    merged = await llm.async_get_api(hass, [llm.LLM_API_ASSIST, "many"], CONTEXT)
    assert issue.translation_placeholders == {
        "entry": voice.entry.title,
        "tools": str(len(merged.tools) - 1),  # all but the invalid one
        "limit": str(MAX_FUNCTIONS),
    }

    api.tools = many[:3]
    await converse()

    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None


def test_tool_input_keeps_the_call_id() -> None:
    """The chat log's record carries the Live call id; args are unescaped.

    It is external: the integration runs it (bounded, never cancelled).
    """
    args = {"name": "Kid\\'s room", "list": ["a\\nb"], "obj": {"n": 1}}
    call = FunctionCall(id="fc-1", name="HassTurnOn", args=args)

    assert tool_input(call) == llm.ToolInput(
        tool_name="HassTurnOn",
        tool_args={"name": "Kid's room", "list": ["a\nb"], "obj": {"n": 1}},
        id="fc-1",
        external=True,
    )


def test_function_response() -> None:
    """Every response says what happened, so models do not repeat calls."""
    call = FunctionCall(id="fc-1", name="GetTime", args={})

    def body(result: llm.ToolResult) -> Any:
        response = function_response(call, result)
        assert (response.id, response.name) == ("fc-1", "GetTime")
        return response.response

    assert body(llm.ToolResult(data={"time": datetime.time(7, 30)})) == {
        "output": {"status": "success", "result": {"time": "07:30:00"}}
    }
    assert body(llm.ToolResult(data={})) == {
        "output": {"status": "no_result", "retryable": False}
    }
    assert body(llm.ToolResult(data={"error": "Broken"}, error=True)) == {
        "error": {"status": "error", "retryable": False, "details": {"error": "Broken"}}
    }
    assert body(llm.ToolResult(data={"status": "in_progress"})) == {
        "output": {"status": "in_progress"}
    }


@pytest.mark.parametrize(
    ("model", "query", "action"),
    [
        ("gemini-3.8-live", "BLOCKING", None),
        ("gemini-3.8-live-extended-thinking", None, None),
        ("gemini-2.5-flash-native-audio-preview-12-2025", "BLOCKING", None),
    ],
)
async def test_read_only_tools_block(
    hass: HomeAssistant, model: str, query: str | None, action: str | None
) -> None:
    """A read-only tool is declared BLOCKING where the model offers a choice.

    The model needs a query's answer before it can speak about it; an action
    keeps the session's behavior (on 3.8 Live: NON_BLOCKING by default).
    """
    lookup = Tool("lookup", probatio.Schema({}))
    lookup.annotations = llm.ToolAnnotations(read_only=True)
    switch = Tool("switch", probatio.Schema({}))
    config = LiveConfig(
        model=model, functions=function_declarations(_api(hass, [lookup, switch]))
    )

    (tool,) = setup_message(config, f"models/{model}")["setup"]["tools"]
    behaviors = [d.get("behavior") for d in tool["functionDeclarations"]]

    assert behaviors == [query, action]
    assert non_blocking_functions(config) == (
        {"switch"} if model.startswith("gemini-3.8") else set()
    ) | ({"lookup"} if "extended" in model else set())


async def test_too_many_tools_issue_goes_with_its_entry(hass: HomeAssistant) -> None:
    """Removing the entry removes its Repairs issue."""
    entry = account_entry({}, agent_data("gemini-3.8-live"))
    entry.add_to_hass(hass)
    assistant = agent(entry)
    async_update_too_many_tools(hass, entry, assistant, 200)
    issue_id = f"too_many_tools_{entry.entry_id}_{assistant.subentry_id}"
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None

    await hass.config_entries.async_remove(entry.entry_id)

    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
