"""Plays a `Reply` script for one user turn on a connection."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
import contextlib
import inspect
import re
import secrets
from typing import TYPE_CHECKING, Any, Literal

from . import families, protocol
from .reading import reading_reply
from .scenario import INTERNAL_ERROR, Grounding, Reply, Turn, UserTurn
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
        *,
        follow_up: bool = False,
    ) -> None:
        """Prepare to answer `turn` (history record `entry`, transcript `heard`).

        `follow_up`: only play the connection's due follow-ups of NON_BLOCKING
        calls (`Connection.take_follow_up`), not a reply to `turn`.
        """
        self.conn = conn
        self.follow_up = follow_up
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
        """Choose the reply and play it, then the due follow-ups (reply task)."""
        try:
            if not self.follow_up and not await self._play(
                await self._choose(), first=True
            ):
                return
            while (due := self.conn.take_follow_up()) is not None:
                reply, responses = due
                self._new_output()
                follow = await _follow_up(reply, responses)
                if not await self._play(follow, first=False, delay=reply.then_delay):
                    return
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
        """Send what production sends after a barge-in (the task is cancelled).

        Pending BLOCKING calls are cancelled (toolCallCancellation, 3.4, 3.10
        item 4); NON_BLOCKING ones keep running (their results still come).
        """
        conn = self.conn
        self._transcript.cancel()
        with contextlib.suppress(ConnectionError):
            await conn.send({"serverContent": {"interrupted": True}})
            if self.pending_calls:
                ids = list(self.pending_calls)
                conn.cancelled_tool_calls += ids
                await conn.send({"toolCallCancellation": {"ids": ids}})
            await conn.send({"serverContent": conn.turn_complete()})
            self._record(interrupted=True)
            await self.heard.release()
            await conn.send_resumption_update(resumable=not conn.async_pending)
        self.pending_calls.clear()

    def _new_output(self) -> None:
        """Start another model output (a follow-up) on this player."""
        self.spoken = []
        self.pending_calls = {}
        self.finishing = False
        self._out_start = self.conn.audio_out_size

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
        if (reply := reading_reply(self.turn)) is not None:
            return reply  # a session told to read aloud (reading.py)
        return server.default_reply

    def _record(self, *, interrupted: bool) -> None:
        if self.conn.session is not None:
            text = "".join(self.spoken).strip()
            self.conn.session.history.append(
                Turn(role="model", text=text, interrupted=interrupted)
            )

    async def _play(
        self, reply: Reply, *, first: bool, delay: float | None = None
    ) -> bool:
        """Play one segment (recursing into the follow-up of BLOCKING calls).

        True when the output ended normally (False: error frame, stall, close).
        """
        conn = self.conn
        if reply.error is not None:
            await conn.send_error(reply.error)
            return False
        if reply.stall:
            return False
        _check_script(reply, conn)
        if first:
            await self._begin(reply)
        if delay is None:
            delay = conn.server.model_delay if reply.delay is None else reply.delay
        if delay:
            await asyncio.sleep(delay)
        blocking = self._blocking(reply)
        words = self._words(reply.text)
        audio = (
            reply.audio if reply.audio is not None else await async_speech(reply.text)
        )
        if reply.tool_calls and blocking:
            if not await self._stream(reply, words, audio, last=False):
                return False
            responses = await self._call_tools(reply)
            follow = await _follow_up(reply, responses)
            return await self._play(follow, first=False, delay=reply.then_delay)
        hooks = True
        if reply.tool_calls:  # NON_BLOCKING: the model keeps talking (2.4, 7.1)
            if not await self._stream(reply, words, audio, last=False):
                return False
            await self._call_async(reply)
            words, hooks = self._words(reply.meanwhile), False
            audio = await async_speech(reply.meanwhile) if reply.meanwhile else b""
        trailing = words.pop() if reply.trailing_transcript and words else None
        merged = await self._stream(
            reply, words, audio, last=trailing is None, hooks=hooks, ending=trailing
        )
        if merged is False:
            return False
        await self._finish(reply, trailing, merged=merged == "merged")
        return True

    async def _finish(
        self, reply: Reply, trailing: str | None, *, merged: bool
    ) -> None:
        """End the output: generationComplete, turnComplete, resumption update.

        `merged`: both went out with the last audio chunk already; otherwise the
        trailing fragment follows turnComplete.
        """
        conn = self.conn
        self.finishing = True
        if not merged:
            await conn.send({"serverContent": {"generationComplete": True}})
            content, usage = self._completion(reply)
            await conn.send({"serverContent": content, "usageMetadata": usage})
            if trailing is not None:
                await self._say(reply, [trailing], last=True)
        await self.heard.release()
        self._record(interrupted=False)
        await conn.send_resumption_update(resumable=not conn.async_pending)
        if reply.go_away is not None and reply.go_away.after_chunks is None:
            await conn.go_away(reply.go_away.time_left)

    def _completion(
        self, reply: Reply, extra_out: int = 0
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Return the final turnComplete fields and usageMetadata of an output."""
        fields: dict[str, Any] = {}
        if reply.turn_complete_reason:
            fields["turnCompleteReason"] = reply.turn_complete_reason
        if reply.waiting_for_input is not None:
            fields["waitingForInput"] = reply.waiting_for_input
        usage = dict(reply.usage) if reply.usage is not None else self._usage(extra_out)
        return self.conn.turn_complete(**fields), usage

    def _blocking(self, reply: Reply) -> bool:
        """Tell whether the reply's calls are BLOCKING (step 5 of Reply)."""
        conn = self.conn
        kinds = {
            families.behavior_of(call.name, conn.tools, conn.family)
            for call in reply.tool_calls
        }
        if len(kinds) > 1:
            raise ValueError(
                "fake Live script: one Reply's tool calls must be all BLOCKING "
                "or all NON_BLOCKING"
            )
        return kinds != {"NON_BLOCKING"}

    def _words(self, text: str) -> list[str]:
        """Transcription fragments of `text`, continuing what was said."""
        words = fragments(text)
        if words and self.spoken and not words[0][0].isspace():
            words[0] = " " + words[0]  # continues the text said before a tool call
        return words

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

    async def _stream(
        self,
        reply: Reply,
        words: list[str],
        audio: bytes,
        *,
        last: bool,
        hooks: bool = True,
        ending: str | bool | None = False,
    ) -> bool | Literal["merged"]:
        """Send the audio chunks with transcript fragments; False if closed.

        `last`: `words` end the model turn's transcription. `hooks`: apply the
        reply's after-chunks options. `ending` (not False): the output ends
        after these chunks, with that trailing fragment (or None); in merged
        mode the last chunk then carries the completion ("merged" returned).
        """
        conn = self.conn
        size = 2 * (OUTPUT_RATE * reply.chunk_ms // 1000)
        pieces = [audio[i : i + size] for i in range(0, len(audio), size)]
        factor = reply.realtime_factor or conn.server.realtime_factor
        go_away, close = reply.go_away, reply.close
        grounding = reply.grounding if hooks else None
        ground_at = grounding.after_chunks if isinstance(grounding, Grounding) else 0
        counts = [
            go_away.after_chunks if go_away is not None else None,
            close.after_chunks if close is not None else None,
            reply.pause_after_chunks,
            reply.in_progress_after_chunks,
            ground_at if grounding is not None else None,
        ]
        merge = conn.merged_content and self._lag(reply) == 0
        merge_end = (
            merge
            and ending is not False
            and bool(pieces)
            and not (hooks and any(_reached(c, len(pieces), True) for c in counts))
        )
        loop = asyncio.get_running_loop()
        self._chunk_at = loop.time()
        sent_words = 0
        for index in range(len(pieces) + 1):
            end = index == len(pieces)
            if hooks:
                if grounding is not None and _reached(ground_at, index, end):
                    await conn.send(
                        {"serverContent": {"groundingMetadata": _grounding(grounding)}}
                    )
                if go_away is not None and _reached(go_away.after_chunks, index, end):
                    await conn.go_away(go_away.time_left)
                if close is not None and _reached(close.after_chunks, index, end):
                    await conn.close(close.code, close.reason)
                    return False
                if _reached(reply.pause_after_chunks, index, end):
                    await asyncio.Event().wait()  # until a barge-in cancels us
                if _reached(reply.in_progress_after_chunks, index, end):
                    # 3.2: more output follows this turnComplete (background
                    # reasoning, e.g. 3.8 Extended Thinking after a filler).
                    status = conn.turn_complete(status="IN_PROGRESS")
                    await conn.send({"serverContent": status})
                    if reply.in_progress_pause:
                        await asyncio.sleep(reply.in_progress_pause)
            if end:
                break
            piece = pieces[index]
            due = min(index * len(words) // len(pieces) + 1, len(words))
            self._chunk_at = loop.time()
            if merge:
                final = merge_end and index == len(pieces) - 1
                said = words[sent_words:] if final else words[sent_words:due]
                sent_words = len(words) if final else max(sent_words, due)
                trailing = ending if final and isinstance(ending, str) else None
                await self._merged_chunk(reply, piece, said, trailing, final=final)
                if final:
                    return "merged"
            else:
                await self._say(reply, words[sent_words:due])
                sent_words = max(sent_words, due)
                await self._audio(piece)
            await asyncio.sleep(duration(piece, OUTPUT_RATE) / factor if factor else 0)
        await self._say(reply, words[sent_words:], last=last)
        return True

    async def _merged_chunk(
        self,
        reply: Reply,
        pcm: bytes,
        said: list[str],
        trailing: str | None,
        *,
        final: bool,
    ) -> None:
        """Send one serverContent: audio part, its transcript[, completion].

        `final`: it also completes the output (live-api.md 3, 8.1).
        """
        conn = self.conn
        words = said + ([trailing] if trailing is not None else [])
        self.spoken += words
        content: dict[str, Any] = {"modelTurn": {"parts": [_audio_part(pcm)]}}
        if "outputAudioTranscription" in conn.config and (words or final):
            body: dict[str, Any] = {"text": "".join(words)}
            if final and conn.server.transcription_finished_flag:
                body["finished"] = True
            if words or "finished" in body:
                content["outputTranscription"] = body
        message: dict[str, Any] = {"serverContent": content}
        if final:
            self.finishing = True
            completion, usage = self._completion(reply, extra_out=len(pcm))
            content["generationComplete"] = True
            content.update(completion)
            message["usageMetadata"] = usage
        await conn.send(message)
        conn.record_audio_out(pcm)

    async def _audio(self, pcm: bytes) -> None:
        part = _audio_part(pcm)
        await self.conn.send({"serverContent": {"modelTurn": {"parts": [part]}}})
        self.conn.record_audio_out(pcm)

    def _lag(self, reply: Reply) -> float:
        """Seconds outputTranscription fragments trail their audio chunk."""
        lag = reply.transcript_lag
        return self.conn.server.output_transcript_lag if lag is None else lag

    async def _say(self, reply: Reply, words: list[str], *, last: bool = False) -> None:
        """Post the outputTranscription of `words`, due the lag after the chunk.

        `last`: they end the model turn (`server.transcription_finished_flag`).
        """
        self.spoken += words
        conn = self.conn
        if "outputAudioTranscription" not in conn.config:
            return
        lag = self._lag(reply)
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
            await self.conn.send({"serverContent": self.conn.turn_complete()})
        await self._responses_ready.wait()
        self.pending_calls = {}
        if premature == "after_tool_response":
            await self.conn.send({"serverContent": self.conn.turn_complete()})
        return [self._responses[call_id] for call_id in ids]

    async def _call_async(self, reply: Reply) -> None:
        """Send the toolCall of NON_BLOCKING calls; nobody waits for results.

        The results go to the connection (`Connection.register_async_call`).
        """
        conn = self.conn
        function_calls: list[dict[str, Any]] = []
        for call in reply.tool_calls:
            call_id = call.id or f"function-call-{secrets.randbelow(10**19)}"
            function_calls.append(
                {"id": call_id, "name": call.name, "args": dict(call.args)}
            )
            conn.register_async_call(call_id, call.name, reply, self.turn)
        conn.tool_calls += function_calls
        await conn.send({"toolCall": {"functionCalls": function_calls}})

    def _usage(self, extra_out: int = 0) -> dict[str, Any]:
        """Compute usageMetadata (Developer API names, ~25 tokens per second).

        `extra_out`: bytes of output audio about to be sent with it.
        """
        turn = self.turn
        audio_in = round(duration(turn.audio, turn.sample_rate) * 25)
        text_in = 8 + len(turn.text or "") // 4
        history = sum(len(t.text) // 4 for t in self.conn.history)
        sent = self.conn.audio_out_size - self._out_start + extra_out
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


def _audio_part(pcm: bytes) -> dict[str, Any]:
    return {
        "inlineData": {
            "mimeType": f"audio/pcm;rate={OUTPUT_RATE}",
            "data": protocol.encode_b64(pcm),
        }
    }


def _grounding(grounding: Grounding | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(grounding, Grounding):
        return grounding.metadata()
    return dict(grounding)


def _check_script(reply: Reply, conn: Connection) -> None:
    """Refuse a Reply that production could not send on this connection."""
    if reply.grounding is not None and not conn.google_search:
        raise ValueError(
            "fake Live script: Reply.grounding needs a googleSearch tool "
            "(groundingMetadata is present when googleSearch was used, 3.2)"
        )
    if reply.in_progress_after_chunks is not None and not (
        conn.family.interaction_status
    ):
        raise ValueError(
            "fake Live script: Reply.in_progress_after_chunks needs a 3.x model "
            f"(interactionStatus, 3.2); {conn.family.name} does not send it"
        )


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
