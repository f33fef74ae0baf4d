"""The transcode client: streams a source through the rust-transcoder service, retries
before the first byte, keeps a circuit breaker, and falls back to a local ffmpeg when
the service cannot serve, including mid-stream from the point the listener reached."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from .breaker import CircuitBreaker, Permit
from .errors import ERRORS_BY_CODE, FallbackFailed, ServiceUnavailable, TranscodeError
from .fallback import FfmpegProcess, ffmpeg_command
from .options import Filters, OutputFormat, TranscodeRequest
from .output import OutputTracker, tracker_for
from .retry import RetryPolicy, parse_retry_after

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "http://localhost:8090"
BASE_URL_ENV = "RUST_TRANSCODER_URL"
RETRYABLE_STATUSES = (502, 503, 504)
# Service answers that say the source, not the service, failed: they do not count
# against the breaker.
SOURCE_FAULT_CODES = ("SOURCE_UNREACHABLE", "TIMEOUT")
ERROR_BODY_LIMIT_BYTES = 64 * 1024
# The least time an attempt gets to connect and answer, even at the retry deadline.
MIN_ATTEMPT_SECS = 0.05

Backend = Literal["rust", "ffmpeg"]


@dataclass(frozen=True)
class Timeouts:
    """How long the client waits for the service (seconds).

    The service sends its status line only with the first encoded chunk, which can take
    a while for a slow source. So the client does not give up after a fixed wait:
    after `liveness_check_after_secs` without an answer it asks /health (within
    `health_secs`); a service that answers that is working and gets up to
    `first_byte_secs`, a service that does not is hung and the call falls back."""

    connect_secs: float = 1.0
    liveness_check_after_secs: float = 1.0
    health_secs: float = 0.5
    first_byte_secs: float = 15.0
    read_idle_secs: float = 30.0


class _Failure(Exception):
    """An attempt on the service that failed (the call may be retried or fall back)."""

    def __init__(
        self,
        reason: str,
        *,
        retryable: bool,
        service_fault: bool = True,
        error: TranscodeError | None = None,
        retry_after_secs: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.service_fault = service_fault
        self.error = error
        self.retry_after_secs = retry_after_secs


class _StreamBroken(Exception):
    """The service's body ended without its terminator (aborted) or went idle;
    `service_silent` when the service did not answer /health either."""

    def __init__(self, reason: str, *, service_silent: bool = False) -> None:
        super().__init__(reason)
        self.service_silent = service_silent


class TranscodeClient:
    """Async client of the rust-transcoder service.

    `base_url` defaults to $RUST_TRANSCODER_URL, then http://localhost:8090. Use it as
    an async context manager (or call `aclose`). Service errors for a bad request
    (4xx) are raised as typed `TranscodeError`s and never retried nor sent to the
    fallback; a service that is down, hung, failing or full gets retries within
    `retry`, then the ffmpeg fallback (unless `fallback=False`)."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_token: str | None = None,
        retry: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        timeouts: Timeouts | None = None,
        fallback: bool = True,
        ffmpeg: str = "ffmpeg",
        rng: random.Random | None = None,
    ) -> None:
        self.base_url = (base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
        self.retry = retry or RetryPolicy()
        self.breaker = breaker or CircuitBreaker()
        self.timeouts = timeouts or Timeouts()
        self.fallback = fallback
        self.ffmpeg = ffmpeg
        self._rng = rng or random.Random()
        headers = {"Authorization": f"Bearer {api_token}"} if api_token else {}
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(self.timeouts.read_idle_secs, connect=self.timeouts.connect_secs),
            trust_env=False,
        )

    async def __aenter__(self) -> TranscodeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Closes the connection pool."""
        await self._http.aclose()

    @property
    def breaker_state(self) -> str:
        """ "closed", "open" or "half_open"."""
        return self.breaker.state.value

    def stream(
        self,
        source_url: str,
        *,
        output_format: OutputFormat = "opus",
        sample_rate: int = 48_000,
        channels: int = 2,
        bitrate_kbps: int = 128,
        start_seconds: float = 0.0,
        duration_seconds: float | None = None,
        filters: Filters | dict[str, Any] | None = None,
    ) -> StreamContext:
        """`async with client.stream(url, ...) as s:` then `async for chunk in s`.

        The arguments mirror the POST /transcode body and are checked here (raising
        InvalidRequest, FilterInvalid or UrlForbidden)."""
        request = TranscodeRequest(
            source_url,
            output_format=output_format,
            sample_rate=sample_rate,
            channels=channels,
            bitrate_kbps=bitrate_kbps,
            start_seconds=start_seconds,
            duration_seconds=duration_seconds,
            filters=Filters.of(filters),
        )
        return StreamContext(self, request)

    async def open(self, request: TranscodeRequest) -> TranscodeStream:
        """Opens a stream (its first chunk is ready); the caller must `aclose` it."""
        permit = self.breaker.acquire()
        if permit is None:
            return await self._fall_back(request, "the circuit breaker is open", None)
        try:
            response = await self._open_on_service(request, probe=permit.probe)
        except TranscodeError:
            self.breaker.succeeded(permit)
            raise
        except _Failure as failure:
            self._settle_failure(permit, failure)
            return await self._fall_back(request, failure.reason, failure.error)
        except BaseException:
            self.breaker.released(permit)
            raise
        self.breaker.succeeded(permit)
        return TranscodeStream(self, request, _ServiceBody(response, self), permit=permit, headers=response.headers)

    def _settle_failure(self, permit: Permit, failure: _Failure) -> None:
        if failure.service_fault:
            self.breaker.failed(permit)
        else:
            self.breaker.succeeded(permit)

    async def _open_on_service(self, request: TranscodeRequest, *, probe: bool) -> httpx.Response:
        """The service's 200 response, after retries; raises _Failure or a 4xx error."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry.deadline_secs
        attempts = 1 if probe else self.retry.max_attempts
        attempt = 1
        while True:
            try:
                return await self._attempt(request, deadline)
            except _Failure as failure:
                pause = self.retry.pause_secs(attempt, failure.retry_after_secs, self._rng)
                out_of_budget = loop.time() + pause > deadline
                if not failure.retryable or attempt >= attempts or out_of_budget:
                    raise
                logger.info("service attempt %d failed (%s); retrying in %.3f s", attempt, failure.reason, pause)
            await asyncio.sleep(pause)
            attempt += 1

    async def _attempt(self, request: TranscodeRequest, deadline: float) -> httpx.Response:
        try:
            response = await self._send_watching_liveness(request, deadline)
        except (httpx.ConnectError, httpx.ConnectTimeout) as error:
            raise _Failure(f"cannot connect to the service at {self.base_url}: {error!r}", retryable=True) from error
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as error:
            raise _Failure(f"the service closed the connection before answering: {error!r}", retryable=True) from error
        except httpx.HTTPError as error:
            raise _Failure(f"the request to the service failed: {error!r}", retryable=False) from error
        if response.status_code == 200:
            return response
        raise await self._refusal(response)

    async def _send_watching_liveness(self, request: TranscodeRequest, deadline: float) -> httpx.Response:
        """Sends the request; gives up early when the service does not even answer /health.

        Connecting and waiting before the /health check are bounded by what is left of the
        call's retry deadline; a service that answers /health gets `first_byte_secs`."""
        loop = asyncio.get_running_loop()
        sent_at = loop.time()
        remaining = max(MIN_ATTEMPT_SECS, deadline - sent_at)
        timeout = httpx.Timeout(self.timeouts.read_idle_secs, connect=min(self.timeouts.connect_secs, remaining))
        outgoing = self._http.build_request("POST", "/transcode", json=request.to_json(), timeout=timeout)
        sending = asyncio.ensure_future(self._http.send(outgoing, stream=True))
        handed_over = False
        try:
            if not await _finishes_within(sending, min(self.timeouts.liveness_check_after_secs, remaining)):
                if not await self._service_answers_health():
                    raise _Failure("the service accepts connections but does not answer (hung)", retryable=False)
                rest = self.timeouts.first_byte_secs - (loop.time() - sent_at)
                if not await _finishes_within(sending, rest):
                    raise _Failure(f"no first byte within {self.timeouts.first_byte_secs:g} s", retryable=False)
            response = sending.result()
            handed_over = True
            return response
        finally:
            if not handed_over:
                await _discard(sending)

    async def _service_answers_health(self) -> bool:
        try:
            await self._http.get("/health", timeout=self.timeouts.health_secs)
        except httpx.HTTPError:
            return False
        return True

    async def _refusal(self, response: httpx.Response) -> TranscodeError | _Failure:
        """The typed error for a non-200 answer (raised as is for 4xx), or a _Failure."""
        try:
            body = await _read_bounded(response)
        finally:
            await response.aclose()
        error, from_service = _error_from(response.status_code, body)
        if 400 <= response.status_code < 500:
            return error
        return _Failure(
            str(error),
            retryable=response.status_code in RETRYABLE_STATUSES,
            service_fault=not (from_service and error.code in SOURCE_FAULT_CODES),
            error=error,
            retry_after_secs=parse_retry_after(response.headers.get("Retry-After")),
        )

    async def _fall_back(self, request: TranscodeRequest, reason: str, cause: TranscodeError | None) -> TranscodeStream:
        """A stream from the ffmpeg fallback, or the error when it is off or fails at once."""
        if not self.fallback:
            raise ServiceUnavailable(reason) from cause
        logger.warning("falling back to ffmpeg for a source on %s: %s", _host(request), reason)
        try:
            body = await _FfmpegBody.start(self.ffmpeg, request)
        except FallbackFailed as failed:
            if cause is not None:
                raise cause from failed
            raise
        return TranscodeStream(self, request, body, fallback_reason=reason)

    async def _continue_on_fallback(self, request: TranscodeRequest, reason: str) -> _FfmpegBody:
        if not self.fallback:
            raise ServiceUnavailable(reason)
        logger.warning(
            "the service stream broke (%s); continuing on ffmpeg from %.3f s of the source",
            reason,
            request.start_seconds,
        )
        return await _FfmpegBody.start(self.ffmpeg, request)


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
        self.content_duration = _float_or_none(headers.get("X-Content-Duration"))
        self.start_offset = _float_or_none(headers.get("X-Start-Offset"))

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
            except _StreamBroken as broken:
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

    async def _fail_over(self, broken: _StreamBroken) -> bool:
        """Continues on ffmpeg from where the listener is; False when nothing is left."""
        await self._body.aclose()
        rest = self.request.continued_after(self.output_seconds)
        try:
            if rest is None:
                return False
            self._body = await self._client._continue_on_fallback(rest, str(broken))
        finally:
            await self._judge_break(broken)
        self.backend = "ffmpeg"
        self.fallback_reason = str(broken)
        return True

    async def _judge_break(self, broken: _StreamBroken) -> None:
        """Counts the break against the breaker unless the service still answers /health:
        the service also cuts a stream off when its source dies."""
        permit, self._permit = self._permit, None
        if permit is None:
            return
        if broken.service_silent or not await self._client._service_answers_health():
            self._client.breaker.failed(permit)

    async def aclose(self) -> None:
        """Stops the stream: closes the service response or kills the ffmpeg."""
        await self._body.aclose()


class _ServiceBody:
    """The service's streamed response body, watched: when no bytes come for
    `check_after_secs`, a service that does not answer /health either is taken for gone
    (a frozen process keeps its sockets open) instead of waiting out the read timeout."""

    def __init__(self, response: httpx.Response, client: TranscodeClient) -> None:
        self._response = response
        self._chunks = response.aiter_raw()
        self._client = client

    async def read(self) -> bytes:
        next_chunk = asyncio.ensure_future(self._next_chunk())
        try:
            while not await _finishes_within(next_chunk, self._client.timeouts.liveness_check_after_secs):
                if not await self._client._service_answers_health():
                    raise _StreamBroken("the service stopped sending and does not answer /health", service_silent=True)
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
            raise _StreamBroken(repr(error)) from error

    async def aclose(self) -> None:
        await self._response.aclose()


class _FfmpegBody:
    """The fallback's output, with its first chunk already read (so a failure to start
    shows at once)."""

    def __init__(self, process: FfmpegProcess, first: bytes) -> None:
        self._process = process
        self._pending = first

    @classmethod
    async def start(cls, ffmpeg: str, request: TranscodeRequest) -> _FfmpegBody:
        process = await FfmpegProcess.start(ffmpeg_command(ffmpeg, request))
        try:
            first = await process.read()
        except BaseException:
            await process.aclose()
            raise
        return cls(process, first)

    async def read(self) -> bytes:
        if self._pending:
            chunk, self._pending = self._pending, b""
            return chunk
        return await self._process.read()

    async def aclose(self) -> None:
        await self._process.aclose()


_Body = _ServiceBody | _FfmpegBody


async def _finishes_within(task: asyncio.Future[Any], timeout_secs: float) -> bool:
    done, _ = await asyncio.wait({task}, timeout=max(0.0, timeout_secs))
    return bool(done)


async def _discard(sending: asyncio.Future[httpx.Response]) -> None:
    """Cancels a request that is not handed over, closing its response if one came."""
    if not sending.done():
        sending.cancel()
        await asyncio.wait({sending})
    if not sending.cancelled() and sending.exception() is None:
        await sending.result().aclose()


async def _read_bounded(response: httpx.Response) -> bytes:
    """The start of an error body; what arrived when the body is cut off."""
    body = b""
    with contextlib.suppress(httpx.HTTPError):
        async for chunk in response.aiter_raw():
            body += chunk
            if len(body) >= ERROR_BODY_LIMIT_BYTES:
                break
    return body


def _error_from(status: int, body: bytes) -> tuple[TranscodeError, bool]:
    """The typed error for a service answer, and whether it was the service's own JSON."""
    try:
        detail = json.loads(body)["error"]
        code, message = detail["code"], detail["message"]
        transcode_id = detail.get("transcode_id")
    except (ValueError, KeyError, TypeError):
        text = body[:200].decode(errors="replace").strip()
        return TranscodeError(f"HTTP {status} from the service: {text}", status=status), False
    error_type = ERRORS_BY_CODE.get(code, TranscodeError)
    error = error_type(message, status=status, transcode_id=transcode_id)
    if error_type is TranscodeError:
        error.code = code
    return error, True


def _float_or_none(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _host(request: TranscodeRequest) -> str:
    """The source's host, for logs (URLs may carry tokens in their path or query)."""
    return urlsplit(request.source_url).hostname or "?"


__all__ = ["StreamContext", "Timeouts", "TranscodeClient", "TranscodeStream"]
