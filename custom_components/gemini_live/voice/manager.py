"""VoiceManager: the Live sessions of one config entry, by conversation id.

The three entities of a pipeline run meet here, keyed by the run's
conversation id (the chat session every pipeline run executes in):

1. STT `transcribe()` opens (or reuses) the conversation's session, streams
   the user's speech into a new voice turn and returns its transcript;
2. the conversation agent `claim_voice_turn()`s that turn (or starts a text
   turn with `start_text_turn()` for typed input) and `release_turn()`s it
   when it returns;
3. TTS `claim_turn_for_speech()` takes the reply's audio.

One session per conversation, also when two requests open it at once. A new
session starts with the conversation's history (`SessionSetup.history`), so
the model's memory outlives the socket.

Nothing waits for a stage that never comes: a voice turn no agent claims
within `CLAIM_TIMEOUT` after its transcript (the run was abandoned) closes
its session, so no tool of it ever runs (tools run only through the agent);
reply audio no TTS claims within `AUDIO_CLAIM_TIMEOUT` after the agent
returned is dropped. A run that will not reach this integration's agent (an
`ask_question` run, another agent) transcribes in a session of its own that
closes after the transcript. Tasks run in an empty `contextvars` context so
that none keeps a finished run's chat session or chat log.
"""

from __future__ import annotations

import asyncio
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Sequence,
)
import contextlib
import contextvars
from dataclasses import dataclass, replace
import logging
from typing import Any
import weakref

from ..live import (
    HistoryTurn,
    LiveClient,
    LiveConfig,
    LiveConnectionError,
    LiveError,
    LiveModelNotFoundError,
    LivePermissionError,
    LiveQuotaError,
    SpeechStream,
    model_family,
    non_blocking_functions,
)
from .activity import Activity
from .session import Spawn, VoiceSession
from .turn import TRANSCRIPT_TAIL_MAX, LiveTurn

_LOGGER = logging.getLogger(__name__)

CLAIM_TIMEOUT = 3.0
"""Seconds after a voice transcript within which an agent must claim the turn."""
AUDIO_CLAIM_TIMEOUT = 5.0
"""Seconds after the agent returned within which TTS must claim the audio."""
PREPARED_TIMEOUT = 60.0
"""Seconds an `expect_agent()` note waits for the run's speech."""
TURN_QUEUE_TIMEOUT = 30.0
"""Longest wait of a typed request for the conversation's unfinished turn."""
REPLY_START_TIMEOUT = 5.0
"""Longest wait for a first answer to begin before it is asked again."""
FRAME_INTERVAL = 1.0
"""Seconds between the video frames of one request (at most 1 fps, live-api.md 4)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionSetup:
    """What a new session of a conversation starts with."""

    config: LiveConfig
    history: tuple[HistoryTurn, ...] = ()
    """The conversation so far, sent before the first turn."""
    extra_prompt: str | None = None
    """The extra system prompt included in `config`'s instruction."""


type SetupFactory = Callable[[], Awaitable[SessionSetup]]
"""Builds the setup of a new session (called only when one is opened)."""


class VoiceManager:
    """Live sessions by conversation id, turn claims and their expiry."""

    def __init__(
        self,
        client: LiveClient,
        *,
        spawn: Spawn,
        idle_timeout: float,
        speech_config: Callable[[], LiveConfig],
        on_connect_error: Callable[[LiveError], None] = lambda err: None,
        speech_model: str | None = None,
    ) -> None:
        """Use `client` for sessions; `spawn` starts the entry's background tasks.

        `on_connect_error` hears of every session the service refused;
        `speech_model` is the TTS model of `announce()` (None: Live only).
        """
        self._client = client
        self._speech_model = speech_model
        self._on_connect_error = on_connect_error
        self._spawn_task = spawn
        self._idle_timeout = idle_timeout
        self._speech_config = speech_config
        self._sessions: dict[str, VoiceSession] = {}
        self._opening: dict[str, asyncio.Future[VoiceSession]] = {}
        self._unkeyed: set[VoiceSession] = set()
        self._timers: dict[LiveTurn, asyncio.TimerHandle] = {}
        self._agent_expected: dict[str, float] = {}
        self._refused: dict[str, LiveTurn] = {}
        """Voice turns heard but refused for quota, by conversation id."""
        self._frames: dict[str, tuple[bytes, ...]] = {}
        """JPEG frames typed requests show before their text, by context id."""
        self._speeches: weakref.WeakSet[SpeechStream] = weakref.WeakSet()
        """TTS-model streams being read, closed with the manager."""
        self._closed = False
        self.activity = Activity()
        """Counters and events of the sessions (usage, turns, failures)."""

    def expect_agent(self, conversation_id: str) -> None:
        """Note that this conversation's next run reaches the agent."""
        now = asyncio.get_running_loop().time()
        self._agent_expected = {
            key: at
            for key, at in self._agent_expected.items()
            if now - at < PREPARED_TIMEOUT
        }
        self._agent_expected[conversation_id] = now

    def agent_expected(self, conversation_id: str | None) -> bool:
        """Whether (once) the run of this conversation will reach the agent."""
        return self._agent_expected.pop(conversation_id or "", None) is not None

    async def transcribe(
        self,
        conversation_id: str | None,
        audio: AsyncIterable[bytes],
        setup: SetupFactory,
        *,
        respond: bool = True,
    ) -> str:
        """Stream the user's speech (16 kHz PCM16) into a new voice turn.

        Returns the input transcript; the model is already replying. With
        `respond` False (no agent of this entry will handle the run) the
        speech goes to a session of its own, closed after the transcript.
        Raises LiveError; a failed or abandoned turn closes its session. A
        turn the service refused for quota once it heard the user returns
        the transcript: the agent claims the failed turn and says why.
        """
        if respond:
            session = await self._session(conversation_id, setup)
        else:
            session = await self._open(None, await setup())
        turn = session.new_turn(voice=True)
        try:
            await session.stream_audio(turn, audio)
            text = await turn.wait_input_transcript()
        except BaseException as err:
            self.spawn(session.close(), "gemini_live close")
            key = conversation_id if respond else None
            if not (
                key
                and isinstance(err, LiveError)
                and isinstance(turn.error, LiveQuotaError)
                and turn.input_transcript
            ):
                raise
            self._refused[key] = turn
            self._expire_later(
                turn, CLAIM_TIMEOUT, lambda: self._refused.pop(key, None)
            )
            return turn.input_transcript
        if respond:
            self._expire_later(turn, CLAIM_TIMEOUT, lambda: self._unclaimed(session))
        else:
            self.spawn(session.close(), "gemini_live close")
        return text

    def claim_voice_turn(self, conversation_id: str) -> LiveTurn | None:
        """Return the conversation's transcribed voice turn no agent claimed yet."""
        session = self._sessions.get(conversation_id)
        turn = session.turn if session is not None else None
        turn = self._refused.pop(conversation_id, turn)
        if turn is None or turn.agent_claimed or turn not in self._timers:
            return None
        self._cancel_timer(turn)
        turn.agent_claimed = True
        return turn

    def attach_frames(
        self, context_id: str, frames: Sequence[bytes]
    ) -> Callable[[], None]:
        """Show JPEG `frames` before the text of the typed request `context_id`.

        `start_text_turn` of that request sends them as video frames, just
        before its text. Returns the detach, to call once the request returned.
        """
        self._frames[context_id] = tuple(frames)

        def detach() -> None:
            self._frames.pop(context_id, None)

        return detach

    async def start_text_turn(
        self,
        conversation_id: str,
        text: str,
        setup: SetupFactory,
        *,
        extra_prompt: str | None = None,
        context_id: str | None = None,
    ) -> LiveTurn:
        """Send typed input in the conversation's session (opened if needed).

        An `extra_prompt` the session does not know yet goes with the text;
        the frames attached to the request's `context_id` go before it.
        Requests of one conversation take turns: this one waits (at most
        `TURN_QUEUE_TIMEOUT`) for the reply another agent call is reading and
        for a voice request still being spoken or transcribed. (Speech cuts a
        reply instead: the user barged in.)
        """
        session = await self._session(conversation_id, setup)
        while (current := session.turn) is not None and (
            current.agent_claimed or current.voice
        ):
            if current.finished:
                break
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TURN_QUEUE_TIMEOUT):
                    await current.wait_done()
            if session.closed:
                session = await self._session(conversation_id, setup)
            elif session.turn is current:
                break
        turn = session.new_turn(voice=False)
        frames = self._frames.pop(context_id, ()) if context_id else ()
        try:
            if extra_prompt and extra_prompt not in session.extra_prompts:
                text = await self._learn(session, extra_prompt) + text
            for index, frame in enumerate(frames):
                if index:
                    await asyncio.sleep(FRAME_INTERVAL)
                await session.live.send_video_frame(frame)
            await session.send_text(turn, text)
        except BaseException:
            self.spawn(session.close(), "gemini_live close")
            raise
        return turn

    async def add_extra_prompt(self, turn: LiveTurn, prompt: str) -> LiveTurn:
        """Make the model answer `turn` again, knowing `prompt`; returns the turn.

        For a run whose extra system prompt the session did not have when the
        model started answering (it reaches only the conversation stage):
        the model is asked again, with the prompt, and the first answer is
        cut off before anyone heard it.
        """
        session = self._sessions.get(turn.conversation_id or "")
        if session is None or session.turn is not turn or session.closed:
            return turn
        if prompt in session.extra_prompts:
            return turn
        if not turn.generation_open and not turn.reply_complete:
            # Its first words would join the answer asked for again: let the
            # first answer begin, so that it is cut off whole.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(REPLY_START_TIMEOUT):
                    await turn.wait_reply_started()
        if turn.transcript_trails:
            # The first answer's words still come after its audio: they must
            # reach it, not the answer asked for again.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TRANSCRIPT_TAIL_MAX + 1):
                    await turn.wait_done()
            if session.turn is not turn or session.closed:
                return turn
        request = turn.input_transcript
        again = session.new_turn(voice=turn.voice)
        again.agent_claimed = True
        again.add_input(request, finished=True)
        try:
            prefix = await self._learn(session, prompt)
            await session.send_text(
                again, f"{prefix}Answer my last request with this in mind."
            )
        except BaseException:
            self.spawn(session.close(), "gemini_live close")
            raise
        return again

    @staticmethod
    async def _learn(session: VoiceSession, prompt: str) -> str:
        """Give the session an extra system prompt; return the text to prefix.

        Where the model accepts `contextUpdate`, the prompt joins the system
        instruction (nothing to prefix); otherwise it goes with the user text.
        """
        session.extra_prompts.add(prompt)
        if session.context_update and session.instructions is not None:
            session.instructions = f"{session.instructions}\n{prompt}"
            await session.live.send_context_update(
                system_instruction=session.instructions
            )
            return ""
        return f"{prompt}\n\n"

    def release_turn(self, turn: LiveTurn) -> None:
        """Hand the turn back after the agent returned; unclaimed audio expires."""
        if turn.audio_available:
            self._expire_later(turn, AUDIO_CLAIM_TIMEOUT, turn.release_audio)

    def abandon_turn(self, turn: LiveTurn) -> None:
        """Close the session of a turn the agent gave up on (the run was cancelled)."""
        session = self._sessions.get(turn.conversation_id or "")
        if session is not None and session.turn is turn:
            self.spawn(session.close(), "gemini_live close")

    def claim_turn_for_speech(
        self, conversation_id: str | None, text: str
    ) -> LiveTurn | None:
        """Return the agent-handled turn whose audio TTS should stream.

        That is the conversation's current turn, or without a conversation id
        the turn whose transcript starts with `text`. Reserves its audio.
        """
        if conversation_id is not None:
            session = self._sessions.get(conversation_id)
            turns = [session.turn] if session is not None and session.turn else []
        else:
            wanted = _words(text)
            turns = [
                session.turn
                for session in self._sessions.values()
                if session.turn is not None
                and wanted
                and _words(session.turn.output_transcript).startswith(wanted)
            ]
        for turn in turns:
            if turn.agent_claimed and turn.claim_audio():
                self._cancel_timer(turn)
                return turn
        return None

    async def speak(self, text: str, *, voice: str | None = None) -> LiveTurn:
        """Have Gemini say `text` in a short session of its own.

        `voice` overrides the entry's voice. The returned turn's audio is
        reserved for the caller; the session closes when the turn ends.
        """
        config = self._speech_config()
        if voice:
            config = replace(config, voice=voice)
        session = await self._open(None, SessionSetup(config=config))
        turn = session.new_turn(voice=False)
        turn.claim_audio()
        try:
            await session.send_text(turn, text)
        except BaseException:
            self.spawn(session.close(), "gemini_live close")
            raise
        return turn

    async def announce(
        self, text: str, *, voice: str | None = None
    ) -> AsyncIterator[bytes]:
        """Say `text` word for word; return its 24 kHz PCM16 as it comes.

        The TTS model speaks it in the assistant's voice (or `voice`): a Live
        model asked to read may answer a question instead. Only where these
        credentials are refused the TTS model does a Live session read it
        (`speak`). Raises LiveError.
        """
        voice = voice or self._speech_config().voice
        if self._speech_model is not None:
            try:
                speech = await self._client.synthesize(
                    self._speech_model, text, voice=voice
                )
            except (LiveModelNotFoundError, LivePermissionError) as err:
                _LOGGER.info(
                    "The TTS model %s is refused (%s); a Live session reads the text",
                    self._speech_model,
                    err,
                )
            except LiveError as err:
                self.activity.session_failed(err)
                self._on_connect_error(err)
                raise
            else:
                self._speeches.add(speech)
                return speech
        turn = await self.speak(text, voice=voice)
        return turn.audio_stream()

    async def async_close(self) -> None:
        """Close every session and cancel every timer; later timers do nothing."""
        self._closed = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for speech in list(self._speeches):
            await speech.aclose()
        for session in [*self._sessions.values(), *self._unkeyed]:
            await session.close()

    async def _session(
        self, conversation_id: str | None, setup: SetupFactory
    ) -> VoiceSession:
        """Return the conversation's open session, opening it once."""
        if conversation_id is None:
            return await self._open(None, await setup())
        if session := self._sessions.get(conversation_id):
            return session
        if (opening := self._opening.get(conversation_id)) is not None:
            return await asyncio.shield(opening)
        future: asyncio.Future[VoiceSession] = (
            asyncio.get_running_loop().create_future()
        )
        self._opening[conversation_id] = future
        try:
            session = await self._open(conversation_id, await setup())
        except BaseException as err:
            if isinstance(err, asyncio.CancelledError):
                # Only the opener was cancelled: its waiters get an error.
                err = LiveConnectionError("Opening the Live session was cancelled")
            future.set_exception(err)
            future.exception()  # retrieved: waiters get it too
            raise
        else:
            future.set_result(session)
            return session
        finally:
            del self._opening[conversation_id]

    async def _open(
        self, conversation_id: str | None, setup: SessionSetup
    ) -> VoiceSession:
        try:
            live = await self._client.connect(setup.config)
        except LiveError as err:
            self.activity.session_failed(err)
            self._on_connect_error(err)
            raise
        self.activity.session_opened()
        try:
            if setup.history:
                await live.send_history(setup.history)
        except BaseException:
            await live.close()
            raise
        session = VoiceSession(
            live,
            conversation_id,
            manual_activity=setup.config.activity_detection.disabled,
            idle_timeout=self._idle_timeout if conversation_id is not None else 0,
            spawn=self.spawn,
            on_close=self._forget,
            instructions=setup.config.system_instruction,
            non_blocking=non_blocking_functions(setup.config),
            context_update=model_family(setup.config.model).context_update,
            activity=self.activity,
        )
        if setup.extra_prompt:
            session.extra_prompts.add(setup.extra_prompt)
        if conversation_id is None:
            self._unkeyed.add(session)
        else:
            self._sessions[conversation_id] = session
        session.start()
        return session

    def _forget(self, session: VoiceSession) -> None:
        self._unkeyed.discard(session)
        key = session.conversation_id
        if key is not None and self._sessions.get(key) is session:
            del self._sessions[key]

    def _unclaimed(self, session: VoiceSession) -> None:
        _LOGGER.debug(
            "No agent claimed the voice turn of %s; closing its Live session",
            session.conversation_id,
        )
        self.spawn(session.close(), "gemini_live close")

    def _expire_later(
        self, turn: LiveTurn, delay: float, action: Callable[[], object]
    ) -> None:
        def expire() -> None:
            del self._timers[turn]
            action()

        if self._closed:
            return
        self._cancel_timer(turn)
        self._timers[turn] = asyncio.get_running_loop().call_later(delay, expire)

    def _cancel_timer(self, turn: LiveTurn) -> None:
        if (timer := self._timers.pop(turn, None)) is not None:
            timer.cancel()

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Start a background task of the entry, in an empty `contextvars` context."""
        contextvars.Context().run(self._spawn_task, coro, name)


def _words(text: str) -> str:
    """`text` with its whitespace normalised, for prefix matching."""
    return " ".join(text.split())
