"""Knows where a stream's output stands: passes on only whole units (PCM sample frames,
Ogg pages, ADTS frames) and counts the seconds of audio they hold, so that a broken
stream can be continued from the exact point its listener reached."""

from __future__ import annotations

import struct
from typing import Protocol

from .options import TranscodeRequest

OGG_HEADER_BYTES = 27
OGG_END_OF_STREAM = 0x04
OPUS_GRANULE_RATE_HZ = 48_000
ADTS_HEADER_BYTES = 7
ADTS_SAMPLES_PER_BLOCK = 1024
ADTS_RATES_HZ = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)


class OutputTracker(Protocol):
    """Splits a byte stream into whole units and counts their audio."""

    output_secs: float
    """Seconds of audio in the units passed on so far."""

    def feed(self, chunk: bytes) -> bytes:
        """The whole units completed by `chunk` (the rest is held back)."""

    def flush(self) -> bytes:
        """Whatever is held back, at the clean end of the stream."""

    def restart(self) -> bytes:
        """Drops what is held back because a new stream (from another backend) follows;
        returns what must be passed on first to close the broken stream cleanly."""


class _HeldBytes:
    """The part of a tracker that holds back a partial unit."""

    def __init__(self) -> None:
        self._held = b""
        self.output_secs = 0.0

    def flush(self) -> bytes:
        """What is held back, passed on as it is at a clean end (a well-formed stream
        leaves nothing)."""
        held, self._held = self._held, b""
        return held

    def restart(self) -> bytes:
        """Drops the partial unit; nothing is needed to close the stream."""
        self._held = b""
        return b""


class PcmTracker(_HeldBytes):
    """Raw s16le: whole sample frames, exact time."""

    def __init__(self, sample_rate_hz: int, channels: int) -> None:
        super().__init__()
        self._frame_bytes = 2 * channels
        self._rate = sample_rate_hz
        self._frames = 0

    def feed(self, chunk: bytes) -> bytes:
        """The whole sample frames completed by `chunk`."""
        data = self._held + chunk
        whole = len(data) - len(data) % self._frame_bytes
        self._held = data[whole:]
        self._frames += whole // self._frame_bytes
        self.output_secs = self._frames / self._rate
        return data[:whole]


class OggOpusTracker(_HeldBytes):
    """Ogg Opus: whole pages; time from the granule position of the last page, less the
    pre-skip. A following stream is chained (a new logical Ogg stream, RFC 7845): the
    broken one is first closed with an empty end-of-stream page."""

    def __init__(self) -> None:
        super().__init__()
        self._done_secs = 0.0
        self._pre_skip = 0
        self._granule = 0
        self._last_page: bytes | None = None

    def feed(self, chunk: bytes) -> bytes:
        """The whole pages completed by `chunk`."""
        self._held += chunk
        whole = 0
        while (size := self._page_size(self._held, whole)) is not None:
            self._account(self._held[whole : whole + size])
            whole += size
        pages, self._held = self._held[:whole], self._held[whole:]
        return pages

    def restart(self) -> bytes:
        """Drops the partial page and returns an end-of-stream page for the broken stream."""
        closing = _end_of_stream_page(self._last_page) if self._last_page else b""
        self._held = b""
        self._done_secs = self.output_secs
        self._pre_skip = 0
        self._granule = 0
        self._last_page = None
        return closing

    @staticmethod
    def _page_size(data: bytes, offset: int) -> int | None:
        header_end = offset + OGG_HEADER_BYTES
        if len(data) < header_end:
            return None
        segments = data[header_end - 1]
        if len(data) < header_end + segments:
            return None
        size = OGG_HEADER_BYTES + segments + sum(data[header_end : header_end + segments])
        return size if len(data) >= offset + size else None

    def _account(self, page: bytes) -> None:
        self._last_page = None if page[5] & OGG_END_OF_STREAM else page[:OGG_HEADER_BYTES]
        granule = struct.unpack_from("<q", page, 6)[0]
        body = page[OGG_HEADER_BYTES + page[OGG_HEADER_BYTES - 1] :]
        if body.startswith(b"OpusHead") and len(body) >= 12:
            self._pre_skip = struct.unpack_from("<H", body, 10)[0]
        if granule > self._granule:
            self._granule = granule
            played = max(0, granule - self._pre_skip) / OPUS_GRANULE_RATE_HZ
            self.output_secs = self._done_secs + played


def _end_of_stream_page(last_header: bytes) -> bytes:
    """An empty page that ends the logical stream of the page whose header is given."""
    version, _, _, serial, sequence = struct.unpack_from("<4sBBqII", last_header)[1:6]
    header = struct.pack("<4sBBqIIIB", b"OggS", version, OGG_END_OF_STREAM, -1, serial, sequence + 1, 0, 0)
    return header[:22] + struct.pack("<I", _ogg_crc(header)) + header[26:]


def _ogg_crc(data: bytes) -> int:
    """Ogg's page checksum (CRC-32, polynomial 0x04C11DB7, not reflected, initial 0)."""
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


class AdtsTracker(_HeldBytes):
    """AAC in ADTS: whole frames, 1024 samples per raw data block. Bytes that are not
    ADTS are passed on as they come, without time."""

    def feed(self, chunk: bytes) -> bytes:
        """The whole ADTS frames completed by `chunk`."""
        data = self._held + chunk
        whole = 0
        while len(data) - whole >= ADTS_HEADER_BYTES:
            header = data[whole : whole + ADTS_HEADER_BYTES]
            if header[0] != 0xFF or header[1] & 0xF0 != 0xF0:
                whole = len(data)
                break
            size = ((header[3] & 0x03) << 11) | (header[4] << 3) | (header[5] >> 5)
            if size < ADTS_HEADER_BYTES or len(data) - whole < size:
                break
            self.output_secs += self._frame_secs(header)
            whole += size
        self._held = data[whole:]
        return data[:whole]

    @staticmethod
    def _frame_secs(header: bytes) -> float:
        rate_index = (header[2] >> 2) & 0x0F
        blocks = (header[6] & 0x03) + 1
        if rate_index >= len(ADTS_RATES_HZ):
            return 0.0
        return blocks * ADTS_SAMPLES_PER_BLOCK / ADTS_RATES_HZ[rate_index]


def tracker_for(request: TranscodeRequest) -> OutputTracker:
    """The tracker for the request's output format."""
    if request.output_format == "pcm":
        return PcmTracker(request.sample_rate, request.channels)
    if request.output_format == "opus":
        return OggOpusTracker()
    return AdtsTracker()
