"""Home Assistant LLM tools on the Live API: declarations, calls, responses.

Declarations use the OpenAPI subset Gemini accepts, formatted as Home
Assistant's Google Generative AI integration does (`probatio.to_openapi`,
unsupported keys dropped, upper-case types), with the wire's camelCase keys.
"""

from __future__ import annotations

import asyncio
import codecs
from dataclasses import dataclass
import logging
from typing import Any

from homeassistant.components import conversation
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import llm
from homeassistant.helpers.json import json_bytes
from homeassistant.util.json import json_loads
import probatio

from ..live import (
    FunctionCall,
    FunctionDeclaration,
    FunctionResponse,
)

_LOGGER = logging.getLogger(__name__)

MAX_FUNCTIONS = 128
"""About as many function declarations as fit in one Live session."""
TOOL_TIMEOUT = 10.0
"""Seconds a tool call may run before the model gets an error response."""

_SCHEMA_KEYS = frozenset(
    {
        "type",
        "format",
        "description",
        "nullable",
        "enum",
        "maxItems",
        "minItems",
        "properties",
        "required",
        "items",
    }
)
_FORMATS: dict[str, tuple[str, ...]] = {
    "string": ("enum", "date-time"),
    "number": ("float", "double"),
    "integer": ("int32", "int64"),
}


def format_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Reduce an OpenAPI schema to the subset the Gemini API accepts."""
    if subschemas := schema.get("allOf"):
        return format_schema(
            next((sub for sub in subschemas if "type" in sub), subschemas[0])
        )
    result: dict[str, Any] = {}
    for key, value in schema.items():
        if key not in _SCHEMA_KEYS:
            continue
        if key == "type":
            result[key] = value.upper()
        elif key == "format":
            if value in _FORMATS.get(schema.get("type", ""), ()):
                result[key] = value
        elif key == "items":
            result[key] = format_schema(value)
        elif key == "properties":
            result[key] = {name: format_schema(sub) for name, sub in value.items()}
        else:
            result[key] = value
    if result.get("enum") and result.get("type") != "STRING":
        # Gemini allows enum on strings only; tools coerce the values back.
        result["type"] = "STRING"
        result["enum"] = [str(item) for item in result["enum"]]
    if result.get("type") == "OBJECT" and not result.get("properties"):
        # Objects need properties: fall back to a JSON string.
        result["properties"] = {"json": {"type": "STRING"}}
        result["required"] = []
    return result


def function_declarations(api: llm.APIInstance) -> tuple[FunctionDeclaration, ...]:
    """Declare the API's tools (at most `MAX_FUNCTIONS`) for the Live setup."""
    if len(api.tools) > MAX_FUNCTIONS:
        _LOGGER.warning(
            "%s tools exposed; only the first %s fit in a Live session",
            len(api.tools),
            MAX_FUNCTIONS,
        )
    return tuple(
        FunctionDeclaration(
            name=tool.name,
            description=tool.description or "",
            parameters=format_schema(
                probatio.to_openapi(
                    tool.parameters, custom_serializer=api.custom_serializer
                )
            )
            if tool.parameters.schema
            else None,
        )
        for tool in api.tools[:MAX_FUNCTIONS]
    )


def tool_input(call: FunctionCall) -> llm.ToolInput:
    """Return the chat log's tool input for a Live function call (same id)."""
    return llm.ToolInput(
        tool_name=call.name, tool_args=_escape_decode(dict(call.args)), id=call.id
    )


def function_response(result: conversation.ToolResultContent) -> FunctionResponse:
    """Return the Live response to a tool result: JSON under "output" or "error"."""
    data = json_loads(json_bytes(result.result.data))
    return FunctionResponse(
        id=result.tool_call_id,
        name=result.tool_name,
        response={"error" if result.result.error else "output": data},
    )


@dataclass
class BoundedAPIInstance(llm.APIInstance):
    """An LLM API instance whose tool calls end after `TOOL_TIMEOUT` seconds.

    A slow tool must not stall the Live session: the model gets an error
    response instead (the chat log turns the HomeAssistantError into one).
    """

    @classmethod
    def wrap(cls, api: llm.APIInstance) -> BoundedAPIInstance:
        """Return `api` with bounded tool calls."""
        return cls(
            api=api.api,
            api_prompt=api.api_prompt,
            llm_context=api.llm_context,
            tools=api.tools,
            custom_serializer=api.custom_serializer,
        )

    async def async_call_tool(self, tool_input: llm.ToolInput) -> llm.ToolResult:
        """Call the tool with a time limit."""
        try:
            async with asyncio.timeout(TOOL_TIMEOUT):
                return await super().async_call_tool(tool_input)
        except TimeoutError as err:
            raise HomeAssistantError(
                f"{tool_input.tool_name} did not finish within {TOOL_TIMEOUT:g} s"
            ) from err


def _escape_decode(value: Any) -> Any:
    """Undo the backslash escapes Gemini puts in string arguments (as core does)."""
    if isinstance(value, str):
        return codecs.escape_decode(value.encode())[0].decode()
    if isinstance(value, list):
        return [_escape_decode(item) for item in value]
    if isinstance(value, dict):
        return {key: _escape_decode(item) for key, item in value.items()}
    return value
