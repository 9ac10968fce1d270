"""Per-family contract of the fake Live server, driven by a raw aiohttp client.

Each test follows /work/shared/docs/live-api.md: the served models (7.1, 7.2),
the setup rules of each family (2.1, 5, 7, `families.RULES`),
interactionStatus and merged serverContent (3, 3.2, 8.1), Extended Thinking's
IN_PROGRESS turnComplete (3.2), function calling by family and `scheduling`
(2.4, 3.3, 3.4, 7.1, 8.9, 10.7), Google Search grounding (3.2, 8.10) and
contextUpdate (2.5).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
import json
import time
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from tests.fake_live import (
    FAMILIES,
    INTERNAL_ERROR,
    INVALID_ARGUMENT,
    NOT_SUPPORTED,
    RULES,
    FakeLiveServer,
    Grounding,
    Reply,
    ToolCall,
    family_of,
    speech,
)
from tests.fake_live.protocol import DEVELOPER_MODELS, VERTEX_MODELS
from tests.test_fake_live import audio_msg, audio_of, connect, expect_close, recv

type Msg = dict[str, Any]

DEV_25 = "gemini-2.5-flash-native-audio-preview-12-2025"
DEV_25_09 = "gemini-2.5-flash-native-audio-preview-09-2025"
VTX_25 = "gemini-live-2.5-flash-native-audio"
VTX_25_09 = "gemini-live-2.5-flash-preview-native-audio-09-2025"
G38 = "gemini-3.8-live"
EXT = "gemini-3.8-live-extended-thinking"
G31 = "gemini-3.1-flash-live-preview"
DEV, VTX = "gemini_api", "vertex_ai"
MANUAL_VAD = {"realtimeInputConfig": {"automaticActivityDetection": {"disabled": True}}}
MEANWHILE = "I am switching on the lamp in the kitchen for you, one moment please."


_SOCKETS: list[aiohttp.ClientWebSocketResponse] = []
"""Sockets opened by `open_session`, closed after each test."""


@pytest_asyncio.fixture
async def http(fake_live: FakeLiveServer) -> AsyncIterator[aiohttp.ClientSession]:
    """Provide a plain aiohttp client session (closing the tests' sockets)."""
    async with aiohttp.ClientSession() as session:
        try:
            yield session
        finally:
            while _SOCKETS:
                await _SOCKETS.pop().close()


def tools(behavior: str | None = None, name: str = "lamp") -> list[Msg]:
    """One function declaration (with `behavior` if given)."""
    decl: Msg = {"name": name}
    if behavior is not None:
        decl["behavior"] = behavior
    return [{"functionDeclarations": [decl]}]


def setup_body(server: FakeLiveServer, model: str, provider: str, **extra: Any) -> Msg:
    """Return a setup for `model`, merged with `extra` (generationConfig merged too)."""
    generation = {"responseModalities": ["AUDIO"], **extra.pop("generationConfig", {})}
    return {
        "model": server.model_resource(model, provider),  # type: ignore[arg-type]
        "generationConfig": generation,
        "outputAudioTranscription": {},
        **extra,
    }


async def open_session(
    http: aiohttp.ClientSession,
    server: FakeLiveServer,
    model: str = G38,
    provider: str = DEV,
    **extra: Any,
) -> aiohttp.ClientWebSocketResponse:
    """Connect, send the setup and read setupComplete."""
    ws = await connect(http, server, provider)
    _SOCKETS.append(ws)
    await ws.send_str(
        json.dumps({"setup": setup_body(server, model, provider, **extra)})
    )
    first = await recv(ws)
    assert first is not None
    assert "setupComplete" in first, first
    return ws


async def read(
    ws: aiohttp.ClientWebSocketResponse, stop: Callable[[Msg], bool]
) -> list[Msg]:
    """Messages (stamped `_at`) up to and including the first `stop`."""
    out: list[Msg] = []
    while (msg := await recv(ws)) is not None:
        msg["_at"] = time.monotonic()
        out.append(msg)
        if stop(msg):
            return out
    raise AssertionError(f"closed before the expected message: {out[-3:]}")


async def quiet(ws: aiohttp.ClientWebSocketResponse, seconds: float) -> list[Msg]:
    """Every message arriving within `seconds`."""
    out: list[Msg] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            msg = await recv(ws, timeout=left)
        except TimeoutError:
            break
        if msg is None:
            break
        out.append(msg)
    return out


def status(msg: Msg) -> str | None:
    """InteractionStatus of a turnComplete message (None without)."""
    return msg.get("serverContent", {}).get("interactionStatus")


def is_done(msg: Msg) -> bool:
    """Return whether it is a turnComplete ending the interaction (IDLE, or any on 2.5)."""
    content = msg.get("serverContent", {})
    return bool(content.get("turnComplete")) and status(msg) in (None, "IDLE")


def is_tc(msg: Msg) -> bool:
    return bool(msg.get("serverContent", {}).get("turnComplete"))


def token(msg: Msg) -> str | None:
    """Return a compact name for a message (transcripts and resumption left out)."""
    if "serverContent" not in msg:
        key = next(k for k in msg if not k.startswith("_") and k != "usageMetadata")
        return None if key == "sessionResumptionUpdate" else key
    content = msg["serverContent"]
    parts = [
        name
        for key, name in (
            ("modelTurn", "audio"),
            ("groundingMetadata", "grounding"),
            ("interrupted", "interrupted"),
            ("generationComplete", "generationComplete"),
        )
        if key in content
    ]
    if content.get("turnComplete"):
        parts.append(f"turnComplete:{status(msg)}" if status(msg) else "turnComplete")
    return "+".join(parts) or None


def tokens(messages: list[Msg]) -> list[str]:
    """Tokens of `messages`, consecutive "audio" collapsed."""
    out: list[str] = []
    for msg in messages:
        name = token(msg)
        if name is not None and not (name == "audio" and out and out[-1] == "audio"):
            out.append(name)
    return out


def transcript(messages: list[Msg]) -> str:
    return "".join(
        m["serverContent"]["outputTranscription"]["text"]
        for m in messages
        if "outputTranscription" in m.get("serverContent", {})
    )


def text_turn(text: str = "turn on the lamp") -> str:
    return json.dumps({"realtimeInput": {"text": text}})


def tool_response(
    call_id: str, scheduling: str | None = None, where: str = "functionResponse"
) -> str:
    """Return a toolResponse, its scheduling at the top level or inside `response`."""
    response: Msg = {"id": call_id, "name": "lamp", "response": {"output": "on"}}
    if scheduling is not None and where == "functionResponse":
        response["scheduling"] = scheduling
    elif scheduling is not None:
        response["response"]["scheduling"] = scheduling
    return json.dumps({"toolResponse": {"functionResponses": [response]}})


# ------------------------------------------------------------------ models


def test_family_table_serves_every_model_of_the_reference() -> None:
    """7.1, 7.2: the ids of each family per provider."""
    assert {
        DEV_25,
        DEV_25_09,
        G38,
        EXT,
        G31,
    } <= DEVELOPER_MODELS
    assert {VTX_25, VTX_25_09, G38} <= VERTEX_MODELS
    assert EXT not in VERTEX_MODELS
    assert G31 not in VERTEX_MODELS
    expected = {
        DEV_25: "2.5",
        DEV_25_09: "2.5",
        VTX_25: "2.5",
        VTX_25_09: "2.5",
        G38: "3.8",
        EXT: "3.8-extended-thinking",
        G31: "3.1",
    }
    assert {model: family_of(model).name for model in expected} == expected
    assert set(FAMILIES) == set(expected.values())


@pytest.mark.parametrize(
    ("model", "provider"),
    [
        (DEV_25, DEV),
        (DEV_25_09, DEV),
        (G38, DEV),
        (EXT, DEV),
        (G31, DEV),
        (VTX_25, VTX),
        (VTX_25_09, VTX),
        (G38, VTX),
    ],
)
async def test_each_model_is_served(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession, model: str, provider: str
) -> None:
    await open_session(http, fake_live, model, provider)
    conn = fake_live.connections[0]
    assert conn.model is not None
    assert conn.model.model_id == model
    assert conn.family is family_of(model)


@pytest.mark.parametrize("model", [EXT, G31])
async def test_developer_only_models_are_not_found_on_vertex(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession, model: str
) -> None:
    ws = await connect(http, fake_live, VTX)
    await ws.send_str(json.dumps({"setup": setup_body(fake_live, model, VTX)}))
    await expect_close(ws, 1008, "Publisher Model")


# ------------------------------------------------------------ setup rules

AFFECTIVE = "generationConfig.enableAffectiveDialog"
PROACTIVE = "proactivity.proactiveAudio"
BEHAVIOR = "tools.functionDeclarations.behavior"
THINKING = "generationConfig.thinkingConfig"
LEVEL = "generationConfig.thinkingConfig.thinkingLevel"
BUDGET = "generationConfig.thinkingConfig.thinkingBudget"

# (model, provider, setup extras, code, reason, rejected field)
REJECTED = [
    pytest.param(G38, DEV, {"generationConfig": {"thinkingConfig": {"thinkingBudget": 0}}}, 1007, INVALID_ARGUMENT, THINKING, id="3.8-thinkingConfig"),
    pytest.param(G38, VTX, {"generationConfig": {"thinkingConfig": {"thinkingLevel": "LOW"}}}, 1007, INVALID_ARGUMENT, THINKING, id="3.8-vertex-thinkingConfig"),
    pytest.param(G38, DEV, {"generationConfig": {"enableAffectiveDialog": True}}, 1007, INVALID_ARGUMENT, AFFECTIVE, id="3.8-affective"),
    pytest.param(EXT, DEV, {"generationConfig": {"enableAffectiveDialog": False}}, 1007, INVALID_ARGUMENT, AFFECTIVE, id="ext-affective"),
    pytest.param(G38, DEV, {"proactivity": {"proactiveAudio": False}}, 1007, INVALID_ARGUMENT, PROACTIVE, id="3.8-proactive-off"),
    pytest.param(G38, VTX, {"proactivity": {"proactive_audio": False}}, 1007, INVALID_ARGUMENT, PROACTIVE, id="3.8-vertex-proactive-off"),
    pytest.param(EXT, DEV, {"proactivity": {"proactiveAudio": False}}, 1007, INVALID_ARGUMENT, PROACTIVE, id="ext-proactive-off"),
    pytest.param(G31, DEV, {"generationConfig": {"enable_affective_dialog": True}}, 1008, NOT_SUPPORTED, AFFECTIVE, id="3.1-affective"),
    pytest.param(G31, DEV, {"proactivity": {"proactiveAudio": True}}, 1008, NOT_SUPPORTED, PROACTIVE, id="3.1-proactive"),
    pytest.param(G31, DEV, {"tools": tools("NON_BLOCKING")}, 1008, NOT_SUPPORTED, BEHAVIOR, id="3.1-non-blocking"),
]  # fmt: skip
# Not stated by the reference as rejections: accepted unless strict_families.
UNSTATED = [
    pytest.param(DEV_25, DEV, {"generationConfig": {"thinkingConfig": {"thinkingLevel": "LOW"}}}, LEVEL, id="2.5-level"),
    pytest.param(VTX_25, VTX, {"generationConfig": {"thinkingConfig": {"thinking_level": "HIGH"}}}, LEVEL, id="2.5-vertex-level"),
    pytest.param(G31, DEV, {"generationConfig": {"thinkingConfig": {"thinkingBudget": 0}}}, BUDGET, id="3.1-budget"),
    pytest.param(EXT, DEV, {"generationConfig": {"thinkingConfig": {"thinkingBudget": 1024}}}, BUDGET, id="ext-budget"),
    pytest.param(EXT, DEV, {"generationConfig": {"thinkingConfig": {"thinkingLevel": "MINIMAL"}}}, LEVEL, id="ext-minimal"),
    pytest.param(EXT, DEV, {"tools": tools("BLOCKING")}, BEHAVIOR, id="ext-blocking"),
]  # fmt: skip
ACCEPTED = [
    pytest.param(G38, VTX, {"generationConfig": {"enableAffectiveDialog": True}}, id="3.8-vertex-affective"),
    pytest.param(G38, DEV, {"proactivity": {"proactiveAudio": True}}, id="3.8-proactive-on"),
    pytest.param(G38, DEV, {"tools": tools("BLOCKING") + tools("NON_BLOCKING", "b")}, id="3.8-both-behaviors"),
    pytest.param(G38, DEV, {"historyConfig": {"initialHistoryInClientContent": True}}, id="3.8-history"),
    pytest.param(EXT, DEV, {"generationConfig": {"thinkingConfig": {"thinkingLevel": "HIGH"}}}, id="ext-high"),
    pytest.param(EXT, DEV, {"generationConfig": {"thinkingConfig": {"thinkingLevel": "MEDIUM", "includeThoughts": True}}}, id="ext-medium"),
    pytest.param(EXT, DEV, {"tools": tools("NON_BLOCKING") + tools(None, "b")}, id="ext-non-blocking"),
    pytest.param(G31, DEV, {"generationConfig": {"thinkingConfig": {"thinkingLevel": "MINIMAL"}}}, id="3.1-minimal"),
    pytest.param(G31, DEV, {"generationConfig": {"enableAffectiveDialog": False}, "proactivity": {"proactiveAudio": False}}, id="3.1-features-off"),
    pytest.param(G31, DEV, {"tools": tools("BLOCKING") + tools(None, "b")}, id="3.1-blocking"),
    pytest.param(G31, DEV, {"historyConfig": {"initialHistoryInClientContent": True}}, id="3.1-history"),
    pytest.param(DEV_25, DEV, {"generationConfig": {"thinkingConfig": {"thinkingBudget": 0}}}, id="2.5-budget"),
    pytest.param(DEV_25_09, DEV, {"generationConfig": {"enableAffectiveDialog": True}, "proactivity": {"proactiveAudio": True}}, id="2.5-features"),
    pytest.param(VTX_25, VTX, {"generationConfig": {"enableAffectiveDialog": True}, "proactivity": {"proactiveAudio": False}}, id="2.5-vertex-features"),
    pytest.param(DEV_25, DEV, {"tools": tools("NON_BLOCKING")}, id="2.5-non-blocking"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("model", "provider", "extra", "code", "reason", "field"), REJECTED
)
@pytest.mark.parametrize("strict", [False, True])
async def test_family_rejects_setup_field(
    fake_live: FakeLiveServer,
    http: aiohttp.ClientSession,
    *,
    model: str,
    provider: str,
    extra: Msg,
    code: int,
    reason: str,
    field: str,
    strict: bool,
) -> None:
    fake_live.strict_families = strict
    ws = await connect(http, fake_live, provider)
    await ws.send_str(
        json.dumps({"setup": setup_body(fake_live, model, provider, **extra)})
    )
    await expect_close(ws, code, reason)
    conn = fake_live.connections[0]
    assert (conn.rejected_field, conn.setup_complete_sent) == (field, False)


@pytest.mark.parametrize(("model", "provider", "extra", "field"), UNSTATED)
async def test_unstated_rule_is_recorded_or_strict(
    fake_live: FakeLiveServer,
    http: aiohttp.ClientSession,
    *,
    model: str,
    provider: str,
    extra: Msg,
    field: str,
) -> None:
    await open_session(http, fake_live, model, provider, **extra)
    conn = fake_live.connections[0]
    assert (conn.unverified_fields, conn.rejected_field) == ([field], None)
    fake_live.strict_families = True
    ws = await connect(http, fake_live, provider)
    await ws.send_str(
        json.dumps({"setup": setup_body(fake_live, model, provider, **extra)})
    )
    await expect_close(ws, 1007, INVALID_ARGUMENT)
    assert fake_live.connections[1].rejected_field == field


@pytest.mark.parametrize(("model", "provider", "extra"), ACCEPTED)
async def test_family_accepts_setup(
    fake_live: FakeLiveServer,
    http: aiohttp.ClientSession,
    model: str,
    provider: str,
    extra: Msg,
) -> None:
    fake_live.strict_families = True
    await open_session(http, fake_live, model, provider, **extra)
    conn = fake_live.connections[0]
    assert (conn.rejected_field, conn.unverified_fields) == (None, [])


def test_every_rule_has_a_case() -> None:
    """Each row of families.RULES is driven by a case above."""
    stated = {(p.values[5], family_of(p.values[0]).name, p.values[1]) for p in REJECTED}
    unstated = {
        (p.values[3], family_of(p.values[0]).name, p.values[1]) for p in UNSTATED
    }
    for rule in RULES:
        cases = stated if rule.stated else unstated
        assert any(
            field == rule.field
            and family in rule.families
            and provider in rule.providers
            for field, family, provider in cases
        ), rule


# ------------------------------------------------------------- lifecycle


@pytest.mark.parametrize(
    ("model", "provider", "merge", "expected"),
    [
        (DEV_25, DEV, None, ["audio", "generationComplete", "turnComplete"]),
        (VTX_25, VTX, None, ["audio", "generationComplete", "turnComplete"]),
        (DEV_25, DEV, True, ["audio", "audio+generationComplete+turnComplete"]),
        (G31, DEV, None, ["audio", "audio+generationComplete+turnComplete:IDLE"]),
        (G38, DEV, None, ["audio", "audio+generationComplete+turnComplete:IDLE"]),
        (G38, VTX, None, ["audio", "audio+generationComplete+turnComplete:IDLE"]),
        (EXT, DEV, None, ["audio", "audio+generationComplete+turnComplete:IDLE"]),
        (G38, DEV, False, ["audio", "generationComplete", "turnComplete:IDLE"]),
    ],
)
async def test_interaction_status_and_merged_content(
    fake_live: FakeLiveServer,
    http: aiohttp.ClientSession,
    *,
    model: str,
    provider: str,
    merge: bool | None,
    expected: list[str],
) -> None:
    """3.2: 3.x turnComplete carries interactionStatus; 3, 8.1: merged fields."""
    fake_live.merge_server_content = merge
    text = "The kitchen light is on now."
    # The trailing fragment after turnComplete is tested in the production file.
    fake_live.queue_reply(Reply(text=text, trailing_transcript=False))
    ws = await open_session(http, fake_live, model, provider)
    await ws.send_str(text_turn())
    messages = await read(ws, is_tc)
    assert tokens(messages) == expected
    assert audio_of(messages) == speech(text)
    assert transcript(messages) == text
    assert "usageMetadata" in messages[-1]
    merged = [
        m
        for m in messages
        if {"modelTurn", "outputTranscription"} <= set(m.get("serverContent", {}))
    ]
    assert bool(merged) == (expected[-1].startswith("audio+"))


async def test_extended_thinking_in_progress_then_idle(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    """3.2: an early turnComplete IN_PROGRESS after a filler, the rest, IDLE."""
    text = "Let me think about that. The answer is forty two."
    fake_live.queue_reply(
        Reply(text=text, in_progress_after_chunks=5, in_progress_pause=0.3)
    )
    ws = await open_session(http, fake_live, EXT)
    await ws.send_str(text_turn("what is the answer"))
    messages = await read(ws, is_done)
    assert tokens(messages) == [
        "audio",
        "turnComplete:IN_PROGRESS",
        "audio",
        "audio+generationComplete+turnComplete:IDLE",
    ]
    early = next(i for i, m in enumerate(messages) if status(m) == "IN_PROGRESS")
    assert sum("modelTurn" in m.get("serverContent", {}) for m in messages[:early]) == 5
    assert messages[early]["serverContent"] == {
        "turnComplete": True,
        "interactionStatus": "IN_PROGRESS",
    }
    assert messages[early + 1]["_at"] - messages[early]["_at"] >= 0.25
    assert audio_of(messages) == speech(text)
    assert transcript(messages) == text


async def test_in_progress_on_2_5_is_a_script_error(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    fake_live.queue_reply(Reply(text="Hm.", in_progress_after_chunks=1))
    ws = await open_session(http, fake_live, DEV_25)
    await ws.send_str(text_turn())
    await expect_close(ws, 1011, INTERNAL_ERROR)
    assert "interactionStatus" in str(fake_live.errors.pop())
    assert not fake_live.errors


# ------------------------------------------------------ function calling


def lamp_reply(meanwhile: str = MEANWHILE) -> Reply:
    return Reply(
        text="Let me check.",
        tool_calls=[ToolCall(name="lamp", id="c1")],
        meanwhile=meanwhile,
        realtime_factor=2.0,
        then=Reply(text="The lamp is on."),
    )


@pytest.mark.parametrize(
    ("model", "provider", "behavior"),
    [
        (G38, DEV, None),
        (G38, VTX, None),
        (G38, DEV, "NON_BLOCKING"),
        (EXT, DEV, None),
        (DEV_25, DEV, "NON_BLOCKING"),
        (VTX_25, VTX, "NON_BLOCKING"),
    ],
)
async def test_non_blocking_call_keeps_talking(
    fake_live: FakeLiveServer,
    http: aiohttp.ClientSession,
    *,
    model: str,
    provider: str,
    behavior: str | None,
) -> None:
    """2.4, 7.1: 3.8 default / NON_BLOCKING: no wait for the toolResponse."""
    fake_live.queue_reply(lamp_reply())
    ws = await open_session(http, fake_live, model, provider, tools=tools(behavior))
    await ws.send_str(text_turn())
    first = await read(ws, is_tc)  # no toolResponse sent yet
    three = family_of(model).interaction_status
    end = "turnComplete:IN_PROGRESS" if three else "turnComplete"
    assert tokens(first)[:3] == ["audio", "toolCall", "audio"]
    assert tokens(first)[-1].endswith(end)
    call = next(i for i, m in enumerate(first) if "toolCall" in m)
    assert audio_of(first[:call]) == speech("Let me check.")
    assert audio_of(first[call:]) == speech(MEANWHILE)
    conn = fake_live.connections[0]
    assert conn.async_pending
    await ws.send_str(tool_response("c1"))  # WHEN_IDLE, the model is idle
    follow = await read(ws, is_tc)
    assert audio_of(follow) == speech("The lamp is on.")
    assert tokens(follow)[-1].endswith("turnComplete:IDLE" if three else "turnComplete")
    assert [(r.id, r.non_blocking, r.effective) for r in conn.tool_results] == [
        ("c1", True, "WHEN_IDLE")
    ]
    assert [(t.role, t.text) for t in conn.history] == [
        ("user", "turn on the lamp"),
        ("model", "Let me check. " + MEANWHILE),
        ("tool", '{"output": "on"}'),
        ("model", "The lamp is on."),
    ]


@pytest.mark.parametrize("where", ["functionResponse", "response"])
@pytest.mark.parametrize(
    ("scheduling", "expected"),
    [
        ("INTERRUPT", ["audio", "interrupted", "turnComplete:IN_PROGRESS", "audio", "audio+generationComplete+turnComplete:IDLE"]),
        ("WHEN_IDLE", ["audio", "audio+generationComplete+turnComplete:IN_PROGRESS", "audio", "audio+generationComplete+turnComplete:IDLE"]),
        (None, ["audio", "audio+generationComplete+turnComplete:IN_PROGRESS", "audio", "audio+generationComplete+turnComplete:IDLE"]),
        ("SILENT", ["audio", "audio+generationComplete+turnComplete:IDLE"]),
    ],
)  # fmt: skip
async def test_scheduling_while_the_model_speaks(
    fake_live: FakeLiveServer,
    http: aiohttp.ClientSession,
    *,
    scheduling: str | None,
    expected: list[str],
    where: str,
) -> None:
    """2.4: INTERRUPT now, WHEN_IDLE (default) after the output, SILENT never."""
    fake_live.queue_reply(lamp_reply())
    ws = await open_session(http, fake_live, G38)
    await ws.send_str(text_turn())
    await read(ws, lambda m: "toolCall" in m)
    before = await read(ws, lambda m: "modelTurn" in m.get("serverContent", {}))
    await ws.send_str(tool_response("c1", scheduling, where))
    after = before + await read(ws, is_done)
    assert tokens(after) == expected
    assert not await quiet(ws, 0.3)
    meanwhile = speech(MEANWHILE)
    cut = next(
        (i for i, m in enumerate(after) if "interrupted" in m.get("serverContent", {})),
        None,
    )
    if scheduling == "INTERRUPT":
        assert cut is not None
        said = audio_of(after[:cut])
        assert len(said) < len(meanwhile)
        assert meanwhile.startswith(said)
        assert audio_of(after[cut:]) == speech("The lamp is on.")
    elif scheduling == "SILENT":
        assert audio_of(after) == meanwhile
    else:
        assert audio_of(after) == meanwhile + speech("The lamp is on.")
    conn = fake_live.connections[0]
    result = conn.tool_results[0]
    assert (result.scheduling, result.scheduling_in) == (
        (scheduling, where) if scheduling else (None, None)
    )
    assert ("tool", '{"output": "on"}') in [
        (t.role, t.text.replace(', "scheduling": "' + str(scheduling) + '"', ""))
        for t in conn.history
    ]


@pytest.mark.parametrize(
    ("scheduling", "expected"),
    [
        ("INTERRUPT", ["audio", "audio+generationComplete+turnComplete:IDLE"]),
        ("WHEN_IDLE", ["audio", "audio+generationComplete+turnComplete:IDLE"]),
        ("SILENT", ["turnComplete:IDLE"]),
    ],
)
async def test_scheduling_when_the_model_is_idle(
    fake_live: FakeLiveServer,
    http: aiohttp.ClientSession,
    scheduling: str,
    expected: list[str],
) -> None:
    """3.2: after IN_PROGRESS the interaction ends with IDLE, even if SILENT."""
    fake_live.queue_reply(lamp_reply(meanwhile=""))
    ws = await open_session(http, fake_live, G38)
    await ws.send_str(text_turn())
    first = await read(ws, is_tc)
    assert tokens(first) == [
        "audio",
        "toolCall",
        "generationComplete",
        "turnComplete:IN_PROGRESS",
    ]
    await ws.send_str(tool_response("c1", scheduling))
    assert tokens(await read(ws, is_done)) == expected
    assert fake_live.connections[0].last_interaction_status == "IDLE"


async def test_non_blocking_silent_on_2_5_sends_nothing(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    fake_live.queue_reply(lamp_reply(meanwhile=""))
    ws = await open_session(http, fake_live, DEV_25, tools=tools("NON_BLOCKING"))
    await ws.send_str(text_turn())
    assert tokens(await read(ws, is_tc)) == [
        "audio",
        "toolCall",
        "generationComplete",
        "turnComplete",
    ]
    await ws.send_str(tool_response("c1", "SILENT"))
    assert [token(m) for m in await quiet(ws, 0.3)] == []


async def test_invalid_top_level_scheduling_is_an_invalid_argument(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    fake_live.queue_reply(lamp_reply(meanwhile=""))
    ws = await open_session(http, fake_live, G38)
    await ws.send_str(text_turn())
    await read(ws, is_tc)
    await ws.send_str(tool_response("c1", "NOW"))
    await expect_close(ws, 1007, INVALID_ARGUMENT)


@pytest.mark.parametrize(
    ("model", "provider", "behavior"),
    [
        (DEV_25, DEV, None),
        (VTX_25, VTX, "BLOCKING"),
        (G31, DEV, None),
        (G31, DEV, "BLOCKING"),
        (G38, DEV, "BLOCKING"),
        (G38, VTX, "BLOCKING"),
        (EXT, DEV, "BLOCKING"),
    ],
)
async def test_blocking_call_pauses_until_the_response(
    fake_live: FakeLiveServer,
    http: aiohttp.ClientSession,
    *,
    model: str,
    provider: str,
    behavior: str | None,
) -> None:
    """3.3: a BLOCKING call (2.5/3.1 default, explicit on 3.8) waits."""
    fake_live.queue_reply(lamp_reply())  # `meanwhile` is for NON_BLOCKING only
    ws = await open_session(http, fake_live, model, provider, tools=tools(behavior))
    await ws.send_str(text_turn())
    await read(ws, lambda m: "toolCall" in m)
    assert not await quiet(ws, 0.3)
    await ws.send_str(tool_response("c1", "INTERRUPT"))  # ignored: BLOCKING
    messages = await read(ws, is_tc)
    assert audio_of(messages) == speech("The lamp is on.")
    assert is_done(messages[-1])
    result = fake_live.connections[0].tool_results[0]
    assert (result.non_blocking, result.effective, result.scheduling_in) == (
        False,
        None,
        "functionResponse",
    )


@pytest.mark.parametrize("model", [G38, DEV_25])
@pytest.mark.parametrize(
    "new_input", ["activityStart", "speech", "clientContent", "text"]
)
async def test_new_input_cancels_a_pending_blocking_call(
    fake_live: FakeLiveServer,
    http: aiohttp.ClientSession,
    model: str,
    new_input: str,
) -> None:
    """3.4, 3.10 item 4: toolCallCancellation{ids} when user input interrupts."""
    fake_live.queue_reply(lamp_reply(), Reply(text="OK."))
    extra: Msg = {"tools": tools("BLOCKING")}
    if new_input == "activityStart":
        extra |= MANUAL_VAD
    ws = await open_session(http, fake_live, model, **extra)
    await ws.send_str(text_turn())
    await read(ws, lambda m: "toolCall" in m)
    if new_input == "activityStart":
        await ws.send_str(json.dumps({"realtimeInput": {"activityStart": {}}}))
    elif new_input == "speech":
        await ws.send_str(json.dumps(audio_msg(speech("never mind"))))
    elif new_input == "clientContent":
        turn = {"role": "user", "parts": [{"text": "never mind"}]}
        await ws.send_str(
            json.dumps({"clientContent": {"turns": [turn], "turnComplete": True}})
        )
    else:
        await ws.send_str(text_turn("never mind"))
    messages = await read(ws, is_tc)
    idle = ":IDLE" if family_of(model).interaction_status else ""
    assert tokens(messages) == [
        "interrupted",
        "toolCallCancellation",
        f"turnComplete{idle}",
    ]
    assert messages[-2]["toolCallCancellation"] == {"ids": ["c1"]}
    assert fake_live.connections[0].cancelled_tool_calls == ["c1"]


async def test_user_input_does_not_cancel_a_non_blocking_call(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    fake_live.queue_reply(lamp_reply(meanwhile=""), Reply(text="Sure."))
    ws = await open_session(http, fake_live, G38)
    await ws.send_str(text_turn())
    await read(ws, is_tc)
    await ws.send_str(text_turn("and the radio"))
    second = await read(ws, is_tc)
    assert "toolCallCancellation" not in tokens(second)
    assert status(second[-1]) == "IN_PROGRESS"  # c1 still runs
    await ws.send_str(tool_response("c1"))
    assert audio_of(await read(ws, is_done)) == speech("The lamp is on.")
    assert fake_live.connections[0].cancelled_tool_calls == []


# ------------------------------------------------------------- grounding


@pytest.mark.parametrize(
    ("setup_tools", "both"),
    [
        ([{"googleSearch": {}}], False),
        ([{"googleSearch": {}}, *tools()], True),
        ([{"googleSearch": {}, "functionDeclarations": [{"name": "lamp"}]}], True),
    ],
)
async def test_grounding_metadata_during_the_reply(
    fake_live: FakeLiveServer,
    http: aiohttp.ClientSession,
    setup_tools: list[Msg],
    both: bool,
) -> None:
    """3.2: groundingMetadata when googleSearch was used; 8.10 recorded."""
    grounding = Grounding(
        queries=["weather in Paris"],
        chunks=[("https://www.example.com/paris", "example.com"), ("https://a.test/x", "A", "a.test")],
        search_entry_point={"renderedContent": "<div>Paris</div>"},
        after_chunks=2,
    )  # fmt: skip
    fake_live.queue_reply(
        Reply(text="It is sunny in Paris today.", grounding=grounding)
    )
    ws = await open_session(http, fake_live, G38, tools=setup_tools)
    await ws.send_str(text_turn("weather in Paris"))
    messages = await read(ws, is_tc)
    index = next(i for i, m in enumerate(messages) if token(m) == "grounding")
    assert sum("modelTurn" in m.get("serverContent", {}) for m in messages[:index]) == 2
    assert messages[index]["serverContent"] == {
        "groundingMetadata": {
            "webSearchQueries": ["weather in Paris"],
            "groundingChunks": [
                {"web": {"uri": "https://www.example.com/paris", "title": "example.com", "domain": "example.com"}},
                {"web": {"uri": "https://a.test/x", "title": "A", "domain": "a.test"}},
            ],
            "searchEntryPoint": {"renderedContent": "<div>Paris</div>"},
        }
    }  # fmt: skip
    assert fake_live.connections[0].search_with_functions is both


async def test_grounding_mapping_is_sent_verbatim_first(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    metadata = {"webSearchQueries": ["q"], "groundingChunks": []}
    fake_live.queue_reply(Reply(text="Done.", grounding=metadata))
    ws = await open_session(http, fake_live, DEV_25, tools=[{"googleSearch": {}}])
    await ws.send_str(text_turn())
    messages = await read(ws, is_tc)
    assert tokens(messages)[:2] == ["grounding", "audio"]
    assert messages[0]["serverContent"]["groundingMetadata"] == metadata


async def test_grounding_without_google_search_is_a_script_error(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    fake_live.queue_reply(Reply(text="Done.", grounding=Grounding(queries=["q"])))
    ws = await open_session(http, fake_live, G38, tools=tools())
    await ws.send_str(text_turn())
    await expect_close(ws, 1011, INTERNAL_ERROR)
    assert "googleSearch" in str(fake_live.errors.pop())


# --------------------------------------------------------- contextUpdate


def instruction(*texts: str) -> Msg:
    return {"parts": [{"text": text} for text in texts]}


@pytest.mark.parametrize(
    ("model", "provider"), [(G38, DEV), (G38, VTX), (EXT, DEV), (G31, DEV)]
)
async def test_context_update_replaces_the_instruction_and_tools(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession, model: str, provider: str
) -> None:
    """2.5: only the fields set are replaced, in order with other input."""
    fake_live.responder = lambda turn: Reply(
        text=turn.connection.system_instruction or ""
    )
    ws = await open_session(
        http, fake_live, model, provider, systemInstruction=instruction("Be kind.")
    )
    conn = fake_live.connections[0]
    assert conn.system_instruction == "Be kind."
    update = {"systemInstruction": instruction("Answer in French.", "Be brief.")}
    await ws.send_str(json.dumps({"contextUpdate": update}))
    await ws.send_str(text_turn("hello"))
    messages = await read(ws, is_tc)
    assert transcript(messages) == "Answer in French.\n\nBe brief."
    # Extended Thinking takes only non-blocking functions (§7).
    behavior = "NON_BLOCKING" if model == EXT else "BLOCKING"
    new_tools = {"tools": tools(behavior)}
    await ws.send_str(json.dumps({"context_update": {"tools": new_tools}}))
    await ws.send_str(
        json.dumps({"contextUpdate": {"systemInstruction": instruction("Be short.")}})
    )
    await conn.wait_for(lambda: len(conn.context_updates) == 3)
    assert conn.system_instruction == "Be short."
    assert conn.system_instruction_updates == [
        "Answer in French.\n\nBe brief.",
        "Be short.",
    ]
    assert conn.tools == tools(behavior)
    await ws.send_str(json.dumps({"contextUpdate": {"tools": {"tools": []}}}))
    await conn.wait_for(lambda: len(conn.context_updates) == 4)
    assert (conn.tools, conn.system_instruction) == ([], "Be short.")
    assert conn.unverified_fields == []


async def test_context_update_tools_change_the_call_behavior(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    fake_live.queue_reply(lamp_reply())
    ws = await open_session(http, fake_live, G38, tools=tools())
    await ws.send_str(
        json.dumps({"contextUpdate": {"tools": {"tools": tools("BLOCKING")}}})
    )
    await ws.send_str(text_turn())
    await read(ws, lambda m: "toolCall" in m)
    assert not await quiet(ws, 0.3)  # now BLOCKING: the model waits


@pytest.mark.parametrize(("model", "provider"), [(DEV_25, DEV), (VTX_25, VTX)])
async def test_context_update_on_2_5_is_unverified(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession, model: str, provider: str
) -> None:
    """2.5: not documented for 2.5; applied, or 1007 with strict_families."""
    ws = await open_session(http, fake_live, model, provider)
    await ws.send_str(
        json.dumps({"contextUpdate": {"systemInstruction": instruction("Hi.")}})
    )
    conn = fake_live.connections[0]
    await conn.wait_for(lambda: conn.context_updates != [])
    assert (conn.system_instruction, conn.unverified_fields) == (
        "Hi.",
        ["contextUpdate"],
    )
    fake_live.strict_families = True
    ws = await open_session(http, fake_live, model, provider)
    await ws.send_str(
        json.dumps({"contextUpdate": {"systemInstruction": instruction("Hi.")}})
    )
    await expect_close(
        ws, 1007, 'Invalid JSON payload received. Unknown name "contextUpdate"'
    )
    assert fake_live.connections[1].rejected_field == "contextUpdate"


@pytest.mark.parametrize(
    ("model", "update", "code", "field"),
    [
        (G31, {"tools": {"tools": tools("NON_BLOCKING")}}, 1008, BEHAVIOR),
        (G38, {"tools": tools()}, 1007, "contextUpdate.tools"),
        (G38, {"generationConfig": {}}, 1007, "contextUpdate.generationConfig"),
    ],
)
async def test_bad_context_update_closes(
    fake_live: FakeLiveServer,
    http: aiohttp.ClientSession,
    *,
    model: str,
    update: Msg,
    code: int,
    field: str,
) -> None:
    """A contextUpdate the family cannot take closes the connection."""
    ws = await open_session(http, fake_live, model)
    await ws.send_str(json.dumps({"contextUpdate": update}))
    await expect_close(ws, code)
    assert fake_live.connections[0].rejected_field == field


async def test_follow_up_tasks_end_with_the_connection(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    """Every task (follow-ups included) is cancelled when the client leaves."""
    reply = lamp_reply()
    fake_live.queue_reply(reply)
    ws = await open_session(http, fake_live, G38)
    await ws.send_str(text_turn())
    await read(ws, lambda m: "toolCall" in m)
    await ws.send_str(tool_response("c1", "WHEN_IDLE"))
    await ws.close()
    conn = fake_live.connections[0]
    await conn.wait_closed()
    await asyncio.wait_for(conn.shutdown(), 2)
    assert not conn._tasks
    assert not conn.replying
