"""Typed request options mirroring the service's API (SPEC section 2), checked with the
service's ranges so that a bad request is refused the same way whether the service or
the ffmpeg fallback would have served it. Rules that depend on the service's
configuration or on several fields at once are left to the service."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal
from urllib.parse import urlsplit

from .errors import FilterInvalid, InvalidRequest, UrlForbidden

OutputFormat = Literal["opus", "pcm", "aac"]
EqPreset = Literal["flat", "bass_boost", "voice", "treble"]

OUTPUT_FORMATS = ("opus", "pcm", "aac")
EQ_PRESETS = ("flat", "bass_boost", "voice", "treble")
MAX_EQ_BANDS = 16
OPUS_STREAM_RATE_HZ = 48_000
SAMPLE_RATES_HZ = {"pcm": (8_000, 192_000), "opus": (8_000, 192_000), "aac": (8_000, 96_000)}
BITRATES_KBPS = {"opus": (6, 510), "aac": (8, 320), "pcm": (1, 1_000_000)}


def _number(value: Any, name: str, low: float, high: float, error: type[Exception]) -> float:
    """`value` as a float within [low, high], or `error` naming the field and range."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise error(f"{name} must be a number, got {value!r}")
    if not low <= value <= high:
        raise error(f"{name} must be within {low:g}..={high:g}, got {value!r}")
    return float(value)


def _whole(value: Any, name: str, low: int, high: int) -> int:
    """`value` as an int within [low, high], or InvalidRequest."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{name} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise InvalidRequest(f"{name} must be within {low}..={high}, got {value!r}")
    return value


@dataclass(frozen=True)
class EqBand:
    """One extra RBJ peaking band, applied after the preset."""

    freq_hz: float
    gain_db: float
    q: float = 1.0

    def __post_init__(self) -> None:
        _number(self.freq_hz, "eq_bands.freq_hz", 20, 20_000, FilterInvalid)
        _number(self.gain_db, "eq_bands.gain_db", -24, 24, FilterInvalid)
        _number(self.q, "eq_bands.q", 0.1, 10, FilterInvalid)


@dataclass(frozen=True)
class Normalize:
    """One-pass loudness normalisation to `target_lufs` (EBU R128)."""

    target_lufs: float = -14.0

    def __post_init__(self) -> None:
        _number(self.target_lufs, "normalize.target_lufs", -70, -5, FilterInvalid)


@dataclass(frozen=True)
class Filters:
    """The DSP settings of a stream; the defaults leave the audio untouched."""

    speed: float = 1.0
    pitch: float = 1.0
    rate: float = 1.0
    volume: float = 1.0
    eq_preset: EqPreset = "flat"
    eq_bands: tuple[EqBand, ...] = ()
    normalize: Normalize | None = None

    def __post_init__(self) -> None:
        for name in ("speed", "pitch", "rate"):
            _number(getattr(self, name), name, 0.5, 2.0, FilterInvalid)
        _number(self.volume, "volume", 0.0, 2.0, FilterInvalid)
        if self.eq_preset not in EQ_PRESETS:
            raise FilterInvalid(f"eq_preset must be one of {', '.join(EQ_PRESETS)}, got {self.eq_preset!r}")
        if len(self.eq_bands) > MAX_EQ_BANDS:
            raise FilterInvalid(f"eq_bands holds at most {MAX_EQ_BANDS} bands, got {len(self.eq_bands)}")
        object.__setattr__(self, "eq_bands", tuple(self.eq_bands))

    @classmethod
    def of(cls, value: Filters | Mapping[str, Any] | None) -> Filters:
        """Filters from an instance, the API's JSON object, or None (no filters)."""
        if value is None:
            return cls()
        if isinstance(value, Filters):
            return value
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise FilterInvalid(f"unknown filter {unknown[0]!r}")
        settings = dict(value)
        bands = settings.get("eq_bands", ())
        settings["eq_bands"] = tuple(band if isinstance(band, EqBand) else _band(band) for band in bands)
        loudness = settings.get("normalize")
        if loudness is not None and not isinstance(loudness, Normalize):
            settings["normalize"] = _normalize(loudness)
        return cls(**settings)

    @property
    def tempo(self) -> float:
        """Source seconds consumed per second of output (speed and rate; pitch keeps time)."""
        return self.speed * self.rate

    def to_json(self) -> dict[str, Any]:
        """The API's `filters` object with the keys that differ from the defaults."""
        neutral = Filters()
        return {
            item.name: _json_value(getattr(self, item.name))
            for item in fields(self)
            if getattr(self, item.name) != getattr(neutral, item.name)
        }

    def changed(self, **settings: Any) -> Filters:
        """A copy with `settings` changed (checked like the constructor)."""
        return replace(self, **settings)


def _band(value: Any) -> EqBand:
    if not isinstance(value, Mapping) or not {"freq_hz", "gain_db"} <= set(value) <= {"freq_hz", "gain_db", "q"}:
        raise FilterInvalid(f"an eq band is an object with freq_hz, gain_db and q, got {value!r}")
    return EqBand(**value)


def _normalize(value: Any) -> Normalize:
    if not isinstance(value, Mapping) or not set(value) <= {"target_lufs"}:
        raise FilterInvalid(f"normalize is null or an object with target_lufs, got {value!r}")
    return Normalize(**value)


def _json_value(value: Any) -> Any:
    if isinstance(value, tuple):
        return [asdict(item) for item in value]
    if isinstance(value, Normalize):
        return asdict(value)
    return value


@dataclass(frozen=True)
class TranscodeRequest:
    """One transcode: the source and everything the API's POST body can say."""

    source_url: str
    output_format: OutputFormat = "opus"
    sample_rate: int = 48_000
    channels: int = 2
    bitrate_kbps: int = 128
    start_seconds: float = 0.0
    duration_seconds: float | None = None
    filters: Filters = field(default_factory=Filters)

    def __post_init__(self) -> None:
        _check_url(self.source_url)
        if self.output_format not in OUTPUT_FORMATS:
            raise InvalidRequest(
                f"output_format must be one of {', '.join(OUTPUT_FORMATS)}, got {self.output_format!r}"
            )
        _whole(self.sample_rate, "sample_rate", *SAMPLE_RATES_HZ[self.output_format])
        _whole(self.channels, "channels", 1, 2)
        _whole(self.bitrate_kbps, "bitrate_kbps", *BITRATES_KBPS[self.output_format])
        _number(self.start_seconds, "start_seconds", 0, math.inf, InvalidRequest)
        if self.duration_seconds is not None:
            _number(self.duration_seconds, "duration_seconds", 0, math.inf, InvalidRequest)
            if self.duration_seconds <= 0:
                raise InvalidRequest(f"duration_seconds must be > 0, got {self.duration_seconds!r}")
        object.__setattr__(self, "filters", Filters.of(self.filters))

    @property
    def stream_rate_hz(self) -> int:
        """The sample rate of the output stream (Ogg Opus always runs at 48 kHz)."""
        return OPUS_STREAM_RATE_HZ if self.output_format == "opus" else self.sample_rate

    def to_json(self) -> dict[str, Any]:
        """The POST /transcode body."""
        body: dict[str, Any] = {
            "source_url": self.source_url,
            "output_format": self.output_format,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "bitrate_kbps": self.bitrate_kbps,
            "start_seconds": self.start_seconds,
            "filters": self.filters.to_json(),
        }
        if self.duration_seconds is not None:
            body["duration_seconds"] = self.duration_seconds
        return body

    def source_position(self, output_secs: float) -> float:
        """The source position (seconds) reached after `output_secs` of output."""
        return self.start_seconds + output_secs * self.filters.tempo

    def continued_after(self, output_secs: float) -> TranscodeRequest | None:
        """The request for the rest of the stream once `output_secs` were played, or None
        when a duration limit is already reached."""
        remaining = None
        if self.duration_seconds is not None:
            remaining = self.duration_seconds - output_secs
            if remaining <= 0:
                return None
        return replace(self, start_seconds=self.source_position(output_secs), duration_seconds=remaining)


def _check_url(url: Any) -> None:
    if not isinstance(url, str) or not url:
        raise InvalidRequest(f"source_url must be a URL, got {url!r}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UrlForbidden(f"source_url must be http or https, got {parts.scheme or 'no'} scheme")
    if parts.username is not None or parts.password is not None:
        raise UrlForbidden("source_url must not carry credentials")
    if not parts.hostname:
        raise InvalidRequest("source_url has no host")
