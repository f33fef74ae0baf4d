"""Typed errors of the transcode client: one class per error code of the service, plus
the client's own failures (service unavailable, fallback failed)."""

from __future__ import annotations


class TranscodeError(Exception):
    """A transcode that could not be served; `code` is the service's error code."""

    code = "TRANSCODE_FAILED"

    def __init__(self, message: str, *, status: int | None = None, transcode_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.transcode_id = transcode_id

    def __str__(self) -> str:
        where = f" (transcode {self.transcode_id})" if self.transcode_id else ""
        return f"{self.code}: {self.message}{where}"


class InvalidRequest(TranscodeError):
    """400/413: malformed or out-of-range request fields."""

    code = "INVALID_REQUEST"


class FilterInvalid(TranscodeError):
    """400: a filter value out of range, or an unknown filter key or preset."""

    code = "FILTER_INVALID"


class UrlForbidden(TranscodeError):
    """403: the source URL's scheme, credentials or address are not allowed."""

    code = "URL_FORBIDDEN"


class Unauthorized(TranscodeError):
    """401: the service wants an API token this client did not send."""

    code = "UNAUTHORIZED"


class NotFound(TranscodeError):
    """404: an unknown route, or a transcode id that is not running."""

    code = "NOT_FOUND"


class MethodNotAllowed(TranscodeError):
    """405: the route exists but not for this method."""

    code = "METHOD_NOT_ALLOWED"


class SourceTooLarge(TranscodeError):
    """413: the source is over the service's size limit."""

    code = "SOURCE_TOO_LARGE"


class UnsupportedFormat(TranscodeError):
    """415: the source is not audio the service can decode."""

    code = "UNSUPPORTED_FORMAT"


class RangeInvalid(TranscodeError):
    """416: start_seconds is beyond the end of the source."""

    code = "RANGE_INVALID"


class InternalError(TranscodeError):
    """500: the service failed."""

    code = "INTERNAL"


class SourceUnreachable(TranscodeError):
    """502: the service could not fetch the source."""

    code = "SOURCE_UNREACHABLE"


class CapacityExceeded(TranscodeError):
    """503: every stream slot of the service is busy."""

    code = "CAPACITY_EXCEEDED"


class ShuttingDown(TranscodeError):
    """503: the service is draining."""

    code = "SHUTTING_DOWN"


class SourceTimeout(TranscodeError):
    """504: the source did not deliver enough to start in time."""

    code = "TIMEOUT"


class ServiceUnavailable(TranscodeError):
    """The service could not be used (down, hung, failing, breaker open) and the
    fallback is switched off."""

    code = "SERVICE_UNAVAILABLE"


class FallbackFailed(TranscodeError):
    """The ffmpeg fallback could not start or ended with an error; `stderr_tail` holds
    the last lines it wrote."""

    code = "FALLBACK_FAILED"

    def __init__(self, message: str, *, stderr_tail: str = "") -> None:
        super().__init__(f"{message}: {stderr_tail}" if stderr_tail else message)
        self.stderr_tail = stderr_tail


ERRORS_BY_CODE: dict[str, type[TranscodeError]] = {
    error.code: error
    for error in (
        InvalidRequest,
        FilterInvalid,
        UrlForbidden,
        Unauthorized,
        NotFound,
        MethodNotAllowed,
        SourceTooLarge,
        UnsupportedFormat,
        RangeInvalid,
        InternalError,
        SourceUnreachable,
        CapacityExceeded,
        ShuttingDown,
        SourceTimeout,
    )
}
