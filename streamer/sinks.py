"""Where the player's frames go: a file or stdout (`FileSink`), or a Telegram call
through PyTgCalls' external-media frame API (`TgCallsSink`; py-tgcalls is the optional
`[tgcalls]` extra)."""

from __future__ import annotations

from typing import Any, BinaryIO, Protocol

from .pacing import CHANNELS, SAMPLE_RATE_HZ

TGCALLS_MISSING = 'PyTgCalls is not installed: pip install "rust-transcoder-streamer[tgcalls]"'


class FrameSink(Protocol):
    """Where frames go: each `send` gets exactly one 1920-byte frame."""

    async def send(self, frame: bytes) -> None:
        """Takes one frame."""
        ...


class FileSink:
    """Writes frames to a binary file (or `sys.stdout.buffer`), flushed after each frame
    so that a reader at the other end of a pipe gets them in real time."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file

    async def send(self, frame: bytes) -> None:
        """Writes and flushes one frame."""
        self._file.write(frame)
        self._file.flush()


class TgCallsSink:
    """Sends frames into a Telegram call through PyTgCalls' external-media API.

    `call_py` is a started `pytgcalls.PyTgCalls`; the first frame (or `start()`) switches
    the call in `chat_id` to external 48 kHz stereo audio. Raises ImportError with the
    install hint when the optional dependency is missing."""

    def __init__(self, call_py: Any, chat_id: int | str) -> None:
        try:
            from pytgcalls.types import Device, ExternalMedia, MediaStream
            from pytgcalls.types.raw import AudioParameters
        except ImportError as error:
            raise ImportError(TGCALLS_MISSING) from error
        self._call_py = call_py
        self._chat_id = chat_id
        self._media = MediaStream(ExternalMedia.AUDIO, AudioParameters(bitrate=SAMPLE_RATE_HZ, channels=CHANNELS))
        self._device = Device.MICROPHONE
        self._started = False

    async def start(self) -> None:
        """Plays external audio in the call (frames are sent by `send`)."""
        await self._call_py.play(self._chat_id, self._media)
        self._started = True

    async def send(self, frame: bytes) -> None:
        """Sends one frame as the call's microphone."""
        if not self._started:
            await self.start()
        await self._call_py.send_frame(self._chat_id, self._device, frame)
