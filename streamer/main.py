"""The player side of the streamer: PCM from the transcode client to PyTgCalls, without
ffmpeg on the happy path.

`Player` asks the client for raw PCM (s16le, 48 kHz, stereo), reads each stream ahead
in its own task, cuts it into exact 10 ms frames and releases them at real-time pace
into a sink (`pacing.py`, `sinks.py`), tracking the source position so that a speed
change or a seek restarts the stream at the right place. The CLI
(`python -m streamer play URL ...`) runs the same loop into a file or stdout, so the
whole path can be tried without Telegram.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from typing import Any, BinaryIO

from .errors import TranscodeError
from .options import EQ_PRESETS, Filters
from .pacing import CHANNELS, FRAME_BYTES, FRAME_SECS, SAMPLE_RATE_HZ, Clock, Framer, MonotonicClock, Pacer, Position
from .sinks import FileSink, FrameSink
from .stream import TranscodeStream
from .transcode_client import TranscodeClient

log = logging.getLogger(__name__)

READ_AHEAD_FRAMES = 100


_END = object()
_WAKE = object()


class _Feed:
    """One service stream read ahead by its own task into a bounded queue of frames:
    network jitter up to the read-ahead (1 s) does not reach the pacing, and the stream
    can be dropped at any moment by cancelling that task."""

    def __init__(
        self, client: TranscodeClient, url: str, filters: Filters, start: float, duration: float | None
    ) -> None:
        self.filters = filters
        self._stream: TranscodeStream | None = None
        self._frames: asyncio.Queue[Any] = asyncio.Queue(READ_AHEAD_FRAMES)
        self._task = asyncio.create_task(self._read(client, url, start, duration))

    @property
    def backend(self) -> str | None:
        """The backend serving the stream, None before it started."""
        return self._stream.backend if self._stream is not None else None

    async def _read(self, client: TranscodeClient, url: str, start: float, duration: float | None) -> None:
        try:
            async with client.stream(
                url,
                output_format="pcm",
                sample_rate=SAMPLE_RATE_HZ,
                channels=CHANNELS,
                start_seconds=start,
                duration_seconds=duration,
                filters=self.filters,
            ) as stream:
                self._stream = stream
                framer = Framer()
                async for chunk in stream:
                    for frame in framer.push(chunk):
                        await self._frames.put((frame, FRAME_SECS))
                tail_secs = framer.pending_bytes / FRAME_BYTES * FRAME_SECS
                if tail := framer.flush():
                    await self._frames.put((tail, tail_secs))
            await self._frames.put(_END)
        except Exception as error:  # handed to the player, which raises it
            await self._frames.put(error)

    async def next(self) -> Any:
        """The next (frame, audio seconds), `_END`, or `_WAKE` after `wake()`; raises
        the stream's error."""
        item = await self._frames.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def wake(self) -> None:
        """Makes a `next()` that waits for a frame return `_WAKE`. When the queue is
        full, nobody waits: the player sees its flags before taking the next frame."""
        with contextlib.suppress(asyncio.QueueFull):
            self._frames.put_nowait(_WAKE)

    async def close(self) -> None:
        """Stops reading and closes the stream."""
        self._task.cancel()
        await asyncio.wait([self._task])


class Player:
    """Plays a source through the transcode service into a sink, one 1920-byte frame
    every 10 ms, tracking the position in source seconds.

    `set_filters`, `set_speed` and `seek` may be called from another task while `play`
    runs: the player drops the current stream after the frame in hand and opens a new
    one at the current (or the new) source position, on the same pacing schedule."""

    def __init__(self, client: TranscodeClient, sink: FrameSink, clock: Clock | None = None) -> None:
        self._client = client
        self._sink = sink
        self._clock = clock if clock is not None else MonotonicClock()
        self._filters = Filters()
        self._position = Position()
        self._feed: _Feed | None = None
        self._seek_to: float | None = None
        self._restart = False
        self._stopped = False
        self._playing = False

    @property
    def position(self) -> float:
        """Source seconds played so far (start position included)."""
        return self._position.seconds

    @property
    def output_secs(self) -> float:
        """Seconds of audio sent to the sink by the current `play`."""
        return self._position.output_secs

    @property
    def filters(self) -> Filters:
        """The filters of the stream playing now (or asked for the next one)."""
        return self._filters

    @property
    def backend(self) -> str | None:
        """ "rust" or "ffmpeg": the backend of the current stream (None while a stream is
        being opened)."""
        return self._feed.backend if self._feed is not None else None

    @property
    def playing(self) -> bool:
        """Whether `play` is running."""
        return self._playing

    async def play(
        self,
        url: str,
        filters: Filters | None = None,
        start_seconds: float = 0.0,
        duration_seconds: float | None = None,
    ) -> None:
        """Plays `url` from `start_seconds` until the source ends, `duration_seconds` of
        output were played, or `stop()` is called. Raises the client's TranscodeError."""
        if self._playing:
            raise RuntimeError("this player is already playing")
        self._filters = Filters.of(filters)
        self._position = Position(start_seconds)
        self._seek_to, self._restart, self._stopped, self._playing = None, False, False, True
        pacer = Pacer(self._clock)
        try:
            while not self._stopped:
                remaining = None if duration_seconds is None else duration_seconds - self._position.output_secs
                if remaining is not None and remaining < FRAME_SECS / 2:
                    return
                if await self._play_stream(url, pacer, remaining):
                    return
        finally:
            self._playing = False

    async def _play_stream(self, url: str, pacer: Pacer, duration: float | None) -> bool:
        """Plays one stream from the current (or sought) position: True when it ended,
        False when a change or `stop()` interrupted it."""
        if self._seek_to is not None:
            self._position.seconds, self._seek_to = self._seek_to, None
        self._restart = False
        log.info("stream from %.3f s of source, filters %s", self._position.seconds, self._filters.to_json())
        self._feed = _Feed(self._client, url, self._filters, self._position.seconds, duration)
        try:
            return await self._pump(self._feed, pacer)
        finally:
            await self._feed.close()

    async def _pump(self, feed: _Feed, pacer: Pacer) -> bool:
        """Plays the frames of `feed`: True when it ended, False when interrupted."""
        while not (self._restart or self._stopped):
            item = await feed.next()
            if item is _END:
                return True
            if item is _WAKE:
                return False
            frame, audio_secs = item
            await pacer.wait()
            await self._sink.send(frame)
            self._position.advance(audio_secs, feed.filters.tempo)
        return False

    def set_filters(self, filters: Filters) -> None:
        """Plays on with `filters` from the current position (ignored when not playing:
        `play` takes its own filters)."""
        if self._playing:
            self._filters = filters
            self._interrupt(restart=True)

    def set_speed(self, speed: float) -> None:
        """Plays on at `speed` from the current position, the other filters kept
        (ignored when not playing). Raises FilterInvalid for a speed out of range."""
        self.set_filters(self._filters.changed(speed=speed))

    def seek(self, seconds: float) -> None:
        """Plays on from `seconds` of source (ignored when not playing). A position past
        the end of the source makes `play` raise RangeInvalid."""
        if seconds < 0:
            raise ValueError(f"cannot seek to {seconds} s")
        if self._playing:
            self._seek_to = seconds
            self._interrupt(restart=True)

    def stop(self) -> None:
        """Ends `play` after the frame in hand."""
        if self._playing:
            self._interrupt(restart=False)

    def _interrupt(self, *, restart: bool) -> None:
        if restart:
            self._restart = True
        else:
            self._stopped = True
        if self._feed is not None:
            self._feed.wake()


# ---------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    """The command line: `play URL [options]`."""
    parser = argparse.ArgumentParser(prog="python -m streamer", description="Plays audio through rust-transcoder.")
    commands = parser.add_subparsers(dest="command", required=True)
    play = commands.add_parser("play", help="play a source at real-time pace into a file or stdout")
    play.add_argument("url", help="http(s) URL of the source")
    play.add_argument("--speed", type=float, default=1.0, help="tempo, pitch kept (0.5..2)")
    play.add_argument("--pitch", type=float, default=1.0, help="pitch ratio, tempo kept (0.5..2)")
    play.add_argument("--rate", type=float, default=1.0, help="tempo and pitch together (0.5..2)")
    play.add_argument("--volume", type=float, default=1.0, help="gain (0..2)")
    play.add_argument("--eq", choices=EQ_PRESETS, default="flat", help="EQ preset")
    play.add_argument("--start", type=float, default=0.0, help="source seconds to start at")
    play.add_argument("--duration", type=float, default=None, help="seconds of output to play")
    play.add_argument("--out", default="-", help="output file of raw s16le 48 kHz stereo, - for stdout")
    play.add_argument("--service", help="service URL (default: $RUST_TRANSCODER_URL, else http://localhost:8090)")
    return parser


def _output(path: str) -> contextlib.AbstractContextManager[BinaryIO]:
    """The output file, or stdout (left open) for "-"."""
    return contextlib.nullcontext(sys.stdout.buffer) if path == "-" else open(path, "wb")


async def _play(args: argparse.Namespace) -> None:
    filters = Filters(speed=args.speed, pitch=args.pitch, rate=args.rate, volume=args.volume, eq_preset=args.eq)
    with _output(args.out) as file:
        async with TranscodeClient(args.service) as client:
            player = Player(client, FileSink(file))
            await player.play(args.url, filters, start_seconds=args.start, duration_seconds=args.duration)
    log.info(
        "played %.2f s of output, up to %.2f s of source, via %s", player.output_secs, player.position, player.backend
    )


def cli(argv: list[str] | None = None) -> int:
    """Runs the command line and returns the exit status (1 on a TranscodeError, with
    the error on one line of stderr)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(_play(args))
    except TranscodeError as error:
        print(f"streamer: {' '.join(str(error).split())}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader of stdout went away: stop quietly
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), sys.stdout.fileno())
        return 1
    return 0
