"""An open transcode: the bytes of the service's response or of the ffmpeg fallback,
passed on in whole units, with the failover from one to the other when the service's
stream breaks mid-way. Opened by `TranscodeClient`."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import httpx

from .breaker import Permit
from .errors import FallbackFailed
from .fallback import FfmpegProcess, ffmpeg_command
from .options import TranscodeRequest
from .output import OutputTracker, tracker_for

if TYPE_CHECKING:
    from .transcode_client import TranscodeClient

Backend = Literal["rust", "ffmpeg"]


class StreamBroken(Exception):
    """The service's body ended without its terminator (aborted) or went idle;
    `service_silent` when the service did not answer /health either."""

    def __init__(self, reason: str, *, service_silent: bool = False) -> None:
        super().__init__(reason)
        self.service_silent = service_silent


class StreamContext:
    """What `TranscodeClient.stream` returns: `async with` opens and closes the stream."""

    def __init__(self, client: TranscodeClient, request: TranscodeRequest) -> None:
        self._client = client
        self.request = request
        self._stream: TranscodeStream | None = None

    async def __aenter__(self) -> TranscodeStream:
        self._stream = await self._client.open(self.request)
        return self._stream

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._stream is not None:
            await self._stream.aclose()


class TranscodeStream:
    """An open transcode: iterate it for bytes.

    `backend` is "rust" or "ffmpeg" (it becomes "ffmpeg" when the service's stream
    breaks and the fallback takes over). `transcode_id`, `source_format`,
    `content_duration` and `start_offset` come from the service's headers (None on the
    fallback). Chunks are whole units of the format (sample frames, Ogg pages, ADTS
    frames). A stream that fails ends with an exception, never with a clean end, and a
    cancelled `__anext__` loses nothing: the next one goes on where it stopped.

    When the service's stream breaks, the fallback goes on from the listener's source
    position; when the service did not know the source's length (a live stream, where
    ffmpeg would have to wait out the position in real time to seek), from the live
    edge instead."""

    def __init__(
        self,
        client: TranscodeClient,
        request: TranscodeRequest,
        body: _Body,
        *,
        permit: Permit | None = None,
        headers: httpx.Headers | None = None,
        fallback_reason: str | None = None,
    ) -> None:
        self._client = client
        self.request = request
        self._body = body
        self._permit = permit
        self._output: OutputTracker = tracker_for(request)
        self.backend: Backend = "rust" if permit is not None else "ffmpeg"
        self.fallback_reason = fallback_reason
        headers = headers or httpx.Headers()
        self.transcode_id = headers.get("X-Transcode-Id")
        self.source_format = headers.get("X-Source-Format")
        self.content_duration = float_or_none(headers.get("X-Content-Duration"))
        self.start_offset = float_or_none(headers.get("X-Start-Offset"))
        self._queued = b""
        self._ended = False

    @property
    def output_seconds(self) -> float:
        """Seconds of audio handed out so far (exact for pcm, from the stream otherwise)."""
        return self._output.output_secs

    @property
    def source_position(self) -> float:
        """The source position (seconds) the audio handed out so far has reached."""
        return self.request.source_position(self.output_seconds)

    def __aiter__(self) -> TranscodeStream:
        return self

    async def __anext__(self) -> bytes:
        """The next whole units of output."""
        while True:
            if self._queued:
                chunk, self._queued = self._queued, b""
                return chunk
            if self._ended:
                raise StopAsyncIteration
            try:
                raw = await self._body.read()
            except StreamBroken as broken:
                self._queued = self._output.restart()
                self._ended = not await self._fail_over(broken)
                continue
            if not raw:
                self._queued, self._ended = self._output.flush(), True
            elif whole := self._output.feed(raw):
                return whole

    async def _fail_over(self, broken: StreamBroken) -> bool:
        """Continues on ffmpeg from where the listener is; False when nothing is left."""
        await self._body.aclose()
        self._judge_break(broken)
        rest = self.request.continued_after(self.output_seconds)
        if rest is None:
            return False
        if self.backend == "rust" and self.content_duration is None:
            rest = replace(rest, start_seconds=0.0)
        self._body = await self._client.continue_on_fallback(rest, str(broken))
        self.backend = "ffmpeg"
        self.fallback_reason = str(broken)
        return True

    def _judge_break(self, broken: StreamBroken) -> None:
        """Counts the break against the breaker unless the service still answers /health
        (checked in the background): the service also cuts a stream off when its source
        dies."""
        permit, self._permit = self._permit, None
        if permit is None:
            return
        if broken.service_silent:
            self._client.breaker.failed(permit)
        else:
            self._client.judge_break_later(permit)

    async def aclose(self) -> None:
        """Stops the stream: closes the service response or kills the ffmpeg."""
        await self._body.aclose()


class ServiceBody:
    """The service's streamed response body, watched: when no bytes come for
    `liveness_check_after_secs`, a service that does not answer /health either is taken
    for gone (a frozen process keeps its sockets open) instead of waiting out the read
    timeout. A read that is cancelled leaves its pending chunk for the next read."""

    def __init__(self, response: httpx.Response, client: TranscodeClient) -> None:
        self._response = response
        self._chunks = response.aiter_raw()
        self._client = client
        self._pending: asyncio.Future[bytes] | None = None
        self._closed = False

    async def read(self) -> bytes:
        """The next chunk; b"" at the clean end; raises StreamBroken."""
        if self._closed:
            raise StreamBroken("the service's response was closed")
        if self._pending is None:
            self._pending = asyncio.ensure_future(self._next_chunk())
        pending = self._pending
        while not await finishes_within(pending, self._client.timeouts.liveness_check_after_secs):
            if not await self._answers_health_unless_done(pending):
                raise StreamBroken("the service stopped sending and does not answer /health", service_silent=True)
        self._pending = None
        return pending.result()

    async def _answers_health_unless_done(self, pending: asyncio.Future[bytes]) -> bool:
        """Asks /health; True as soon as the pending chunk comes in meanwhile."""
        health = asyncio.ensure_future(self._client.service_answers_health())
        try:
            await asyncio.wait({pending, health}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not health.done():
                health.cancel()
        return pending.done() or health.result()

    async def _next_chunk(self) -> bytes:
        try:
            return await anext(self._chunks)
        except StopAsyncIteration:
            return b""
        except httpx.HTTPError as error:
            raise StreamBroken(repr(error)) from error

    async def aclose(self) -> None:
        """Closes the response (and its connection)."""
        self._closed = True
        if self._pending is not None:
            await discard(self._pending)
            self._pending = None
        await self._response.aclose()


class FfmpegBody:
    """The fallback's output, with its first chunk already read (so a failure to start
    shows at once)."""

    def __init__(self, process: FfmpegProcess, first: bytes) -> None:
        self._process = process
        self._pending = first

    @classmethod
    async def start(cls, ffmpeg: str, request: TranscodeRequest, first_byte_secs: float) -> FfmpegBody:
        """Starts ffmpeg for `request` and reads its first chunk, within `first_byte_secs`."""
        process = await FfmpegProcess.start(ffmpeg_command(ffmpeg, request))
        try:
            first = await asyncio.wait_for(process.read(), first_byte_secs)
        except TimeoutError as error:
            await process.aclose()
            raise FallbackFailed(
                f"ffmpeg produced no audio within {first_byte_secs:g} s", stderr_tail=process.stderr_tail
            ) from error
        except BaseException:
            await process.aclose()
            raise
        return cls(process, first)

    async def read(self) -> bytes:
        """The next chunk; b"" at a clean end; raises FallbackFailed."""
        if self._pending:
            chunk, self._pending = self._pending, b""
            return chunk
        return await self._process.read()

    async def aclose(self) -> None:
        """Kills and reaps ffmpeg."""
        await self._process.aclose()


_Body = ServiceBody | FfmpegBody


async def discard(task: asyncio.Future[Any]) -> None:
    """Cancels `task` if it still runs, waits for it, and retrieves its outcome."""
    if not task.done():
        task.cancel()
        await asyncio.wait({task})
    if not task.cancelled():
        task.exception()


async def finishes_within(task: asyncio.Future[Any], timeout_secs: float) -> bool:
    """Whether `task` is done within `timeout_secs` (it is not cancelled)."""
    done, _ = await asyncio.wait({task}, timeout=max(0.0, timeout_secs))
    return bool(done)


def float_or_none(value: str | None) -> float | None:
    """A header value as a number, None when absent or malformed."""
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
