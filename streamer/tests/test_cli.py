"""`python -m streamer play`: the pacing loop into a file, run as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from media import decode, dominant_hz, duration_secs, middle
from streamer.pacing import FRAME_BYTES

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, service_url: str) -> tuple[subprocess.CompletedProcess[bytes], float]:
    """Runs the CLI with RUST_TRANSCODER_URL set; returns the result and the wall time."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "streamer", "play", *args],
        cwd=ROOT,
        env={**os.environ, "RUST_TRANSCODER_URL": service_url},
        capture_output=True,
        timeout=30,
        check=False,
    )
    return done, time.monotonic() - started


def test_play_writes_paced_frames_to_a_file(service, origin, tmp_path: Path) -> None:
    out = tmp_path / "out.pcm"
    url = origin.url("tone440_4s.wav")
    done, elapsed = run_cli(url, "--speed", "1.25", "--out", str(out), service_url=service.url)
    assert done.returncode == 0, done.stderr.decode()
    data = out.read_bytes()
    assert len(data) % FRAME_BYTES == 0
    audio = decode(data, "pcm")
    assert 3.2 * 0.99 <= duration_secs(audio) <= 3.2 * 1.01 + 0.01
    assert dominant_hz(middle(audio)) == pytest.approx(440, rel=0.01)
    assert elapsed >= 3.1  # real-time pace, not as fast as the service delivers
    assert "via rust" in done.stderr.decode()


def test_play_writes_to_stdout_by_default(service, origin) -> None:
    done, _ = run_cli(origin.url("tone440_4s.wav"), "--start", "3.5", service_url=service.url)
    assert done.returncode == 0, done.stderr.decode()
    assert len(done.stdout) % FRAME_BYTES == 0
    assert duration_secs(decode(done.stdout, "pcm")) == pytest.approx(0.5, abs=0.011)


def test_play_exits_non_zero_with_the_error_code(service, origin, tmp_path: Path) -> None:
    out = tmp_path / "out.pcm"
    done, _ = run_cli(origin.url("page.html"), "--out", str(out), service_url=service.url)
    assert done.returncode == 1
    last = done.stderr.decode().strip().splitlines()[-1]
    assert last.startswith("streamer: UNSUPPORTED_FORMAT")
    assert out.read_bytes() == b""


def test_play_refuses_a_bad_filter_before_calling_the_service(dead_url: str) -> None:
    done, _ = run_cli("http://127.0.0.1:9/a.wav", "--speed", "3", service_url=dead_url)
    assert done.returncode == 1
    assert done.stderr.decode().strip().splitlines() == [
        "streamer: FILTER_INVALID: speed must be within 0.5..=2, got 3.0"
    ]
    assert done.stdout == b""
