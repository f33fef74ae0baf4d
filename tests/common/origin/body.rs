//! How the origin sends one body: Range handling, chunking, dripping, and the ways a
//! body can end (complete, hanging, or with the connection dropped).

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::header;
use axum::response::Response;
use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt};

use super::Recorded;

/// How one response body is sent.
pub(super) struct Plan {
    pub(super) ranges: bool,
    pub(super) chunked: bool,
    /// Send at most this many bytes, then `tail`.
    pub(super) limit: Option<usize>,
    /// Whether `limit` counts from byte 0 of the data rather than from the requested
    /// start.
    pub(super) absolute: bool,
    pub(super) tail: Tail,
    pub(super) drip: Option<usize>,
    /// Send an `icy-name` header, like an Icecast stream.
    pub(super) icy: bool,
}

/// What follows the bytes sent.
pub(super) enum Tail {
    /// The body ends.
    Complete,
    /// The body hangs.
    Stall,
    /// The connection drops.
    Die,
}

impl Plan {
    /// The whole body, with or without Range support.
    pub(super) fn new(ranges: bool) -> Self {
        Self {
            ranges,
            chunked: false,
            limit: None,
            absolute: false,
            tail: Tail::Complete,
            drip: None,
            icy: false,
        }
    }

    /// Without a Content-Length (chunked transfer encoding).
    pub(super) fn chunked(mut self) -> Self {
        self.chunked = true;
        self
    }

    /// Only the first `after` bytes, then `tail`.
    pub(super) fn cut(mut self, after: usize, tail: Tail) -> Self {
        self.limit = Some(after);
        self.tail = tail;
        self
    }

    /// Only the data before byte `at` of the whole (whatever the requested start),
    /// then `tail`.
    pub(super) fn cut_at(self, at: usize, tail: Tail) -> Self {
        Self {
            absolute: true,
            ..self.cut(at, tail)
        }
    }
}

/// The response to `request` for `data` (served as `name`), counting body bytes in `sent`.
pub(super) fn respond(
    sent: &Arc<AtomicU64>,
    name: &str,
    data: Bytes,
    plan: &Plan,
    request: &Recorded,
) -> Response {
    let etag = format!("\"v1-{}\"", data.len());
    let mut builder = Response::builder().header(header::CONTENT_TYPE, content_type(name));
    if plan.icy {
        builder = builder.header("icy-name", "Loopback Radio");
    }
    let mut start = 0;
    if plan.ranges {
        builder = builder
            .header(header::ACCEPT_RANGES, "bytes")
            .header(header::ETAG, &etag);
        let fresh = request.if_range.as_ref().is_none_or(|v| *v == etag);
        if let Some(first) = request
            .range
            .as_deref()
            .and_then(range_start)
            .filter(|_| fresh)
        {
            if first >= data.len() {
                let range = format!("bytes */{}", data.len());
                return builder
                    .status(416)
                    .header(header::CONTENT_RANGE, range)
                    .body(Body::empty())
                    .unwrap();
            }
            let range = format!("bytes {first}-{}/{}", data.len() - 1, data.len());
            builder = builder.status(206).header(header::CONTENT_RANGE, range);
            start = first;
        }
    }
    let body = data.slice(start..);
    if !plan.chunked {
        builder = builder.header(header::CONTENT_LENGTH, body.len());
    }
    let limit = plan.limit.map(|limit| {
        if plan.absolute {
            limit.saturating_sub(start)
        } else {
            limit
        }
    });
    let sent_part = body.slice(..limit.map_or(body.len(), |limit| limit.min(body.len())));
    builder
        .body(Body::from_stream(body_stream(sent, sent_part, plan)))
        .unwrap()
}

/// `bytes`, in chunks (dripped if asked), then the plan's tail.
fn body_stream(
    sent: &Arc<AtomicU64>,
    bytes: Bytes,
    plan: &Plan,
) -> BoxStream<'static, io::Result<Bytes>> {
    let (size, delay) = match plan.drip {
        Some(rate) => ((rate / 20).max(1), Some(Duration::from_millis(50))),
        None => (64 * 1024, None),
    };
    let chunks: Vec<Bytes> = (0..bytes.len())
        .step_by(size)
        .map(|at| bytes.slice(at..(at + size).min(bytes.len())))
        .collect();
    let sent = Arc::clone(sent);
    let counted = stream::iter(chunks).then(move |chunk| {
        let sent = Arc::clone(&sent);
        async move {
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
            sent.fetch_add(chunk.len() as u64, Ordering::SeqCst);
            Ok(chunk)
        }
    });
    match plan.tail {
        Tail::Complete => counted.boxed(),
        Tail::Stall => counted.chain(stream::pending()).boxed(),
        Tail::Die => counted
            .chain(stream::once(async {
                // Let the server flush what it has before the connection is dropped.
                tokio::time::sleep(Duration::from_millis(50)).await;
                Err(io::Error::other("the origin died"))
            }))
            .boxed(),
    }
}

/// `bytes=N-` or `bytes=N-M` -> N.
fn range_start(range: &str) -> Option<usize> {
    range
        .strip_prefix("bytes=")?
        .split_once('-')?
        .0
        .trim()
        .parse()
        .ok()
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("flac") => "audio/flac",
        Some("mp3") => "audio/mpeg",
        Some("m4a") => "audio/mp4",
        Some("wav") => "audio/wav",
        _ => "application/octet-stream",
    }
}
