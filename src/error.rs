//! The service's error type: every failure a client can see, with its code and HTTP
//! status. The one place where module errors become HTTP answers.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use uuid::Uuid;

use crate::decode::DecodeError;
use crate::encode::EncodeError;
use crate::job::JobError;
use crate::pipeline::PipelineError;
use crate::source::{SourceError, source_error};

/// The error codes of the API, as they appear in error bodies and metrics labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// Malformed or out-of-range request (400; 413 for a body over the limit).
    InvalidRequest,
    /// A filter value out of range, or an unknown filter key or preset (400).
    FilterInvalid,
    /// The source URL is not allowed (403).
    UrlForbidden,
    /// The source could not be fetched (502).
    SourceUnreachable,
    /// The source is over the size limit (413).
    SourceTooLarge,
    /// The source is not audio we can decode (415).
    UnsupportedFormat,
    /// `start_seconds` lies beyond the end of the source (416).
    RangeInvalid,
    /// Every stream slot is busy (503, with `Retry-After`).
    CapacityExceeded,
    /// The source did not deliver in time (504).
    Timeout,
    /// Unknown route, or no such running stream (404).
    NotFound,
    /// The API token is missing or wrong (401).
    Unauthorized,
    /// The server is draining (503).
    ShuttingDown,
    /// The method is not served on this route (405).
    MethodNotAllowed,
    /// Something failed inside the service (500); details are logged, not returned.
    Internal,
}

impl ErrorCode {
    /// Every code, for documentation and contract tests.
    pub const ALL: [ErrorCode; 14] = [
        Self::InvalidRequest,
        Self::FilterInvalid,
        Self::UrlForbidden,
        Self::SourceUnreachable,
        Self::SourceTooLarge,
        Self::UnsupportedFormat,
        Self::RangeInvalid,
        Self::CapacityExceeded,
        Self::Timeout,
        Self::NotFound,
        Self::Unauthorized,
        Self::ShuttingDown,
        Self::MethodNotAllowed,
        Self::Internal,
    ];

    /// The HTTP status this code is answered with.
    pub fn status(self) -> StatusCode {
        match self {
            Self::InvalidRequest | Self::FilterInvalid => StatusCode::BAD_REQUEST,
            Self::UrlForbidden => StatusCode::FORBIDDEN,
            Self::SourceUnreachable => StatusCode::BAD_GATEWAY,
            Self::SourceTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedFormat => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RangeInvalid => StatusCode::RANGE_NOT_SATISFIABLE,
            Self::CapacityExceeded | Self::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            Self::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The code as written on the wire, e.g. `SOURCE_UNREACHABLE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "INVALID_REQUEST",
            Self::FilterInvalid => "FILTER_INVALID",
            Self::UrlForbidden => "URL_FORBIDDEN",
            Self::SourceUnreachable => "SOURCE_UNREACHABLE",
            Self::SourceTooLarge => "SOURCE_TOO_LARGE",
            Self::UnsupportedFormat => "UNSUPPORTED_FORMAT",
            Self::RangeInvalid => "RANGE_INVALID",
            Self::CapacityExceeded => "CAPACITY_EXCEEDED",
            Self::Timeout => "TIMEOUT",
            Self::NotFound => "NOT_FOUND",
            Self::Unauthorized => "UNAUTHORIZED",
            Self::ShuttingDown => "SHUTTING_DOWN",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::Internal => "INTERNAL",
        }
    }
}

/// A failure answered to a client: its code, a human message and the request's id.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct ServiceError {
    /// What kind of failure.
    pub code: ErrorCode,
    /// Specific for 4xx; generic for 5xx (the details go to the log).
    pub message: String,
    /// The request's id; a fresh one when the request never got one.
    pub transcode_id: Uuid,
    /// Seconds for a `Retry-After` header.
    pub retry_after_secs: Option<u32>,
    /// A 413 status for INVALID_REQUEST (a body over the limit).
    pub status_override: Option<StatusCode>,
}

impl ServiceError {
    /// An error with `code` and `message`, not yet tied to a request.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            transcode_id: Uuid::new_v4(),
            retry_after_secs: None,
            status_override: None,
        }
    }

    /// Ties the error to the request `id`.
    pub fn with_id(mut self, id: Uuid) -> Self {
        self.transcode_id = id;
        self
    }

    /// The status this error is answered with.
    pub fn status(&self) -> StatusCode {
        self.status_override.unwrap_or(self.code.status())
    }

    /// An internal failure: the client gets a generic message, the log gets `detail`.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "internal error");
        Self::new(ErrorCode::Internal, "internal error; see the server log")
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: ErrorCode,
    message: &'a str,
    transcode_id: Uuid,
}

impl IntoResponse for ServiceError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: &self.message,
                transcode_id: self.transcode_id,
            },
        };
        let mut response = (self.status(), Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<SourceError> for ServiceError {
    fn from(error: SourceError) -> Self {
        Self::from(&error)
    }
}

impl From<&SourceError> for ServiceError {
    fn from(error: &SourceError) -> Self {
        let code = match error {
            SourceError::InvalidUrl(_) => ErrorCode::InvalidRequest,
            SourceError::Forbidden(_) => ErrorCode::UrlForbidden,
            SourceError::Unreachable(_) | SourceError::Interrupted(_) => {
                ErrorCode::SourceUnreachable
            }
            SourceError::TooLarge { .. } => ErrorCode::SourceTooLarge,
            SourceError::Timeout(_) => ErrorCode::Timeout,
            SourceError::NotSeekable => ErrorCode::UnsupportedFormat,
            SourceError::Cancelled => ErrorCode::ShuttingDown,
        };
        Self::new(code, error.to_string())
    }
}

impl From<&DecodeError> for ServiceError {
    fn from(error: &DecodeError) -> Self {
        let DecodeError::Io(io) = error else {
            return Self::new(ErrorCode::UnsupportedFormat, error.to_string());
        };
        match source_error(io) {
            Some(SourceError::NotSeekable) => Self::new(
                ErrorCode::UnsupportedFormat,
                "this file needs seeking (e.g. an m4a with its index at the end) and the \
                 source does not support HTTP Range requests",
            ),
            Some(source) => Self::from(source),
            None => Self::new(
                ErrorCode::SourceUnreachable,
                format!("reading the source failed: {io}"),
            ),
        }
    }
}

impl From<&PipelineError> for ServiceError {
    fn from(error: &PipelineError) -> Self {
        let code = match error {
            PipelineError::Decode(decode) => return Self::from(decode),
            PipelineError::Encode(EncodeError::InvalidSpec(message)) => {
                return Self::new(ErrorCode::InvalidRequest, message.clone());
            }
            PipelineError::Encode(_) | PipelineError::SinkClosed => {
                return Self::internal(error);
            }
            PipelineError::Filter(_) => ErrorCode::FilterInvalid,
            PipelineError::InvalidTime { .. } => ErrorCode::InvalidRequest,
            PipelineError::StartBeyondEnd { .. } => ErrorCode::RangeInvalid,
        };
        Self::new(code, error.to_string())
    }
}

impl From<&JobError> for ServiceError {
    fn from(error: &JobError) -> Self {
        let code = match error {
            JobError::Pipeline(pipeline) => return Self::from(pipeline),
            JobError::Stalled(_) | JobError::ClientIdle(_) => ErrorCode::Timeout,
            JobError::DurationLimit(_) => ErrorCode::SourceTooLarge,
            JobError::Stopped => ErrorCode::ShuttingDown,
            JobError::Panicked(_) => return Self::internal(error),
        };
        Self::new(code, error.to_string())
    }
}

impl From<JobError> for ServiceError {
    fn from(error: JobError) -> Self {
        Self::from(&error)
    }
}
