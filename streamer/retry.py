"""When the transcode client tries the service again: exponential backoff with full
jitter, `Retry-After` honoured, and one deadline for all attempts of a call so that the
fallback still starts quickly."""

from __future__ import annotations

import random
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from datetime import datetime, timezone


@dataclass(frozen=True)
class RetryPolicy:
    """Retries before the first byte of a stream (never after it).

    Attempt n (from 1) that failed is followed by a pause drawn uniformly from
    [0, min(max_delay_secs, base_delay_secs * 2**(n-1))], or by the service's
    Retry-After when that is longer. No attempt starts once `deadline_secs` would be
    passed: the call goes to the fallback instead."""

    max_attempts: int = 3
    base_delay_secs: float = 0.05
    max_delay_secs: float = 1.0
    deadline_secs: float = 2.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or min(self.base_delay_secs, self.max_delay_secs, self.deadline_secs) < 0:
            raise ValueError("max_attempts must be >= 1 and the delays >= 0")

    def pause_secs(self, failed_attempt: int, retry_after_secs: float | None, rng: random.Random) -> float:
        """The pause after attempt `failed_attempt` (1-based) failed."""
        ceiling = min(self.max_delay_secs, self.base_delay_secs * 2 ** (failed_attempt - 1))
        return max(rng.uniform(0, ceiling), retry_after_secs or 0.0)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())
