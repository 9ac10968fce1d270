"""Production behaviours of the fake Live server, driven by a raw aiohttp client.

Each behaviour follows /work/shared/docs/live-api.md: streamed and late input
transcription (2.3, 3.2, 3.10, 8.2), output transcription trailing its audio
(3.2, 8.2), the `finished` flag (8.3), premature turnComplete around tool calls
(8.6, 3.10 item 5), barge-in (2.2, 3.2, 8.5), goAway and the connection
lifetime (3.5, 6), and resumption updates (3.6, 3.10, 5).
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
    GOAWAY_ABORT,
    INVALID_ARGUMENT,
    FakeLiveServer,
    GoAway,
    Reply,
    SpeechStream,
    ToolCall,
    chunks,
    recognize,
    silence,
    speech,
)
from tests.test_fake_live import (
    audio_msg,
    audio_of,
    connect,
    content,
    expect_close,
    is_resumption,
    read_until,
    recv,
    start,
)

type Msg = dict[str, Any]
MANUAL_VAD = {"realtimeInputConfig": {"automaticActivityDetection": {"disabled": True}}}
QUESTION = "turn on the kitchen light"


@pytest_asyncio.fixture
async def http(fake_live: FakeLiveServer) -> AsyncIterator[aiohttp.ClientSession]:
    """Provide a plain aiohttp client session."""
    async with aiohttp.ClientSession() as session:
        yield session


async def collect(
    ws: aiohttp.ClientWebSocketResponse, done: Callable[[list[Msg]], bool]
) -> list[Msg]:
    """Read messages (each stamped with `_at`, monotonic) until `done(messages)`."""
    out: list[Msg] = []
    while not done(out):
        msg = await recv(ws)
        if msg is None:
            raise AssertionError(f"closed early: {out[-3:]}")
        msg["_at"] = time.monotonic()
        out.append(msg)
    return out


async def quiet(ws: aiohttp.ClientWebSocketResponse, seconds: float) -> list[Msg]:
    """Read every message that arrives within `seconds`."""
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


def kinds(messages: list[Msg]) -> list[str]:
    """Name the kind of each message (serverContent field or top-level key)."""
    return [next(iter(m.get("serverContent", m))) for m in messages]


def joined(messages: list[Msg], key: str) -> str:
    """Concatenate the text of the `key` transcription fragments."""
    return "".join(t["text"] for t in content(messages, key))


def position(messages: list[Msg], key: str, text: str | None = None) -> int:
    """Index of the first `key` message (with fragment `text`, if given)."""
    for index, msg in enumerate(messages):
        body = msg.get("serverContent", msg)
        if key in body and (text is None or body[key].get("text") == text):
            return index
    raise AssertionError(f"no {key} {text!r} in {kinds(messages)}")


def has_resumable_update(messages: list[Msg]) -> bool:
    return any(m.get("sessionResumptionUpdate", {}).get("resumable") for m in messages)


async def send(ws: aiohttp.ClientWebSocketResponse, message: Msg) -> None:
    await ws.send_str(json.dumps(message))


async def say_text(ws: aiohttp.ClientWebSocketResponse, text: str) -> None:
    await send(ws, {"realtimeInput": {"text": text}})


# ------------------------------------------------- streaming input (1)


def test_speech_stream_hears_words_as_the_audio_arrives() -> None:
    light = speech("turn on the light", 16000)
    fox = speech("the quick brown fox", 16000)
    speech("turn on", 16000)  # shares its first sound with "turn on the light"
    stream = SpeechStream(16000)
    heard = [stream.feed(c) for c in chunks(silence(100) + light + silence(200) + fox)]
    growth = [h for i, h in enumerate(heard) if i == 0 or h != heard[i - 1]]
    words = ["turn", "on", "the", "light", "the", "quick", "brown", "fox"]
    assert growth == [words[:n] for n in range(len(words) + 1)]  # word by word
    # Half of an utterance gives part of its words; all of them need all its sound.
    half = SpeechStream(16000).feed(light[: len(light) // 4 * 2])
    assert half == ["turn", "on", "the"][: len(half)]
    assert half
    assert SpeechStream(16000).feed(light[:-12000]) == ["turn", "on", "the"]
    assert SpeechStream(16000).feed(silence(500)) == []
    # Speech clipped at its start is only found by `recognize` of the whole audio.
    assert SpeechStream(16000).feed(light[1600:]) == []
    assert recognize(light[1600:], 16000) == "turn on the light"


async def test_streaming_input_transcription_follows_the_audio(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    fake_live.input_transcription = "streaming"
    fake_live.input_transcription_lag = 0.1
    speech("OK.")  # the default reply, synthesised ahead
    mic = speech(QUESTION, 16000)
    half = len(mic) // 4 * 2
    ws = await start(http, fake_live, **MANUAL_VAD)
    await send(ws, {"realtimeInput": {"activityStart": {}}})
    sent_at = time.monotonic()
    await send(ws, audio_msg(mic[:half]))
    early = await collect(ws, lambda ms: len(content(ms, "inputTranscription")) == 3)
    # Half of the audio: the words it covers, `lag` after it, before the turn ends.
    assert [t["text"] for t in content(early, "inputTranscription")] == [
        "turn",
        " on",
        " the",
    ]
    assert early[0]["_at"] - sent_at >= 0.1
    assert await quiet(ws, 0.25) == []  # nothing runs ahead of the audio
    conn = fake_live.connections[0]
    assert not conn.turns

    await send(ws, audio_msg(mic[half:]))
    await send(ws, {"realtimeInput": {"activityEnd": {}}})
    later = await collect(
        ws,
        lambda ms: (
            joined(ms, "inputTranscription") == " kitchen light"
            and has_resumable_update(ms)
        ),
    )
    # The last words come after the end of the turn: the reply already started.
    assert position(later, "modelTurn") < position(
        later, "inputTranscription", " kitchen"
    )
    assert conn.turns[0].ended_by == "activityEnd"
    assert conn.turns[0].heard == QUESTION
    fragments = content(early + later, "inputTranscription")
    assert "".join(t["text"] for t in fragments) == QUESTION
    assert all(set(t) == {"text"} for t in fragments)  # production never sets finished
    await ws.close()


@pytest.mark.parametrize("ended_by", ["silence", "audioStreamEnd"])
async def test_streaming_input_transcription_trails_the_end_of_the_turn(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession, ended_by: str
) -> None:
    fake_live.input_transcription = "streaming"
    fake_live.input_transcription_lag = 0.4
    speech("OK.")
    ws = await start(http, fake_live)
    mic = speech(QUESTION, 16000)
    if ended_by == "silence":
        await send(ws, audio_msg(mic + silence(600)))
    else:
        await send(ws, audio_msg(mic))
        await send(ws, {"realtimeInput": {"audioStreamEnd": True}})
    messages = await collect(
        ws,
        lambda ms: (
            joined(ms, "inputTranscription") == QUESTION and any(map(is_resumption, ms))
        ),
    )
    # Sent at once, the words are heard at once, and sent `lag` after the
    # audio: after the end of the turn, when the reply is already over.
    assert position(messages, "turnComplete") < position(messages, "inputTranscription")
    assert fake_live.connections[0].turns[0].ended_by == ended_by
    await ws.close()


async def test_streaming_needs_input_audio_transcription(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    fake_live.input_transcription = "streaming"
    fake_live.input_transcription_lag = 0.0
    ws = await connect(http, fake_live)
    setup = {"model": fake_live.model_resource(), "sessionResumption": {}}
    await send(ws, {"setup": setup})
    await read_until(ws, is_resumption)
    await send(ws, audio_msg(speech(QUESTION, 16000) + silence(600)))
    messages = await read_until(
        ws, lambda m: "turnComplete" in m.get("serverContent", {})
    )
    messages += await quiet(ws, 0.2)
    assert not content(messages, "inputTranscription")
    assert fake_live.connections[0].turns[0].heard == QUESTION
    await ws.close()


async def test_streaming_heard_late_holds_the_last_words(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    fake_live.input_transcription = "streaming"
    fake_live.input_transcription_lag = 0.3
    speech("Sure.")
    fake_live.queue_reply(Reply(text="Sure.", heard_late=True))
    ws = await start(http, fake_live, **MANUAL_VAD)
    await send(ws, {"realtimeInput": {"activityStart": {}}})
    await send(ws, audio_msg(speech(QUESTION, 16000)))
    await send(ws, {"realtimeInput": {"activityEnd": {}}})
    messages = await read_until(ws, is_resumption)
    assert kinds(messages)[position(messages, "turnComplete") :] == [
        "turnComplete",
        "outputTranscription",
        *["inputTranscription"] * 5,
        "sessionResumptionUpdate",
    ]
    assert joined(messages, "inputTranscription") == QUESTION
    await ws.close()


@pytest.mark.parametrize("mode", ["at_turn_end", "streaming"])
async def test_transcription_finished_flag(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession, mode: str
) -> None:
    fake_live.input_transcription = mode  # type: ignore[assignment]
    fake_live.input_transcription_lag = 0.0
    fake_live.transcription_finished_flag = True
    fake_live.queue_reply(Reply(text="The light is on."))
    ws = await start(http, fake_live, **MANUAL_VAD)
    await send(ws, {"realtimeInput": {"activityStart": {}}})
    await send(ws, audio_msg(speech(QUESTION, 16000)))
    if mode == "streaming":  # every word goes out before the turn ends
        await collect(ws, lambda ms: joined(ms, "inputTranscription") == QUESTION)
    await send(ws, {"realtimeInput": {"activityEnd": {}}})
    messages = await read_until(ws, is_resumption)
    heard = content(messages, "inputTranscription")
    spoken = content(messages, "outputTranscription")
    if mode == "streaming":
        assert heard == [{"text": "", "finished": True}]
    else:
        assert [t.get("finished") for t in heard] == [None] * 4 + [True]
        assert "".join(t["text"] for t in heard) == QUESTION
    assert spoken[-1] == {"text": " on.", "finished": True}
    assert all("finished" not in t for t in spoken[:-1])
    await ws.close()


# ---------------------------------------------------- output lag (2)


async def test_output_transcript_lags_its_audio(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    text = "The kitchen light is on."
    fake_live.output_transcript_lag = 0.3
    fake_live.queue_reply(Reply(text=text), Reply(text=text, transcript_lag=0))
    ws = await start(http, fake_live)
    await say_text(ws, "status")
    lagged = await collect(ws, lambda ms: joined(ms, "outputTranscription") == text)
    # Fast generation: the whole turn is over before the first fragment.
    first = position(lagged, "outputTranscription")
    assert kinds(lagged)[:first][-3:] == [
        "generationComplete",
        "turnComplete",
        "sessionResumptionUpdate",
    ]
    assert set(kinds(lagged)[first:]) == {"outputTranscription"}
    assert lagged[first]["_at"] - lagged[0]["_at"] >= 0.25
    assert audio_of(lagged) == speech(text)
    # Reply(transcript_lag=0) overrides the server: fragments before their chunk.
    await say_text(ws, "again")
    plain = await read_until(ws, is_resumption)
    assert kinds(plain)[:2] == ["outputTranscription", "modelTurn"]
    assert joined(plain, "outputTranscription") == text
    await ws.close()


async def test_output_transcript_lag_with_paced_audio(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    text = "The kitchen light is on."
    fake_live.queue_reply(Reply(text=text, realtime_factor=2.0, transcript_lag=0.1))
    ws = await start(http, fake_live)
    await say_text(ws, "status")
    messages = await collect(ws, lambda ms: joined(ms, "outputTranscription") == text)
    order = kinds(messages)
    last_chunk = len(order) - 1 - order[::-1].index("modelTurn")
    # Fragments interleave with the paced audio, each after its chunk, and the
    # last one trails turnComplete.
    assert position(messages, "modelTurn") < position(messages, "outputTranscription")
    assert position(messages, "outputTranscription") < last_chunk
    assert order[-1] == "outputTranscription"
    assert position(messages, "turnComplete") < len(order) - 1
    assert messages[-1]["_at"] - messages[last_chunk]["_at"] <= 0.3
    await ws.close()


# ---------------------------------------------- premature turnComplete (3)


async def test_premature_turn_complete_after_the_tool_response(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    fake_live.queue_reply(
        Reply(
            text="Let me check.",
            tool_calls=[ToolCall(name="lamp_state", id="call-1")],
            premature_turn_complete="after_tool_response",
            then=Reply(text="The lamp is on."),
            then_delay=0.3,
        )
    )
    ws = await start(http, fake_live)
    await say_text(ws, "is the lamp on")
    before = await read_until(ws, lambda m: "toolCall" in m)
    assert not content(before, "turnComplete")
    response = {"id": "call-1", "name": "lamp_state", "response": {"on": True}}
    await send(ws, {"toolResponse": {"functionResponses": [response]}})
    after = await collect(ws, lambda ms: bool(ms) and is_resumption(ms[-1]))
    # An empty turnComplete (no usage, no generationComplete, no audio) ...
    assert {k: v for k, v in after[0].items() if not k.startswith("_")} == {
        "serverContent": {"turnComplete": True}
    }
    # ... then, `then_delay` later, the answer as the same model turn.
    assert after[1]["_at"] - after[0]["_at"] >= 0.25
    assert kinds(after)[-4:] == [
        "generationComplete",
        "turnComplete",
        "outputTranscription",
        "sessionResumptionUpdate",
    ]
    assert "usageMetadata" in after[-3]
    assert audio_of(after) == speech("The lamp is on.")
    conn = fake_live.connections[0]
    assert [(t.role, t.text) for t in conn.history] == [
        ("user", "is the lamp on"),
        ("model", "Let me check. The lamp is on."),
    ]
    await ws.close()


async def test_premature_turn_complete_right_after_the_tool_call(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    fake_live.queue_reply(
        Reply(
            text="",
            tool_calls=[ToolCall(name="lamp_state", id="call-2")],
            premature_turn_complete="after_tool_call",
            then=Reply(text="Done."),
        )
    )
    ws = await start(http, fake_live)
    await say_text(ws, "check the lamp")
    messages = await read_until(
        ws, lambda m: "turnComplete" in m.get("serverContent", {})
    )
    assert kinds(messages) == ["toolCall", "turnComplete"]
    assert await quiet(ws, 0.2) == []  # the call is still pending
    response = {"id": "call-2", "name": "lamp_state", "response": {}}
    await send(ws, {"toolResponse": {"functionResponses": [response]}})
    after = await read_until(ws, is_resumption)
    assert "modelTurn" in kinds(after)
    assert content(after, "generationComplete") == [True]
    assert content(after, "turnComplete") == [True]
    assert audio_of(after) == speech("Done.")
    await ws.close()


# ------------------------------------------------------- barge-in (4)


@pytest.mark.parametrize(
    ("barge_in", "answered"),
    [
        ({"realtimeInput": {"text": "stop"}}, True),
        (
            {
                "clientContent": {
                    "turns": [{"role": "user", "parts": [{"text": "stop"}]}],
                    "turnComplete": True,
                }
            },
            True,
        ),
        ({"clientContent": {"turnComplete": False}}, False),
    ],
    ids=["realtimeInput.text", "clientContent", "clientContent-no-turn"],
)
async def test_typed_barge_in_interrupts(
    fake_live: FakeLiveServer,
    http: aiohttp.ClientSession,
    barge_in: Msg,
    answered: bool,
) -> None:
    fake_live.queue_reply(
        Reply(text="A long answer about many things.", pause_after_chunks=2),
        Reply(text="Stopped."),
    )
    ws = await start(http, fake_live)
    await say_text(ws, "tell me")
    conn = fake_live.connections[0]
    await conn.wait_for(lambda: conn.audio_chunks_sent == 2)
    await send(ws, barge_in)
    messages = await read_until(ws, is_resumption)
    assert kinds(messages)[-3:] == [
        "interrupted",
        "turnComplete",
        "sessionResumptionUpdate",
    ]
    assert not content(messages, "generationComplete")
    assert "usageMetadata" not in messages[-2]
    assert conn.interruptions == 1
    model = [t for t in conn.history if t.role == "model"]
    assert model[0].interrupted
    if answered:
        answer = await read_until(ws, is_resumption)
        assert audio_of(answer) == speech("Stopped.")
    else:
        assert await quiet(ws, 0.2) == []
    await ws.close()


async def test_interruption_drops_lagged_output_transcript(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    fake_live.queue_reply(
        Reply(
            text="A long answer about many things.",
            pause_after_chunks=3,
            transcript_lag=5.0,
        ),
        Reply(text="Stopped."),
    )
    ws = await start(http, fake_live)
    await say_text(ws, "tell me")
    conn = fake_live.connections[0]
    await conn.wait_for(lambda: conn.audio_chunks_sent == 3)
    await say_text(ws, "stop")
    messages = await read_until(ws, is_resumption)
    messages += await read_until(ws, is_resumption)
    assert kinds(messages)[:4] == ["modelTurn"] * 3 + ["interrupted"]
    assert joined(messages, "outputTranscription") == "Stopped."
    await conn.wait_for(lambda: not conn._tasks, what="the outbox to stop")
    assert "A" not in [
        m["serverContent"]["outputTranscription"]["text"]
        for m in conn.sent
        if "outputTranscription" in m.get("serverContent", {})
    ]
    await ws.close()


# --------------------------------------------- goAway and lifetime (5)


async def test_go_away_mid_reply_keeps_streaming_then_aborts(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    text = "This reply keeps going after the warning."
    fake_live.queue_reply(
        Reply(text=text, go_away=GoAway(time_left=0.5, after_chunks=2))
    )
    ws = await start(http, fake_live)
    await say_text(ws, "talk")
    messages = await read_until(ws, is_resumption)
    at = position(messages, "goAway")
    assert messages[at]["goAway"] == {"timeLeft": "0.500s"}
    assert kinds(messages[:at]).count("modelTurn") == 2
    assert "modelTurn" in kinds(messages[at:])
    assert audio_of(messages) == speech(text)
    assert content(messages, "generationComplete") == [True]
    await expect_close(ws, 1008, GOAWAY_ABORT)
    conn = fake_live.connections[0]
    assert (conn.closed_by, conn.close_code) == ("server", 1008)
    assert conn.go_away_sent


async def test_connection_lifetime_sends_go_away_then_aborts(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    fake_live.connection_lifetime = 0.6
    fake_live.go_away_notice = 0.4
    began = time.monotonic()
    ws = await start(http, fake_live)
    assert await recv(ws) == {"goAway": {"timeLeft": "0.400s"}, "_frame": "BINARY"}
    assert 0.15 <= time.monotonic() - began < 0.5
    await expect_close(ws, 1008, GOAWAY_ABORT)
    assert time.monotonic() - began >= 0.55


async def test_timers_and_outboxes_end_with_the_connection(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    fake_live.connection_lifetime = 0.6
    fake_live.go_away_notice = 0.1
    fake_live.resumption_update_interval = 0.05
    fake_live.input_transcription = "streaming"
    fake_live.input_transcription_lag = 5.0
    fake_live.output_transcript_lag = 5.0
    mic, _ = speech(QUESTION, 16000), speech("OK.")  # synthesised ahead
    began = time.monotonic()
    ws = await start(http, fake_live)
    await send(ws, audio_msg(mic + silence(600)))
    conn = fake_live.connections[0]
    await conn.wait_for(lambda: bool(conn.turns) and not conn.replying)
    assert conn._tasks  # lagged transcripts and timers are pending
    await ws.close()
    assert await conn.wait_closed() == 1000
    await conn.wait_for(lambda: not conn._tasks, what="every task to end")
    assert time.monotonic() - began < 0.5  # before the goAway was due
    sent = len(conn.sent)
    await asyncio.sleep(0.7 - (time.monotonic() - began))  # past the lifetime
    assert len(conn.sent) == sent
    assert not content(conn.sent, "inputTranscription")
    assert not any("goAway" in m for m in conn.sent)


async def test_connection_task_errors_fail_the_test(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    async def broken() -> None:
        raise RuntimeError("server bug")

    async def client_left() -> None:
        raise ConnectionResetError

    ws = await start(http, fake_live)
    conn = fake_live.connections[0]
    conn.spawn(client_left())
    conn.spawn(broken())
    await fake_live.wait_for(lambda: bool(fake_live.errors))
    assert isinstance(fake_live.errors.pop(), RuntimeError)  # else teardown raises
    assert not fake_live.errors
    await ws.close()


# ------------------------------------------------------ resumption (6)


async def test_periodic_resumption_updates_follow_the_model_state(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    fake_live.resumption_update_interval = 0.05
    fake_live.queue_reply(
        Reply(
            text="Let me look.",
            tool_calls=[ToolCall(name="find", id="call-3")],
            then=Reply(text="Found them."),
        )
    )
    ws = await start(http, fake_live)
    idle = await quiet(ws, 0.13)
    assert len(idle) >= 2
    assert all(m["sessionResumptionUpdate"]["resumable"] for m in idle)
    idle_handle = idle[-1]["sessionResumptionUpdate"]["newHandle"]

    await say_text(ws, "where are my keys")
    before = await read_until(ws, lambda m: "toolCall" in m)
    before += await quiet(ws, 0.15)  # the call is pending
    # Not resumable from the start of the reply: no handle while unsafe.
    first_audio = position(before, "modelTurn")
    assert {"resumable": False} in [
        m.get("sessionResumptionUpdate") for m in before[:first_audio]
    ]
    during = [m for m in before[first_audio:] if is_resumption(m)]
    assert len(during) >= 2
    assert all(m["sessionResumptionUpdate"] == {"resumable": False} for m in during)

    response = {"id": "call-3", "name": "find", "response": {"room": "hall"}}
    await send(ws, {"toolResponse": {"functionResponses": [response]}})
    after = await read_until(ws, is_resumption)
    while not after[-1]["sessionResumptionUpdate"].get("resumable"):
        after += await read_until(ws, is_resumption)
    handle = after[-1]["sessionResumptionUpdate"]["newHandle"]
    await ws.close()

    # A handle restores the history up to when it was issued.
    conn = fake_live.connections[0]
    await conn.wait_closed()
    for used, history in [
        (handle, ["where are my keys", "Let me look. Found them."]),
        (idle_handle, []),
    ]:
        ws = await connect(http, fake_live)
        setup = {
            "model": fake_live.model_resource(),
            "sessionResumption": {"handle": used},
        }
        await send(ws, {"setup": setup})
        assert "setupComplete" in (await recv(ws) or {})
        resumed = fake_live.connections[-1]
        assert resumed.session is conn.session
        assert [t.text for t in resumed.history] == history
        await ws.close()
        await resumed.wait_closed()


async def test_expired_handles_are_refused(
    fake_live: FakeLiveServer, http: aiohttp.ClientSession
) -> None:
    ws = await start(http, fake_live)
    await say_text(ws, "remember me")
    handle = (await read_until(ws, is_resumption))[-1]["sessionResumptionUpdate"][
        "newHandle"
    ]
    await ws.close()
    await fake_live.connections[0].wait_closed()
    fake_live.expire_handles()

    ws = await connect(http, fake_live)
    setup = {
        "model": fake_live.model_resource(),
        "sessionResumption": {"handle": handle},
    }
    await send(ws, {"setup": setup})
    await expect_close(ws, 1007, INVALID_ARGUMENT)
    refused = fake_live.connections[1]
    assert (refused.closed_by, refused.setup_complete_sent) == ("server", False)

    # Handles issued after the expiry work.
    ws = await start(http, fake_live)
    fresh = fake_live.connections[2].session.handles[-1]  # type: ignore[union-attr]
    await ws.close()
    await fake_live.connections[2].wait_closed()
    ws = await connect(http, fake_live)
    setup["sessionResumption"] = {"handle": fresh}
    await send(ws, {"setup": setup})
    assert "setupComplete" in (await recv(ws) or {})
    assert fake_live.connections[3].resumed
    await ws.close()
