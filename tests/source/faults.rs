//! Reading through the loopback origin: whole bodies, redirects, statuses, limits,
//! resumes after mid-body death or a half-open connection, bodies without a length
//! (resumed, reconnected when live, else interrupted), stalls, cancellation and the
//! bounded read-ahead.

use std::io::Read;
use std::time::{Duration, Instant};

use rust_transcoder::decode::MediaSource;
use rust_transcoder::source::{SourceError, SourceLimits};
use tokio_util::sync::CancellationToken;

use super::common::fixture_path;
use super::common::origin::{Behaviour, Origin};
use super::{Client, noise, read_all, test_limits};

const FLAC: &str = "flac_s16.flac";

fn flac_bytes() -> Vec<u8> {
    std::fs::read(fixture_path(FLAC)).unwrap()
}

#[test]
fn whole_bodies_read_byte_exact_with_and_without_ranges_or_length() {
    let origin = Origin::start();
    let expected = flac_bytes();
    let length = Some(expected.len() as u64);
    for (behaviour, content_length, seekable) in [
        (Behaviour::Plain, length, false),
        (Behaviour::Ranges, length, true),
        (Behaviour::Chunked, None, false),
    ] {
        let client = Client::loopback();
        let mut source = client.open(&origin.url(FLAC, behaviour.clone())).unwrap();
        let meta = source.meta().clone();
        assert_eq!(meta.content_length, content_length, "{behaviour:?}");
        assert_eq!(
            (meta.seekable, source.is_seekable()),
            (seekable, seekable),
            "{behaviour:?}"
        );
        assert_eq!(meta.extension().as_deref(), Some("flac"));
        assert_eq!(meta.content_type.as_deref(), Some("audio/flac"));
        assert!(read_all(&mut source).unwrap() == expected, "{behaviour:?}");
        assert_eq!(
            source.read(&mut [0; 16]).unwrap(),
            0,
            "the end stays the end"
        );
        assert_eq!(client.counters.bytes.get(), expected.len() as u64);
    }
}

#[test]
fn a_slow_drip_is_not_an_idle_timeout() {
    let origin = Origin::start();
    let limits = SourceLimits {
        read_idle_timeout: Duration::from_secs(2),
        ..test_limits()
    };
    let client = Client::new(limits, "127.0.0.1/32");
    let url = origin.url(
        FLAC,
        Behaviour::Drip {
            bytes_per_sec: 40_000,
        },
    );
    let mut source = client.open(&url).unwrap();
    assert!(read_all(&mut source).unwrap() == flac_bytes());
}

#[test]
fn five_redirects_are_followed_and_a_sixth_is_unreachable() {
    let origin = Origin::start();
    let client = Client::loopback();
    let mut source = client
        .open(&origin.url(FLAC, Behaviour::Redirects(5)))
        .unwrap();
    assert_eq!(source.meta().final_url.query(), Some("hop=5"));
    assert!(read_all(&mut source).unwrap() == flac_bytes());
    match client.refused(&origin.url(FLAC, Behaviour::Redirects(6))) {
        SourceError::Unreachable(message) => assert!(message.contains("redirects"), "{message}"),
        other => panic!("expected Unreachable, got {other:?}"),
    }
}

#[test]
fn error_statuses_are_unreachable() {
    let origin = Origin::start();
    let client = Client::loopback();
    for code in [404, 500] {
        match client.refused(&origin.url(FLAC, Behaviour::Status(code))) {
            SourceError::Unreachable(message) => assert!(message.contains(&code.to_string())),
            other => panic!("{code}: expected Unreachable, got {other:?}"),
        }
    }
}

#[test]
fn a_tls_failure_is_unreachable() {
    let origin = Origin::start();
    let url = origin
        .url(FLAC, Behaviour::Plain)
        .replacen("http://", "https://", 1);
    let err = Client::loopback().refused(&url);
    assert!(matches!(err, SourceError::Unreachable(_)), "{err:?}");
}

#[test]
fn a_declared_length_over_the_limit_is_too_large() {
    let origin = Origin::start();
    let limits = SourceLimits {
        max_source_bytes: 1000,
        ..test_limits()
    };
    let client = Client::new(limits, "127.0.0.1/32");
    let err = client.refused(&origin.url(FLAC, Behaviour::Plain));
    assert!(
        matches!(err, SourceError::TooLarge { limit_bytes: 1000 }),
        "{err:?}"
    );
    // Without a declared length (a live stream) there is no byte limit.
    let mut live = client.open(&origin.url(FLAC, Behaviour::Chunked)).unwrap();
    assert_eq!(read_all(&mut live).unwrap().len(), flac_bytes().len());
}

#[test]
fn a_death_mid_body_is_resumed_with_if_range() {
    let origin = Origin::start();
    let client = Client::loopback();
    let die = Behaviour::Die {
        after: 10_000,
        ranges: true,
        every_request: false,
    };
    let mut source = client.open(&origin.url(FLAC, die)).unwrap();
    assert!(read_all(&mut source).unwrap() == flac_bytes());
    assert_eq!(client.counters.resumes.get(), 1);
    let requests = origin.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[0].range, None);
    assert_eq!(requests[1].range.as_deref(), Some("bytes=10000-"));
    let etag = format!("\"v1-{}\"", flac_bytes().len());
    assert_eq!(requests[1].if_range.as_deref(), Some(etag.as_str()));
}

#[test]
fn death_on_every_request_is_interrupted_after_three_resumes() {
    let origin = Origin::start();
    let client = Client::loopback();
    let die = Behaviour::Die {
        after: 5_000,
        ranges: true,
        every_request: true,
    };
    let mut source = client.open(&origin.url(FLAC, die)).unwrap();
    let err = read_all(&mut source).unwrap_err();
    assert!(matches!(err, SourceError::Interrupted(_)), "{err:?}");
    assert_eq!(client.counters.resumes.get(), 3);
    assert_eq!(origin.requests().len(), 4);
    let again = source.read(&mut [0; 16]).unwrap_err();
    assert_ne!(again.kind(), std::io::ErrorKind::UnexpectedEof);
}

#[test]
fn death_without_range_support_is_interrupted() {
    let origin = Origin::start();
    let client = Client::loopback();
    let die = Behaviour::Die {
        after: 10_000,
        ranges: false,
        every_request: false,
    };
    let mut source = client.open(&origin.url(FLAC, die)).unwrap();
    let err = read_all(&mut source).unwrap_err();
    assert!(matches!(err, SourceError::Interrupted(_)), "{err:?}");
    assert_eq!(client.counters.resumes.get(), 0);
}

/// Reads a source without a length whose first connection drops after 10 000 bytes.
fn read_length_less_drop(
    ranges: bool,
    icy: bool,
) -> (Origin, Client, Result<Vec<u8>, SourceError>) {
    let origin = Origin::start();
    let client = Client::loopback();
    let drop = Behaviour::LiveDrop {
        after: 10_000,
        ranges,
        icy,
    };
    let mut source = client.open(&origin.url(FLAC, drop)).unwrap();
    assert_eq!(source.meta().content_length, None);
    let outcome = read_all(&mut source);
    (origin, client, outcome)
}

#[test]
fn a_dropped_live_stream_is_reconnected() {
    let (origin, client, outcome) = read_length_less_drop(false, true);
    let bytes = outcome.unwrap();
    let expected = flac_bytes();
    assert!(bytes[..10_000] == expected[..10_000] && bytes[10_000..] == expected[..]);
    assert_eq!(client.counters.resumes.get(), 1);
    let requests = origin.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert!(requests.iter().all(|request| request.range.is_none()));
}

#[test]
fn a_dropped_body_without_a_length_is_resumed_in_place_when_ranges_work() {
    let (origin, client, outcome) = read_length_less_drop(true, false);
    assert!(outcome.unwrap() == flac_bytes(), "not byte-exact");
    assert_eq!(client.counters.resumes.get(), 1);
    let requests = origin.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[1].range.as_deref(), Some("bytes=10000-"));
    let etag = format!("\"v1-{}\"", flac_bytes().len());
    assert_eq!(requests[1].if_range.as_deref(), Some(etag.as_str()));
}

#[test]
fn a_dropped_body_without_a_length_ranges_or_live_headers_is_interrupted() {
    let (origin, client, outcome) = read_length_less_drop(false, false);
    let err = outcome.unwrap_err();
    assert!(matches!(err, SourceError::Interrupted(_)), "{err:?}");
    assert_eq!(client.counters.resumes.get(), 0);
    assert_eq!(origin.requests().len(), 1, "not restarted from byte 0");
}

#[test]
fn a_half_open_connection_is_resumed_after_the_idle_timeout() {
    let origin = Origin::start();
    let limits = SourceLimits {
        read_idle_timeout: Duration::from_millis(300),
        ..test_limits()
    };
    let client = Client::new(limits, "127.0.0.1/32");
    let url = origin.url(FLAC, Behaviour::StallOnce { after: 10_000 });
    let mut source = client.open(&url).unwrap();
    assert!(
        read_all(&mut source).unwrap() == flac_bytes(),
        "not byte-exact"
    );
    assert_eq!(client.counters.resumes.get(), 1);
    let requests = origin.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[1].range.as_deref(), Some("bytes=10000-"));
    assert!(requests[1].if_range.is_some(), "the resume is validated");
}

#[test]
fn a_stalled_body_times_out() {
    let origin = Origin::start();
    let limits = SourceLimits {
        read_idle_timeout: Duration::from_millis(300),
        ..test_limits()
    };
    let client = Client::new(limits, "127.0.0.1/32");
    let mut source = client
        .open(&origin.url(FLAC, Behaviour::Stall { after: 1000 }))
        .unwrap();
    let started = Instant::now();
    let err = read_all(&mut source).unwrap_err();
    assert!(matches!(err, SourceError::Timeout(_)), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // Each silence was taken for a half-open connection and resumed, up to the limit.
    assert_eq!(client.counters.resumes.get(), 3);
    let requests = origin.requests();
    assert_eq!(requests.len(), 4, "{requests:?}");
    assert!(
        requests[1..]
            .iter()
            .all(|request| request.range.as_deref() == Some("bytes=1000-")),
        "{requests:?}"
    );
}

#[test]
fn cancelling_a_stalled_read_returns_at_once() {
    let origin = Origin::start();
    let client = Client::loopback();
    let cancel = CancellationToken::new();
    let url = origin.url(FLAC, Behaviour::Stall { after: 1000 });
    let mut source = client.open_with(&url, cancel.clone()).unwrap();
    let reader = std::thread::spawn(move || {
        let outcome = read_all(&mut source);
        (outcome, Instant::now())
    });
    std::thread::sleep(Duration::from_millis(300));
    let cancelled_at = Instant::now();
    cancel.cancel();
    let (outcome, finished_at) = reader.join().unwrap();
    assert!(
        matches!(outcome, Err(SourceError::Cancelled)),
        "{outcome:?}"
    );
    let delay = finished_at - cancelled_at;
    assert!(delay < Duration::from_millis(500), "{delay:?}");
}

#[test]
fn a_slow_reader_holds_the_download_back() {
    const SIZE: usize = 50 << 20;
    let origin = Origin::start();
    origin.add_blob("big.bin", noise(SIZE));
    let client = Client::loopback();
    let mut source = client
        .open(&origin.url("big.bin", Behaviour::Ranges))
        .unwrap();
    let mut first = vec![0; 1024];
    source.read_exact(&mut first).unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    let sent = origin.bytes_sent();
    assert!(
        sent < 24 << 20,
        "the origin sent {sent} bytes to a reader of 1 KiB"
    );
    let rest = read_all(&mut source).unwrap();
    assert_eq!(rest.len() + first.len(), SIZE);
}
