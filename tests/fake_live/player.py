"""Plays a `Reply` script for one user turn on a connection."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import re
import secrets
from typing import TYPE_CHECKING, Any

from . import protocol
from .scenario import INTERNAL_ERROR, Reply, Turn, UserTurn
from .speech import async_speech, duration
from .transcription import InputTranscriber, Outbox, transcription

if TYPE_CHECKING:
    from .connection import Connection

OUTPUT_RATE = 24000
_WORDS = re.compile(r"\s*\S+")


def fragments(text: str) -> list[str]:
    """Split into word-by-word transcription deltas, leading spaces kept."""
    return _WORDS.findall(text)


class ReplyPlayer:
    """The model's side of one turn: transcripts, audio, tool calls, completion."""

    def __init__(
        self,
        conn: Connection,
        turn: UserTurn,
        entry: Turn | None,
        heard: InputTranscriber,
    ) -> None:
        """Prepare to answer `turn` (history record `entry`, transcript `heard`)."""
        self.conn = conn
        self.turn = turn
        self.entry = entry
        self.heard = heard
        self.spoken: list[str] = []
        """outputTranscription fragments produced so far (sent or pending)."""
        self.pending_calls: dict[str, str] = {}
        self.finishing = False
        self._responses: dict[str, dict[str, Any]] = {}
        self._responses_ready = asyncio.Event()
        self._out_start = conn.audio_out_size
        self._transcript = Outbox(conn)
        """The outputTranscription fragments, sent `transcript_lag` after
        their audio chunk."""
        self._chunk_at = 0.0
        """Loop time of the last audio chunk sent."""

    async def run(self) -> None:
        """Choose the reply and play it (the connection's reply task)."""
        try:
            await self._play(await self._choose(), first=True)
        except ConnectionError:
            pass
        except Exception as err:  # noqa: BLE001 - a responder or server bug
            self.conn.server.errors.append(err)
            await self.conn.close(1011, INTERNAL_ERROR)

    def deliver(self, response: dict[str, Any]) -> None:
        """Hand over a functionResponse; wakes the player once all arrived."""
        call_id = str(response.get("id", ""))
        if call_id in self.pending_calls:
            self._responses[call_id] = response
        if self.pending_calls and set(self.pending_calls) <= set(self._responses):
            self._responses_ready.set()

    async def interrupted(self) -> None:
        """Send what production sends after a barge-in (the task is cancelled)."""
        conn = self.conn
        self._transcript.cancel()
        with contextlib.suppress(ConnectionError):
            await conn.send({"serverContent": {"interrupted": True}})
            if self.pending_calls:
                ids = list(self.pending_calls)
                conn.cancelled_tool_calls += ids
                await conn.send({"toolCallCancellation": {"ids": ids}})
            await conn.send({"serverContent": {"turnComplete": True}})
            self._record(interrupted=True)
            await self.heard.release()
            await conn.send_resumption_update()
        self.pending_calls.clear()

    async def _choose(self) -> Reply:
        conn, server = self.conn, self.conn.server
        if conn.replies:
            return conn.replies.popleft()
        if server.replies:
            return server.replies.popleft()
        if server.responder is not None:
            reply = server.responder(self.turn)
            if inspect.isawaitable(reply):
                reply = await reply
            if reply is not None:
                return reply
        return server.default_reply

    def _record(self, *, interrupted: bool) -> None:
        if self.conn.session is not None:
            text = "".join(self.spoken).strip()
            self.conn.session.history.append(
                Turn(role="model", text=text, interrupted=interrupted)
            )

    async def _play(
        self, reply: Reply, *, first: bool, delay: float | None = None
    ) -> None:
        """Play one segment (recursing into the follow-up of tool calls)."""
        conn = self.conn
        if reply.error is not None:
            await conn.send_error(reply.error)
            return
        if reply.stall:
            return
        if first:
            await self._begin(reply)
        if delay is None:
            delay = conn.server.model_delay if reply.delay is None else reply.delay
        if delay:
            await asyncio.sleep(delay)
        ends_turn = not reply.tool_calls
        words = fragments(reply.text)
        if words and self.spoken and not words[0][0].isspace():
            words[0] = " " + words[0]  # continues the text said before a tool call
        trailing = (
            words.pop() if ends_turn and reply.trailing_transcript and words else None
        )
        if not await self._stream(reply, words, last=ends_turn and trailing is None):
            return
        if reply.tool_calls:
            responses = await self._call_tools(reply)
            follow = await _follow_up(reply, responses)
            await self._play(follow, first=False, delay=reply.then_delay)
            return
        self.finishing = True
        await conn.send({"serverContent": {"generationComplete": True}})
        content: dict[str, Any] = {"turnComplete": True}
        if reply.turn_complete_reason:
            content["turnCompleteReason"] = reply.turn_complete_reason
        if reply.waiting_for_input is not None:
            content["waitingForInput"] = reply.waiting_for_input
        usage = dict(reply.usage) if reply.usage is not None else self._usage()
        await conn.send({"serverContent": content, "usageMetadata": usage})
        if trailing is not None:
            await self._say(reply, [trailing], last=True)
        await self.heard.release()
        self._record(interrupted=False)
        await conn.send_resumption_update()
        if reply.go_away is not None and reply.go_away.after_chunks is None:
            await conn.go_away(reply.go_away.time_left)

    async def _begin(self, reply: Reply) -> None:
        """Start the model turn: resumption unsafe, the input transcription."""
        conn, turn = self.conn, self.turn
        if conn.server.resumption_update_interval is not None:
            await conn.send_resumption_update(resumable=False)
        heard = reply.heard if reply.heard is not None else turn.heard
        if reply.heard is not None and self.entry and not turn.text:
            self.entry.text = reply.heard  # what the model "heard"
        transcribe = bool(turn.audio) and "inputAudioTranscription" in conn.config
        await self.heard.finish(heard if transcribe else None, hold=reply.heard_late)

    async def _stream(self, reply: Reply, words: list[str], *, last: bool) -> bool:
        """Send the audio chunks with transcript fragments; False if closed.

        `last`: `words` end the model turn's transcription.
        """
        conn = self.conn
        audio = (
            reply.audio if reply.audio is not None else await async_speech(reply.text)
        )
        size = 2 * (OUTPUT_RATE * reply.chunk_ms // 1000)
        pieces = [audio[i : i + size] for i in range(0, len(audio), size)]
        factor = reply.realtime_factor or conn.server.realtime_factor
        go_away, close = reply.go_away, reply.close
        loop = asyncio.get_running_loop()
        self._chunk_at = loop.time()
        sent_words = 0
        for index in range(len(pieces) + 1):
            end = index == len(pieces)
            if go_away is not None and _reached(go_away.after_chunks, index, end):
                await conn.go_away(go_away.time_left)
            if close is not None and _reached(close.after_chunks, index, end):
                await conn.close(close.code, close.reason)
                return False
            if _reached(reply.pause_after_chunks, index, end):
                await asyncio.Event().wait()  # until a barge-in cancels us
            if end:
                break
            piece = pieces[index]
            due = min(index * len(words) // len(pieces) + 1, len(words))
            self._chunk_at = loop.time()
            await self._say(reply, words[sent_words:due])
            sent_words = max(sent_words, due)
            await self._audio(piece)
            await asyncio.sleep(duration(piece, OUTPUT_RATE) / factor if factor else 0)
        await self._say(reply, words[sent_words:], last=last)
        return True

    async def _audio(self, pcm: bytes) -> None:
        part = {
            "inlineData": {
                "mimeType": f"audio/pcm;rate={OUTPUT_RATE}",
                "data": protocol.encode_b64(pcm),
            }
        }
        await self.conn.send({"serverContent": {"modelTurn": {"parts": [part]}}})
        self.conn.record_audio_out(pcm)

    async def _say(self, reply: Reply, words: list[str], *, last: bool = False) -> None:
        """Post the outputTranscription of `words`, due the lag after the chunk.

        `last`: they end the model turn (`server.transcription_finished_flag`).
        """
        self.spoken += words
        conn = self.conn
        if "outputAudioTranscription" not in conn.config:
            return
        lag = reply.transcript_lag
        if lag is None:
            lag = conn.server.output_transcript_lag
        flag = last and conn.server.transcription_finished_flag
        if flag and not words and self.spoken:  # the last word already went out
            words = [""]
        for index, word in enumerate(words):
            finished = flag and index == len(words) - 1
            message = transcription("outputTranscription", word, finished=finished)
            await self._transcript.post(message, self._chunk_at + lag)

    async def _call_tools(self, reply: Reply) -> list[dict[str, Any]]:
        """Send toolCall and wait for every matching functionResponse."""
        calls, premature = reply.tool_calls, reply.premature_turn_complete
        ids = [
            call.id or f"function-call-{secrets.randbelow(10**19)}" for call in calls
        ]
        function_calls: list[dict[str, Any]] = [
            {"id": call_id, "name": call.name, "args": dict(call.args)}
            for call_id, call in zip(ids, calls, strict=True)
        ]
        self.pending_calls = {
            call_id: call.name for call_id, call in zip(ids, calls, strict=True)
        }
        self._responses = {}
        self._responses_ready.clear()
        self.conn.tool_calls += function_calls
        await self.conn.send({"toolCall": {"functionCalls": function_calls}})
        if premature == "after_tool_call":
            await self.conn.send({"serverContent": {"turnComplete": True}})
        await self._responses_ready.wait()
        self.pending_calls = {}
        if premature == "after_tool_response":
            await self.conn.send({"serverContent": {"turnComplete": True}})
        return [self._responses[call_id] for call_id in ids]

    def _usage(self) -> dict[str, Any]:
        """Compute usageMetadata (Developer API names, ~25 tokens per second)."""
        turn = self.turn
        audio_in = round(duration(turn.audio, turn.sample_rate) * 25)
        text_in = 8 + len(turn.text or "") // 4
        history = sum(len(t.text) // 4 for t in self.conn.history)
        sent = self.conn.audio_out_size - self._out_start
        audio_out = max(round(sent / (2 * OUTPUT_RATE) * 25), 1)
        prompt = audio_in + text_in + history
        details = [{"modality": "TEXT", "tokenCount": text_in + history}]
        if audio_in:
            details.append({"modality": "AUDIO", "tokenCount": audio_in})
        return {
            "promptTokenCount": prompt,
            "responseTokenCount": audio_out,
            "totalTokenCount": prompt + audio_out,
            "promptTokensDetails": details,
            "responseTokensDetails": [{"modality": "AUDIO", "tokenCount": audio_out}],
        }


def _reached(count: int | None, index: int, end: bool) -> bool:
    """Tell whether an "after `count` chunks" option fires at chunk `index`.

    A count past the last chunk fires after it (`end`).
    """
    return count is not None and (count == index or (end and count > index))


async def _follow_up(reply: Reply, responses: list[dict[str, Any]]) -> Reply:
    """Resolve `reply.then` (a Reply, or a callable of the tool responses)."""
    if reply.then is None:
        return Reply(text="")
    if isinstance(reply.then, Reply):
        return reply.then
    follow = reply.then(responses)
    return await follow if inspect.isawaitable(follow) else follow
