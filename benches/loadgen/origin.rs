//! The loopback origin: one file served from memory over HTTP/1.1 on `127.0.0.1:0`, with
//! `Content-Length`, `Accept-Ranges`, a strong ETag and `Range: bytes=A-[B]` (206). It
//! notes when every request arrives, so first-byte time can be split at the origin.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use bytes::Bytes;

/// One request the origin received.
#[derive(Debug, Clone)]
pub struct Hit {
    /// When its headers were in.
    pub at: Instant,
    /// Its `Range` header, if any.
    pub range: Option<String>,
}

/// A running origin, serving on the current tokio runtime until the runtime stops.
pub struct Origin {
    addr: SocketAddr,
    name: String,
    shared: Arc<Shared>,
}

struct Shared {
    file: Bytes,
    /// Sending rate per response in bytes per second; `None` = as fast as TCP allows.
    rate: Option<f64>,
    hits: Mutex<Vec<Hit>>,
}

/// Bytes per body chunk when the rate is limited.
const PACED_CHUNK_BYTES: usize = 16 * 1024;

impl Origin {
    /// Serves `file` as `/{name}` on a fresh loopback port, each response at up to
    /// `rate` bytes per second (`None`: unlimited).
    pub async fn start(name: &str, file: Bytes, rate: Option<f64>) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            file,
            rate,
            hits: Mutex::default(),
        });
        let app = Router::new()
            .route(&format!("/{name}"), get(serve))
            .with_state(Arc::clone(&shared));
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                eprintln!("origin stopped: {error}");
            }
        });
        Ok(Self {
            addr,
            name: name.to_owned(),
            shared,
        })
    }

    /// The file's URL.
    pub fn url(&self) -> String {
        format!("http://{}/{}", self.addr, self.name)
    }

    /// Takes the requests received since the last call.
    pub fn take_hits(&self) -> Vec<Hit> {
        let mut hits = self
            .shared
            .hits
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut *hits)
    }
}

async fn serve(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let range = headers
        .get(header::RANGE)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    shared
        .hits
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Hit {
            at: Instant::now(),
            range: range.clone(),
        });
    let total = shared.file.len();
    let (status, span) = match range.as_deref().map(|text| parse_range(text, total)) {
        None => (StatusCode::OK, 0..total),
        Some(Some(span)) => (StatusCode::PARTIAL_CONTENT, span),
        Some(None) => return status_only(StatusCode::RANGE_NOT_SATISFIABLE, total),
    };
    let body = shared.file.slice(span.clone());
    let body = match shared.rate {
        Some(rate) => paced_body(body, rate),
        None => Body::from(body),
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/mpeg"));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(header::ETAG, HeaderValue::from_static("\"loadgen\""));
    if status == StatusCode::PARTIAL_CONTENT {
        let content_range = format!("bytes {}-{}/{total}", span.start, span.end - 1);
        if let Ok(value) = HeaderValue::from_str(&content_range) {
            headers.insert(header::CONTENT_RANGE, value);
        }
    }
    response
}

/// `body` in chunks sent no faster than `rate` bytes per second (the first at once).
fn paced_body(body: Bytes, rate: f64) -> Body {
    let started = tokio::time::Instant::now();
    let chunks = futures_util::stream::unfold(0, move |sent| {
        let body = body.clone();
        async move {
            if sent >= body.len() {
                return None;
            }
            tokio::time::sleep_until(started + Duration::from_secs_f64(sent as f64 / rate)).await;
            let end = (sent + PACED_CHUNK_BYTES).min(body.len());
            Some((
                Ok::<_, std::convert::Infallible>(body.slice(sent..end)),
                end,
            ))
        }
    });
    Body::from_stream(chunks)
}

fn status_only(status: StatusCode, total: usize) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    if let Ok(value) = HeaderValue::from_str(&format!("bytes */{total}")) {
        response.headers_mut().insert(header::CONTENT_RANGE, value);
    }
    response
}

/// `bytes=A-` or `bytes=A-B` within a body of `total` bytes -> the half-open span;
/// `None` when unsatisfiable or not of that form (suffix and multi-ranges are not needed).
fn parse_range(text: &str, total: usize) -> Option<std::ops::Range<usize>> {
    let (first, last) = text.trim().strip_prefix("bytes=")?.split_once('-')?;
    let first: usize = first.trim().parse().ok()?;
    let end = match last.trim() {
        "" => total,
        last => last.parse::<usize>().ok()?.saturating_add(1).min(total),
    };
    (first < end).then_some(first..end)
}
