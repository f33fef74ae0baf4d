"""Real-time framing and pacing of PCM for a voice chat, and the source position it
reaches: exact 10 ms frames (`Framer`), an absolute schedule (`Pacer`) on a clock that
tests can replace (`Clock`), and source seconds played (`Position`). Knows no network
and no Telegram."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

log = logging.getLogger(__name__)

SAMPLE_RATE_HZ = 48_000
CHANNELS = 2
FRAME_SECS = 0.01
FRAME_BYTES = int(SAMPLE_RATE_HZ * FRAME_SECS) * CHANNELS * 2
"""10 ms of s16le stereo at 48 kHz: 480 samples x 2 channels x 2 bytes = 1920."""
MAX_LAG_SECS = 0.2


class Framer:
    """Cuts a byte stream into frames of exactly `frame_bytes` (10 ms by default).

    Chunks may have any length; bytes short of a whole frame wait for the next chunk.
    At the end of the stream, `flush()` pads the last partial frame with silence (zero
    bytes) to the full length, so a sink only ever sees whole frames."""

    def __init__(self, frame_bytes: int = FRAME_BYTES) -> None:
        self.frame_bytes = frame_bytes
        self._pending = bytearray()

    @property
    def pending_bytes(self) -> int:
        """Bytes waiting for the rest of their frame."""
        return len(self._pending)

    def push(self, chunk: bytes) -> list[bytes]:
        """The whole frames completed by `chunk` (possibly none)."""
        self._pending += chunk
        whole = len(self._pending) - len(self._pending) % self.frame_bytes
        frames = [bytes(self._pending[at : at + self.frame_bytes]) for at in range(0, whole, self.frame_bytes)]
        del self._pending[:whole]
        return frames

    def flush(self) -> bytes:
        """The pending bytes padded with silence to one frame; b"" when none are pending."""
        if not self._pending:
            return b""
        frame = bytes(self._pending).ljust(self.frame_bytes, b"\0")
        self._pending.clear()
        return frame


class Clock(Protocol):
    """The time source of the pacer (a fake one in tests)."""

    def now(self) -> float:
        """Seconds on a monotonic scale."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Waits `seconds` (or a little more)."""
        ...


class MonotonicClock:
    """The real clock: `time.monotonic` and `asyncio.sleep`."""

    def now(self) -> float:
        """`time.monotonic()`."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """`asyncio.sleep(seconds)`."""
        await asyncio.sleep(seconds)


class Pacer:
    """Releases frames on an absolute schedule: frame k is due at t0 + k * frame_secs.

    Each wait sleeps until the next deadline counted from the anchor t0, never for a
    fixed interval after the previous frame, so oversleeping and the time a sink takes
    do not add up into drift. A frame late by up to `max_lag_secs` goes out at once and
    the following frames catch up with the schedule. When the pacer has fallen further
    behind (a network stall, a sink that blocked), it re-anchors the schedule on the
    present instead of bursting the backlog, and counts that in `reanchors`."""

    def __init__(self, clock: Clock, frame_secs: float = FRAME_SECS, max_lag_secs: float = MAX_LAG_SECS) -> None:
        self.frame_secs = frame_secs
        self.max_lag_secs = max_lag_secs
        self.reanchors = 0
        self._clock = clock
        self._anchor: float | None = None
        self._frames = 0

    async def wait(self) -> float:
        """Waits until the next frame is due and returns when it was due (the first call
        anchors the schedule on the present)."""
        now = self._clock.now()
        if self._anchor is None:
            self._anchor = now
        due = self._anchor + self._frames * self.frame_secs
        lag = now - due
        if lag > self.max_lag_secs:
            log.info("pacing fell %.0f ms behind: schedule re-anchored", lag * 1000)
            self.reanchors += 1
            self._anchor, self._frames, due = now, 0, now
        elif lag < 0:
            await self._clock.sleep(-lag)
        self._frames += 1
        return due


class Position:
    """Where playback is in the source, in seconds.

    Each played frame moves it by the frame's audio duration times the tempo (speed x
    rate) of the stream that frame came from, so a speed change counts from the next
    frame on; `output_secs` is the audio played so far."""

    def __init__(self, start_seconds: float = 0.0) -> None:
        self.seconds = start_seconds
        self.output_secs = 0.0

    def advance(self, audio_secs: float, tempo: float) -> None:
        """Counts `audio_secs` of output played at `tempo`."""
        self.seconds += audio_secs * tempo
        self.output_secs += audio_secs
