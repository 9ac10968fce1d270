"""LiveTurn: the turn lifecycle follows the service's signals.

Each test feeds a turn the events a production session sends in one of the
inconvenient orders the Live reference documents (live-api.md §3, §8) and
checks what its readers get.
"""

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
from custom_components.gemini_live.voice.turn import LiveTurn, Phase

CALL = FunctionCall(id="call-1", name="turn_on", args={"name": "lamp"})
RESULT = FunctionResponse(id="call-1", name="turn_on", response={"output": {}})


@pytest.fixture(autouse=True)
def short_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the bounded waits short."""
    monkeypatch.setattr(turn_module, "TRANSCRIPT_TAIL", 0.05)
    monkeypatch.setattr(turn_module, "SILENT_REPLY_TIMEOUT", 0.3)
    monkeypatch.setattr(turn_module, "INPUT_GRACE", 0.02)
    monkeypatch.setattr(turn_module, "INPUT_TIMEOUT", 0.5)


class Responses:
    """Records the tool responses a turn sends."""

    def __init__(self) -> None:
        """Start with nothing sent."""
        self.sent: list[FunctionResponse] = []

    async def __call__(self, responses: Sequence[FunctionResponse]) -> None:
        """Record responses."""
        self.sent.extend(responses)


def _turn(responses: Responses | None = None) -> LiveTurn:
    turn = LiveTurn("conv", voice=True, send_tool_response=responses or Responses())
    turn.input_ended()
    return turn


async def _texts(turn: LiveTurn) -> list[str]:
    texts = []
    while (event := await turn.next_event()) is not None:
        if isinstance(event, OutputTranscription):
            texts.append(event.text)
    return texts


async def test_trailing_transcript_after_turn_complete_is_kept() -> None:
    """Output transcription after turnComplete still belongs to the reply."""
    turn = _turn()
    turn.add_audio(b"\x01\x00" * 10)
    turn.add_output("Hello")
    turn.turn_complete()
    assert turn.phase is Phase.COMPLETE
    turn.add_output(" there.")

    assert await _texts(turn) == ["Hello", " there."]
    assert turn.finished
    assert turn.output_transcript == "Hello there."


async def test_finished_fragment_ends_the_tail_at_once() -> None:
    """A `finished` output fragment makes the transcript final immediately."""
    turn = _turn()
    turn.add_audio(b"\x01\x00")
    turn.turn_complete()
    turn.add_output("Done.", finished=True)
    assert turn.finished


async def test_audio_ends_at_turn_complete() -> None:
    """The reply's audio stream ends at turnComplete, not after the tail."""
    turn = _turn()
    turn.claim_audio()
    audio = turn.audio_stream()
    turn.add_audio(b"\x01\x00")
    turn.turn_complete()
    assert [chunk async for chunk in audio] == [b"\x01\x00"]
    assert not turn.finished
    await turn.wait_done()  # the transcript tail is bounded


async def test_premature_turn_complete_around_a_tool_call() -> None:
    """TurnComplete while a call waits, or before the answer, ends nothing."""
    responses = Responses()
    turn = _turn(responses)
    turn.add_tool_call(ToolCall((CALL,)))
    turn.turn_complete()  # before the tool response
    assert turn.phase is Phase.TOOLS
    await turn.respond([RESULT])
    turn.turn_complete()  # after it, with no answer yet
    await asyncio.sleep(0.1)
    assert not turn.reply_complete
    turn.add_audio(b"\x01\x00")  # the answer, later
    turn.add_output("The lamp is on.")
    turn.turn_complete()
    assert turn.reply_complete
    assert responses.sent == [RESULT]
    assert turn.output_transcript == "The lamp is on."
    await turn.wait_done()  # the transcript tail is bounded


async def test_silent_answer_is_bounded() -> None:
    """A premature turnComplete with no answer at all ends the turn, bounded."""
    turn = _turn()
    turn.turn_complete()
    assert not turn.reply_complete
    async with asyncio.timeout(1):
        await turn.wait_done()
    assert turn.error is None


async def test_interaction_in_progress_does_not_end_the_reply() -> None:
    """TurnComplete with interactionStatus IN_PROGRESS: more output follows."""
    turn = _turn()
    turn.add_audio(b"\x01\x00")
    turn.turn_complete("IN_PROGRESS")
    assert not turn.reply_complete
    turn.add_output("Thought about it.")
    turn.turn_complete("IDLE")
    assert turn.reply_complete
    await turn.wait_done()  # the transcript tail is bounded


async def test_stale_interruption_is_ignored() -> None:
    """An earlier generation's interrupted + turnComplete never end a new turn."""
    turn = _turn()
    turn.interrupt()
    turn.turn_complete()
    assert not turn.reply_complete
    turn.add_audio(b"\x01\x00")
    turn.add_output("New answer.")
    turn.turn_complete()
    assert turn.reply_complete
    assert not turn.interrupted
    await turn.wait_done()  # the transcript tail is bounded


async def test_interrupted_reply_drops_its_audio() -> None:
    """Interrupted cuts the reply: unread audio goes, turnComplete ends it."""
    turn = _turn()
    turn.claim_audio()
    turn.add_audio(b"\x01\x00" * 100)
    turn.interrupt()
    turn.turn_complete()
    assert turn.interrupted
    assert [chunk async for chunk in turn.audio_stream()] == []
    await turn.wait_done()  # the transcript tail is bounded


async def test_input_transcript_waits_for_the_rest() -> None:
    """Fragments while the user speaks: the STT result is the whole utterance."""
    turn = LiveTurn("conv", voice=True, send_tool_response=Responses())
    turn.add_input("turn")
    turn.add_input(" on the")
    turn.input_ended()
    waiter = asyncio.create_task(turn.wait_input_transcript())
    await asyncio.sleep(0.05)
    assert not waiter.done()  # no model output yet: the rest may follow
    turn.add_input(" kitchen light")
    turn.add_audio(b"\x01\x00")
    assert await waiter == "turn on the kitchen light"


async def test_input_transcript_final_fragment() -> None:
    """A `finished` input fragment settles the transcript at once."""
    turn = _turn()
    turn.add_input("hello", finished=True)
    assert await turn.wait_input_transcript() == "hello"


async def test_input_transcript_is_bounded() -> None:
    """Without any fragment the STT gives up after INPUT_TIMEOUT."""
    turn = _turn()
    async with asyncio.timeout(1):
        assert await turn.wait_input_transcript() == ""


async def test_cancelled_call_gets_no_response() -> None:
    """A call the model cancelled is never answered."""
    responses = Responses()
    turn = _turn(responses)
    turn.add_tool_call(ToolCall((CALL,)))
    turn.cancel_tool_calls(ToolCallCancellation(("call-1",)))
    await turn.respond([RESULT])
    assert responses.sent == []
    assert turn.phase is Phase.REPLYING


async def test_failure_reaches_every_reader() -> None:
    """An error ends the turn; readers get what came before, then the error."""
    turn = _turn()
    turn.claim_audio()
    audio = turn.audio_stream()
    turn.add_audio(b"\x01\x00")
    turn.add_output("Par")
    turn.finish(LiveServiceUnavailableError("gone"))
    assert await audio.__anext__() == b"\x01\x00"
    with pytest.raises(LiveServiceUnavailableError):
        await audio.__anext__()
    assert isinstance(await turn.next_event(), OutputTranscription)
    with pytest.raises(LiveServiceUnavailableError):
        await turn.next_event()
    with pytest.raises(LiveServiceUnavailableError):
        await turn.wait_input_transcript()


async def test_unread_audio_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Audio beyond MAX_AUDIO_SECONDS unread is dropped; release frees it."""
    monkeypatch.setattr(turn_module, "MAX_AUDIO_SECONDS", 1)
    turn = _turn()
    second = bytes(2 * turn_module.AUDIO_RATE)
    turn.add_audio(second)
    turn.add_audio(b"\x01\x00")  # over the bound
    assert turn._audio_unread == len(second)
    turn.release_audio()
    assert turn._audio_unread == 0
    assert not turn.claim_audio()


async def test_lagging_transcript_fragments_keep_the_tail_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each trailing fragment restarts the tail, up to TRANSCRIPT_TAIL_MAX."""
    monkeypatch.setattr(turn_module, "TRANSCRIPT_TAIL", 0.1)
    monkeypatch.setattr(turn_module, "TRANSCRIPT_TAIL_MAX", 1.0)
    turn = _turn()
    turn.add_audio(b"\x01\x00")
    turn.add_output("Which light")
    turn.turn_complete()
    for fragment in (" do you", " mean, the kitchen", " or the hall?"):
        await asyncio.sleep(0.07)
        turn.add_output(fragment)
    assert not turn.finished
    await turn.wait_done()
    assert turn.output_transcript == "Which light do you mean, the kitchen or the hall?"


async def test_audio_without_transcript_waits_for_the_transcript(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Audio came but no words yet: the tail waits up to TRANSCRIPT_TAIL_MAX."""
    monkeypatch.setattr(turn_module, "TRANSCRIPT_TAIL_MAX", 1.0)
    turn = _turn()
    turn.add_audio(b"\x01\x00")
    turn.turn_complete()
    await asyncio.sleep(0.3)  # longer than TRANSCRIPT_TAIL
    assert not turn.finished
    turn.add_output("Done.")
    await turn.wait_done()
    assert turn.output_transcript == "Done."


async def test_transcript_tail_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """No transcript ever: the turn is DONE TRANSCRIPT_TAIL_MAX after its end."""
    monkeypatch.setattr(turn_module, "TRANSCRIPT_TAIL_MAX", 0.2)
    turn = _turn()
    turn.add_audio(b"\x01\x00")
    turn.turn_complete()
    async with asyncio.timeout(1):
        await turn.wait_done()


async def test_in_progress_then_silence_is_bounded() -> None:
    """IN_PROGRESS and then nothing: the reply ends within SILENT_REPLY_TIMEOUT."""
    turn = _turn()
    turn.add_audio(b"\x01\x00")
    turn.add_output("Let me think.")
    turn.turn_complete("IN_PROGRESS")
    assert not turn.reply_complete
    async with asyncio.timeout(1):
        await turn.wait_done()
    assert turn.error is None
    assert turn.output_transcript == "Let me think."


@pytest.mark.parametrize(
    ("reason", "waiting"),
    [("RESPONSE_REJECTED", False), ("NEED_MORE_INPUT", False), (None, True)],
)
async def test_final_turn_complete_without_answer_ends_at_once(
    reason: str | None, waiting: bool
) -> None:
    """A turnCompleteReason or waitingForInput says no answer comes: no wait."""
    turn = _turn()
    turn.turn_complete(reason=reason, waiting_for_input=waiting)
    assert turn.reply_complete
    async with asyncio.timeout(0.2):
        assert await turn.wait_input_transcript() == ""


async def test_stray_interruption_is_forgotten_at_the_first_output() -> None:
    """An earlier generation's interrupted without its turnComplete.

    This turn's own turnComplete still ends it.
    """
    turn = _turn()
    turn.interrupt()
    turn.add_audio(b"\x01\x00")
    turn.add_output("Hello.")
    turn.turn_complete()
    assert turn.reply_complete
    await turn.wait_done()  # the transcript tail is bounded


async def test_generation_open_until_its_turn_complete() -> None:
    """A turn whose generation sent turnComplete has nothing left to drain."""
    responses = Responses()
    turn = _turn(responses)
    assert not turn.generation_open
    turn.add_tool_call(ToolCall((CALL,)))
    assert turn.generation_open
    await turn.respond([RESULT])
    turn.turn_complete()  # premature: the answer may never come
    assert not turn.generation_open
    assert not turn.reply_complete
    turn.add_output("Done.")
    assert turn.generation_open


async def test_input_transcribed_after_the_turn_settles_before_the_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fragments in one burst after the input ended: final before any output.

    The STT stage then ends before the model's first audio, so the TTS
    stream (and its ffmpeg) starts before that audio.
    """
    monkeypatch.setattr(turn_module, "INPUT_SETTLE", 0.05)
    turn = LiveTurn("conv", voice=True, send_tool_response=Responses())
    turn.add_input(" turn on")  # while the user speaks: not yet final
    turn.input_ended()
    waiter = asyncio.ensure_future(turn.wait_input_transcript())
    await asyncio.sleep(0.1)
    assert not waiter.done()
    turn.add_input(" the kitchen light")
    async with asyncio.timeout(0.3):
        assert await waiter == "turn on the kitchen light"
    assert not turn.reply_complete
