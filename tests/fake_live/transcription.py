"""Timed server messages and the user-speech transcript of the fake Live server.

`Outbox` sends messages at set times from one task of the connection, so that
transcription fragments can trail (lag) the audio they belong to without
blocking it. `InputTranscriber` produces the `inputTranscription` of one user
turn: streamed word by word while the turn's audio arrives (fake STT,
`SpeechStream`), or all at once when the reply starts.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Any, Literal

from .speech import SpeechStream

if TYPE_CHECKING:
    from .connection import Connection

type Message = dict[str, Any]


def transcription(
    kind: Literal["inputTranscription", "outputTranscription"],
    text: str,
    *,
    finished: bool = False,
) -> Message:
    """Build a `serverContent` transcription fragment (`finished` only if set)."""
    body: dict[str, Any] = {"text": text}
    if finished:
        body["finished"] = True
    return {"serverContent": {kind: body}}


class Outbox:
    """Messages one connection sends at set loop times, in the order posted.

    The sending task is spawned on the connection (`Connection.spawn`) when
    needed and ends when nothing is pending, so `shutdown()` cancels it.
    """

    def __init__(self, conn: Connection) -> None:
        """Create an empty outbox sending on `conn`."""
        self._conn = conn
        self._queue: deque[tuple[float, Message]] = deque()
        self._task: asyncio.Task[None] | None = None
        self._held = False

    async def post(self, message: Message, at: float) -> None:
        """Send `message` at loop time `at` (at once, in order, when due)."""
        self._queue.append((at, message))
        if self._held:
            return
        if at <= asyncio.get_running_loop().time():
            await self.flush()
        elif self._task is None or self._task.done():
            self._task = self._conn.spawn(self._run())

    def hold(self) -> None:
        """Keep every pending message until `release()`."""
        self._held = True

    async def release(self) -> None:
        """Stop holding and send everything held now (no-op unless held)."""
        if self._held:
            self._held = False
            await self.flush()

    async def flush(self) -> None:
        """Send every pending message now, in order."""
        while self._queue:
            _, message = self._queue.popleft()
            await self._conn.send(message)

    def cancel(self) -> None:
        """Drop every pending message and stop the sending task."""
        self._queue.clear()
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue and not self._held:
            at, message = self._queue[0]
            if (wait := at - loop.time()) > 0:
                await asyncio.sleep(wait)
                continue  # flushed, held or cancelled meanwhile?
            self._queue.popleft()
            await self._conn.send(message)


class InputTranscriber:
    """The `inputTranscription` fragments of one user turn.

    Streaming (`feed`): each word the fake STT hears in the turn's audio so far
    is sent `lag` seconds after the audio that completed it. `finish`, once the
    reply is chosen, sends the words of the final transcript that follow the
    words already sent (nothing more when it does not start with them): these
    last words may arrive after the end of the user turn, or are held until
    `release()` (after turnComplete) for `Reply(heard_late=True)`.
    """

    def __init__(self, conn: Connection, rate: int, *, streaming: bool) -> None:
        """Prepare the transcript of a turn whose audio arrives at `rate` Hz."""
        self._conn = conn
        self._stream = SpeechStream(rate) if streaming else None
        self._outbox = Outbox(conn)
        self._words: list[str] = []
        """Every word posted (sent or pending), in order."""

    @property
    def lag(self) -> float:
        """Seconds between hearing a word and sending it (0 unless streaming)."""
        return self._conn.server.input_transcription_lag if self._stream else 0.0

    async def feed(self, pcm: bytes) -> None:
        """Hear more of the turn's audio; post the newly heard words."""
        if self._stream is None:
            return
        heard = self._stream.feed(pcm)
        if heard[: len(self._words)] == self._words:
            await self._post(heard[len(self._words) :])

    async def finish(self, transcript: str | None, *, hold: bool) -> None:
        """Post the rest of the final `transcript` (None: no transcription)."""
        final = (transcript or "").split()
        agrees = final[: len(self._words)] == self._words
        if hold:
            self._outbox.hold()
        await self._post(final[len(self._words) :] if agrees else [], last=True)

    async def release(self) -> None:
        """Send what `finish(hold=True)` kept back."""
        await self._outbox.release()

    async def _post(self, words: list[str], *, last: bool = False) -> None:
        at = asyncio.get_running_loop().time() + self.lag
        flag = last and self._conn.server.transcription_finished_flag
        for index, word in enumerate(words):
            text = f" {word}" if self._words else word
            self._words.append(word)
            finished = flag and index == len(words) - 1
            await self._outbox.post(
                transcription("inputTranscription", text, finished=finished), at
            )
        if flag and not words and self._words:  # every word already went out
            await self._outbox.post(
                transcription("inputTranscription", "", finished=True), at
            )
