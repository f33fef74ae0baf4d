"""Streamer load: N players at real-time pace, as the Telegram streamer runs them, fed by
the service (`rust`) and by the client's ffmpeg fallback (`ffmpeg`, what the streamer
did before: one ffmpeg per stream), in the same run. Prints a markdown table.

    .venv/bin/python benches/streamer_load.py [--streams 10] [--secs 30] [--filters none,bot]

Needs the release binary (`cargo build --release`), the streamer package installed in
the venv (`pip install -e streamer`) and `bench-data/music.mp3`
(`bash benches/make_bench_input.sh`). The origin is a separate `http.server` process
(no Range support); its CPU is not counted. CPU: this process (the players, the client) from getrusage, the
service from /proc/PID/stat, ffmpeg from getrusage of reaped children. Memory is
sampled every 250 ms: the service's RSS and PSS, or the sum over running ffmpegs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from streamer import CircuitBreaker, Filters, RetryPolicy, TranscodeClient
from streamer.main import Player

ROOT = Path(__file__).resolve().parents[1]
BINARY = ROOT / "target" / "release" / "rust-transcoder"
SOURCE = ROOT / "bench-data" / "music.mp3"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# http.server with a listen backlog that takes a burst of connections (its default of 5
# drops SYNs, which costs the sixth connection a 1 s retransmit).
ORIGIN_SCRIPT = """
import functools, sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
ThreadingHTTPServer.request_queue_size = 128
handler = functools.partial(SimpleHTTPRequestHandler, directory=sys.argv[2])
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), handler).serve_forever()
"""
FILTER_SETS = {"none": Filters(), "bot": Filters(speed=1.25, eq_preset="bass_boost", volume=0.8)}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cpu_secs(pid: int) -> float:
    """User + system CPU of a running process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def memory_mib(pid: int) -> tuple[float, float]:
    """RSS and PSS of a process, MiB (0, 0 when it is gone)."""
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    except OSError:
        return 0.0, 0.0
    values = {line.split()[0]: int(line.split()[1]) for line in rollup[1:]}
    return values.get("Rss:", 0) / 1024, values.get("Pss:", 0) / 1024


def ffmpeg_children() -> list[int]:
    """Pids of the ffmpeg processes this process started."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, rest = text.split("(", 1)[1].rsplit(")", 1)
        if name == "ffmpeg" and int(rest.split()[1]) == os.getpid():
            pids.append(int(stat.parent.name))
    return pids


def children_cpu_secs() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def self_cpu_secs() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class FirstFrameSink:
    """Counts frames and notes when the first one was sent."""

    def __init__(self) -> None:
        self.frames = 0
        self.first_at: float | None = None

    async def send(self, frame: bytes) -> None:
        if self.first_at is None:
            self.first_at = time.monotonic()
        self.frames += 1


@dataclass
class Result:
    side: str
    filters: str
    streams: int
    first_frame_ms: list[float]
    frames: int
    players_cpu: float
    backend_cpu: float
    peak_rss: float
    peak_pss: float
    audio_secs: float = field(init=False)

    def __post_init__(self) -> None:
        self.audio_secs = self.frames / 100


async def sample_memory(pids: callable, peaks: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        readings = [memory_mib(pid) for pid in pids()]
        rss, pss = sum(r for r, _ in readings), sum(p for _, p in readings)
        peaks[0], peaks[1] = max(peaks[0], rss), max(peaks[1], pss)
        await asyncio.sleep(0.25)


async def run(
    side: str, client: TranscodeClient, url: str, args: argparse.Namespace, name: str, service_pid: int
) -> Result:
    """Plays `args.streams` streams of `args.secs` s at once and measures them."""
    sinks = [FirstFrameSink() for _ in range(args.streams)]
    players = [Player(client, sink) for sink in sinks]
    pids = (lambda: [service_pid]) if side == "rust" else ffmpeg_children
    peaks, stop = [0.0, 0.0], asyncio.Event()
    sampler = asyncio.create_task(sample_memory(pids, peaks, stop))
    own, children, service = self_cpu_secs(), children_cpu_secs(), cpu_secs(service_pid)
    started = time.monotonic()
    await asyncio.gather(*(p.play(url, FILTER_SETS[name], duration_seconds=args.secs) for p in players))
    players_cpu = self_cpu_secs() - own
    backend_cpu = cpu_secs(service_pid) - service if side == "rust" else children_cpu_secs() - children
    stop.set()
    await sampler
    return Result(
        side,
        name,
        args.streams,
        [(sink.first_at - started) * 1000 for sink in sinks if sink.first_at is not None],
        sum(sink.frames for sink in sinks),
        players_cpu,
        backend_cpu,
        *peaks,
    )


def row(result: Result) -> str:
    per_stream_audio = result.audio_secs
    players = 100 * result.players_cpu / per_stream_audio
    backend = 100 * result.backend_cpu / per_stream_audio
    first = sorted(result.first_frame_ms)
    return (
        f"| {result.filters} | {result.side} | {result.streams} | {statistics.median(first):.0f} / {first[-1]:.0f} "
        f"| {result.audio_secs:.0f} | {players:.2f} | {backend:.2f} | {players + backend:.2f} "
        f"| {result.peak_rss:.1f} | {result.peak_pss:.1f} |"
    )


async def measure(base: str, url: str, args: argparse.Namespace, service_pid: int) -> None:
    """Prints one row per filter set and side."""
    for name in args.filters.split(","):
        async with TranscodeClient(base) as client:
            print(row(await run("rust", client, url, args, name, service_pid)), flush=True)
        dead = f"http://127.0.0.1:{free_port()}"
        breaker = CircuitBreaker(failure_threshold=1, reset_timeout_secs=3600)
        async with TranscodeClient(dead, retry=RetryPolicy(max_attempts=1), breaker=breaker) as client:
            print(row(await run("ffmpeg", client, url, args, name, service_pid)), flush=True)


def wait_until_answering(*urls: str) -> None:
    for _ in range(100):
        try:
            for url in urls:
                httpx.get(url, timeout=0.5)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"not answering: {urls}")


def main(args: argparse.Namespace) -> None:
    origin_port, service_port = free_port(), free_port()
    origin = subprocess.Popen(
        [sys.executable, "-c", ORIGIN_SCRIPT, str(origin_port), str(SOURCE.parent)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    env = {
        **os.environ,
        "TRANSCODER_BIND": f"127.0.0.1:{service_port}",
        "TRANSCODER_ALLOW_NETS": "127.0.0.0/8",
        "TRANSCODER_MAX_STREAMS": str(args.streams + 10),
        "RUST_LOG": "warn",
    }
    service = subprocess.Popen([str(BINARY)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{service_port}"
        url = f"http://127.0.0.1:{origin_port}/{SOURCE.name}"
        wait_until_answering(f"{base}/health", f"http://127.0.0.1:{origin_port}/")
        print(f"`{' '.join(sys.argv)}`: {args.streams} streams of {args.secs:g} s at once, pcm 48 kHz stereo\n")
        print(
            "| filters | side | streams | first frame p50 / max, ms | audio played, s "
            "| players (Python) CPU per second of audio, % of one core | backend CPU per second of audio, % "
            "| total, % | backend peak RSS, MiB | backend peak PSS, MiB |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        asyncio.run(measure(base, url, args, service.pid))
    finally:
        service.terminate()
        origin.terminate()
        service.wait()
        origin.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=10)
    parser.add_argument("--secs", type=float, default=30.0)
    parser.add_argument("--filters", default="none,bot", help="comma-separated: none, bot")
    main(parser.parse_args())
