"""The ffmpeg fallback: the command line that produces what the service would have
produced (same format, equivalent filters), and the subprocess that runs it, with a
bounded stderr tail and kill+wait on every exit path."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import deque

from .errors import FallbackFailed
from .options import Filters, TranscodeRequest

READ_BYTES = 64 * 1024
STDERR_TAIL_LINES = 20
STDERR_LINE_CHARS = 300
# The source may stall this long before ffmpeg gives up (microseconds for -rw_timeout).
SOURCE_IDLE_TIMEOUT_US = 15_000_000
# A URL's path and query may carry tokens: stderr lines keep only scheme and host.
URL_PATH = re.compile(r"(https?://[^/\s'\"]+)[^\s'\"]*")
LIMITER_CEILING = 10 ** (-1 / 20)  # -1 dBFS, as the service's limiter
ATEMPO_RANGE = (0.5, 2.0)

# The service's presets (SPEC section 3) as ffmpeg's RBJ biquads: shelves with slope 1.
EQ_PRESET_FILTERS = {
    "flat": (),
    "bass_boost": ("lowshelf=f=100:g=6:t=s:w=1",),
    "treble": ("highshelf=f=8000:g=6:t=s:w=1",),
    "voice": ("highpass=f=80:p=2:t=q:w=0.707", "equalizer=f=2500:t=q:w=1:g=4", "lowshelf=f=200:g=-3:t=s:w=1"),
}
BOOSTING_PRESETS = ("bass_boost", "treble", "voice")
OUTPUT_CODECS = {
    "pcm": ("-c:a", "pcm_s16le", "-f", "s16le"),
    "opus": ("-c:a", "libopus", "-f", "ogg"),
    "aac": ("-c:a", "aac", "-f", "adts"),
}


def ffmpeg_command(ffmpeg: str, request: TranscodeRequest) -> list[str]:
    """The argv of an ffmpeg that reads the source over HTTP(S) and writes the requested
    output to stdout."""
    argv = [ffmpeg, "-nostdin", "-hide_banner", "-nostats", "-loglevel", "warning"]
    argv += ["-protocol_whitelist", "http,https,tcp,tls", "-rw_timeout", str(SOURCE_IDLE_TIMEOUT_US)]
    if request.start_seconds > 0:
        argv += ["-ss", f"{request.start_seconds:.6f}"]
    argv += ["-i", request.source_url, "-vn", "-sn", "-dn"]
    graph = filter_graph(request.filters, request.stream_rate_hz, request.channels)
    if graph:
        argv += ["-af", graph]
    argv += ["-ac", str(request.channels), "-ar", str(request.stream_rate_hz)]
    if request.duration_seconds is not None:
        argv += ["-t", f"{request.duration_seconds:.6f}"]
    argv += OUTPUT_CODECS[request.output_format]
    if request.output_format != "pcm":
        argv += ["-b:a", f"{request.bitrate_kbps}k"]
    return [*argv, "-flush_packets", "1", "pipe:1"]


def filter_graph(filters: Filters, rate_hz: int, channels: int) -> str:
    """ffmpeg's filter chain for `filters`, in the service's order: rate/pitch/tempo, EQ,
    loudness, volume, limiter. Empty when there is nothing to do.

    The limiter gets an explicit format: when the source's channel layout is unknown,
    ffmpeg cannot negotiate one for alimiter on its own after loudnorm."""
    chain = [*_time_filters(filters, rate_hz), *_eq_filters(filters)]
    if filters.normalize is not None:
        chain += [f"loudnorm=I={filters.normalize.target_lufs:g}:TP=-1", f"aresample={rate_hz}"]
    if filters.volume != 1.0:
        chain.append(f"volume={filters.volume:g}")
    if _can_boost(filters):
        layout = "stereo" if channels == 2 else "mono"
        chain.append(f"aformat=channel_layouts={layout}")
        chain.append(f"alimiter=limit={LIMITER_CEILING:.6f}:level=disabled:latency=enabled")
    return ",".join(chain)


def _time_filters(filters: Filters, rate_hz: int) -> list[str]:
    """Varispeed (rate and the resampling half of pitch) as asetrate at a known rate, then
    the time stretch (speed, and pitch's inverse stretch) as atempo."""
    chain = []
    shift = filters.rate * filters.pitch
    if shift != 1.0:
        chain += [f"aresample={rate_hz}", f"asetrate={round(rate_hz * shift)}", f"aresample={rate_hz}"]
    return chain + atempo_chain(filters.speed / filters.pitch)


def atempo_chain(factor: float) -> list[str]:
    """atempo filters multiplying to `factor`, each within atempo's 0.5..2.0."""
    low, high = ATEMPO_RANGE
    chain = []
    while factor > high:
        chain.append(f"atempo={high:g}")
        factor /= high
    while factor < low:
        chain.append(f"atempo={low:g}")
        factor /= low
    if abs(factor - 1.0) > 1e-9:
        chain.append(f"atempo={factor:.9g}")
    return chain


def _eq_filters(filters: Filters) -> list[str]:
    bands = [f"equalizer=f={band.freq_hz:g}:t=q:w={band.q:g}:g={band.gain_db:g}" for band in filters.eq_bands]
    return [*EQ_PRESET_FILTERS[filters.eq_preset], *bands]


def _can_boost(filters: Filters) -> bool:
    """Whether the chain can raise the level, so the -1 dBFS limiter is needed."""
    return (
        filters.volume > 1.0
        or filters.eq_preset in BOOSTING_PRESETS
        or any(band.gain_db > 0 for band in filters.eq_bands)
        or filters.normalize is not None
    )


class FfmpegProcess:
    """A running ffmpeg whose stdout is read chunk by chunk.

    `read` returns b"" only at a clean end (exit status 0); any other end raises
    FallbackFailed with the stderr tail. `aclose` kills and reaps the process and is
    safe to call more than once."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process
        self._stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        self._stderr_task = asyncio.ensure_future(self._collect_stderr())

    @classmethod
    async def start(cls, argv: list[str]) -> FfmpegProcess:
        """Starts `argv` with stdin closed and stdout and stderr piped."""
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as error:
            raise FallbackFailed(f"cannot run {argv[0]}: {error}") from error
        return cls(process)

    @property
    def stderr_tail(self) -> str:
        """The last lines ffmpeg wrote to stderr."""
        return "\n".join(self._stderr_tail)

    async def read(self) -> bytes:
        """The next chunk of output; b"" at a clean end."""
        assert self._process.stdout is not None
        chunk = await self._process.stdout.read(READ_BYTES)
        if chunk:
            return chunk
        status = await self._process.wait()
        await self._stderr_task
        if status != 0:
            raise FallbackFailed(f"ffmpeg exited with status {status}", stderr_tail=self.stderr_tail)
        return b""

    async def aclose(self) -> None:
        """Kills ffmpeg if it still runs and reaps it.

        The output nobody will read is drained to its end first: asyncio stops reading a
        pipe whose buffer is full, and would then wait forever for it to close."""
        if self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()
        assert self._process.stdout is not None
        while await self._process.stdout.read(READ_BYTES):
            pass
        await self._process.wait()
        await self._stderr_task

    async def _collect_stderr(self) -> None:
        assert self._process.stderr is not None
        pending = b""
        while chunk := await self._process.stderr.read(4096):
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                self._remember(line)
            pending = pending[-STDERR_LINE_CHARS:]
        self._remember(pending)

    def _remember(self, line: bytes) -> None:
        text = URL_PATH.sub(r"\1/...", line.decode(errors="replace").rstrip())
        if text:
            self._stderr_tail.append(text[:STDERR_LINE_CHARS])
