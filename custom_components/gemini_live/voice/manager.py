"""VoiceManager: the Live sessions of one config entry, by conversation id.

The three entities of a pipeline run meet here, keyed by the run's
conversation id (the chat session every pipeline run executes in):

1. STT `transcribe()` opens (or reuses) the conversation's session, streams
   the user's speech into a new voice turn and returns its transcript;
2. the conversation agent `claim_voice_turn()`s that turn (or starts a text
   turn with `start_text_turn()` for typed input) and `release_turn()`s it
   when it returns;
3. TTS `claim_turn_for_speech()` takes the reply's audio.

Nothing waits for a stage that never comes: a voice turn no agent claims
within `CLAIM_TIMEOUT` after its transcript (an `ask_question` run ends at
STT, a local intent answered it, the run was abandoned) closes its session, so
the model's reply is cut off and no tool of it ever runs (tools run only
through the agent); reply audio no TTS claims within `AUDIO_CLAIM_TIMEOUT`
after the agent returned is dropped. Tasks run in an empty `contextvars`
context so that none keeps a finished run's chat session or chat log.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Awaitable, Callable, Coroutine
import contextvars
from dataclasses import replace
import logging
from typing import Any

from ..live import LiveClient, LiveConfig, LiveSession
from .session import Spawn, VoiceSession
from .turn import LiveTurn

_LOGGER = logging.getLogger(__name__)

CLAIM_TIMEOUT = 3.0
"""Seconds after a voice transcript within which an agent must claim the turn."""
AUDIO_CLAIM_TIMEOUT = 5.0
"""Seconds after the agent returned within which TTS must claim the audio."""

type ConfigFactory = Callable[[], Awaitable[LiveConfig]]
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
    ) -> None:
        """Use `client` for sessions; `spawn` starts the entry's background tasks."""
        self._client = client
        self._spawn_task = spawn
        self._idle_timeout = idle_timeout
        self._speech_config = speech_config
        self._sessions: dict[str, VoiceSession] = {}
        self._unkeyed: set[VoiceSession] = set()
        self._timers: dict[LiveTurn, asyncio.TimerHandle] = {}

    async def transcribe(
        self,
        conversation_id: str | None,
        audio: AsyncIterable[bytes],
        config: ConfigFactory,
    ) -> str:
        """Stream the user's speech (16 kHz PCM16) into a new voice turn.

        Returns the settled input transcript; the model is already replying.
        Raises LiveError; a failed or abandoned turn closes its session.
        """
        session = await self._session(conversation_id, config)
        turn = session.new_turn(voice=True)
        try:
            await session.stream_audio(turn, audio)
            text = await turn.wait_input_transcript()
        except BaseException:
            self.spawn(session.close(), "gemini_live close")
            raise
        self._expire_later(turn, CLAIM_TIMEOUT, lambda: self._unclaimed(session))
        return text

    def claim_voice_turn(self, conversation_id: str) -> LiveTurn | None:
        """Return the conversation's transcribed voice turn no agent claimed yet."""
        session = self._sessions.get(conversation_id)
        turn = session.turn if session is not None else None
        if turn is None or turn.agent_claimed or turn not in self._timers:
            return None
        self._cancel_timer(turn)
        turn.agent_claimed = True
        return turn

    async def start_text_turn(
        self, conversation_id: str, text: str, config: ConfigFactory
    ) -> LiveTurn:
        """Send typed input in the conversation's session (opened if needed)."""
        session = await self._session(conversation_id, config)
        turn = session.new_turn(voice=False)
        try:
            await session.send_text(text)
        except BaseException:
            self.spawn(session.close(), "gemini_live close")
            raise
        return turn

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
        session = self._open(await self._client.connect(config), None, config)
        turn = session.new_turn(voice=False)
        turn.claim_audio()
        try:
            await session.send_text(text)
        except BaseException:
            self.spawn(session.close(), "gemini_live close")
            raise
        return turn

    async def async_close(self) -> None:
        """Close every session and cancel every timer."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for session in [*self._sessions.values(), *self._unkeyed]:
            await session.close()

    async def _session(
        self, conversation_id: str | None, config: ConfigFactory
    ) -> VoiceSession:
        if conversation_id is not None and (
            session := self._sessions.get(conversation_id)
        ):
            return session
        live_config = await config()
        live = await self._client.connect(live_config)
        return self._open(live, conversation_id, live_config)

    def _open(
        self, live: LiveSession, conversation_id: str | None, config: LiveConfig
    ) -> VoiceSession:
        session = VoiceSession(
            live,
            conversation_id,
            manual_activity=config.activity_detection.disabled,
            idle_timeout=self._idle_timeout if conversation_id is not None else 0,
            spawn=self.spawn,
            on_close=self._forget,
        )
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
        self, turn: LiveTurn, delay: float, action: Callable[[], None]
    ) -> None:
        def expire() -> None:
            del self._timers[turn]
            action()

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
