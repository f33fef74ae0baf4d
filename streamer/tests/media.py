"""Test media: generated sources, a loopback origin with Range support, and the checks
that decode what a backend produced (duration, dominant frequency, level, loudness)."""

from __future__ import annotations

import re
import subprocess
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import numpy as np

ANALYSIS_RATE_HZ = 48_000

# name -> ffmpeg lavfi source; every source is 48 kHz stereo.
SOURCES = {
    "tone440_4s.wav": "aevalsrc=0.3*sin(2*PI*440*t)|0.3*sin(2*PI*440*t):s=48000:d=4",
    "tone100_4s.wav": "aevalsrc=0.3*sin(2*PI*100*t)|0.3*sin(2*PI*100*t):s=48000:d=4",
    "tone2500_4s.wav": "aevalsrc=0.3*sin(2*PI*2500*t)|0.3*sin(2*PI*2500*t):s=48000:d=4",
    "tone10k_4s.wav": "aevalsrc=0.3*sin(2*PI*10000*t)|0.3*sin(2*PI*10000*t):s=48000:d=4",
    "tone440_20s.wav": "aevalsrc=0.3*sin(2*PI*440*t)|0.3*sin(2*PI*440*t):s=48000:d=20",
    # 440 Hz for two seconds, then 880 Hz: the audio itself tells the source position.
    "two_tones_4s.wav": (
        "aevalsrc=0.3*sin(2*PI*if(lt(t\\,2)\\,440\\,880)*t)|0.3*sin(2*PI*if(lt(t\\,2)\\,440\\,880)*t):s=48000:d=4"
    ),
    # A tone that steps up 100 Hz every two seconds, from 300 Hz: the audio tells where
    # in the source it comes from.
    "steps_20s.wav": (
        "aevalsrc=0.3*sin(2*PI*(300+100*floor(t/2))*t)|0.3*sin(2*PI*(300+100*floor(t/2))*t):s=48000:d=20"
    ),
    "steps_20s.opus": (
        "aevalsrc=0.3*sin(2*PI*(300+100*floor(t/2))*t)|0.3*sin(2*PI*(300+100*floor(t/2))*t):s=48000:d=20"
    ),
    "tone440_4s.mp3": "aevalsrc=0.3*sin(2*PI*440*t)|0.3*sin(2*PI*440*t):s=48000:d=4",
    # Music-like programme material for loudness normalisation: pink noise under a tone.
    "noise_tone_12s.wav": (
        "anoisesrc=color=pink:amplitude=0.05:sample_rate=48000:duration=12[n];"
        "aevalsrc=0.1*sin(2*PI*440*t):s=48000:d=12[t];[n][t]amix=inputs=2:normalize=0,"
        "aformat=channel_layouts=stereo"
    ),
}


def make_sources(directory: Path) -> None:
    """Writes every file of `SOURCES` (and a page that is not audio) into `directory`."""
    for name, graph in SOURCES.items():
        run_ffmpeg(["-f", "lavfi", "-i", graph, "-ac", "2", str(directory / name)])
    (directory / "page.html").write_text("<!doctype html><title>not audio</title>")


def run_ffmpeg(args: list[str], stdin: bytes | None = None) -> bytes:
    """Runs ffmpeg quietly and returns its stdout; raises with its stderr on failure."""
    done = subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args],
        input=stdin,
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr.decode(errors="replace"))
    return done.stdout


# ---------------------------------------------------------------- loopback origin


class _OriginHandler(BaseHTTPRequestHandler):
    """Serves files from the origin's directory with Range support.

    `?rate=BYTES_PER_SEC` drips the body at that speed, so a test can act while a
    stream is still running; `?delay=SECS` waits that long before answering; `?live=1`
    answers like a live stream: no length, no Range, the connection closed at the end."""

    protocol_version = "HTTP/1.1"
    server: _OriginServer

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        path = self.server.root / url.path.lstrip("/")
        if not path.is_file():
            self.send_error(404)
            return
        query = parse_qs(url.query)
        time.sleep(float(query.get("delay", ["0"])[0]))
        body = path.read_bytes()
        if query.get("live"):
            self._send_live(body, int(query.get("rate", ["0"])[0]))
            return
        start, end = 0, len(body)
        ranged = self.headers.get("Range", "")
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", ranged)
        if match:
            start = int(match[1])
            end = int(match[2]) + 1 if match[2] else len(body)
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "text/html" if path.suffix == ".html" else "audio/wav")
        self.send_header("Content-Length", str(end - start))
        self.end_headers()
        rate = int(query.get("rate", ["0"])[0])
        self._send_body(body[start:end], rate)

    def _send_live(self, body: bytes, bytes_per_sec: int) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "audio/ogg")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        self._send_body(body, bytes_per_sec)

    def _send_body(self, body: bytes, bytes_per_sec: int) -> None:
        if bytes_per_sec <= 0:
            self.wfile.write(body)
            return
        step = max(1, bytes_per_sec // 50)
        try:
            for offset in range(0, len(body), step):
                self.wfile.write(body[offset : offset + step])
                self.wfile.flush()
                time.sleep(step / bytes_per_sec)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, format: str, *args: object) -> None:
        """Keeps the test output quiet."""


class _OriginServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path) -> None:
        super().__init__(("127.0.0.1", 0), _OriginHandler)
        self.root = root


@dataclass
class Origin:
    """A loopback media origin serving the generated sources."""

    server: _OriginServer

    def url(self, name: str, *, rate: int = 0, delay_secs: float = 0.0, live: bool = False) -> str:
        """The URL of source `name`, dripped at `rate` bytes per second, answered after
        `delay_secs`, and served like a live stream when asked."""
        settings = (("rate", rate), ("delay", delay_secs), ("live", int(live)))
        query = urlencode({key: value for key, value in settings if value})
        return f"http://127.0.0.1:{self.server.server_port}/{name}{'?' + query if query else ''}"

    @classmethod
    def start(cls, root: Path) -> Origin:
        """Serves `root` on a free loopback port from a background thread."""
        server = _OriginServer(root)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return cls(server)

    def stop(self) -> None:
        """Stops serving."""
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------- checks


def decode(data: bytes, output_format: str, *, sample_rate: int = 48_000, channels: int = 2) -> np.ndarray:
    """Decodes a backend's output to float32 frames (rows) at `ANALYSIS_RATE_HZ`."""
    if output_format == "pcm":
        samples = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
        frames = samples.reshape(-1, channels)
        if sample_rate == ANALYSIS_RATE_HZ:
            return frames
        data = frames.astype("<f4").tobytes()
        args = ["-f", "f32le", "-ar", str(sample_rate), "-ac", str(channels), "-i", "pipe:0"]
    else:
        args = ["-i", "pipe:0"]
    raw = run_ffmpeg([*args, "-f", "f32le", "-ar", str(ANALYSIS_RATE_HZ), "-ac", str(channels), "pipe:1"], data)
    return np.frombuffer(raw, dtype="<f4").reshape(-1, channels)


def duration_secs(frames: np.ndarray) -> float:
    """Seconds of audio in decoded frames."""
    return len(frames) / ANALYSIS_RATE_HZ


def dominant_hz(frames: np.ndarray) -> float:
    """The strongest frequency of the first channel (interpolated FFT peak)."""
    signal = frames[:, 0].astype(np.float64)
    window = np.hanning(len(signal))
    spectrum = np.abs(np.fft.rfft(signal * window))
    peak = int(np.argmax(spectrum[1:])) + 1
    left, centre, right = np.log(spectrum[peak - 1 : peak + 2] + 1e-12)
    shift = 0.5 * (left - right) / (left - 2 * centre + right)
    return (peak + shift) * ANALYSIS_RATE_HZ / len(signal)


def tone_track(frames: np.ndarray, window_secs: float = 0.05) -> list[float]:
    """The dominant frequency of each consecutive window."""
    size = int(window_secs * ANALYSIS_RATE_HZ)
    return [dominant_hz(frames[start : start + size]) for start in range(0, len(frames) - size + 1, size)]


def rms_db(frames: np.ndarray) -> float:
    """RMS level of all samples in dBFS."""
    return 20 * np.log10(np.sqrt(np.mean(np.square(frames, dtype=np.float64))) + 1e-12)


def middle(frames: np.ndarray, trim_secs: float = 0.3) -> np.ndarray:
    """The frames without `trim_secs` at each end (filter edges and ramps)."""
    trim = int(trim_secs * ANALYSIS_RATE_HZ)
    return frames[trim : len(frames) - trim]


def integrated_lufs(frames: np.ndarray) -> float:
    """Integrated loudness as ffmpeg's ebur128 filter measures it."""
    done = subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-hide_banner",
            "-nostats",
            "-f",
            "f32le",
            "-ar",
            str(ANALYSIS_RATE_HZ),
            "-ac",
            str(frames.shape[1]),
            "-i",
            "pipe:0",
            "-af",
            "ebur128",
            "-f",
            "null",
            "-",
        ],
        input=frames.astype("<f4").tobytes(),
        capture_output=True,
        check=True,
    )
    summary = done.stderr.decode().rsplit("Summary:", 1)[-1]
    match = re.search(r"I:\s+(-?[\d.]+) LUFS", summary)
    assert match, summary
    return float(match[1])
