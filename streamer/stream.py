"""An open transcode: the bytes of the service's response or of the ffmpeg fallback,
passed on in whole units, with the failover from one to the other when the service's
stream breaks mid-way. Opened by `TranscodeClient`."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import httpx

from .breaker import Permit
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
    frames). A stream that fails ends with an exception, never with a clean end."""

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

    @property
    def output_seconds(self) -> float:
        """Seconds of audio handed out so far (exact for pcm, from the stream otherwise)."""
        return self._output.output_secs

    @property
    def source_position(self) -> float:
        """The source position (seconds) the audio handed out so far has reached."""
        return self.request.source_position(self.output_seconds)

    def __aiter__(self) -> Any:
        return self._chunks()

    async def _chunks(self) -> Any:
        while True:
            try:
                raw = await self._body.read()
            except StreamBroken as broken:
                if closing := self._output.restart():
                    yield closing
                if not await self._fail_over(broken):
                    return
                continue
            if not raw:
                if tail := self._output.flush():
                    yield tail
                return
            if whole := self._output.feed(raw):
                yield whole

    async def _fail_over(self, broken: StreamBroken) -> bool:
        """Continues on ffmpeg from where the listener is; False when nothing is left."""
        await self._body.aclose()
        rest = self.request.continued_after(self.output_seconds)
        try:
            if rest is None:
                return False
            self._body = await self._client.continue_on_fallback(rest, str(broken))
        finally:
            await self._judge_break(broken)
        self.backend = "ffmpeg"
        self.fallback_reason = str(broken)
        return True

    async def _judge_break(self, broken: StreamBroken) -> None:
        """Counts the break against the breaker unless the service still answers /health:
        the service also cuts a stream off when its source dies."""
        permit, self._permit = self._permit, None
        if permit is None:
            return
        if broken.service_silent or not await self._client.service_answers_health():
            self._client.breaker.failed(permit)

    async def aclose(self) -> None:
        """Stops the stream: closes the service response or kills the ffmpeg."""
        await self._body.aclose()


class ServiceBody:
    """The service's streamed response body, watched: when no bytes come for
    `liveness_check_after_secs`, a service that does not answer /health either is taken for gone
    (a frozen process keeps its sockets open) instead of waiting out the read timeout."""

    def __init__(self, response: httpx.Response, client: TranscodeClient) -> None:
        self._response = response
        self._chunks = response.aiter_raw()
        self._client = client

    async def read(self) -> bytes:
        """The next chunk; b"" at the clean end; raises StreamBroken."""
        next_chunk = asyncio.ensure_future(self._next_chunk())
        try:
            while not await finishes_within(next_chunk, self._client.timeouts.liveness_check_after_secs):
                if not await self._client.service_answers_health():
                    raise StreamBroken("the service stopped sending and does not answer /health", service_silent=True)
            return next_chunk.result()
        finally:
            if not next_chunk.done():
                next_chunk.cancel()
                await asyncio.wait({next_chunk})

    async def _next_chunk(self) -> bytes:
        try:
            return await anext(self._chunks)
        except StopAsyncIteration:
            return b""
        except httpx.HTTPError as error:
            raise StreamBroken(repr(error)) from error

    async def aclose(self) -> None:
        """Closes the response (and its connection)."""
        await self._response.aclose()


class FfmpegBody:
    """The fallback's output, with its first chunk already read (so a failure to start
    shows at once)."""

    def __init__(self, process: FfmpegProcess, first: bytes) -> None:
        self._process = process
        self._pending = first

    @classmethod
    async def start(cls, ffmpeg: str, request: TranscodeRequest) -> FfmpegBody:
        """Starts ffmpeg for `request` and reads its first chunk."""
        process = await FfmpegProcess.start(ffmpeg_command(ffmpeg, request))
        try:
            first = await process.read()
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
