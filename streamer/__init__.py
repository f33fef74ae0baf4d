"""Client of the rust-transcoder service for the Telegram streamer: streams transcoded
audio from the service, with retry, a circuit breaker and a local ffmpeg fallback."""

from .errors import (
    CapacityExceeded,
    FallbackFailed,
    FilterInvalid,
    InternalError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    RangeInvalid,
    ServiceUnavailable,
    ShuttingDown,
    SourceTimeout,
    SourceTooLarge,
    SourceUnreachable,
    TranscodeError,
    Unauthorized,
    UnsupportedFormat,
    UrlForbidden,
)
from .options import EqBand, Filters, Normalize, TranscodeRequest
from .transcode_client import TranscodeClient, TranscodeStream

__all__ = [
    "CapacityExceeded",
    "EqBand",
    "FallbackFailed",
    "FilterInvalid",
    "Filters",
    "InternalError",
    "InvalidRequest",
    "MethodNotAllowed",
    "Normalize",
    "NotFound",
    "RangeInvalid",
    "ServiceUnavailable",
    "ShuttingDown",
    "SourceTimeout",
    "SourceTooLarge",
    "SourceUnreachable",
    "TranscodeClient",
    "TranscodeError",
    "TranscodeRequest",
    "TranscodeStream",
    "Unauthorized",
    "UnsupportedFormat",
    "UrlForbidden",
]
