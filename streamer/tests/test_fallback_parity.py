"""The ffmpeg fallback sounds like the service: for each filter combination both
backends render the same source, and duration, frequency and level must agree within
the spec's tolerances (duration and frequency +-1 %, loudness +-1 LU; level +-0.5 dB)."""

from __future__ import annotations

import math

import pytest
from conftest import ServiceProcess, ffmpeg_children
from media import Origin, decode, dominant_hz, duration_secs, integrated_lufs, middle, rms_db

from streamer import EqBand, Filters, Normalize, TranscodeClient
from streamer.fallback import atempo_chain, ffmpeg_command
from streamer.options import TranscodeRequest

SOURCE_LEVEL_DB = 20 * math.log10(0.3 / math.sqrt(2))
# (id, source, filters, expected duration, expected dominant Hz, expected gain dB)
CASES = [
    ("none", "tone440_4s.wav", Filters(), 4.0, 440.0, 0.0),
    ("speed-1.5", "tone440_4s.wav", Filters(speed=1.5), 4.0 / 1.5, 440.0, 0.0),
    ("speed-0.75", "tone440_4s.wav", Filters(speed=0.75), 4.0 / 0.75, 440.0, 0.0),
    ("rate-1.25", "tone440_4s.wav", Filters(rate=1.25), 4.0 / 1.25, 550.0, 0.0),
    ("pitch-0.75", "tone440_4s.wav", Filters(pitch=0.75), 4.0, 330.0, 0.0),
    ("all-three", "tone440_4s.wav", Filters(speed=1.25, rate=0.8, pitch=1.5), 4.0, 528.0, 0.0),
    ("volume-0.5", "tone440_4s.wav", Filters(volume=0.5), 4.0, 440.0, -6.02),
    ("volume-1.5", "tone440_4s.wav", Filters(volume=1.5), 4.0, 440.0, 3.52),
    ("bass-boost", "tone100_4s.wav", Filters(eq_preset="bass_boost"), 4.0, 100.0, 3.0),
    # Gains from the RBJ formulas at the tone's frequency (SPEC section 3's presets).
    ("treble", "tone10k_4s.wav", Filters(eq_preset="treble"), 4.0, 10_000.0, 4.50),
    ("voice-presence", "tone2500_4s.wav", Filters(eq_preset="voice"), 4.0, 2500.0, 4.00),
    ("voice-low-cut", "tone100_4s.wav", Filters(eq_preset="voice"), 4.0, 100.0, -4.31),
    ("band", "tone440_4s.wav", Filters(eq_bands=(EqBand(440, 6, 1.0),)), 4.0, 440.0, 6.0),
    (
        "speed-volume-eq",
        "tone100_4s.wav",
        Filters(speed=1.5, volume=0.5, eq_preset="bass_boost"),
        4.0 / 1.5,
        100.0,
        -3.02,
    ),
]


async def render(base_url: str, url: str, filters: Filters) -> tuple[bytes, str]:
    async with TranscodeClient(base_url) as client:
        data = b""
        async with client.stream(url, output_format="pcm", filters=filters) as stream:
            async for chunk in stream:
                data += chunk
    return data, stream.backend


@pytest.mark.parametrize(
    ("source", "filters", "seconds", "hz", "gain_db"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
async def test_the_fallback_renders_each_filter_like_the_service(
    service: ServiceProcess,
    dead_url: str,
    origin: Origin,
    source: str,
    filters: Filters,
    seconds: float,
    hz: float,
    gain_db: float,
) -> None:
    url = origin.url(source)
    native, native_backend = await render(service.url, url, filters)
    fallback, fallback_backend = await render(dead_url, url, filters)
    assert (native_backend, fallback_backend) == ("rust", "ffmpeg")

    for frames in (decode(native, "pcm"), decode(fallback, "pcm")):
        assert duration_secs(frames) == pytest.approx(seconds, rel=0.01)
        assert dominant_hz(middle(frames)) == pytest.approx(hz, rel=0.01)
    native_db, fallback_db = (rms_db(middle(decode(data, "pcm"))) for data in (native, fallback))
    assert fallback_db == pytest.approx(native_db, abs=0.5)
    assert native_db == pytest.approx(SOURCE_LEVEL_DB + gain_db, abs=0.5)


async def test_the_fallback_normalises_loudness_like_the_service(
    service: ServiceProcess, dead_url: str, origin: Origin
) -> None:
    url = origin.url("noise_tone_12s.wav")
    filters = Filters(normalize=Normalize(-14.0))
    for base_url, backend in ((service.url, "rust"), (dead_url, "ffmpeg")):
        data, used = await render(base_url, url, filters)
        assert used == backend
        frames = decode(data, "pcm")
        assert duration_secs(frames) == pytest.approx(12.0, rel=0.01)
        assert integrated_lufs(frames) == pytest.approx(-14.0, abs=1.0), backend


def test_the_fallback_command_reads_only_http_and_cuts_like_the_service() -> None:
    request = TranscodeRequest(
        "https://media.example/a.mp3",
        output_format="opus",
        sample_rate=44_100,
        channels=1,
        bitrate_kbps=96,
        start_seconds=12.5,
        duration_seconds=30.0,
        filters=Filters(speed=0.5, pitch=2.0),
    )
    argv = ffmpeg_command("ffmpeg", request)
    assert argv[:2] == ["ffmpeg", "-nostdin"]
    assert argv[argv.index("-protocol_whitelist") + 1] == "http,https,tcp,tls"
    assert argv.index("-ss") < argv.index("-i") < argv.index("-t")
    assert argv[argv.index("-ss") + 1] == "12.500000"
    assert argv[argv.index("-ar") + 1] == "48000", "Ogg Opus runs at 48 kHz"
    assert argv[argv.index("-ac") + 1] == "1"
    assert argv[argv.index("-b:a") + 1] == "96k"
    assert "atempo=0.5,atempo=0.5" in argv[argv.index("-af") + 1]
    assert argv[-1] == "pipe:1"


@pytest.mark.parametrize("factor", [0.25, 0.5, 0.8, 1.0, 1.6, 2.0, 4.0])
def test_atempo_chains_multiply_to_the_factor_within_range(factor: float) -> None:
    chain = atempo_chain(factor)
    values = [float(step.split("=")[1]) for step in chain]
    assert all(0.5 <= value <= 2.0 for value in values)
    assert math.prod(values) == pytest.approx(factor)
    assert (chain == []) == (factor == 1.0)


async def test_a_closed_fallback_leaves_no_ffmpeg_behind(dead_url: str, origin: Origin) -> None:
    client = TranscodeClient(dead_url)
    async with client, client.stream(origin.url("tone440_20s.wav"), output_format="pcm") as stream:
        async for _ in stream:
            assert ffmpeg_children(), "ffmpeg runs while the stream is read"
            break
    assert not ffmpeg_children()
