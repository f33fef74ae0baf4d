"""Circuit breaker of the transcode client: after a run of failures the client stops
calling the service for a while and goes straight to the fallback, then lets exactly one
probe through to see whether the service is back."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum


class BreakerState(str, Enum):
    """Where the breaker stands."""

    CLOSED = "closed"
    """Calls go to the service."""
    OPEN = "open"
    """Calls go straight to the fallback until the reset timeout has passed."""
    HALF_OPEN = "half_open"
    """The reset timeout has passed: the next call (one only) probes the service."""


@dataclass(eq=False)
class Permit:
    """Leave to call the service once; report the outcome with the breaker's
    `succeeded`, `failed` or `released`."""

    probe: bool


class CircuitBreaker:
    """Counts consecutive failed calls; opens after `failure_threshold` of them.

    While open, `acquire` returns None (no network I/O: go to the fallback). Once
    `reset_timeout_secs` have passed, one caller gets a probe permit; everyone else
    keeps getting None until the probe settles: success closes the breaker, failure
    opens it for another reset timeout, release (cancellation) lets the next caller
    probe. The breaker is meant for one asyncio event loop (no locks needed: its
    methods never await)."""

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_timeout_secs: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1 or reset_timeout_secs < 0:
            raise ValueError("failure_threshold must be >= 1 and reset_timeout_secs >= 0")
        self.failure_threshold = failure_threshold
        self.reset_timeout_secs = reset_timeout_secs
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probe: Permit | None = None

    @property
    def state(self) -> BreakerState:
        """The current state (an open breaker whose timeout has passed is half open)."""
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._probe is not None or self._clock() - self._opened_at >= self.reset_timeout_secs:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    @property
    def consecutive_failures(self) -> int:
        """Failed calls since the last success."""
        return self._failures

    def acquire(self) -> Permit | None:
        """A permit to call the service, or None when the call must not touch it."""
        state = self.state
        if state is BreakerState.CLOSED:
            return Permit(probe=False)
        if state is BreakerState.HALF_OPEN and self._probe is None:
            self._probe = Permit(probe=True)
            return self._probe
        return None

    def succeeded(self, permit: Permit) -> None:
        """The service answered: the breaker closes (dropping any probe in flight) and the
        failure count restarts."""
        self._failures = 0
        self._opened_at = None
        self._probe = None

    def failed(self, permit: Permit) -> None:
        """The service failed this call (a stream that broke after a success counts too).
        A failed probe opens the breaker for another reset timeout."""
        self._failures += 1
        if permit is self._probe or (self._opened_at is None and self._failures >= self.failure_threshold):
            self._opened_at = self._clock()
        if permit is self._probe:
            self._probe = None

    def released(self, permit: Permit) -> None:
        """The call ended without a verdict (cancelled): neither success nor failure; a
        released probe lets the next caller probe."""
        if permit is self._probe:
            self._probe = None
