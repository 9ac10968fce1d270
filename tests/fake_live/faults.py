"""FaultQueue: the failures a fake service applies to its next requests."""

from __future__ import annotations

from collections import deque


class FaultQueue[T]:
    """Faults in the order added, each for a number of requests (None: all)."""

    def __init__(self) -> None:
        """Start with none."""
        self._queue: deque[tuple[T, int | None]] = deque()

    def add(self, fault: T, times: int | None = 1) -> None:
        """Apply `fault` to the next `times` requests after those queued."""
        self._queue.append((fault, times))

    def clear(self) -> None:
        """Drop every pending fault."""
        self._queue.clear()

    def take(self) -> T | None:
        """Return the fault of the request now served, None for no fault."""
        if not self._queue:
            return None
        fault, times = self._queue[0]
        if times is not None:
            if times <= 1:
                self._queue.popleft()
            else:
                self._queue[0] = (fault, times - 1)
        return fault
