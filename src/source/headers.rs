//! What response headers say: the source's metadata, Range support, live-stream
//! markers, the `If-Range` validator, and whether a 206 continues the same body.

use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Response, StatusCode};

use super::{SourceError, SourceMeta};

/// What the headers of the first response say.
pub(super) fn meta_of(response: &Response) -> SourceMeta {
    let headers = response.headers();
    let content_length = header_str(headers, header::CONTENT_LENGTH).and_then(|v| v.parse().ok());
    SourceMeta {
        final_url: response.url().clone(),
        content_type: header_str(headers, header::CONTENT_TYPE).map(str::to_owned),
        content_length,
        seekable: content_length.is_some() && accepts_ranges(headers) == Some(true),
    }
}

/// `Some(true)` for `Accept-Ranges: bytes`, `Some(false)` for `none`, `None` when absent.
pub(super) fn accepts_ranges(headers: &HeaderMap) -> Option<bool> {
    header_str(headers, header::ACCEPT_RANGES).map(|v| v.to_ascii_lowercase().contains("bytes"))
}

/// Whether the response looks like an endless live stream: it has an `icy-*`
/// (Shoutcast, Icecast) or `ice-*` (Icecast) header.
pub(super) fn looks_live(headers: &HeaderMap) -> bool {
    headers.keys().any(|name| {
        let name = name.as_str();
        name.starts_with("icy-") || name.starts_with("ice-")
    })
}

/// The validator for `If-Range`: a strong ETag, else Last-Modified.
pub(super) fn validator_of(headers: &HeaderMap) -> Option<HeaderValue> {
    let strong_etag = headers
        .get(header::ETAG)
        .filter(|etag| !etag.as_bytes().starts_with(b"W/"));
    strong_etag
        .or_else(|| headers.get(header::LAST_MODIFIED))
        .cloned()
}

/// Checks that `response` (to a Range request from `start`) continues the same body:
/// a 206 whose Content-Range starts at `start` and whose total matches `total`.
pub(super) fn check_partial(
    response: &Response,
    start: u64,
    total: Option<u64>,
) -> Result<(), SourceError> {
    if response.status() != StatusCode::PARTIAL_CONTENT {
        return Err(SourceError::Interrupted(format!(
            "the source changed or ignores ranges: a Range request got {}",
            response.status()
        )));
    }
    let range = header_str(response.headers(), header::CONTENT_RANGE).unwrap_or_default();
    let (first, size) = parse_content_range(range)
        .ok_or_else(|| SourceError::Interrupted(format!("bad Content-Range {range:?}")))?;
    let wrong_size = matches!((size, total), (Some(a), Some(b)) if a != b);
    if first != start || wrong_size {
        return Err(SourceError::Interrupted(format!(
            "asked for bytes from {start} of {total:?}, got Content-Range {range:?}"
        )));
    }
    Ok(())
}

/// `bytes FIRST-LAST/SIZE` (SIZE may be `*`) -> (FIRST, SIZE).
fn parse_content_range(text: &str) -> Option<(u64, Option<u64>)> {
    let (span, size) = text.trim().strip_prefix("bytes ")?.split_once('/')?;
    let (first, _last) = span.trim().split_once('-')?;
    let size = match size.trim() {
        "*" => None,
        size => Some(size.parse().ok()?),
    };
    Some((first.trim().parse().ok()?, size))
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_parsing() {
        assert_eq!(
            parse_content_range("bytes 100-199/1000"),
            Some((100, Some(1000)))
        );
        assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, None)));
        assert_eq!(parse_content_range("bytes */1000"), None);
        assert_eq!(parse_content_range("items 1-2/3"), None);
    }

    #[test]
    fn icy_and_ice_headers_mark_live_streams() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/mpeg"));
        headers.insert("x-icy", HeaderValue::from_static("1"));
        assert!(!looks_live(&headers));
        for name in ["icy-name", "ice-audio-info", "ICY-METAINT"] {
            let mut live = headers.clone();
            live.insert(
                header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_static("1"),
            );
            assert!(looks_live(&live), "{name}");
        }
    }

    #[test]
    fn validators_prefer_strong_etags() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::LAST_MODIFIED,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        headers.insert(header::ETAG, HeaderValue::from_static("W/\"weak\""));
        assert_eq!(
            validator_of(&headers).unwrap(),
            "Wed, 21 Oct 2015 07:28:00 GMT"
        );
        headers.insert(header::ETAG, HeaderValue::from_static("\"strong\""));
        assert_eq!(validator_of(&headers).unwrap(), "\"strong\"");
    }
}
