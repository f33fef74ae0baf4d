"""Client of the rust-transcoder service for the Telegram streamer: streams transcoded
audio from the service, with retry, a circuit breaker and a local ffmpeg fallback."""

from .breaker import BreakerState, CircuitBreaker
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
from .retry import RetryPolicy
from .transcode_client import Timeouts, TranscodeClient, TranscodeStream

__all__ = [
    "BreakerState",
    "CapacityExceeded",
    "CircuitBreaker",
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
    "RetryPolicy",
    "ServiceUnavailable",
    "ShuttingDown",
    "SourceTimeout",
    "SourceTooLarge",
    "SourceUnreachable",
    "Timeouts",
    "TranscodeClient",
    "TranscodeError",
    "TranscodeRequest",
    "TranscodeStream",
    "Unauthorized",
    "UnsupportedFormat",
    "UrlForbidden",
]
