"""Output trackers: whole units only, whatever the chunking, and the audio time they hold."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest
from media import run_ffmpeg

from streamer.output import AdtsTracker, OggOpusTracker, PcmTracker

TONE = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=3", "-ac", "2"]


def split_randomly(data: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    chunks, offset = [], 0
    while offset < len(data):
        size = rng.choice((1, 2, 7, 27, 100, 4096))
        chunks.append(data[offset : offset + size])
        offset += size
    return chunks


@pytest.mark.parametrize(
    ("tracker", "args", "seconds", "slack"),
    [
        (OggOpusTracker, ["-c:a", "libopus", "-f", "ogg"], 3.0, 0.001),
        # ADTS frames include the encoder's priming frame.
        (AdtsTracker, ["-c:a", "aac", "-f", "adts"], 3.0, 0.05),
    ],
)
def test_whole_pages_and_frames_pass_whatever_the_chunking(
    tracker: type, args: list[str], seconds: float, slack: float
) -> None:
    encoded = run_ffmpeg([*TONE, *args, "pipe:1"])
    for seed in range(3):
        tracking = tracker()
        passed = [tracking.feed(chunk) for chunk in split_randomly(encoded, seed)]
        assert b"".join(passed) == encoded
        assert tracking.flush() == b""
        assert tracking.output_secs == pytest.approx(seconds, abs=slack)


def test_pcm_passes_whole_sample_frames_and_counts_them() -> None:
    tracking = PcmTracker(48_000, 2)
    assert tracking.feed(b"\x01\x02\x03") == b""
    assert tracking.feed(b"\x04\x05") == b"\x01\x02\x03\x04"
    assert tracking.output_secs == 1 / 48_000
    assert tracking.restart() == b""
    assert tracking.feed(b"\x06\x07\x08\x09") == b"\x06\x07\x08\x09"
    assert tracking.output_secs == 2 / 48_000


def test_a_broken_ogg_stream_is_closed_with_an_end_of_stream_page(tmp_path: Path) -> None:
    encoded = run_ffmpeg([*TONE, "-c:a", "libopus", "-f", "ogg", "pipe:1"])
    tracking = OggOpusTracker()
    passed = tracking.feed(encoded[: len(encoded) // 2])
    heard = tracking.output_secs
    closing = tracking.restart()
    assert closing[:4] == b"OggS" and closing[5] == 0x04 and closing[26] == 0
    assert passed[-len(closing) :] != closing
    saved = tmp_path / "cut.opus"
    saved.write_bytes(passed + closing)
    report = subprocess.run(["opusinfo", str(saved)], capture_output=True, text=True, check=True)
    assert "WARNING" not in report.stdout + report.stderr, report.stdout
    assert "Logical stream 1 ended" in report.stdout
    decoded = run_ffmpeg(["-i", str(saved), "-f", "s16le", "pipe:1"])
    assert len(decoded) / 4 / 48_000 == pytest.approx(heard, abs=0.001)
    assert tracking.output_secs == heard
