"""The waits between polls of something AWS is doing: short at first, then longer.

A stack, a change set or a drift detection is looked at after `base` seconds, then 1.5 times
longer each time up to 12 times `base`; as soon as something changes, after `base` again.
When the plan knows how long the operation typically takes (`expected`), the waits halve the
distance to that moment instead, so that a stack that ends on time is seen within `base` of
its end, not up to 12 times `base` after it; past that moment they grow from `base` again.
Each wait owns one Backoff, so that waits in several threads never share their pace.
"""

from __future__ import annotations

# Growth of the wait between polls, its cap (in waits of `base`), and the first check of
# something that is often ready within seconds, such as a change set (in waits of `base`).
BACKOFF = 1.5
MAX_INTERVALS = 12.0
FIRST_CHECK = 0.3


class Backoff:
    """The waits between polls: `first`, then `base` growing by BACKOFF up to `cap`.

    `reset` starts over at `base` (something changed: look again soon); `hold` makes the next
    wait the same as the last (things are moving, though the status is the same).
    """

    def __init__(
        self, base: float, *, first: float | None = None, expected: float | None = None
    ) -> None:
        self.base = base
        self.cap = base * MAX_INTERVALS
        self._first = first
        self._last: float | None = None
        self._hold = False
        self._expected = expected if expected and expected > base else None
        self._waited = 0.0

    def next(self) -> float:
        """The wait before the next poll."""
        wait = self._towards_expected()
        if wait is None:
            wait = self._growing()
        self._waited += wait
        return wait

    def _towards_expected(self) -> float | None:
        """Half the time left to the expected end (within base..cap), or None past it."""
        if self._expected is None:
            return None
        left = self._expected - self._waited
        if left <= self.base:
            self._expected = None  # from here on, as if nothing were expected
            self._first = self._last = None
            return None
        self._hold = False
        return max(self.base, min(self.cap, left / 2))

    def _growing(self) -> float:
        if self._last is None:
            wait = self.base if self._first is None else self._first
        elif self._hold:
            wait = self._last
        elif self._last < self.base:
            wait = self.base
        else:
            wait = min(self._last * BACKOFF, self.cap)
        self._last, self._hold = wait, False
        return wait

    def reset(self) -> None:
        """Wait `base` next, and grow from there."""
        self._first = self._last = None
        self._hold = False

    def hold(self) -> None:
        """Wait as long next as the last time."""
        self._hold = True
