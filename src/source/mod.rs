//! Fetching sources over HTTP: the only reqwest user.
//!
//! A [`Fetcher`] opens an `http`/`https` URL behind an SSRF guard (`guard`: which URLs
//! and addresses are allowed; `resolve`: a DNS resolver that refuses names with any
//! forbidden answer), follows redirects itself so that every hop is checked, and hands
//! back a [`RemoteSource`]: a blocking, seekable (HTTP Range) `MediaSource` for the
//! decoder, fed by a download task through a bounded buffer. A body that drops or goes
//! silent is resumed where it stopped (`Range` + `If-Range`) when the origin serves
//! ranges, reconnected when it is a live stream (`icy-*`/`ice-*` headers), else fails.
//!
//! Every limit is enforced here, once: connect, start and idle timeouts, redirects,
//! resumes and the source size. Knows nothing of decoding, the pipeline or the HTTP API.

mod download;
mod fetch;
mod guard;
mod headers;
mod remote;
mod resolve;

use std::time::Duration;

use prometheus::IntCounter;

pub use fetch::Fetcher;
pub use guard::parse_allow_nets;
pub use remote::RemoteSource;

/// Limits applied to every source.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceLimits {
    /// Time allowed for a TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Bound on [`Fetcher::open`] (DNS, connect and response headers, over all redirect
    /// hops) and on each Range re-request.
    pub start_timeout: Duration,
    /// Longest wait for the next body byte; then the connection counts as dead (e.g.
    /// half-open) and is resumed like a dropped one.
    pub read_idle_timeout: Duration,
    /// Largest source accepted. A declared `Content-Length` over it fails at open with
    /// [`SourceError::TooLarge`]. A body without a `Content-Length` (a live stream) has
    /// no byte limit here: the service caps such streams by output duration.
    pub max_source_bytes: u64,
    /// Redirects followed per request.
    pub max_redirects: usize,
    /// Times a dropped or silent body is resumed (or a live stream reconnected) per
    /// source.
    pub max_resumes: u32,
}

impl Default for SourceLimits {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            start_timeout: Duration::from_secs(10),
            read_idle_timeout: Duration::from_secs(30),
            max_source_bytes: 512 * 1024 * 1024,
            max_redirects: 5,
            max_resumes: 3,
        }
    }
}

/// Counters the fetcher updates; `Default` gives fresh, unregistered counters.
#[derive(Clone)]
pub struct SourceCounters {
    /// Every body byte received from any origin.
    pub bytes: IntCounter,
    /// Every successful resume (Range) or reconnect (endless stream).
    pub resumes: IntCounter,
}

impl Default for SourceCounters {
    fn default() -> Self {
        Self {
            bytes: counter("source_bytes_total", "Source body bytes received."),
            resumes: counter("upstream_resumes_total", "Dropped sources resumed."),
        }
    }
}

fn counter(name: &str, help: &str) -> IntCounter {
    IntCounter::new(name, help).expect("a valid metric name and help text")
}

/// What the origin said about the source when it was opened.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceMeta {
    /// The URL after all redirects.
    pub final_url: url::Url,
    /// The `Content-Type` header, when present.
    pub content_type: Option<String>,
    /// The `Content-Length` header; `None` for chunked bodies and live streams.
    pub content_length: Option<u64>,
    /// Whether the source can seek: the length is known and the origin accepts ranges.
    pub seekable: bool,
}

impl SourceMeta {
    /// The lowercased extension of the final URL's path, e.g. `mp3`.
    pub fn extension(&self) -> Option<String> {
        let name = self.final_url.path_segments()?.next_back()?;
        let (stem, extension) = name.rsplit_once('.')?;
        (!stem.is_empty() && !extension.is_empty()).then(|| extension.to_ascii_lowercase())
    }
}

/// Why a source could not be opened or read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SourceError {
    /// The URL cannot be parsed or has no host.
    #[error("invalid source URL: {0}")]
    InvalidUrl(String),
    /// The URL is not allowed: scheme, credentials, or a forbidden address (as written,
    /// resolved, or on a redirect hop).
    #[error("source URL forbidden: {0}")]
    Forbidden(String),
    /// DNS or connect failure, TLS failure, a non-2xx answer, too many redirects, or a
    /// failed re-request (seek).
    #[error("source unreachable: {0}")]
    Unreachable(String),
    /// The source is larger than [`SourceLimits::max_source_bytes`].
    #[error("source larger than the limit of {limit_bytes} bytes")]
    TooLarge {
        /// The limit that was exceeded.
        limit_bytes: u64,
    },
    /// The origin did not answer within the start timeout, or sent no byte for the
    /// read idle timeout and could not be resumed.
    #[error("source timed out: {0}")]
    Timeout(String),
    /// A seek the origin cannot serve (no Range support, or an unknown length).
    #[error("the source cannot seek there: the origin does not support Range requests")]
    NotSeekable,
    /// The body broke off and could not be resumed (or, without a length, Range
    /// support or live headers, restarting it would repeat audio).
    #[error("the source was interrupted: {0}")]
    Interrupted(String),
    /// The cancellation token fired.
    #[error("the source was cancelled")]
    Cancelled,
}

impl SourceError {
    /// This error as an `io::Error` (kind `Other`, never `UnexpectedEof`, which decoders
    /// take for a clean end).
    fn into_io(self) -> std::io::Error {
        std::io::Error::other(self)
    }
}

/// The [`SourceError`] inside an `io::Error` returned by [`RemoteSource`] reads and
/// seeks, if it is one.
pub fn source_error(err: &std::io::Error) -> Option<&SourceError> {
    err.get_ref()?.downcast_ref::<SourceError>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(url: &str) -> SourceMeta {
        SourceMeta {
            final_url: url.parse().unwrap(),
            content_type: None,
            content_length: None,
            seekable: false,
        }
    }

    #[test]
    fn extension_comes_from_the_final_path() {
        assert_eq!(
            meta("http://a.example/x/Song.MP3?q=1")
                .extension()
                .as_deref(),
            Some("mp3")
        );
        assert_eq!(meta("http://a.example/x.y/stream").extension(), None);
        assert_eq!(meta("http://a.example/").extension(), None);
        assert_eq!(meta("http://a.example/.hidden").extension(), None);
    }

    #[test]
    fn io_errors_keep_the_source_error() {
        let io = SourceError::Cancelled.into_io();
        assert_ne!(io.kind(), std::io::ErrorKind::UnexpectedEof);
        assert!(matches!(source_error(&io), Some(SourceError::Cancelled)));
        assert!(source_error(&std::io::Error::other("x")).is_none());
    }
}
