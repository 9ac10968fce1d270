"""When a session leaves a connection after goAway (the Rotation state, no socket)."""

import pytest

from custom_components.gemini_live.live import (
    FunctionCall,
    GoAway,
    SessionResumptionUpdate,
    ToolCall,
    ToolCallCancellation,
    TurnComplete,
)
from custom_components.gemini_live.live.session import GO_AWAY_MARGIN, Input, Rotation

HANDLE = SessionResumptionUpdate("h", True)
DONE = TurnComplete(None, False)


def rotation(*, resumption: bool = True) -> Rotation:
    return Rotation(resumption=resumption)


def test_nothing_is_due_without_go_away() -> None:
    plan = rotation()
    plan.received(HANDLE, 0)
    assert plan.idle
    assert plan.deadline is None
    assert not plan.due(1e9)


@pytest.mark.parametrize(
    ("time_left", "deadline"),
    [(50.0, 145.0), (8.0, 106.0), (1.0, 100.75), (0.0, 100.0), (None, 100.0)],
)
def test_deadline_margin(time_left: float | None, deadline: float) -> None:
    """The deadline is timeLeft - min(5 s, timeLeft / 4) after the goAway."""
    assert GO_AWAY_MARGIN == 5.0
    plan = rotation()
    plan.sent(Input.TURN)  # busy: only the deadline applies
    plan.received(GoAway(time_left), 100.0)
    assert plan.deadline == pytest.approx(deadline)
    assert not plan.due(deadline - 0.001)
    assert plan.due(deadline)


def test_earliest_go_away_wins() -> None:
    plan = rotation()
    plan.received(GoAway(50.0), 0)
    plan.received(GoAway(2.0), 1)
    plan.received(GoAway(50.0), 2)
    assert plan.deadline == 2.5  # 1 + 2 - 2 / 4


def test_idle_with_fresh_handle_is_due_at_once() -> None:
    plan = rotation()
    plan.received(HANDLE, 0)
    plan.received(GoAway(50.0), 1)
    assert plan.due(1)


def test_reply_then_fresh_handle() -> None:
    plan = rotation()
    plan.received(HANDLE, 0)
    plan.sent(Input.TURN)
    plan.received(GoAway(50.0), 1)
    assert not plan.due(2)
    plan.received(HANDLE, 2)  # a handle during the reply is not enough
    assert not plan.due(2)
    plan.received(DONE, 3)
    assert plan.idle
    assert not plan.due(3)  # the handle predates the turnComplete
    plan.received(SessionResumptionUpdate(None, False), 3)
    assert not plan.due(3)
    plan.received(HANDLE, 4)
    assert plan.due(4)


def test_in_progress_turn_complete_is_not_the_end() -> None:
    plan = rotation()
    plan.sent(Input.TURN)
    plan.received(GoAway(50.0), 0)
    plan.received(TurnComplete(None, False, "IN_PROGRESS"), 1)
    plan.received(HANDLE, 1)
    assert not plan.due(1)
    plan.received(TurnComplete(None, False, "IDLE"), 2)
    plan.received(HANDLE, 2)
    assert plan.due(2)


def test_pending_tool_calls_block() -> None:
    plan = rotation()
    plan.received(GoAway(50.0), 0)
    plan.received(ToolCall((FunctionCall("a", "f", {}), FunctionCall("b", "g", {}))), 0)
    plan.received(DONE, 1)
    plan.received(HANDLE, 1)
    assert not plan.idle
    plan.sent(Input.TURN, ["a"])
    plan.received(DONE, 2)
    plan.received(HANDLE, 2)
    assert not plan.due(2)  # "b" is still pending
    plan.received(ToolCallCancellation(("b",)), 3)
    assert plan.due(3)


def test_stream_input_changes_nothing() -> None:
    plan = rotation()
    plan.received(HANDLE, 0)
    plan.received(GoAway(50.0), 0)
    plan.sent(Input.STREAM)
    assert plan.due(0)


def test_context_change_needs_a_newer_handle() -> None:
    plan = rotation()
    plan.received(HANDLE, 0)
    plan.received(GoAway(50.0), 0)
    plan.sent(Input.CONTEXT)
    assert plan.idle
    assert not plan.due(1)
    plan.received(HANDLE, 1)
    assert plan.due(1)


def test_without_resumption_any_idle_point() -> None:
    plan = rotation(resumption=False)
    plan.sent(Input.TURN)
    plan.received(GoAway(50.0), 0)
    assert not plan.due(1)
    plan.received(DONE, 1)
    assert plan.due(1)
