"""The client against the real service: what each format and filter sounds like, and
how the service's refusals reach the caller (typed, never retried, never a fallback)."""

from __future__ import annotations

import logging
import math

import pytest
from conftest import ServiceProcess
from media import Origin, decode, dominant_hz, duration_secs, middle, rms_db

from streamer import (
    Filters,
    FilterInvalid,
    InvalidRequest,
    TranscodeClient,
    UnsupportedFormat,
    UrlForbidden,
)

SOURCE_SECS = 4.0
SOURCE_LEVEL_DB = 20 * math.log10(0.3 / 2**0.5)
# ADTS carries no priming information: a decoder keeps the encoder's priming samples.
DURATION_SLACK_SECS = {"pcm": 0.002, "opus": 0.01, "aac": 0.07}


async def collect(client: TranscodeClient, url: str, **options: object) -> tuple[bytes, object]:
    """Every byte of one stream, and the stream (for its attributes)."""
    data = b""
    async with client.stream(url, **options) as stream:
        async for chunk in stream:
            data += chunk
    return data, stream


@pytest.mark.parametrize("output_format", ["pcm", "opus", "aac"])
@pytest.mark.parametrize(
    ("filters", "seconds", "hz", "gain_db"),
    [
        (Filters(speed=1.5, volume=0.5), SOURCE_SECS / 1.5, 440.0, -6.02),
        (Filters(rate=1.25), SOURCE_SECS / 1.25, 550.0, 0.0),
        (Filters(pitch=2.0, eq_preset="treble"), SOURCE_SECS, 880.0, 0.0),
    ],
    ids=["speed-volume", "rate", "pitch-treble"],
)
async def test_each_format_is_served_by_the_service_with_its_filters(
    service: ServiceProcess,
    origin: Origin,
    output_format: str,
    filters: Filters,
    seconds: float,
    hz: float,
    gain_db: float,
) -> None:
    async with TranscodeClient(service.url) as client:
        data, stream = await collect(client, origin.url("tone440_4s.wav"), output_format=output_format, filters=filters)
    frames = decode(data, output_format)

    assert stream.backend == "rust"
    assert stream.transcode_id and stream.source_format == "wav"
    assert stream.content_duration == pytest.approx(seconds, rel=0.01)
    assert duration_secs(frames) == pytest.approx(seconds, rel=0.01, abs=DURATION_SLACK_SECS[output_format])
    assert dominant_hz(middle(frames)) == pytest.approx(hz, rel=0.01)
    assert rms_db(middle(frames)) == pytest.approx(SOURCE_LEVEL_DB + gain_db, abs=0.5)


async def test_start_and_duration_cut_the_source(service: ServiceProcess, origin: Origin) -> None:
    async with TranscodeClient(service.url) as client:
        data, stream = await collect(
            client, origin.url("two_tones_4s.wav"), output_format="pcm", start_seconds=2.5, duration_seconds=1.0
        )
    frames = decode(data, "pcm")
    assert stream.start_offset == pytest.approx(2.5, abs=0.001)
    assert duration_secs(frames) == pytest.approx(1.0, abs=0.001)
    assert dominant_hz(frames) == pytest.approx(880.0, rel=0.01)
    assert stream.source_position == pytest.approx(3.5, abs=0.001)


async def test_a_bad_request_from_the_service_is_a_typed_error_and_no_fallback(
    service: ServiceProcess, origin: Origin, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    async with TranscodeClient(service.url) as client:
        # Within the client's ranges, but beyond what AAC allows at 8 kHz: only the
        # service knows, and it answers 400.
        with pytest.raises(InvalidRequest) as refused:
            await collect(client, origin.url("tone440_4s.wav"), output_format="aac", sample_rate=8000, bitrate_kbps=320)
        with pytest.raises(UnsupportedFormat) as unsupported:
            await collect(client, origin.url("page.html"), output_format="pcm")
        assert client.breaker_state == "closed"
    assert refused.value.status == 400 and refused.value.transcode_id
    assert unsupported.value.status == 415 and unsupported.value.code == "UNSUPPORTED_FORMAT"
    assert not [record for record in caplog.records if "falling back" in record.message]


async def test_a_request_the_service_would_refuse_is_refused_before_any_network_io(dead_url: str) -> None:
    async with TranscodeClient(dead_url) as client:
        with pytest.raises(FilterInvalid, match="speed"):
            client.stream("http://127.0.0.1/a.wav", filters={"speed": 3.0})
        with pytest.raises(FilterInvalid, match="unknown filter"):
            client.stream("http://127.0.0.1/a.wav", filters={"sped": 1.0})
        with pytest.raises(InvalidRequest, match="channels"):
            client.stream("http://127.0.0.1/a.wav", channels=6)
        with pytest.raises(UrlForbidden):
            client.stream("file:///etc/passwd")
        assert client.breaker.consecutive_failures == 0
