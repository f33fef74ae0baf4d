//! The HTTP API (SPEC section 2): routes, handlers and the shared state. The only axum
//! user; every error it answers is a [`ServiceError`] rendered as the spec's JSON.

mod query;
mod request;
mod response;
mod transcode;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch};
use axum::{Json, Router};
use serde::Serialize;
use subtle::ConstantTimeEq;

use crate::config::Config;
use crate::error::{ErrorCode, ServiceError};
use crate::metrics::Metrics;
use crate::source::Fetcher;
use crate::streams::Streams;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The `X-Pipeline` of every stream (and its metrics label): sources are always decoded
/// natively; Opus passthrough and the ffmpeg decode fallback are not built.
const PIPELINE: &str = "native";

/// Everything the handlers share.
pub struct AppState {
    /// The configuration the service started with.
    pub config: Config,
    /// Fetches sources behind the SSRF guard.
    pub fetcher: Fetcher,
    /// Stream slots and live filter channels.
    pub streams: Arc<Streams>,
    /// Prometheus metrics.
    pub metrics: Metrics,
    started: Instant,
    draining: AtomicBool,
    ffmpeg_version: Option<String>,
}

impl AppState {
    /// State for `config`, fetching with the system resolver.
    pub fn try_new(config: Config) -> anyhow::Result<Arc<Self>> {
        let fetcher = Fetcher::try_new(config.source_limits(), config.allow_nets.clone())?;
        Self::with_fetcher(config, fetcher)
    }

    /// State for `config` with a given fetcher (tests inject name resolution).
    pub fn with_fetcher(config: Config, fetcher: Fetcher) -> anyhow::Result<Arc<Self>> {
        let metrics = Metrics::try_new()?;
        // Every code's series exists from the start (at 0), so rates and alerts work
        // before the first error.
        for code in ErrorCode::ALL {
            metrics.errors_total.with_label_values(&[code.as_str()]);
        }
        Ok(Arc::new(Self {
            fetcher: fetcher.with_counters(metrics.source_counters()),
            streams: Streams::new(config.max_streams, metrics.active_streams.clone()),
            metrics,
            config,
            started: Instant::now(),
            draining: AtomicBool::new(false),
            ffmpeg_version: detect_ffmpeg_version(),
        }))
    }

    /// From now on /health reports draining and new streams are refused.
    pub fn begin_drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Whether the server is draining.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Counts an error answered to a client.
    fn count_error(&self, error: &ServiceError) {
        self.metrics
            .errors_total
            .with_label_values(&[error.code.as_str()])
            .inc();
    }
}

/// The service's routes over `state`.
pub fn app(state: Arc<AppState>) -> Router {
    let transcode_routes = Router::new()
        .route("/transcode", get(transcode::get).post(transcode::post))
        .route("/transcode/{transcode_id}", patch(transcode::patch))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            require_token,
        ));
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .merge(transcode_routes)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Refuses /transcode requests without the configured bearer token.
async fn require_token(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(expected) = &state.config.api_token else {
        return next.run(request).await;
    };
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().split_once(' '))
        // The scheme name is case-insensitive (RFC 9110 §11.1).
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map_or("", |(_, token)| token.trim_start());
    if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        return next.run(request).await;
    }
    let error = ServiceError::new(ErrorCode::Unauthorized, "a valid bearer token is required");
    state.count_error(&error);
    let mut response = error.into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// `GET /health` body.
#[derive(Serialize)]
struct Health {
    status: &'static str,
    version: &'static str,
    uptime_seconds: f64,
    ffmpeg_version: Option<String>,
    active_streams: usize,
    max_streams: usize,
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    let (status_code, status) = match (state.is_draining(), &state.ffmpeg_version) {
        (true, _) => (StatusCode::SERVICE_UNAVAILABLE, "draining"),
        (false, None) => (StatusCode::OK, "degraded"),
        (false, Some(_)) => (StatusCode::OK, "ok"),
    };
    let body = Health {
        status,
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: state.started.elapsed().as_secs_f64(),
        ffmpeg_version: state.ffmpeg_version.clone(),
        active_streams: state.streams.active(),
        max_streams: state.streams.max_streams(),
    };
    (status_code, Json(body)).into_response()
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        state.metrics.render(),
    )
        .into_response()
}

async fn not_found(State(state): State<Arc<AppState>>) -> ServiceError {
    let error = ServiceError::new(ErrorCode::NotFound, "no such route");
    state.count_error(&error);
    error
}

async fn method_not_allowed(State(state): State<Arc<AppState>>) -> ServiceError {
    let error = ServiceError::new(
        ErrorCode::MethodNotAllowed,
        "this method is not served on this route",
    );
    state.count_error(&error);
    error
}

/// The version of the `ffmpeg` on the PATH (the decode fallback), e.g. `5.1.6-0+deb12u1`.
fn detect_ffmpeg_version() -> Option<String> {
    let output = std::process::Command::new("ffmpeg")
        .arg("-version")
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let version = text.lines().next()?.strip_prefix("ffmpeg version ")?;
    version.split_whitespace().next().map(str::to_owned)
}
