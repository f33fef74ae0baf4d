"""Request options and retry arithmetic: pure logic, no network."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from streamer import EqBand, Filters, FilterInvalid, InvalidRequest, Normalize, TranscodeRequest
from streamer.retry import RetryPolicy, parse_retry_after


def test_filters_send_only_what_differs_from_the_defaults() -> None:
    filters = Filters.of({"speed": 1.25, "eq_bands": [{"freq_hz": 440, "gain_db": -3, "q": 2}], "normalize": {}})
    assert filters.to_json() == {
        "speed": 1.25,
        "eq_bands": [{"freq_hz": 440, "gain_db": -3, "q": 2}],
        "normalize": {"target_lufs": -14.0},
    }
    assert Filters().to_json() == {}
    assert filters.eq_bands == (EqBand(440, -3, 2),) and filters.normalize == Normalize()


@pytest.mark.parametrize(
    "settings",
    [
        {"speed": 0.49},
        {"pitch": 2.01},
        {"rate": True},
        {"volume": -0.1},
        {"eq_preset": "loud"},
        {"eq_bands": [{"freq_hz": 10, "gain_db": 0}]},
        {"eq_bands": [{"freq_hz": 100, "gain_db": 0, "width": 1}]},
        {"eq_bands": [{"freq_hz": 100, "gain_db": 0}] * 17},
        {"normalize": {"target_lufs": -4}},
        {"normalize": 5},
    ],
)
def test_filter_values_out_of_the_api_ranges_are_refused(settings: dict[str, object]) -> None:
    with pytest.raises(FilterInvalid):
        Filters.of(settings)


@pytest.mark.parametrize(
    "fields",
    [
        {"output_format": "mp3"},
        {"sample_rate": 7999},
        {"output_format": "aac", "sample_rate": 192_000},
        {"sample_rate": 48_000.0},
        {"bitrate_kbps": 5},
        {"start_seconds": -1},
        {"duration_seconds": 0},
        {"source_url": "http:///path"},
    ],
)
def test_request_fields_out_of_the_api_ranges_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(InvalidRequest):
        TranscodeRequest(**{"source_url": "http://origin/a.mp3", **fields})


def test_a_continued_request_starts_where_the_listener_is_and_keeps_the_duration_limit() -> None:
    request = TranscodeRequest(
        "http://origin/a.mp3", start_seconds=10, duration_seconds=30, filters=Filters(speed=1.5, rate=0.8, pitch=2)
    )
    rest = request.continued_after(5.0)
    assert rest is not None
    assert rest.start_seconds == pytest.approx(10 + 5.0 * 1.2)
    assert rest.duration_seconds == pytest.approx(25.0)
    assert rest.filters == request.filters
    assert request.continued_after(30.0) is None


def test_backoff_pauses_grow_with_full_jitter_and_honour_retry_after() -> None:
    policy = RetryPolicy(base_delay_secs=0.1, max_delay_secs=0.3)
    rng = random.Random(7)
    for attempt, ceiling in ((1, 0.1), (2, 0.2), (3, 0.3), (6, 0.3)):
        pauses = [policy.pause_secs(attempt, None, rng) for _ in range(200)]
        assert 0 <= min(pauses) < ceiling * 0.1
        assert ceiling * 0.9 < max(pauses) <= ceiling
    assert policy.pause_secs(1, 2.0, rng) == 2.0


def test_retry_after_is_read_as_seconds_or_as_a_date() -> None:
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=5), usegmt=True), now) == 5.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=5), usegmt=True), now) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
