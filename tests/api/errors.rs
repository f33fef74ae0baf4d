//! SPEC §2's error table through real sockets, part one: requests and filters the
//! service refuses before touching any source, from POST bodies and GET queries alike,
//! each with its status and JSON shape, counted in `/metrics`, and the service still
//! healthy after each (part two, the other codes, is `refusals.rs`).

use std::time::Duration;

use serde_json::json;

use super::common::origin::{Behaviour, Origin};
use super::common::service::Service;
use super::{Answer, assert_error, get_answer, health_of, metric_value, post, read, wait_for};

/// POSTs raw bytes to `/transcode` with `content_type`.
pub(super) async fn post_raw(
    service: &Service,
    content_type: &str,
    body: impl Into<Vec<u8>>,
) -> Answer {
    let response = reqwest::Client::new()
        .post(format!("{}/transcode", service.base_url()))
        .header("content-type", content_type)
        .body(body.into())
        .send()
        .await
        .unwrap();
    read(response).await
}

/// `GET /transcode?...` with `pairs` as the query.
pub(super) async fn get_query(service: &Service, pairs: &[(&str, &str)]) -> Answer {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    get_answer(&service.base_url(), &format!("/transcode?{query}")).await
}

/// `/health` answers 200 and no stream is left holding a slot.
pub(super) async fn assert_healthy(service: &Service) {
    let base = service.base_url();
    wait_for(
        "no stream left running",
        Duration::from_secs(5),
        async || health_of(&base).await.1["active_streams"] == 0,
    )
    .await;
    let (status, body) = health_of(&base).await;
    assert_eq!(status, 200, "{body}");
    assert!(matches!(body["status"].as_str(), Some("ok" | "degraded")));
}

/// `transcode_errors_total{code}` counted at least `times` answers with `code`.
pub(super) async fn assert_counted(service: &Service, code: &str, times: usize) {
    let sample = format!("transcode_errors_total{{code=\"{code}\"}}");
    let counted = metric_value(&service.base_url(), &sample).await;
    assert!(
        counted.is_some_and(|n| n >= times as f64),
        "{sample} = {counted:?}, expected >= {times}"
    );
}

/// `message` names every one of `parts` (a field and its range, say).
pub(super) fn assert_mentions(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(
            message.contains(part),
            "{message:?} does not mention {part:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_requests_are_400_and_touch_no_source() {
    let origin = Origin::start();
    let service = Service::start(&[]);
    let url = origin.url("flac_s16.flac", Behaviour::Ranges);
    let cases = [
        (json!({}), vec!["source_url"]),
        (json!({"source_url": 5}), vec!["source_url", "string"]),
        (
            json!({"source_url": url, "channels": "two"}),
            vec!["channels", "two"],
        ),
        (
            json!({"source_url": url, "channels": 1.5}),
            vec!["channels", "1.5"],
        ),
        (
            json!({"source_url": url, "start_seconds": "1"}),
            vec!["start_seconds", "\"1\""],
        ),
        (
            json!({"source_url": url, "channels": 3}),
            vec!["channels", "3"],
        ),
        (
            json!({"source_url": url, "output_format": "pcm", "sample_rate": 7000}),
            vec!["sample_rate", "7000", "8000..=192000"],
        ),
        (
            json!({"source_url": url, "output_format": "aac", "sample_rate": 44101}),
            vec!["sample_rate", "44101"],
        ),
        (
            json!({"source_url": url, "output_format": "opus", "bitrate_kbps": 5}),
            vec!["bitrate_kbps", "6..=510"],
        ),
        (
            json!({"source_url": url, "output_format": "flac"}),
            vec!["flac"],
        ),
        (
            json!({"source_url": url, "start_seconds": -1}),
            vec!["start_seconds", ">= 0"],
        ),
        (
            json!({"source_url": url, "duration_seconds": 0}),
            vec!["duration_seconds", "> 0"],
        ),
        (json!({"source_url": url, "colour": "red"}), vec!["colour"]),
        (json!([url]), vec!["object"]),
    ];
    for (body, parts) in cases {
        let answer = post(&service, body.clone()).await;
        let message = assert_error(&answer, 400, "INVALID_REQUEST");
        assert_mentions(&message, &parts);
    }
    for (content_type, body) in [
        ("application/json", r#"{"source_url": "#),
        ("application/json", "not json"),
        ("text/plain", r#"{"source_url": "http://a/b.mp3"}"#),
    ] {
        let answer = post_raw(&service, content_type, body).await;
        assert_error(&answer, 400, "INVALID_REQUEST");
    }
    assert_eq!(origin.requests(), Vec::new(), "validation must come first");
    assert_counted(&service, "INVALID_REQUEST", 17).await;
    assert_healthy(&service).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn aac_takes_44100_but_not_44101() {
    let origin = Origin::start();
    let service = Service::start(&[]);
    let url = origin.url("flac_s16.flac", Behaviour::Ranges);
    let ok = post(
        &service,
        json!({"source_url": url, "output_format": "aac", "sample_rate": 44100}),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
    assert_eq!(ok.header("content-type").as_deref(), Some("audio/aac"));
    assert!(!ok.body.is_empty());
    let refused = post(
        &service,
        json!({"source_url": url, "output_format": "aac", "sample_rate": 44101}),
    )
    .await;
    assert_error(&refused, 400, "INVALID_REQUEST");
    assert_healthy(&service).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_over_64_kib_is_413_invalid_request() {
    let service = Service::start(&[]);
    let padding = "a".repeat(70 * 1024);
    let body = json!({"source_url": format!("http://example.com/{padding}.mp3")});
    let answer = post(&service, body).await;
    let message = assert_error(&answer, 413, "INVALID_REQUEST");
    assert_mentions(&message, &["65536"]);
    assert_counted(&service, "INVALID_REQUEST", 1).await;
    assert_healthy(&service).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_filters_are_filter_invalid_naming_field_and_range() {
    let origin = Origin::start();
    let service = Service::start(&[]);
    let url = origin.url("flac_s16.flac", Behaviour::Ranges);
    let band = json!({"freq_hz": 1000, "gain_db": 3, "q": 1});
    let cases = [
        (json!({"speed": 3}), vec!["speed", "3", "0.5..=2"]),
        (json!({"pitch": 0.25}), vec!["pitch", "0.5..=2"]),
        (json!({"volume": -1}), vec!["volume", "0..=2"]),
        (json!({"tempo": 1.1}), vec!["tempo"]),
        (
            json!({"eq_preset": "loudness"}),
            vec!["eq_preset", "loudness"],
        ),
        (
            json!({"eq_bands": vec![band; 17]}),
            vec!["eq_bands", "17", "16"],
        ),
        (
            json!({"eq_bands": [{"freq_hz": 10, "gain_db": 3, "q": 1}]}),
            vec!["eq_bands[0].freq_hz", "20..=20000"],
        ),
        (
            json!({"normalize": {"target_lufs": -80}}),
            vec!["target_lufs", "-80", "-70..=-5"],
        ),
        (json!({"speed": "fast"}), vec!["filters.speed", "fast"]),
        (
            json!({"eq_bands": [{"freq_hz": 1000, "gain_db": 3, "q": "wide"}]}),
            vec!["filters.eq_bands[0].q", "wide"],
        ),
        (json!(3), vec!["filters", "object"]),
    ];
    for (filters, parts) in cases {
        let answer = post(&service, json!({"source_url": url, "filters": filters})).await;
        let message = assert_error(&answer, 400, "FILTER_INVALID");
        assert_mentions(&message, &parts);
        assert!(!message.contains("struct"), "{message:?} names a Rust type");
    }
    assert_eq!(origin.requests(), Vec::new(), "validation must come first");
    assert_counted(&service, "FILTER_INVALID", 11).await;
    assert_healthy(&service).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_query_form_gives_the_same_errors() {
    let origin = Origin::start();
    let service = Service::start(&[]);
    let url = origin.url("flac_s16.flac", Behaviour::Ranges);
    let missing = origin.url("a.mp3", Behaviour::Status(404));
    let u = url.as_str();
    let cases = [
        (vec![], 400, "INVALID_REQUEST"),
        (
            vec![("source_url", u), ("channels", "3")],
            400,
            "INVALID_REQUEST",
        ),
        (
            vec![("source_url", u), ("channels", "two")],
            400,
            "INVALID_REQUEST",
        ),
        (
            vec![("source_url", u), ("colour", "red")],
            400,
            "INVALID_REQUEST",
        ),
        (
            vec![("source_url", u), ("start_seconds", "-1")],
            400,
            "INVALID_REQUEST",
        ),
        (
            vec![("source_url", u), ("speed", "3")],
            400,
            "FILTER_INVALID",
        ),
        (
            vec![("source_url", u), ("eq_preset", "loudness")],
            400,
            "FILTER_INVALID",
        ),
        (
            vec![("source_url", "file:///etc/passwd")],
            403,
            "URL_FORBIDDEN",
        ),
        (vec![("source_url", &missing)], 502, "SOURCE_UNREACHABLE"),
        (
            vec![("source_url", u), ("start_seconds", "60")],
            416,
            "RANGE_INVALID",
        ),
    ];
    for (pairs, status, code) in cases {
        let answer = get_query(&service, &pairs).await;
        assert_error(&answer, status, code);
    }
    let ok = get_query(&service, &[("source_url", u), ("output_format", "pcm")]).await;
    assert_eq!(ok.status, 200);
    assert_healthy(&service).await;
}
