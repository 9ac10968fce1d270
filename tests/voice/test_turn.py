"""LiveTurn: reply completion quirks, tool calls, transcripts and audio bounds."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from custom_components.gemini_live.live import (
    FunctionCall,
    FunctionResponse,
    LiveServiceUnavailableError,
    OutputTranscription,
    ToolCall,
    ToolCallCancellation,
)
from custom_components.gemini_live.voice import turn as turn_module
from custom_components.gemini_live.voice.turn import AudioStarted, LiveTurn

CALL = FunctionCall(id="call-1", name="turn_on", args={"name": "lamp"})


@pytest.fixture(autouse=True)
def short_graces(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the settle timers fast."""
    monkeypatch.setattr(turn_module, "OUTPUT_GRACE", 0.02)
    monkeypatch.setattr(turn_module, "QUIET_GRACE", 0.1)
    monkeypatch.setattr(turn_module, "INPUT_GRACE", 0.02)
    monkeypatch.setattr(turn_module, "LATE_INPUT_GRACE", 0.05)


class Responses:
    """Records the tool responses a turn sends."""

    def __init__(self) -> None:
        """Start with nothing sent."""
        self.sent: list[FunctionResponse] = []

    async def __call__(self, responses: Sequence[FunctionResponse]) -> None:
        """Record responses."""
        self.sent.extend(responses)


def _turn(responses: Responses | None = None) -> LiveTurn:
    return LiveTurn("conv", voice=True, send_tool_response=responses or Responses())


async def _events(turn: LiveTurn) -> list[object]:
    events = []
    while (event := await turn.next_event()) is not None:
        events.append(event)
    return events


async def test_trailing_transcript_after_turn_complete() -> None:
    """Output transcription after turnComplete still belongs to the reply."""
    turn = _turn()
    turn.add_output("Hello")
    turn.add_audio(b"\x01\x00" * 10)
    turn.model_done()
    turn.add_output(" there.")

    assert await _events(turn) == [
        OutputTranscription("Hello", finished=False),
        AudioStarted(),
        OutputTranscription(" there.", finished=False),
    ]
    assert turn.finished
    assert turn.output_transcript == "Hello there."


async def test_turn_complete_before_audio_around_tool_call() -> None:
    """TurnComplete before any audio around a tool call does not end the turn."""
    responses = Responses()
    turn = _turn(responses)
    turn.add_tool_call(ToolCall((CALL,)))
    turn.model_done()  # premature, before the tool response
    await asyncio.sleep(0.15)
    assert not turn.finished
    assert turn.tool_calls_pending

    await turn.respond([FunctionResponse(id="call-1", name="turn_on", response={})])
    turn.model_done()  # premature again, after the response, before audio
    await asyncio.sleep(0.05)
    turn.add_audio(b"\x00\x00")  # the model goes on: disarmed
    await asyncio.sleep(0.1)
    assert not turn.finished

    turn.model_done()
    await asyncio.sleep(0.05)
    assert turn.finished
    assert [r.id for r in responses.sent] == ["call-1"]


async def test_quiet_completion_ends_after_quiet_grace() -> None:
    """A completion with no audio at all ends the turn after QUIET_GRACE."""
    turn = _turn()
    turn.model_done()
    await asyncio.sleep(0.05)
    assert not turn.finished
    await asyncio.sleep(0.1)
    assert turn.finished
    assert not turn.has_audio


async def test_cancelled_tool_calls_get_no_response() -> None:
    """Responses to calls the model cancelled are not sent."""
    responses = Responses()
    turn = _turn(responses)
    other = FunctionCall(id="call-2", name="turn_off", args={})
    turn.add_tool_call(ToolCall((CALL, other)))
    turn.cancel_tool_calls(ToolCallCancellation(("call-1",)))

    assert turn.is_cancelled("call-1")
    await turn.respond(
        [
            FunctionResponse(id="call-1", name="turn_on", response={}),
            FunctionResponse(id="call-2", name="turn_off", response={}),
        ]
    )
    assert [r.id for r in responses.sent] == ["call-2"]
    assert not turn.tool_calls_pending


async def test_audio_stream_replays_from_the_start() -> None:
    """A late reader gets the audio from its first byte, then live chunks."""
    turn = _turn()
    turn.add_audio(b"ab")
    turn.add_audio(b"cd")
    assert turn.claim_audio()
    assert not turn.claim_audio()
    stream = turn.audio_stream()
    with pytest.raises(RuntimeError):
        turn.audio_stream()

    chunks = [await anext(stream), await anext(stream)]
    turn.add_audio(b"ef")
    chunks.append(await anext(stream))
    turn.finish()

    assert chunks == [b"ab", b"cd", b"ef"]
    assert [chunk async for chunk in stream] == []


async def test_audio_error_after_buffered_audio() -> None:
    """A failed turn delivers the audio received, then raises its error."""
    turn = _turn()
    turn.add_audio(b"ab")
    turn.finish(LiveServiceUnavailableError("boom"))
    stream = turn.audio_stream()

    assert await anext(stream) == b"ab"
    with pytest.raises(LiveServiceUnavailableError):
        await anext(stream)


async def test_unread_audio_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unread audio beyond MAX_AUDIO_SECONDS is dropped; reading frees it."""
    monkeypatch.setattr(turn_module, "MAX_AUDIO_SECONDS", 1)
    turn = _turn()
    second = b"\x00" * (2 * turn_module.AUDIO_RATE)
    turn.add_audio(second)
    turn.add_audio(b"\x00\x00")  # over the bound: dropped
    stream = turn.audio_stream()
    assert await anext(stream) == second
    turn.add_audio(b"\x01\x00")  # room again
    turn.finish()

    assert [chunk async for chunk in stream] == [b"\x01\x00"]


async def test_released_audio_is_dropped() -> None:
    """Released audio is freed; later audio is ignored; nobody can claim it."""
    turn = _turn()
    turn.add_audio(b"ab")
    turn.release_audio()
    turn.add_audio(b"cd")

    assert not turn.audio_available
    assert not turn.claim_audio()
    assert turn._audio_unread == 0
    assert [chunk async for chunk in turn.audio_stream()] == []


async def test_input_transcript_settles_after_last_fragment() -> None:
    """Fragments (even late ones) are collected until they stop coming."""
    turn = _turn()

    async def speak() -> None:
        turn.add_input("turn on")
        await asyncio.sleep(0.01)
        turn.add_input(" the light")

    task = asyncio.create_task(speak())
    assert await turn.wait_input_transcript() == "turn on the light"
    await task


async def test_input_transcript_after_the_reply() -> None:
    """A transcript arriving after the reply ended is still waited for."""
    turn = _turn()
    turn.finish()
    asyncio.get_running_loop().call_later(0.02, turn.add_input, "late words")

    assert await turn.wait_input_transcript() == "late words"


async def test_no_input_transcript() -> None:
    """Without any fragment the wait ends (empty) once the reply ended."""
    turn = _turn()
    turn.finish()

    assert await turn.wait_input_transcript() == ""


async def test_input_transcript_raises_the_turn_error() -> None:
    """A failed turn fails the STT wait."""
    turn = _turn()
    asyncio.get_running_loop().call_later(
        0.01, turn.finish, LiveServiceUnavailableError("boom")
    )

    with pytest.raises(LiveServiceUnavailableError):
        await turn.wait_input_transcript()


async def test_done_callbacks() -> None:
    """Done callbacks run once, at the end or at once when already done."""
    turn = _turn()
    calls: list[LiveTurn] = []
    turn.add_done_callback(calls.append)
    turn.finish()
    turn.finish()
    turn.add_done_callback(calls.append)

    assert calls == [turn, turn]
