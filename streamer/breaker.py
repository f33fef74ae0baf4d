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


@dataclass
class Permit:
    """Leave to call the service once; settle it with the breaker's `succeeded`,
    `failed` or `released`."""

    probe: bool
    settled: bool = False


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
        self._probing = False

    @property
    def state(self) -> BreakerState:
        """The current state (an open breaker whose timeout has passed is half open)."""
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._probing or self._clock() - self._opened_at >= self.reset_timeout_secs:
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
        if state is BreakerState.HALF_OPEN and not self._probing:
            self._probing = True
            return Permit(probe=True)
        return None

    def succeeded(self, permit: Permit) -> None:
        """The service answered: the breaker closes and the failure count restarts."""
        self._settle(permit)
        self._failures = 0
        self._opened_at = None

    def failed(self, permit: Permit) -> None:
        """The service failed this call (a stream that broke after a success counts too)."""
        was_probe = permit.probe and not permit.settled
        self._settle(permit)
        self._failures += 1
        if was_probe or (self._opened_at is None and self._failures >= self.failure_threshold):
            self._opened_at = self._clock()

    def released(self, permit: Permit) -> None:
        """The call ended without a verdict (cancelled): neither success nor failure."""
        if not permit.settled:
            self._settle(permit)

    def _settle(self, permit: Permit) -> None:
        if permit.probe and not permit.settled:
            self._probing = False
        permit.settled = True
