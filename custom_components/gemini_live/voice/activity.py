"""What an assistant's Live sessions did: counters, token usage, finished turns.

Plain Python like the rest of the voice core. The sessions and the agent
report here; Home Assistant's side subscribes (the token sensors, the
conversation event, the quota Repairs issue) and diagnostics read the counters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
import logging
from typing import TYPE_CHECKING, Any, Literal

from ..live import LiveError, UsageMetadata

if TYPE_CHECKING:
    from .turn import LiveTurn

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Tokens:
    """Token counts: the prompt's, the reply's and the total billed."""

    input: int = 0
    output: int = 0
    total: int = 0

    @classmethod
    def of(cls, usage: UsageMetadata | Mapping[str, int | None]) -> Tokens:
        """Return the counts of a usageMetadata message (or of `LiveTurn.usage`)."""
        if isinstance(usage, UsageMetadata):
            usage = {
                "input": usage.prompt_tokens,
                "output": usage.response_tokens,
                "total": usage.total_tokens,
            }
        tokens_in, tokens_out = usage.get("input") or 0, usage.get("output") or 0
        return cls(tokens_in, tokens_out, usage.get("total") or tokens_in + tokens_out)

    def __add__(self, other: Tokens) -> Tokens:
        """Add counts up."""
        return Tokens(
            self.input + other.input,
            self.output + other.output,
            self.total + other.total,
        )

    def as_dict(self) -> dict[str, int]:
        """Return the counts by name (``input``, ``output``, ``total``)."""
        return {"input": self.input, "output": self.output, "total": self.total}


@dataclass(frozen=True, slots=True)
class UsageReport:
    """A usageMetadata message: its tokens, and its turn's so far."""

    added: Tokens
    turn: Tokens


type ToolStatus = Literal["success", "error", "in_progress"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCallReport:
    """A tool the model called during a turn, and how its call went."""

    name: str
    arguments: Mapping[str, Any]
    status: ToolStatus


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnReport:
    """A turn the conversation agent finished answering."""

    agent_id: str
    conversation_id: str | None
    voice: bool
    user_text: str
    answer_text: str
    tool_calls: tuple[ToolCallReport, ...]
    tokens: Tokens
    error: LiveError | None = None
    """What cut the reply short (the user heard it up to there)."""


type ActivityEvent = UsageReport | TurnReport | LiveError
"""What listeners hear: usage, a finished turn, a session the service failed."""
type ActivityListener = Callable[[ActivityEvent], None]


class Activity:
    """Counters of an assistant's Live sessions, and listeners of their events."""

    def __init__(self) -> None:
        """Start with every counter at zero."""
        self.opened = 0
        """Sessions opened."""
        self.resumed = 0
        """Times a session moved to a resumed connection (after a goAway)."""
        self.failed = 0
        """Sessions the service refused or ended with an error."""
        self.turns = 0
        """User turns sent (spoken or typed)."""
        self.last_error: LiveError | None = None
        self._listeners: list[ActivityListener] = []

    def subscribe(self, listener: ActivityListener) -> Callable[[], None]:
        """Call `listener` with every event from now on; returns the unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def session_opened(self) -> None:
        """Count an opened session."""
        self.opened += 1

    def session_resumed(self) -> None:
        """Count a resumption."""
        self.resumed += 1

    def turn_started(self) -> None:
        """Count a user turn."""
        self.turns += 1

    def session_failed(self, error: LiveError) -> None:
        """Count a session the service refused or ended with `error`."""
        self.failed += 1
        self.last_error = error
        self._emit(error)

    def add_usage(self, turn: LiveTurn, usage: UsageMetadata) -> None:
        """Add a usageMetadata message to its turn's usage (one per generation)."""
        added = Tokens.of(usage)
        total = Tokens.of(turn.usage) + added
        counts: dict[str, int | None] = {**total.as_dict()}
        turn.set_usage(counts)
        self._emit(UsageReport(added, total))

    def turn_finished(self, report: TurnReport) -> None:
        """Report a turn the agent finished answering."""
        self._emit(report)

    def _emit(self, event: ActivityEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a broken listener must not break the session
                _LOGGER.exception("Error in a Live activity listener")
