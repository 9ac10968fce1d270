"""HA LLM tools as Live function declarations; tool inputs and responses."""

from __future__ import annotations

import datetime
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import config_validation as cv, llm
import probatio
import pytest

from custom_components.gemini_live.live import FunctionCall
from custom_components.gemini_live.voice.tools import (
    MAX_FUNCTIONS,
    format_schema,
    function_declarations,
    function_response,
    tool_input,
)


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
    """An API that is never asked for instances."""

    async def async_get_api_instance(
        self, llm_context: llm.LLMContext
    ) -> llm.APIInstance:
        """Not used."""
        raise NotImplementedError


def _api(hass: HomeAssistant, tools: list[llm.Tool]) -> llm.APIInstance:
    api = API(hass=hass, id="test", name="Test")
    context = llm.LLMContext("test", None, None, "conversation", None)
    return llm.APIInstance(api, "", context, tools, llm.selector_serializer)


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
