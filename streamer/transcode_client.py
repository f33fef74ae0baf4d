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
from typing import Any
from urllib.parse import urlsplit

import httpx

from .breaker import CircuitBreaker, Permit
from .errors import ERRORS_BY_CODE, FallbackFailed, ServiceUnavailable, TranscodeError
from .options import Filters, OutputFormat, TranscodeRequest
from .retry import RetryPolicy, parse_retry_after
from .stream import FfmpegBody, ServiceBody, StreamContext, TranscodeStream, discard, finishes_within

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "http://localhost:8090"
BASE_URL_ENV = "RUST_TRANSCODER_URL"
RETRYABLE_STATUSES = (502, 503, 504)
# Service answers that say the source, not the service, failed: they do not count
# against the breaker.
SOURCE_FAULT_CODES = ("SOURCE_UNREACHABLE", "TIMEOUT")
ERROR_BODY_LIMIT_BYTES = 64 * 1024
HEALTH_CONNECTIONS = 4
# The least time an attempt gets to connect and answer, even at the retry deadline.
MIN_ATTEMPT_SECS = 0.05


@dataclass(frozen=True)
class Timeouts:
    """How long the client waits for the service (seconds).

    The service sends its status line only with the first encoded chunk, which can take
    a while for a slow source. So the client does not give up after a fixed wait:
    after `liveness_check_after_secs` without an answer it asks /health (within
    `health_secs`); a service that answers that is working and gets up to
    `first_byte_secs`, a service that does not is hung and the call falls back. The
    fallback's ffmpeg also gets `first_byte_secs` for its first audio."""

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
        # Each open stream holds a connection: no limit on them, a few idle ones kept.
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(self.timeouts.read_idle_secs, connect=self.timeouts.connect_secs),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=HEALTH_CONNECTIONS * 5),
            trust_env=False,
        )
        # /health gets its own small pool, so that busy stream connections never make a
        # working service look silent.
        self._health_http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=self.timeouts.health_secs,
            limits=httpx.Limits(max_connections=HEALTH_CONNECTIONS),
            trust_env=False,
        )
        self._background: set[asyncio.Future[None]] = set()

    async def __aenter__(self) -> TranscodeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stops background checks and closes the connection pools."""
        for task in list(self._background):
            await discard(task)
        await self._http.aclose()
        await self._health_http.aclose()

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
        """Opens a stream (the service answered, or the fallback produced its first
        chunk); the caller must `aclose` it."""
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
        return TranscodeStream(self, request, ServiceBody(response, self), permit=permit, headers=response.headers)

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
            if not await finishes_within(sending, min(self.timeouts.liveness_check_after_secs, remaining)):
                if not await self.service_answers_health():
                    raise _Failure("the service accepts connections but does not answer (hung)", retryable=False)
                rest = self.timeouts.first_byte_secs - (loop.time() - sent_at)
                if not await finishes_within(sending, rest):
                    raise _Failure(f"no first byte within {self.timeouts.first_byte_secs:g} s", retryable=False)
            response = sending.result()
            handed_over = True
            return response
        finally:
            if not handed_over:
                await _discard(sending)

    async def service_answers_health(self) -> bool:
        """Whether GET /health gets any answer within `timeouts.health_secs` (True when
        the check's own pool is busy: no verdict is no evidence)."""
        try:
            await self._health_http.get("/health")
        except httpx.PoolTimeout:
            return True
        except httpx.HTTPError:
            return False
        return True

    def judge_break_later(self, permit: Permit) -> None:
        """Counts a broken stream against the breaker, in the background, unless the
        service still answers /health."""

        async def judge() -> None:
            if not await self.service_answers_health():
                self.breaker.failed(permit)

        task = asyncio.ensure_future(judge())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

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
            body = await FfmpegBody.start(self.ffmpeg, request, self.timeouts.first_byte_secs)
        except FallbackFailed as failed:
            if cause is not None:
                raise cause from failed
            raise
        return TranscodeStream(self, request, body, fallback_reason=reason)

    async def continue_on_fallback(self, request: TranscodeRequest, reason: str) -> FfmpegBody:
        """The ffmpeg body for the rest of a broken stream (logged at WARNING)."""
        if not self.fallback:
            raise ServiceUnavailable(reason)
        logger.warning(
            "the service stream broke (%s); continuing on ffmpeg from %.3f s of the source",
            reason,
            request.start_seconds,
        )
        return await FfmpegBody.start(self.ffmpeg, request, self.timeouts.first_byte_secs)


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


def _host(request: TranscodeRequest) -> str:
    """The source's host, for logs (URLs may carry tokens in their path or query)."""
    return urlsplit(request.source_url).hostname or "?"


__all__ = ["StreamContext", "Timeouts", "TranscodeClient", "TranscodeStream"]
