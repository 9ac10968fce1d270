"""A demo model for the fake server: it understands the demo's phrases.

`demo_responder` is a `Responder` for `FakeLiveServer.responder`, answering
as a Live model with Home Assistant's Assist API would (live-api.md 3.3: tool
calls named as the setup's functionDeclarations, then speech):

* "turn on/off the kitchen light" (any exposed light named in the system
  instruction's static context): a HassTurnOn/HassTurnOff call with that
  name, then a sentence from the function response;
* "what time is it": the GetDateTime tool when declared, else the "Current
  time is" line of the system instruction, said in words;
* anything else: what the demo understands.

Spoken requests are heard by the fake's recogniser (the very espeak-ng
bytes), else by sound (`hearing.closest_phrase`: espeak-ng speech that went
through a browser's microphone path; `PHRASES` only, which sound far apart);
typed ones by their words.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
import re
from typing import Any

from ..scenario import Reply, ToolCall, UserTurn
from .hearing import closest_phrase
from .words import spoken_time

PHRASES = ("turn on the kitchen light", "what time is it")
"""What the demo hears when spoken (by the sound of their espeak-ng speech);
typed requests may also name another light or say "turn off"."""
HELP = (
    "Say: turn on the kitchen light, or: what time is it. "
    "You can also type: turn off the kitchen light."
)
NO_TOOLS = "I cannot control devices: no Home Assistant tools were given to me."

_SWITCH = re.compile(r"\bturn (on|off)\b(?: the)? (.+?)[.?!]*$")
_ENTITY = re.compile(
    r"^- names: (?P<names>.+)\n(?:  .*\n)*?  domain: (?P<domain>\w+)", re.M
)
_TIME = re.compile(r"\btime\b")
_CLOCK_TOOL = re.compile(r"(\d{1,2}):(\d{2})")
_CLOCK = re.compile(r"Current time is (\d{1,2}):(\d{2})")


def _functions(turn: UserTurn) -> list[str]:
    """Return the names of the functions the session declared."""
    return [
        declaration["name"]
        for tool in turn.connection.tools
        for declaration in tool.get("functionDeclarations") or []
    ]


def _function(turn: UserTurn, name: str) -> str | None:
    """Return the declared function called `name` (alone or `x__name`)."""
    for declared in _functions(turn):
        if declared == name or declared.endswith(f"__{name}"):
            return declared
    return None


def _entities(instruction: str) -> Iterator[tuple[str, str]]:
    """(name, domain) of each device of the static context (YAML list)."""
    for match in _ENTITY.finditer(instruction):
        for name in match["names"].split(","):
            yield name.strip().strip("'\""), match["domain"]


def _light_named(turn: UserTurn, words: str) -> str | None:
    """Return the exposed light whose name has every word of `words`."""
    wanted = {w.rstrip("s") for w in words.lower().split()} - {"light"}
    for name, domain in _entities(turn.connection.system_instruction or ""):
        have = {w.rstrip("s") for w in name.lower().split()}
        if domain == "light" and wanted <= have:
            return name
    return None


def _switch(turn: UserTurn, action: str, target: str) -> Reply:
    """Call HassTurnOn/HassTurnOff on a light, then say how it went."""
    function = _function(turn, "HassTurnOn" if action == "on" else "HassTurnOff")
    if function is None:
        return Reply(text=NO_TOOLS)
    name = _light_named(turn, target)
    if name is None:
        return Reply(text=f"I do not know a light called {target}.")

    def answer(responses: list[dict[str, Any]]) -> Reply:
        if _found(responses, "response_type") == "action_done":
            verb = "are" if name.lower().endswith("s") else "is"
            return Reply(text=f"The {name.lower()} {verb} {action}.")
        return Reply(text=f"I could not turn {action} the {name.lower()}.")

    return Reply(
        text="",
        tool_calls=[ToolCall(name=function, args={"name": name, "domain": ["light"]})],
        then=answer,
    )


def _time(turn: UserTurn) -> Reply:
    """Tell the time: from the GetDateTime tool, else the system instruction."""
    if (function := _function(turn, "GetDateTime")) is not None:

        def answer(responses: list[dict[str, Any]]) -> Reply:
            if match := _CLOCK_TOOL.match(str(_found(responses, "time"))):
                return Reply(text=spoken_time(int(match[1]), int(match[2])))
            return Reply(text="I could not read the clock.")

        return Reply(text="", tool_calls=[ToolCall(name=function)], then=answer)
    if match := _CLOCK.search(turn.connection.system_instruction or ""):
        return Reply(text=spoken_time(int(match[1]), int(match[2])))
    return Reply(text="I do not know what time it is.")


def _found(responses: Sequence[Mapping[str, Any]], key: str) -> Any:
    """Return the first value of `key` anywhere in the function responses.

    A model reads the whole response (`output`, `error`, or the object
    itself, live-api.md 2.4), however the client nests the tool's result.
    """
    stack: list[Any] = [r.get("response") for r in responses]
    while stack:
        item = stack.pop(0)
        if isinstance(item, Mapping):
            if key in item:
                return item[key]
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def understand(turn: UserTurn, words: str) -> Reply:
    """Return the reply to a request in words."""
    text = " ".join(words.lower().split())
    if match := _SWITCH.search(text):
        return _switch(turn, match[1], match[2])
    if _TIME.search(text):
        return _time(turn)
    return Reply(text=HELP)


def demo_responder(turn: UserTurn) -> Reply:
    """Answer a user turn of the demo (a `Responder`)."""
    if turn.query:
        return understand(turn, turn.query)
    if turn.audio and (phrase := closest_phrase(turn.audio, turn.sample_rate, PHRASES)):
        return replace(understand(turn, phrase), heard=phrase)
    return Reply(text=HELP)
