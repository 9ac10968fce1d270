"""Fidelity tests of the fake Live server (raw aiohttp client and google-genai)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable
import json
import time
from typing import Any

import aiohttp
from aiohttp import WSMsgType
import jwt
import pytest
import pytest_asyncio

from tests.fake_live import (
    API_KEY_INVALID,
    GOAWAY_ABORT,
    INTERNAL_ERROR,
    QUOTA_EXCEEDED,
    Close,
    ErrorFrame,
    FakeLiveServer,
    GoAway,
    Refuse,
    Reply,
    Stall,
    ToolCall,
    UserTurn,
    recognize,
    silence,
    speech,
)
from tests.fake_live.auth import CLOUD_PLATFORM, JWT_BEARER, TokenAuthority

type Msg = dict[str, Any]
VERTEX_MODEL = "gemini-live-2.5-flash-native-audio"


@pytest_asyncio.fixture
async def http(fake_live: FakeLiveServer) -> AsyncIterator[aiohttp.ClientSession]:
    """Provide a plain aiohttp client session."""
    async with aiohttp.ClientSession() as session:
        yield session


def b64(pcm: bytes) -> str:
    return base64.b64encode(pcm).decode()


def audio_msg(pcm: bytes, rate: int = 16000) -> Msg:
    return {
        "realtimeInput": {
            "audio": {"mimeType": f"audio/pcm;rate={rate}", "data": b64(pcm)}
        }
    }


async def vertex_token(
    http: aiohttp.ClientSession, server: FakeLiveServer, project: str = "test-project"
) -> str:
    """Run the JWT-bearer grant for a fresh service account."""
    account = json.loads(server.service_account_json(project))
    now = int(time.time())
    claims = {
        "iss": account["client_email"],
        "scope": CLOUD_PLATFORM,
        "aud": account["token_uri"],
        "iat": now,
        "exp": now + 3600,
    }
    assertion = jwt.encode(
        claims,
        account["private_key"],
        algorithm="RS256",
        headers={"kid": account["private_key_id"]},
    )
    form = {"grant_type": JWT_BEARER, "assertion": assertion}
    async with http.post(account["token_uri"], data=form) as resp:
        assert resp.status == 200
        return str((await resp.json())["access_token"])


async def connect(
    http: aiohttp.ClientSession,
    server: FakeLiveServer,
    provider: str = "gemini_api",
    *,
    url: str | None = None,
    headers: dict[str, str] | None = None,
) -> aiohttp.ClientWebSocketResponse:
    """Open a socket with valid credentials unless `headers` is given."""
    if headers is None:
        if provider == "gemini_api":
            headers = {"x-goog-api-key": server.api_key}
        else:
            headers = {"Authorization": f"Bearer {await vertex_token(http, server)}"}
    return await http.ws_connect(url or server.ws_url(provider), headers=headers)  # type: ignore[arg-type]


async def recv(
    ws: aiohttp.ClientWebSocketResponse,
    timeout: float = 5,  # noqa: ASYNC109
) -> Msg | None:
    """Return the next JSON message, or None once closed."""
    msg = await ws.receive(timeout=timeout)
    if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
        data: Msg = json.loads(msg.data)
        data["_frame"] = msg.type.name
        return data
    return None


async def read_until(
    ws: aiohttp.ClientWebSocketResponse, stop: Callable[[Msg], bool]
) -> list[Msg]:
    """Messages up to and including the first matching `stop`."""
    out: list[Msg] = []
    while (msg := await recv(ws)) is not None:
        out.append(msg)
        if stop(msg):
            return out
    raise AssertionError(f"closed before the expected message: {out[-3:]}")


def is_resumption(msg: Msg) -> bool:
    return "sessionResumptionUpdate" in msg


def content(messages: list[Msg], key: str) -> list[Any]:
    return [
        m["serverContent"][key] for m in messages if key in m.get("serverContent", {})
    ]


def audio_of(messages: list[Msg]) -> bytes:
    return b"".join(
        base64.b64decode(p["inlineData"]["data"])
        for turn in content(messages, "modelTurn")
        for p in turn["parts"]
    )


async def start(
    http: aiohttp.ClientSession,
    server: FakeLiveServer,
    provider: str = "gemini_api",
    **setup: Any,
) -> aiohttp.ClientWebSocketResponse:
    """Connect, send setup (transcription + resumption on) and read setupComplete."""
    ws = await connect(http, server, provider)
    body = {
        "model": server.model_resource(None, provider),  # type: ignore[arg-type]
        "generationConfig": {"responseModalities": ["AUDIO"]},
        "inputAudioTranscription": {},
        "outputAudioTranscription": {},
        "sessionResumption": {},
        **setup,
    }
    await ws.send_str(json.dumps({"setup": body}))
    first = await recv(ws)
    assert first is not None
    assert "setupComplete" in first, first
    assert is_resumption(await recv(ws) or {})
    return ws


async def expect_close(
    ws: aiohttp.ClientWebSocketResponse, code: int, reason: str | None = None
) -> str:
    """Read until the close frame; check code (and reason prefix)."""
    while True:
        msg = await ws.receive(timeout=5)
        if msg.type == WSMsgType.CLOSE:
            assert msg.data == code, (msg.data, msg.extra)
            text = str(msg.extra)
            assert len(text.encode()) <= 123
            if reason is not None:
                assert reason.startswith(text) or text.startswith(reason), text
            return text
        if msg.type in (WSMsgType.CLOSED, WSMsgType.ERROR):
            raise AssertionError(f"no close frame: {msg}")


# ---------------------------------------------------------------- handshake


@pytest.mark.parametrize(
    ("provider", "path"),
    [
        (
            "gemini_api",
            "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent",
        ),
        (
            "gemini_api",
            "//ws/google.ai.generativelanguage.v1.GenerativeService.BidiGenerateContent",
        ),
        (
            "gemini_api",
            "///ws/google.ai.generativelanguage.v1alpha.GenerativeService.BidiGenerateContentConstrained",
        ),
        (
            "vertex_ai",
            "/ws/google.cloud.aiplatform.v1beta1.LlmBidiService/BidiGenerateContent",
        ),
        (
            "vertex_ai",
            "//ws/google.cloud.aiplatform.v1.LlmBidiService//BidiGenerateContent",
        ),
    ],
)
async def test_setup_complete_on_both_url_shapes(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession, provider: str, path: str
) -> None:
    url = f"ws://127.0.0.1:{fake_live.port}{path}"
    ws = await connect(http, fake_live, provider, url=url)
    model = fake_live.model_resource(None, provider)  # type: ignore[arg-type]
    await ws.send_str(json.dumps({"setup": {"model": model}}))
    msg = await recv(ws)
    assert msg is not None
    assert msg["_frame"] == "BINARY"
    conn = fake_live.connections[0]
    assert msg["setupComplete"] == {"sessionId": conn.session_id}
    assert conn.setup == {"model": model}
    assert conn.provider == provider
    assert conn.path == path
    await ws.close()
    assert await conn.wait_closed() == 1000
    assert conn.closed_by == "client"


async def test_unknown_path_is_404(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    url = f"ws://127.0.0.1:{fake_live.port}/ws/google.ai.generativelanguage.v2.GenerativeService.BidiGenerateContent"
    with pytest.raises(aiohttp.WSServerHandshakeError) as err:
        await http.ws_connect(url)
    assert err.value.status == 404


async def test_api_key_in_query_and_text_frames(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    fake_live.text_frames = {"setupComplete"}
    fake_live.send_session_id = False
    ws = await http.ws_connect(fake_live.ws_url(key=fake_live.api_key))
    # Client frames may be binary too; snake_case is accepted.
    setup = {
        "setup": {
            "model": fake_live.model_resource(),
            "generation_config": {"response_modalities": ["AUDIO"]},
        }
    }
    await ws.send_bytes(json.dumps(setup).encode())
    assert await recv(ws) == {"setupComplete": {}, "_frame": "TEXT"}
    conn = fake_live.connections[0]
    assert conn.query == {"key": fake_live.api_key}
    assert conn.binary_frames_received == 1
    assert conn.config["generationConfig"] == {"responseModalities": ["AUDIO"]}
    assert conn.setup == setup["setup"]
    assert conn.raw_frames == [json.dumps(setup)]
    await ws.close()


# -------------------------------------------------------------------- turns


async def test_audio_turn_server_vad(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    fake_live.queue_reply(Reply(text="The kitchen light is on."))
    ws = await start(http, fake_live)
    mic = speech("turn on the kitchen light", 16000)
    # Stream 20 ms chunks of speech then trailing silence (URL-safe base64 as the SDK).
    pcm = silence(200) + mic + silence(600)
    for i in range(0, len(pcm), 640):
        data = base64.urlsafe_b64encode(pcm[i : i + 640]).decode().rstrip("=")
        await ws.send_str(
            json.dumps(
                {
                    "realtime_input": {
                        "audio": {"data": data, "mime_type": "audio/pcm;rate=16000"}
                    }
                }
            )
        )
    messages = await read_until(ws, is_resumption)

    conn = fake_live.connections[0]
    assert conn.audio_in == pcm
    assert (
        "".join(content(messages, "inputTranscription")[i]["text"] for i in range(5))
        == "turn on the kitchen light"
    )
    reply_audio = speech("The kitchen light is on.")
    assert audio_of(messages) == reply_audio == conn.audio_out
    chunks = content(messages, "modelTurn")
    assert len(chunks) == -(-len(reply_audio) // 1920)
    assert all(
        p["inlineData"]["mimeType"] == "audio/pcm;rate=24000"
        for c in chunks
        for p in c["parts"]
    )
    out = [t["text"] for t in content(messages, "outputTranscription")]
    assert out == ["The", " kitchen", " light", " is", " on."]
    kinds = [next(iter(m.get("serverContent", m))) for m in messages]
    # generationComplete, then turnComplete (+usage), trailing transcript, handle.
    assert kinds[-4:] == [
        "generationComplete",
        "turnComplete",
        "outputTranscription",
        "sessionResumptionUpdate",
    ]
    assert messages[-4]["_frame"] == "TEXT"
    assert {m["_frame"] for m in messages[:-4]} == {"BINARY"}
    usage = messages[-3]["usageMetadata"]
    assert (
        usage["totalTokenCount"]
        == usage["promptTokenCount"] + usage["responseTokenCount"]
    )
    assert messages[-1]["sessionResumptionUpdate"]["resumable"] is True

    turn = conn.turns[0]
    assert (turn.ended_by, turn.heard, turn.text, turn.sample_rate) == (
        "silence",
        "turn on the kitchen light",
        None,
        16000,
    )
    assert [(t.role, t.text) for t in conn.history] == [
        ("user", "turn on the kitchen light"),
        ("model", "The kitchen light is on."),
    ]
    await ws.close()


async def test_manual_activity_turn_with_snake_case_setup(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    fake_live.queue_reply(Reply(text="Sure.", heard="what time is it", heard_late=True))
    ws = await start(
        http,
        fake_live,
        realtime_input_config={"automatic_activity_detection": {"disabled": True}},
    )
    await ws.send_str(json.dumps({"realtimeInput": {"activityStart": {}}}))
    await ws.send_str(
        json.dumps(audio_msg(silence(300)))
    )  # no speech: manual VAD still replies
    await ws.send_str(json.dumps({"realtimeInput": {"activityEnd": {}}}))
    messages = await read_until(ws, is_resumption)
    kinds = [next(iter(m.get("serverContent", m))) for m in messages]
    # The input transcription arrives late (after turnComplete), as it can in production.
    assert kinds[kinds.index("turnComplete") :] == [
        "turnComplete",
        "outputTranscription",
        "inputTranscription",
        "inputTranscription",
        "inputTranscription",
        "inputTranscription",
        "sessionResumptionUpdate",
    ]
    conn = fake_live.connections[0]
    assert conn.manual_activity
    assert conn.turns[0].ended_by == "activityEnd"
    assert conn.config["realtimeInputConfig"] == {
        "automaticActivityDetection": {"disabled": True}
    }
    await ws.close()


async def test_audio_stream_end_ends_turn(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    ws = await start(http, fake_live)
    await ws.send_str(json.dumps(audio_msg(speech("hello", 16000))))
    await ws.send_str(json.dumps({"realtimeInput": {"audioStreamEnd": True}}))
    messages = await read_until(ws, is_resumption)
    assert audio_of(messages) == speech("OK.")  # the default reply
    assert fake_live.connections[0].turns[0].ended_by == "audioStreamEnd"
    await ws.close()


async def test_typed_turns(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    seen: list[UserTurn] = []

    def responder(turn: UserTurn) -> Reply:
        seen.append(turn)
        return Reply(text=f"You said {turn.query}.")

    fake_live.responder = responder
    ws = await start(http, fake_live)
    turn = {
        "turns": [{"role": "user", "parts": [{"text": "hi there"}]}],
        "turn_complete": True,
    }
    await ws.send_str(json.dumps({"client_content": turn}))
    first = await read_until(ws, is_resumption)
    await ws.send_str(json.dumps({"realtimeInput": {"text": "bye"}}))
    second = await read_until(ws, is_resumption)
    assert not content(first, "inputTranscription")
    assert (
        "".join(t["text"] for t in content(first, "outputTranscription"))
        == "You said hi there."
    )
    assert (
        "".join(t["text"] for t in content(second, "outputTranscription"))
        == "You said bye."
    )
    assert [(t.ended_by, t.text) for t in seen] == [
        ("clientContent", "hi there"),
        ("text", "bye"),
    ]
    await ws.close()


async def test_tool_call_round_trip(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    def follow_up(responses: list[dict[str, Any]]) -> Reply:
        return Reply(text=f"It is {responses[0]['response']['temp_c']} degrees.")

    fake_live.queue_reply(
        Reply(
            text="Let me check.",
            tool_calls=[
                ToolCall(name="get_temperature", args={"room_name": "kitchen"})
            ],
            then=follow_up,
        )
    )
    ws = await start(http, fake_live)
    await ws.send_str(
        json.dumps({"realtimeInput": {"text": "how warm is the kitchen"}})
    )
    before = await read_until(ws, lambda m: "toolCall" in m)
    call = before[-1]["toolCall"]["functionCalls"][0]
    assert call["name"] == "get_temperature"
    assert call["args"] == {"room_name": "kitchen"}
    assert audio_of(before) == speech("Let me check.")
    assert not content(before, "turnComplete")
    response = {"id": call["id"], "name": call["name"], "response": {"temp_c": 21}}
    await ws.send_str(json.dumps({"tool_response": {"function_responses": [response]}}))
    after = await read_until(ws, is_resumption)
    assert audio_of(after) == speech("It is 21 degrees.")
    assert content(after, "generationComplete") == [True]
    conn = fake_live.connections[0]
    assert conn.tool_responses == [response]  # "temp_c" is not re-cased
    assert conn.tool_calls == [call]
    assert conn.history[-1].text == "Let me check. It is 21 degrees."
    await ws.close()


async def test_barge_in_cancels_pending_tool_call(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    fake_live.queue_reply(
        Reply(text="", tool_calls=[ToolCall(name="slow", id="call-1")])
    )
    ws = await start(
        http,
        fake_live,
        realtimeInputConfig={"automaticActivityDetection": {"disabled": True}},
    )
    await ws.send_str(json.dumps({"realtimeInput": {"text": "do it"}}))
    await read_until(ws, lambda m: "toolCall" in m)
    await ws.send_str(json.dumps({"realtimeInput": {"activityStart": {}}}))
    messages = await read_until(ws, is_resumption)
    assert [next(iter(m.get("serverContent", m))) for m in messages] == [
        "interrupted",
        "toolCallCancellation",
        "turnComplete",
        "sessionResumptionUpdate",
    ]
    assert messages[1]["toolCallCancellation"] == {"ids": ["call-1"]}
    conn = fake_live.connections[0]
    assert conn.cancelled_tool_calls == ["call-1"]
    assert conn.history[-1].interrupted
    await ws.close()


async def test_barge_in_with_speech_in_server_vad(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    fake_live.queue_reply(
        Reply(text="A long answer about many things.", pause_after_chunks=3)
    )
    ws = await start(http, fake_live)
    await ws.send_str(json.dumps({"realtimeInput": {"text": "tell me"}}))
    conn = fake_live.connections[0]
    await conn.wait_for(lambda: conn.audio_chunks_sent == 3)
    await ws.send_str(json.dumps(audio_msg(speech("stop", 16000))))
    messages = await read_until(ws, is_resumption)
    assert len(content(messages, "modelTurn")) == 3
    assert content(messages, "interrupted") == [True]
    assert content(messages, "turnComplete") == [True]
    assert not content(messages, "generationComplete")
    assert conn.interruptions == 1
    await ws.close()


async def test_concurrent_sessions_get_their_own_reply(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    fake_live.realtime_factor = 20.0  # interleave the sessions' audio
    fake_live.responder = lambda turn: Reply(text=f"Answer {turn.heard}.")

    async def one(i: int) -> None:
        ws = await start(http, fake_live)
        await ws.send_str(
            json.dumps(audio_msg(speech(f"number {i}", 16000) + silence(600)))
        )
        messages = await read_until(ws, is_resumption)
        assert (
            "".join(t["text"] for t in content(messages, "inputTranscription"))
            == f"number {i}"
        )
        assert audio_of(messages) == speech(f"Answer number {i}.")
        await ws.close()

    await asyncio.gather(*(one(i) for i in range(10)))
    assert len(fake_live.connections) == 10


async def test_pacing_and_model_delay(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    audio = bytes(24000)  # 0.5 s
    fake_live.queue_reply(Reply(text="x", audio=audio, realtime_factor=4.0, delay=0.1))
    ws = await start(http, fake_live)
    began = time.monotonic()
    await ws.send_str(json.dumps({"realtimeInput": {"text": "go"}}))
    messages = await read_until(ws, is_resumption)
    assert time.monotonic() - began >= 0.2
    assert audio_of(messages) == audio
    await ws.close()


# -------------------------------------------------------------- resumption


async def test_resume_by_handle_restores_history(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    fake_live.queue_reply(Reply(text="Nice to meet you."))
    ws = await start(http, fake_live)
    await ws.send_str(json.dumps({"realtimeInput": {"text": "I am Ann"}}))
    handle = (await read_until(ws, is_resumption))[-1]["sessionResumptionUpdate"][
        "newHandle"
    ]
    first = fake_live.connections[0]

    # Resuming while the old socket is open fails.
    early = await connect(http, fake_live)
    await early.send_str(
        json.dumps(
            {
                "setup": {
                    "model": fake_live.model_resource(),
                    "sessionResumption": {"handle": handle},
                }
            }
        )
    )
    await expect_close(early, 1011, INTERNAL_ERROR)

    await ws.close()
    ws = await connect(http, fake_live)
    await ws.send_str(
        json.dumps(
            {
                "setup": {
                    "model": fake_live.model_resource(),
                    "sessionResumption": {"handle": handle},
                }
            }
        )
    )
    complete = await recv(ws)
    assert complete == {
        "setupComplete": {"sessionId": first.session_id},
        "_frame": "BINARY",
    }
    conn = fake_live.connections[-1]
    assert conn.resumed
    assert conn.session is first.session
    assert [t.text for t in conn.history] == ["I am Ann", "Nice to meet you."]
    await ws.close()

    unknown = await connect(http, fake_live)
    await unknown.send_str(
        json.dumps(
            {
                "setup": {
                    "model": fake_live.model_resource(),
                    "sessionResumption": {"handle": "nope"},
                }
            }
        )
    )
    await expect_close(unknown, 1007)


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("headers", "setup", "code", "reason"),
    [
        ({"x-goog-api-key": "AIzaWRONG"}, {}, 1007, API_KEY_INVALID),
        (
            {},
            {},
            1008,
            "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API c",
        ),
        (
            None,
            {"model": "models/gemini-9"},
            1008,
            "models/gemini-9 is not found for API version v1beta, or is not supported for bidiGenerateContent. Call",
        ),
        (
            None,
            {"model": "models/gemini-live-2.5-flash-native-audio"},
            1008,
            "models/gemini-live-2.5-flash-native-audio is not found for API version v1beta",
        ),
        (
            None,
            {"generationConfig": {"responseModalities": ["TEXT"]}},
            1007,
            "Request contains an invalid argument.",
        ),
        (
            None,
            {"generationConfig": {"responseModalities": ["AUDIO", "TEXT"]}},
            1007,
            "Request contains an invalid argument.",
        ),
        (
            None,
            {
                "model": "models/gemini-3.8-live",
                "generationConfig": {"thinkingConfig": {"thinkingBudget": 0}},
            },
            1007,
            "Request contains an invalid argument.",
        ),
        (
            None,
            {"bogus_field": 1},
            1007,
            'Invalid JSON payload received. Unknown name "bogusField"',
        ),
    ],
)
async def test_developer_setup_errors(
    fake_live: FakeLiveServer,
    http: aiohttp.ClientSession,
    *,
    headers: dict[str, str] | None,
    setup: Msg,
    code: int,
    reason: str,
) -> None:
    ws = await connect(http, fake_live, headers=headers)
    await ws.send_str(
        json.dumps({"setup": {"model": fake_live.model_resource(), **setup}})
    )
    await expect_close(ws, code, reason)
    conn = fake_live.connections[0]
    assert (conn.closed_by, conn.close_code) == ("server", code)
    assert not conn.setup_complete_sent


async def test_reason_mentions_url_version_and_is_truncated(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    ws = await connect(http, fake_live, url=fake_live.ws_url(version="v1alpha"))
    await ws.send_str(json.dumps({"setup": {"model": "models/" + "x" * 200}}))
    text = await expect_close(ws, 1008)
    assert len(text.encode()) == 123
    ws = await connect(http, fake_live, url=fake_live.ws_url(version="v1alpha"))
    await ws.send_str(json.dumps({"setup": {"model": "models/nope"}}))
    assert "for API version v1alpha," in await expect_close(ws, 1008)


async def test_first_frame_must_be_setup_and_activity_needs_manual_vad(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    ws = await connect(http, fake_live)
    await ws.send_str(json.dumps({"realtimeInput": {"text": "hi"}}))
    await expect_close(ws, 1007, "Request contains an invalid argument.")
    ws = await start(http, fake_live)
    await ws.send_str(json.dumps({"realtimeInput": {"activityStart": {}}}))
    await expect_close(
        ws,
        1007,
        "Explicit activity control is not supported when automatic activity detection is enabled.",
    )
    ws = await connect(http, fake_live)
    await ws.send_str("{not json")
    await expect_close(ws, 1007, "Invalid JSON payload received.")


async def test_other_client_messages_are_recorded(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    ws = await start(http, fake_live)
    jpeg = b"\xff\xd8\xff\xe0fake"
    video = {"video": {"mimeType": "image/jpeg", "data": b64(jpeg)}}
    await ws.send_str(json.dumps({"realtimeInput": video}))
    chunk = {"mimeType": "audio/pcm;rate=24000", "data": b64(bytes(480))}
    await ws.send_str(json.dumps({"realtimeInput": {"mediaChunks": [chunk]}}))
    update = {"systemInstruction": {"parts": [{"text": "Be brief."}]}}
    await ws.send_str(json.dumps({"contextUpdate": update}))
    conn = fake_live.connections[0]
    await conn.wait_for_message("contextUpdate")
    assert conn.video_in == [jpeg]
    assert (conn.audio_in, conn.audio_in_rate) == (bytes(480), 24000)
    assert conn.messages[-1] == {"contextUpdate": update}
    # A second setup, an unknown message or bad base64 is an invalid argument.
    await ws.send_str(json.dumps({"setup": {"model": fake_live.model_resource()}}))
    await expect_close(ws, 1007, "Request contains an invalid argument.")
    for bad in ({"realtimeInput": {"audio": {"data": "!!"}}}, {"ping": {}}):
        ws = await start(http, fake_live)
        await ws.send_str(json.dumps(bad))
        await expect_close(ws, 1007)


async def test_developer_tool_response_needs_an_id(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    ws = await start(http, fake_live)
    response = {"name": "f", "response": {}}
    await ws.send_str(json.dumps({"toolResponse": {"functionResponses": [response]}}))
    await expect_close(ws, 1007, "Request contains an invalid argument.")


@pytest.mark.parametrize(
    ("model", "token", "code", "reason"),
    [
        (
            f"projects/other-project/locations/us-central1/publishers/google/models/{VERTEX_MODEL}",
            True,
            1008,
            "Permission 'aiplatform.endpoints.predict' denied",
        ),
        (
            f"projects/test-project/locations/global/publishers/google/models/{VERTEX_MODEL}",
            True,
            1008,
            "Publisher Model `projects/test-project/locations/global/",
        ),
        (
            "projects/test-project/locations/us-central1/publishers/google/models/gemini-2.5-flash-native-audio-preview-12-2025",
            True,
            1008,
            "Publisher Model",
        ),
        ("models/gemini-3.8-live", True, 1008, "Publisher Model"),
        (
            None,
            False,
            1008,
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication c",
        ),
    ],
)
async def test_vertex_setup_errors(
    fake_live: FakeLiveServer,
    http: aiohttp.ClientSession,
    *,
    model: str | None,
    token: bool,
    code: int,
    reason: str,
) -> None:
    headers = None if token else {"Authorization": "Bearer ya29.forged"}
    ws = await connect(http, fake_live, "vertex_ai", headers=headers)
    setup = {"model": model or fake_live.model_resource(None, "vertex_ai")}
    await ws.send_str(json.dumps({"setup": setup}))
    await expect_close(ws, code, reason)


async def test_vertex_expired_and_missing_tokens(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    token = await vertex_token(http, fake_live)
    fake_live.expire_tokens()
    for headers in ({"Authorization": f"Bearer {token}"}, {}):
        ws = await connect(http, fake_live, "vertex_ai", headers=headers)
        await ws.send_str(
            json.dumps(
                {"setup": {"model": fake_live.model_resource(None, "vertex_ai")}}
            )
        )
        await expect_close(ws, 1008, "Request ")
    assert fake_live.tokens_issued == 1


async def test_token_lifetime(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    fake_live.token_lifetime = 0.2
    token = await vertex_token(http, fake_live)
    assert fake_live.authority.grant_requests[0]["grant_type"] == JWT_BEARER
    await asyncio.sleep(0.25)
    ws = await connect(
        http, fake_live, "vertex_ai", headers={"Authorization": f"Bearer {token}"}
    )
    await ws.send_str(
        json.dumps({"setup": {"model": fake_live.model_resource(None, "vertex_ai")}})
    )
    await expect_close(ws, 1008)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"aud": "https://example.com/token"}, "invalid_grant"),
        ({"exp_delta": -10}, "invalid_grant"),
        ({"exp_delta": 7200}, "invalid_grant"),
        ({"scope": "https://www.googleapis.com/auth/drive"}, "invalid_scope"),
        ({"foreign_key": True}, "invalid_grant"),
        ({"grant_type": "client_credentials"}, "unsupported_grant_type"),
    ],
)
async def test_token_endpoint_rejects_bad_grants(
    fake_live: FakeLiveServer,
    http: aiohttp.ClientSession,
    change: dict[str, Any],
    error: str,
) -> None:
    account = json.loads(fake_live.service_account_json())
    now = int(time.time())
    claims = {
        "iss": account["client_email"],
        "scope": change.get("scope", CLOUD_PLATFORM),
        "aud": change.get("aud", account["token_uri"]),
        "iat": now - 20,
        "exp": now + change.get("exp_delta", 3000),
    }
    key = account["private_key"]
    if change.get("foreign_key"):
        key = TokenAuthority().create_account("p").private_key_pem
    assertion = jwt.encode(
        claims, key, algorithm="RS256", headers={"kid": account["private_key_id"]}
    )
    form = {"grant_type": change.get("grant_type", JWT_BEARER), "assertion": assertion}
    async with http.post(fake_live.token_uri, data=form) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"] == error
    assert fake_live.tokens_issued == 0


async def test_token_endpoint_accepts_json_bodies(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    account = json.loads(fake_live.service_account_json())
    now = int(time.time())
    claims = {"iss": account["client_email"], "scope": CLOUD_PLATFORM}
    claims |= {"aud": account["token_uri"], "iat": now, "exp": now + 600}
    assertion = jwt.encode(claims, account["private_key"], algorithm="RS256")  # no kid
    body = {"grant_type": JWT_BEARER, "assertion": assertion}
    async with http.post(fake_live.token_uri, json=body) as resp:
        token = await resp.json()
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 3600
    assert fake_live.authority.check(f"Bearer {token['access_token']}") is not None


async def test_service_account_json(fake_live: FakeLiveServer) -> None:
    account = json.loads(fake_live.service_account_json(project_id="my-proj"))
    assert account["type"] == "service_account"
    assert account["project_id"] == "my-proj"
    assert account["client_email"].endswith("@my-proj.iam.gserviceaccount.com")
    assert account["private_key"].startswith("-----BEGIN PRIVATE KEY-----")
    assert account["token_uri"] == f"{fake_live.base_url}/token"
    assert {"private_key_id", "client_id", "auth_uri"} <= set(account)


# ------------------------------------------------------------------ faults


@pytest.mark.parametrize("status", [503, 404, 401])
async def test_refuse_upgrade(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession, status: int
) -> None:
    fake_live.add_fault(Refuse(status=status))
    with pytest.raises(aiohttp.WSServerHandshakeError) as err:
        await connect(http, fake_live)
    assert err.value.status == status
    ws = await start(http, fake_live)  # only the next connection was refused
    await ws.close()


async def test_close_mid_turn_after_chunks(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    fake_live.queue_reply(
        Reply(text="This will break.", close=Close.internal(after_chunks=2))
    )
    ws = await start(http, fake_live)
    await ws.send_str(json.dumps({"realtimeInput": {"text": "go"}}))
    received = 0
    while (msg := await recv(ws)) is not None:
        received += "modelTurn" in msg.get("serverContent", {})
    assert received == 2
    assert ws.close_code == 1011
    conn = fake_live.connections[0]
    assert (conn.close_code, conn.close_reason) == (1011, INTERNAL_ERROR)


async def test_quota_close_on_setup_then_success(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    fake_live.add_fault(Close.quota(), times=2)
    for _ in range(2):
        ws = await connect(http, fake_live)
        await ws.send_str(json.dumps({"setup": {"model": fake_live.model_resource()}}))
        await expect_close(ws, 1011, QUOTA_EXCEEDED)
    ws = await start(http, fake_live)
    await ws.close()


async def test_stall_never_completes_setup(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    fake_live.add_fault(Stall())
    ws = await connect(http, fake_live)
    await ws.send_str(json.dumps({"setup": {"model": fake_live.model_resource()}}))
    with pytest.raises(TimeoutError):
        await ws.receive(timeout=0.2)
    assert not fake_live.connections[0].setup_complete_sent
    await ws.close()


async def test_stalled_reply(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    fake_live.queue_reply(Reply(stall=True))
    ws = await start(http, fake_live)
    await ws.send_str(json.dumps({"realtimeInput": {"text": "hello?"}}))
    with pytest.raises(TimeoutError):
        await ws.receive(timeout=0.2)
    await ws.close()


async def test_go_away_then_abort_if_client_lingers(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    fake_live.add_fault(GoAway(time_left=0.2))
    ws = await connect(http, fake_live)
    await ws.send_str(json.dumps({"setup": {"model": fake_live.model_resource()}}))
    assert "setupComplete" in (await recv(ws) or {})
    assert await recv(ws) == {"goAway": {"timeLeft": "0.200s"}, "_frame": "BINARY"}
    await expect_close(ws, 1008, GOAWAY_ABORT)
    assert fake_live.connections[0].go_away_sent


async def test_go_away_after_turn_and_client_leaves_in_time(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    fake_live.queue_reply(Reply(text="Bye.", go_away=GoAway(time_left=5)))
    ws = await start(http, fake_live)
    await ws.send_str(json.dumps({"realtimeInput": {"text": "hi"}}))
    await read_until(ws, lambda m: "goAway" in m)
    await ws.close()
    conn = fake_live.connections[0]
    assert await conn.wait_closed() == 1000
    assert conn.closed_by == "client"


async def test_error_frames(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    fake_live.queue_reply(
        Reply(
            error=ErrorFrame(
                code=429, message="Resource exhausted.", status="RESOURCE_EXHAUSTED"
            )
        )
    )
    ws = await start(http, fake_live)
    await ws.send_str(json.dumps({"realtimeInput": {"text": "hi"}}))
    assert await recv(ws) == {
        "error": {
            "code": 429,
            "message": "Resource exhausted.",
            "status": "RESOURCE_EXHAUSTED",
        },
        "_frame": "BINARY",
    }
    await ws.close()


async def test_stop_closes_open_sockets(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    fake_live.queue_reply(Reply(text="never finished", pause_after_chunks=1))
    ws = await start(http, fake_live)
    await ws.send_str(json.dumps({"realtimeInput": {"text": "hi"}}))
    await fake_live.connections[0].wait_for(lambda: fake_live.connections[0].replying)
    await fake_live.stop()
    assert (await ws.receive(timeout=5)).type == WSMsgType.CLOSE
    assert fake_live.connections[0].close_code == 1001


async def test_client_leaving_mid_reply_is_fine(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    fake_live.queue_reply(Reply(text="A reply nobody hears.", realtime_factor=5.0))
    ws = await start(http, fake_live)
    await ws.send_str(json.dumps({"realtimeInput": {"text": "hi"}}))
    conn = fake_live.connections[0]
    await conn.wait_for(lambda: conn.audio_chunks_sent >= 2)
    await ws.close()
    assert await conn.wait_closed() == 1000
    await conn.wait_idle()
    assert conn.closed_by == "client"
    assert not fake_live.errors


async def test_responder_errors_fail_loudly(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    def broken(turn: UserTurn) -> Reply:
        raise RuntimeError("responder bug")

    fake_live.responder = broken
    ws = await start(http, fake_live)
    await ws.send_str(json.dumps({"realtimeInput": {"text": "hi"}}))
    await expect_close(ws, 1011)
    assert isinstance(fake_live.errors.pop(), RuntimeError)  # else teardown raises


# ------------------------------------------------------------------ speech


def test_speech_is_cached_and_recognised() -> None:
    pcm = speech("the quick brown fox", 16000)
    assert len(pcm) > 16000  # > 0.5 s of 16-bit audio
    assert speech("the quick brown fox", 16000) is pcm
    assert len(speech("the quick brown fox")) == pytest.approx(len(pcm) * 1.5, rel=0.01)
    assert recognize(silence(100) + pcm + silence(100), 16000) == "the quick brown fox"
    assert recognize(pcm[400:-400], 16000) == "the quick brown fox"  # clipped edges
    assert recognize(silence(500), 16000) is None
    # Several utterances in order; a longer utterance wins over its own prefix.
    short, long = speech("turn on", 16000), speech("turn on the light", 16000)
    assert (
        recognize(long + silence(300) + pcm, 16000)
        == "turn on the light the quick brown fox"
    )
    assert recognize(short + pcm, 16000) == "turn on the quick brown fox"
    assert speech("") == b""


# ----------------------------------------------------------- google-genai


def genai_client(server: FakeLiveServer, **kwargs: Any) -> Any:
    """Make a google-genai 3.6.1 client aimed at the fake server over ws://."""
    from google import genai
    from google.genai import types

    client = genai.Client(
        http_options=types.HttpOptions(
            base_url=server.base_url + "/", api_version=kwargs.pop("api_version", None)
        ),
        **kwargs,
    )
    api = client._api_client
    base = server.base_url.replace("http://", "ws://") + "/"
    api._websocket_base_url = lambda http_options=None: base  # type: ignore[method-assign]
    api._websocket_ssl_ctx = {}
    return client


async def test_google_genai_audio_turn_and_tool_call(fake_live: FakeLiveServer) -> None:
    from google.genai import types

    fake_live.queue_reply(
        Reply(
            text="Checking.",
            tool_calls=[ToolCall(name="lights", args={"area_id": "den"})],
            then=Reply(text="All done now."),
        ),
    )
    client = genai_client(fake_live, api_key=fake_live.api_key, api_version="v1beta")
    config = types.LiveConnectConfig(
        response_modalities=[types.Modality.AUDIO],
        input_audio_transcription=types.AudioTranscriptionConfig(),
        output_audio_transcription=types.AudioTranscriptionConfig(),
        session_resumption=types.SessionResumptionConfig(),
        speech_config=types.SpeechConfig(
            voice_config=types.VoiceConfig(
                prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name="Kore")
            )
        ),
        tools=[
            types.Tool(
                function_declarations=[
                    types.FunctionDeclaration(
                        name="lights",
                        parameters=types.Schema(
                            type=types.Type.OBJECT,
                            properties={
                                "area_id": types.Schema(type=types.Type.STRING)
                            },
                        ),
                    )
                ]
            )
        ],
    )
    model = "gemini-2.5-flash-native-audio-preview-12-2025"
    async with client.aio.live.connect(model=model, config=config) as session:
        assert session.session_id == fake_live.connections[0].session_id
        pcm = speech("turn off the den", 16000) + silence(700)
        await session.send_realtime_input(
            audio=types.Blob(data=pcm, mime_type="audio/pcm;rate=16000")
        )
        heard, audio, call = "", b"", None
        async for message in session.receive():
            content = message.server_content
            if content and content.input_transcription:
                heard += content.input_transcription.text or ""
            if message.data:
                audio += message.data
            if message.tool_call:
                call = message.tool_call.function_calls[0]
                break
        assert call is not None
        assert (call.name, call.args) == ("lights", {"area_id": "den"})
        await session.send_tool_response(
            function_responses=[
                types.FunctionResponse(
                    id=call.id, name=call.name, response={"ok_done": True}
                )
            ]
        )
        texts = ""
        async for message in session.receive():
            if message.data:
                audio += message.data
            content = message.server_content
            if content and content.output_transcription:
                texts += content.output_transcription.text or ""
            if content and content.turn_complete:
                assert message.usage_metadata.total_token_count
    conn = fake_live.connections[0]
    assert heard == "turn off the den"
    assert audio == speech("Checking.") + speech("All done now.") == conn.audio_out
    assert texts == " All done"  # the SDK stops at turnComplete, before " now."
    assert conn.audio_in == pcm
    assert conn.path.startswith("//ws/google.ai.generativelanguage.v1beta.")
    assert conn.headers["x-goog-api-key"] == fake_live.api_key
    assert conn.setup is not None
    assert conn.setup["generationConfig"]["speechConfig"] == {
        "voice_config": {"prebuilt_voice_config": {"voice_name": "Kore"}}
    }
    assert conn.config["generationConfig"]["speechConfig"] == {
        "voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Kore"}}
    }
    assert conn.tool_responses == [
        {"id": call.id, "name": "lights", "response": {"ok_done": True}}
    ]
    assert await conn.wait_closed() == 1000


@pytest.mark.parametrize(
    ("api_key", "model", "code", "reason"),
    [
        ("AIzaWRONG", "gemini-3.8-live", 1007, API_KEY_INVALID),
        (
            None,
            "gemini-unknown",
            1008,
            "models/gemini-unknown is not found for API version v1,",
        ),
    ],
)
async def test_google_genai_sees_error_closes(
    fake_live: FakeLiveServer, api_key: str | None, model: str, code: int, reason: str
) -> None:
    from google.genai import errors

    client = genai_client(
        fake_live, api_key=api_key or fake_live.api_key
    )  # SDK default: v1
    with pytest.raises(errors.APIError) as err:
        async with client.aio.live.connect(model=model):
            pass
    assert err.value.code == code
    assert reason in str(err.value)


async def test_google_genai_vertex_service_account(fake_live: FakeLiveServer) -> None:
    from google.genai import types
    from google.oauth2 import service_account

    info = json.loads(fake_live.service_account_json("test-project"))
    credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
        info, scopes=[CLOUD_PLATFORM]
    )
    client = genai_client(
        fake_live,
        vertexai=True,
        project="test-project",
        location="us-central1",
        credentials=credentials,
    )
    fake_live.queue_reply(Reply(text="Hi from Vertex."))
    async with client.aio.live.connect(
        model=VERTEX_MODEL, config=types.LiveConnectConfig()
    ) as session:
        await session.send_client_content(
            turns=types.Content(role="user", parts=[types.Part(text="hello")]),
            turn_complete=True,
        )
        audio = b"".join([m.data async for m in session.receive() if m.data])
    assert audio == speech("Hi from Vertex.")
    conn = fake_live.connections[0]
    assert (
        conn.config["model"]
        == f"projects/test-project/locations/us-central1/publishers/google/models/{VERTEX_MODEL}"
    )
    assert conn.token is not None
    assert conn.token.account.client_email == info["client_email"]
    assert fake_live.tokens_issued == 1
