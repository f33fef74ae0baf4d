"""The circuit breaker: its state machine on a fake clock, and the client's use of it
against the real service behind a loopback proxy that counts every connection."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from conftest import AsyncListener, ServiceProcess
from media import Origin

from streamer import TranscodeClient
from streamer.breaker import BreakerState, CircuitBreaker
from streamer.retry import RetryPolicy


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_breaker_opens_after_the_threshold_of_consecutive_failures() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout_secs=30, clock=clock)
    breaker.failed(breaker.acquire())
    breaker.failed(breaker.acquire())
    breaker.succeeded(breaker.acquire())
    for _ in range(2):
        breaker.failed(breaker.acquire())
    assert breaker.state is BreakerState.CLOSED
    breaker.failed(breaker.acquire())
    assert breaker.state is BreakerState.OPEN
    assert breaker.acquire() is None
    clock.now += 29.9
    assert breaker.acquire() is None


def test_after_the_reset_timeout_exactly_one_probe_goes_through() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout_secs=30, clock=clock)
    breaker.failed(breaker.acquire())
    clock.now += 30
    assert breaker.state is BreakerState.HALF_OPEN
    probe = breaker.acquire()
    assert probe is not None and probe.probe
    assert [breaker.acquire() for _ in range(10)] == [None] * 10
    breaker.succeeded(probe)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.acquire() is not None


def test_a_failed_probe_opens_the_breaker_for_another_timeout() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=2, reset_timeout_secs=30, clock=clock)
    breaker.failed(breaker.acquire())
    breaker.failed(breaker.acquire())
    clock.now += 31
    breaker.failed(breaker.acquire())
    assert breaker.state is BreakerState.OPEN
    clock.now += 29
    assert breaker.acquire() is None
    clock.now += 1
    assert breaker.acquire() is not None


def test_a_cancelled_probe_is_no_failure_and_lets_the_next_call_probe() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout_secs=30, clock=clock)
    breaker.failed(breaker.acquire())
    clock.now += 30
    probe = breaker.acquire()
    breaker.released(probe)
    assert breaker.consecutive_failures == 1
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.acquire().probe


def test_a_success_while_a_probe_runs_closes_the_breaker_and_the_stale_probe_changes_nothing() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout_secs=30, clock=clock)
    earlier = breaker.acquire()
    breaker.failed(breaker.acquire())
    clock.now += 30
    stale_probe = breaker.acquire()
    breaker.succeeded(earlier)  # a call from before the breaker opened comes back fine
    assert breaker.state is BreakerState.CLOSED
    breaker.failed(breaker.acquire())
    assert breaker.state is BreakerState.OPEN, "opened again for a full reset timeout"
    breaker.released(stale_probe)
    assert breaker.state is BreakerState.OPEN
    clock.now += 30
    assert breaker.acquire().probe


class CountingProxy(AsyncListener):
    """A loopback TCP proxy in front of the service. `refusing` makes it accept and
    close every connection at once (a broken service); it counts every connection and
    every transcode request it sees."""

    def __init__(self, target_port: int) -> None:
        super().__init__()
        self.target_port = target_port
        self.refusing = True
        self.connections = 0
        self.transcode_requests = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.refusing:
            return
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers.add(upstream_writer)
        await asyncio.gather(
            self._pipe(reader, upstream_writer, count=True), self._pipe(upstream_reader, writer, count=False)
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, count: bool) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                if count:
                    self.transcode_requests += data.count(b"POST /transcode ")
                writer.write(data)
                await writer.drain()
        writer.close()


@pytest.fixture
async def proxy(service: ServiceProcess) -> AsyncIterator[CountingProxy]:
    counting = CountingProxy(int(service.url.rsplit(":", 1)[1]))
    await counting.start()
    yield counting
    await counting.stop()


async def backend_of_a_stream(client: TranscodeClient, url: str) -> str:
    async with client.stream(url, output_format="pcm", duration_seconds=0.5) as stream:
        async for _ in stream:
            pass
    return stream.backend


async def test_the_client_breaker_opens_skips_the_network_probes_once_and_closes(
    proxy: CountingProxy, origin: Origin
) -> None:
    url = origin.url("tone440_4s.wav")
    breaker = CircuitBreaker(failure_threshold=5, reset_timeout_secs=1.0)
    async with TranscodeClient(proxy.url, breaker=breaker, retry=RetryPolicy(max_attempts=2)) as client:
        for call in range(5):
            assert client.breaker_state == "closed", call
            assert await backend_of_a_stream(client, url) == "ffmpeg"
        assert client.breaker_state == "open"
        assert proxy.connections == 10  # five calls of two attempts

        assert await backend_of_a_stream(client, url) == "ffmpeg"
        assert proxy.connections == 10, "an open breaker touches no network"

        proxy.refusing = False
        await asyncio.sleep(1.0)
        assert client.breaker_state == "half_open"
        backends = await asyncio.gather(*(backend_of_a_stream(client, url) for _ in range(4)))
        assert sorted(backends) == ["ffmpeg", "ffmpeg", "ffmpeg", "rust"]
        assert proxy.transcode_requests == 1, "exactly one probe reaches the service"
        assert client.breaker_state == "closed"

        assert await backend_of_a_stream(client, url) == "rust"
        assert proxy.transcode_requests == 2


async def test_a_cancelled_call_is_not_a_failure(hung_url: str, origin: Origin) -> None:
    async with TranscodeClient(hung_url, breaker=CircuitBreaker(failure_threshold=1)) as client:
        call = asyncio.ensure_future(backend_of_a_stream(client, origin.url("tone440_4s.wav")))
        await asyncio.sleep(0.3)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert client.breaker_state == "closed"
        assert client.breaker.consecutive_failures == 0
