"""Home Assistant LLM tools on the Live API: declarations, calls, responses.

Declarations use the OpenAPI subset Gemini accepts, formatted as Home
Assistant's Google Generative AI integration does (`probatio.to_openapi`,
unsupported keys dropped, upper-case types), with the wire's camelCase keys.
A tool the Gemini API would refuse (name, schema) is left out, never the session.
"""

from __future__ import annotations

import asyncio
import codecs
from collections.abc import Callable, Collection, Coroutine, Sequence
import logging
import re
from typing import Any

from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import llm
from homeassistant.helpers.json import json_bytes
from homeassistant.util.json import json_loads
import probatio

from ..live import FunctionCall, FunctionDeclaration, FunctionResponse, ToolBehavior

_LOGGER = logging.getLogger(__name__)

MAX_FUNCTIONS = 128
"""Function declarations per setup: Vertex AI documents "Maximum 128 function
declarations" (`Tool.functionDeclarations`); the Developer API documents no
limit, so the same one is used."""
FUNCTION_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}")
"""A valid `FunctionDeclaration.name` on both APIs: a letter or underscore
first, then letters, digits, ``_ . : -``; at most 64 characters."""
TOOL_TIMEOUT = 5.0
"""Seconds after which the model hears that a tool is still running."""

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
_TYPES = frozenset(
    {"STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL"}
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


def _check_schema(schema: dict[str, Any]) -> None:
    """Raise ValueError where a formatted schema breaks a Gemini API rule.

    A schema without a type (such as a dropped ``anyOf``) is accepted.
    """
    kind = schema.get("type")
    if kind is not None and kind not in _TYPES:
        raise ValueError(f"unsupported type {kind!r}")
    if kind == "ARRAY":
        if "items" not in schema:
            raise ValueError("an array without items")
        _check_schema(schema["items"])
    properties: dict[str, Any] = schema.get("properties", {})
    if undefined := set(schema.get("required", ())) - set(properties):
        raise ValueError(f"required but undefined: {', '.join(sorted(undefined))}")
    for sub in properties.values():
        _check_schema(sub)


def _declaration(
    tool: llm.Tool, serializer: Callable[[Any], Any] | None, taken: Collection[str]
) -> FunctionDeclaration:
    """Return the tool's declaration; raises ValueError for an invalid one."""
    if not FUNCTION_NAME.fullmatch(tool.name):
        raise ValueError("the name is not a valid Gemini function name")
    if tool.name in taken:
        raise ValueError("another tool has the same name")
    parameters: dict[str, Any] | None = None
    if tool.parameters.schema:
        try:
            parameters = format_schema(
                probatio.to_openapi(tool.parameters, custom_serializer=serializer)
            )
        except (probatio.SchemaError, AttributeError, TypeError, ValueError) as err:
            raise ValueError(f"the parameters cannot be converted: {err}") from err
        _check_schema(parameters)
    return FunctionDeclaration(
        name=tool.name,
        description=tool.description or "",
        parameters=parameters,
        # The model needs a query's answer before it can speak: it waits.
        behavior=ToolBehavior.BLOCKING if tool.annotations.read_only else None,
    )


def valid_declarations(api: llm.APIInstance) -> tuple[FunctionDeclaration, ...]:
    """Declare every tool of the API the Gemini API accepts.

    A tool with an invalid name, an unconvertible schema or the name of an
    earlier tool is left out, with a warning.
    """
    declarations: dict[str, FunctionDeclaration] = {}
    for tool in api.tools:
        try:
            declarations[tool.name] = _declaration(
                tool, api.custom_serializer, declarations.keys()
            )
        except ValueError as err:
            _LOGGER.warning("Tool %r left out of Live sessions: %s", tool.name, err)
    return tuple(declarations.values())


def limit_declarations(
    declarations: Sequence[FunctionDeclaration],
) -> tuple[FunctionDeclaration, ...]:
    """Return the first `MAX_FUNCTIONS` declarations (warning when more)."""
    if len(declarations) > MAX_FUNCTIONS:
        _LOGGER.warning(
            "%s tools exposed; only the first %s fit in a Live session",
            len(declarations),
            MAX_FUNCTIONS,
        )
    return tuple(declarations[:MAX_FUNCTIONS])


def function_declarations(api: llm.APIInstance) -> tuple[FunctionDeclaration, ...]:
    """Declare the API's valid tools (at most `MAX_FUNCTIONS`) for the Live setup."""
    return limit_declarations(valid_declarations(api))


def tool_input(call: FunctionCall) -> llm.ToolInput:
    """Return the chat log's record of a Live function call (same id).

    External: this integration runs it (`ToolRunner`), so that a slow tool
    is never cancelled and the model is answered within a bound.
    """
    return llm.ToolInput(
        tool_name=call.name,
        tool_args=_escape_decode(dict(call.args)),
        id=call.id,
        external=True,
    )


def function_response(call: FunctionCall, result: llm.ToolResult) -> FunctionResponse:
    """Return the Live response to a tool result, with an explicit status.

    Models repeat calls whose result is empty or unclear, so every response
    says what happened: success (with the data), no result, in progress, or
    an error that is not worth retrying.
    """
    data = json_loads(json_bytes(result.data))
    if result.error:
        body: dict[str, Any] = {
            "error": {"status": "error", "retryable": False, "details": data}
        }
    elif isinstance(data, dict) and data.get("status") == IN_PROGRESS:
        body = {"output": data}
    elif data:
        body = {"output": {"status": "success", "result": data}}
    else:
        body = {"output": {"status": "no_result", "retryable": False}}
    return FunctionResponse(id=call.id, name=call.name, response=body)


IN_PROGRESS = "in_progress"
"""Status of a tool still running when the model is answered."""


class ToolRunner:
    """Runs the model's tool calls through an LLM API, each answered in time.

    A tool that takes longer than `TOOL_TIMEOUT` is not cancelled: the model
    is told it is still running, and the tool finishes in the background.
    """

    def __init__(
        self,
        api: llm.APIInstance | None,
        spawn: Callable[[Coroutine[Any, Any, llm.ToolResult], str], asyncio.Task[Any]],
    ) -> None:
        """Call tools of `api`; `spawn` starts a task that outlives the turn."""
        self._api = api
        self._spawn = spawn

    async def run(
        self, tool_input: llm.ToolInput, *, bounded: bool = True
    ) -> llm.ToolResult:
        """Return the tool's result, or an in-progress one after the bound.

        `bounded` False (a call the model does not wait for): no bound here.
        """
        task = self._spawn(self._call(tool_input), f"gemini_live tool {tool_input.id}")
        try:
            async with asyncio.timeout(TOOL_TIMEOUT if bounded else None):
                return await asyncio.shield(task)
        except TimeoutError:
            _LOGGER.debug(
                "%s still running after %s s", tool_input.tool_name, TOOL_TIMEOUT
            )
            return llm.ToolResult(
                data={
                    "status": IN_PROGRESS,
                    "message": "The action was started and is still running.",
                }
            )

    async def _call(self, tool_input: llm.ToolInput) -> llm.ToolResult:
        if self._api is None:
            return _error("No tools are available in this conversation")
        try:
            return await self._api.async_call_tool(tool_input)
        except (HomeAssistantError, probatio.Invalid) as err:
            return _error(str(err) or type(err).__name__)
        except Exception:  # a broken tool must not break the conversation
            _LOGGER.exception("Error calling tool %s", tool_input.tool_name)
            return _error(f"{tool_input.tool_name} failed unexpectedly")


def _error(message: str) -> llm.ToolResult:
    return llm.ToolResult(data={"error": message}, error=True)


def _escape_decode(value: Any) -> Any:
    """Undo the backslash escapes Gemini puts in string arguments (as core does)."""
    if isinstance(value, str):
        return codecs.escape_decode(value.encode())[0].decode()
    if isinstance(value, list):
        return [_escape_decode(item) for item in value]
    if isinstance(value, dict):
        return {key: _escape_decode(item) for key, item in value.items()}
    return value
