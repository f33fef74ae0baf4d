"""When the service cannot serve: down, hung, full, or dying mid-stream. The fallback
must start within the targets and the listener must hear the whole source."""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from conftest import AsyncListener, ServiceProcess, ffmpeg_children
from media import Origin, decode, duration_secs, tone_track

from streamer import FallbackFailed, Filters, ServiceUnavailable, Timeouts, TranscodeClient
from streamer.retry import RetryPolicy

PCM_BYTES_PER_SEC = 48_000 * 2 * 2


async def first_chunk_after(client: TranscodeClient, url: str) -> tuple[float, str]:
    """Seconds from the call to the first chunk, and the backend that sent it."""
    started = time.monotonic()
    async with client.stream(url, output_format="pcm") as stream:
        async for chunk in stream:
            assert chunk
            return time.monotonic() - started, stream.backend
    raise AssertionError("the stream was empty")


def fallback_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "falling back" in r.getMessage()]


@pytest.mark.parametrize(
    ("service_fixture", "within_secs", "reason"),
    [("dead_url", 0.5, "cannot connect to the service"), ("hung_url", 3.0, "hung")],
    ids=["down", "hung"],
)
async def test_a_service_down_or_hung_falls_back_in_time(
    request: pytest.FixtureRequest,
    origin: Origin,
    caplog: pytest.LogCaptureFixture,
    service_fixture: str,
    within_secs: float,
    reason: str,
) -> None:
    async with TranscodeClient(request.getfixturevalue(service_fixture)) as client:
        seconds, backend = await first_chunk_after(client, origin.url("tone440_4s.wav"))
    assert backend == "ffmpeg"
    assert seconds < within_secs
    [warning] = fallback_warnings(caplog)
    assert reason in warning


async def test_a_service_waiting_for_a_slow_source_is_not_taken_for_hung(
    service: ServiceProcess, origin: Origin, caplog: pytest.LogCaptureFixture
) -> None:
    async with TranscodeClient(service.url) as client:
        seconds, backend = await first_chunk_after(client, origin.url("tone440_4s.wav", delay_secs=1.8))
    assert backend == "rust"
    assert seconds >= 1.8
    assert not fallback_warnings(caplog)


async def test_a_full_service_is_retried_after_its_retry_after_then_falls_back(
    start_service, origin: Origin, caplog: pytest.LogCaptureFixture
) -> None:
    service: ServiceProcess = start_service(TRANSCODER_MAX_STREAMS="1")
    capacity_errors = 'transcode_errors_total{code="CAPACITY_EXCEEDED"}'
    async with httpx.AsyncClient(base_url=service.url, timeout=10) as holder:
        body = {"source_url": origin.url("tone440_20s.wav"), "output_format": "pcm"}
        async with holder.stream("POST", "/transcode", json=body) as held:
            assert held.status_code == 200
            before = service.metric(capacity_errors)
            started = time.monotonic()
            async with TranscodeClient(service.url) as client:
                seconds, backend = await first_chunk_after(client, origin.url("tone440_4s.wav"))
    # Retry-After is 1 s: one retry fits the 2 s budget, a second one would not.
    assert service.metric(capacity_errors) - before == 2
    assert backend == "ffmpeg"
    assert time.monotonic() - started >= 1.0 and seconds < 2.5
    [warning] = fallback_warnings(caplog)
    assert "CAPACITY_EXCEEDED" in warning


async def test_without_the_fallback_an_unavailable_service_is_an_error(dead_url: str, origin: Origin) -> None:
    async with TranscodeClient(dead_url, fallback=False, retry=RetryPolicy(max_attempts=2)) as client:
        with pytest.raises(ServiceUnavailable, match="cannot connect"):
            await first_chunk_after(client, origin.url("tone440_4s.wav"))


async def play_until_killed(
    client: TranscodeClient, service: ServiceProcess, url: str, kill_after_secs: float, **options: object
) -> tuple[bytes, dict[str, int]]:
    """Reads a pcm stream, kills the service once `kill_after_secs` of audio arrived, and
    reads on to the end. Returns the audio and the bytes per backend."""
    data = b""
    bytes_by_backend = {"rust": 0, "ffmpeg": 0}
    async with client.stream(url, output_format="pcm", **options) as stream:
        async for chunk in stream:
            data += chunk
            bytes_by_backend[stream.backend] += len(chunk)
            if service.process.poll() is None and len(data) >= kill_after_secs * PCM_BYTES_PER_SEC:
                service.kill()
    return data, bytes_by_backend


async def test_a_service_killed_mid_stream_is_continued_by_ffmpeg_from_the_same_position(
    start_service, origin: Origin, caplog: pytest.LogCaptureFixture
) -> None:
    # The origin sends 8x faster than real time, so the service is still running when
    # the listener has heard three seconds.
    dripped = origin.url("steps_20s.wav", rate=8 * PCM_BYTES_PER_SEC)
    filters = Filters(speed=1.25)
    service: ServiceProcess = start_service()
    async with TranscodeClient(service.url) as client:
        unbroken = b""
        async with client.stream(origin.url("steps_20s.wav"), output_format="pcm", filters=filters) as stream:
            async for chunk in stream:
                unbroken += chunk
        broken, bytes_by_backend = await play_until_killed(client, service, dripped, 3.0, filters=filters)

    rust_secs = bytes_by_backend["rust"] / PCM_BYTES_PER_SEC
    assert 3.0 <= rust_secs < 10.0, "the service was killed mid-stream"
    assert bytes_by_backend["ffmpeg"] > 0
    assert len(broken) % 4 == 0
    whole, cut = decode(unbroken, "pcm"), decode(broken, "pcm")
    assert duration_secs(whole) == pytest.approx(20 / 1.25, abs=0.01)
    assert abs(duration_secs(cut) - duration_secs(whole)) < 0.1
    # The tone steps every 1.6 s of output: the same tone at the same time in both runs
    # means the fallback went on from the right source position (a window that holds a
    # step may differ).
    differing = [
        index
        for index, (heard, expected) in enumerate(zip(tone_track(cut), tone_track(whole), strict=False))
        if abs(heard - expected) > 0.03 * expected
    ]
    steps = 9
    assert len(differing) <= steps, differing
    assert client.breaker.consecutive_failures == 1
    assert any("continuing on ffmpeg" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


@pytest.mark.parametrize("output_format", ["opus", "aac"])
async def test_opus_and_aac_broken_mid_stream_go_on_from_about_the_same_position(
    start_service, origin: Origin, output_format: str, tmp_path
) -> None:
    service: ServiceProcess = start_service()
    dripped = origin.url("steps_20s.wav", rate=8 * PCM_BYTES_PER_SEC)
    data = b""
    client = TranscodeClient(service.url)
    async with client, client.stream(dripped, output_format=output_format, filters=Filters(speed=1.25)) as stream:
        async for chunk in stream:
            data += chunk
            if service.process.poll() is None and stream.output_seconds >= 3.0:
                service.kill()
    assert stream.backend == "ffmpeg"
    frames = decode(data, output_format)
    # Best effort: the position comes from the last whole Ogg page or ADTS frame heard.
    assert duration_secs(frames) == pytest.approx(20 / 1.25, abs=0.15)
    if output_format == "opus":
        saved = tmp_path / "chained.opus"
        saved.write_bytes(data)
        report = subprocess.run(["opusinfo", str(saved)], capture_output=True, text=True, check=True)
        assert report.stdout.count("New logical stream") == 2
        assert "WARNING" not in report.stdout + report.stderr and "ERROR" not in report.stdout


class ScriptedService(AsyncListener):
    """A loopback listener that misbehaves as scripted, one behaviour per connection
    (the last one repeats): "close_after_0.9" closes after 0.9 s without answering,
    "hang" never answers, "cut_503" starts a 503 and closes mid-body."""

    def __init__(self, *behaviours: str) -> None:
        super().__init__()
        self.behaviours = behaviours
        self.connections = 0

    async def __aenter__(self) -> str:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        behaviour = self.behaviours[min(self.connections, len(self.behaviours) - 1)]
        self.connections += 1
        if behaviour == "close_after_0.9":
            await asyncio.sleep(0.9)
        elif behaviour == "hang":
            await asyncio.sleep(3600)
        elif behaviour == "cut_503":
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b'HTTP/1.1 503 Service Unavailable\r\ncontent-length: 500\r\n\r\n{"error": {')
            await writer.drain()


async def test_retries_and_a_hang_together_still_fall_back_within_three_seconds(origin: Origin) -> None:
    async with ScriptedService("close_after_0.9", "close_after_0.9", "hang") as url, TranscodeClient(url) as client:
        seconds, backend = await first_chunk_after(client, origin.url("tone440_4s.wav"))
    assert backend == "ffmpeg"
    assert seconds < 3.0


async def test_an_error_answer_cut_off_mid_body_is_a_failure_that_falls_back(origin: Origin) -> None:
    scripted = ScriptedService("cut_503")
    async with scripted as url, TranscodeClient(url, retry=RetryPolicy(max_attempts=2)) as client:
        _, backend = await first_chunk_after(client, origin.url("tone440_4s.wav"))
        assert client.breaker.consecutive_failures == 1
    assert backend == "ffmpeg"
    assert scripted.connections == 2, "a 503 is retried"


async def test_a_fallback_whose_source_fails_says_so_without_the_url_path(dead_url: str, origin: Origin) -> None:
    async with TranscodeClient(dead_url) as client:
        with pytest.raises(FallbackFailed) as failed:
            await first_chunk_after(client, origin.url("missing.wav") + "?token=secret")
    assert "404" in failed.value.stderr_tail
    assert "secret" not in str(failed.value) and "missing.wav" not in str(failed.value)


async def test_a_fallback_reader_that_stalled_can_still_close_at_once(dead_url: str, origin: Origin) -> None:
    async with TranscodeClient(dead_url) as client:
        context = client.stream(origin.url("tone440_20s.wav"), output_format="pcm")
        stream = await context.__aenter__()
        assert stream.backend == "ffmpeg"
        await asyncio.sleep(0.5)  # ffmpeg fills the pipe and asyncio's buffer meanwhile
        await asyncio.wait_for(context.__aexit__(None, None, None), timeout=2.0)
        assert not ffmpeg_children()


async def test_a_service_frozen_mid_stream_is_left_for_ffmpeg_at_once(start_service, origin: Origin) -> None:
    service: ServiceProcess = start_service()
    dripped = origin.url("steps_20s.wav", rate=8 * PCM_BYTES_PER_SEC)
    data = b""
    longest_gap = 0.0
    try:
        async with TranscodeClient(service.url) as client, client.stream(dripped, output_format="pcm") as stream:
            last = time.monotonic()
            async for chunk in stream:
                now = time.monotonic()
                longest_gap, last = max(longest_gap, now - last), now
                data += chunk
                if stream.backend == "rust" and len(data) >= 3 * PCM_BYTES_PER_SEC:
                    service.process.send_signal(signal.SIGSTOP)  # open sockets, no answers
    finally:
        service.process.send_signal(signal.SIGCONT)
    assert stream.backend == "ffmpeg"
    # 1 s without bytes, 0.5 s for /health, then ffmpeg starts: about 1.8 s of silence.
    assert longest_gap < 2.5, longest_gap
    assert duration_secs(decode(data, "pcm")) == pytest.approx(20.0, abs=0.1)


async def test_a_live_source_goes_on_from_the_live_edge_without_waiting(
    start_service, origin: Origin, media_dir: Path
) -> None:
    """ffmpeg cannot seek in a live stream: reaching the listener's position would
    take as long as the stream had played."""
    service: ServiceProcess = start_service()
    real_time = (media_dir / "steps_20s.opus").stat().st_size // 20
    live = origin.url("steps_20s.opus", rate=real_time, live=True)
    longest_gap = 0.0
    async with TranscodeClient(service.url) as client, client.stream(live, output_format="pcm") as stream:
        assert stream.content_duration is None, "the service cannot know a live stream's length"
        last = time.monotonic()
        async for _ in stream:
            now = time.monotonic()
            if stream.backend == "ffmpeg":
                longest_gap = max(longest_gap, now - last)
                break
            last = now
            if stream.output_seconds >= 4.0:
                service.kill()
    assert stream.backend == "ffmpeg"
    assert longest_gap < 2.0, longest_gap


async def test_a_fallback_that_produces_nothing_fails_in_time(dead_url: str, origin: Origin) -> None:
    timeouts = Timeouts(first_byte_secs=1.0)
    async with TranscodeClient(dead_url, timeouts=timeouts) as client:
        started = time.monotonic()
        with pytest.raises(FallbackFailed, match="no audio within 1 s"):
            await first_chunk_after(client, origin.url("tone440_4s.wav", delay_secs=5))
    assert time.monotonic() - started < 2.0
    assert not ffmpeg_children()


async def test_a_cancelled_read_loses_nothing(service: ServiceProcess, origin: Origin) -> None:
    data = b""
    timeouts = 0
    async with TranscodeClient(service.url) as client:
        url = origin.url("tone440_4s.wav", rate=4 * PCM_BYTES_PER_SEC)
        async with client.stream(url, output_format="pcm") as stream:
            chunks = aiter(stream)
            while True:
                try:
                    data += await asyncio.wait_for(anext(chunks), 0.002)
                except TimeoutError:
                    timeouts += 1
                except StopAsyncIteration:
                    break
    assert timeouts > 10, "reads were cancelled while waiting"
    assert len(data) == 4 * PCM_BYTES_PER_SEC
    assert stream.backend == "rust"
