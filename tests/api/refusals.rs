//! SPEC §2's error table, continued: refusals that come from the source, the slots, the
//! routes, the token and the drain, each with its status and JSON shape, counted in
//! `/metrics`, and the service still healthy after each.

use std::time::{Duration, Instant};

use serde_json::json;

use super::common::origin::{Behaviour, Origin};
use super::common::service::Service;
use super::errors::{assert_counted, assert_healthy, assert_mentions, get_query};
use super::{assert_error, body_end, get_answer, health_of, post, read, tone_wav, wait_for};

#[tokio::test(flavor = "multi_thread")]
async fn source_failures_get_their_codes() {
    let origin = Origin::start();
    let service = Service::start(&[]);
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    origin.add_blob(
        "page.html",
        std::fs::read(super::common::fixture_path("html.html")).unwrap(),
    );
    origin.add_blob("noise.bin", noise(5 * 1024 * 1024));
    let cases = [
        ("file:///etc/passwd".to_owned(), 403, "URL_FORBIDDEN"),
        ("http://10.1.2.3/a.mp3".to_owned(), 403, "URL_FORBIDDEN"),
        (
            origin.url("a.mp3", Behaviour::Status(404)),
            502,
            "SOURCE_UNREACHABLE",
        ),
        (
            origin.url("a.mp3", Behaviour::Status(500)),
            502,
            "SOURCE_UNREACHABLE",
        ),
        (
            format!("http://127.0.0.1:{closed_port}/a.mp3"),
            502,
            "SOURCE_UNREACHABLE",
        ),
        (
            origin.url("flac_s16.flac", Behaviour::Redirects(6)),
            502,
            "SOURCE_UNREACHABLE",
        ),
        (
            origin.url("page.html", Behaviour::Ranges),
            415,
            "UNSUPPORTED_FORMAT",
        ),
        (
            origin.url("empty.bin", Behaviour::Ranges),
            415,
            "UNSUPPORTED_FORMAT",
        ),
        (
            origin.url("noise.bin", Behaviour::Ranges),
            415,
            "UNSUPPORTED_FORMAT",
        ),
    ];
    for (url, status, code) in cases {
        let started = Instant::now();
        let answer = post(&service, json!({"source_url": url, "output_format": "pcm"})).await;
        assert_error(&answer, status, code);
        assert!(started.elapsed() < Duration::from_secs(10), "{url}");
        assert_counted(&service, code, 1).await;
        assert_healthy(&service).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn start_past_the_end_is_416_range_invalid() {
    let origin = Origin::start();
    let service = Service::start(&[]);
    for behaviour in [Behaviour::Ranges, Behaviour::Plain] {
        let url = origin.url("flac_s16.flac", behaviour);
        let answer = post(&service, json!({"source_url": url, "start_seconds": 60})).await;
        let message = assert_error(&answer, 416, "RANGE_INVALID");
        assert_mentions(&message, &["60"]);
    }
    assert_counted(&service, "RANGE_INVALID", 2).await;
    assert_healthy(&service).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_source_over_the_size_limit_is_413_source_too_large() {
    let origin = Origin::start();
    let service = Service::start(&["--max-source-bytes", "10000"]);
    let url = origin.url("flac_s16.flac", Behaviour::Ranges);
    let answer = post(&service, json!({"source_url": url})).await;
    let message = assert_error(&answer, 413, "SOURCE_TOO_LARGE");
    assert_mentions(&message, &["10000"]);
    assert_counted(&service, "SOURCE_TOO_LARGE", 1).await;
    assert_healthy(&service).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_source_that_stalls_before_any_audio_is_504_timeout() {
    let origin = Origin::start();
    let service = Service::start(&["--start-timeout-secs", "1"]);
    for after in [0, 100] {
        let url = origin.url("flac_s16.flac", Behaviour::Stall { after });
        let started = Instant::now();
        let answer = post(&service, json!({"source_url": url})).await;
        let elapsed = started.elapsed();
        assert_error(&answer, 504, "TIMEOUT");
        assert!(
            (Duration::from_millis(900)..Duration::from_secs(5)).contains(&elapsed),
            "answered after {elapsed:?}"
        );
    }
    assert_counted(&service, "TIMEOUT", 2).await;
    assert_healthy(&service).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn full_slots_are_503_capacity_exceeded_with_retry_after() {
    let origin = Origin::start();
    let service = Service::start(&["--max-streams", "1"]);
    origin.add_blob("long.wav", tone_wav(440.0, 8000, 1, 30.0));
    let busy = origin.url(
        "long.wav",
        Behaviour::Drip {
            bytes_per_sec: 16_000,
        },
    );
    let holder = reqwest::Client::new()
        .post(format!("{}/transcode", service.base_url()))
        .json(&json!({"source_url": busy, "output_format": "pcm"}))
        .send()
        .await
        .unwrap();
    assert_eq!(holder.status(), 200);
    let url = origin.url("flac_s16.flac", Behaviour::Ranges);
    let posted = post(&service, json!({"source_url": url})).await;
    let queried = get_query(&service, &[("source_url", &url)]).await;
    for answer in [posted, queried] {
        assert_error(&answer, 503, "CAPACITY_EXCEEDED");
        let retry_after = answer.header("retry-after").expect("a Retry-After header");
        assert!(retry_after.parse::<u32>().is_ok_and(|secs| secs >= 1));
    }
    assert_counted(&service, "CAPACITY_EXCEEDED", 2).await;
    drop(holder);
    assert_healthy(&service).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_routes_and_streams_are_404_and_other_methods_405() {
    let service = Service::start(&[]);
    let base = service.base_url();
    let answer = get_answer(&base, "/no/such/route").await;
    assert_error(&answer, 404, "NOT_FOUND");
    let client = reqwest::Client::new();
    for id in [uuid::Uuid::new_v4().to_string(), "not-a-uuid".to_owned()] {
        let response = client
            .patch(format!("{base}/transcode/{id}"))
            .json(&json!({"filters": {"volume": 0.5}}))
            .send()
            .await
            .unwrap();
        let message = assert_error(&read(response).await, 404, "NOT_FOUND");
        assert_mentions(&message, &[&id]);
    }
    for (method, path) in [
        (reqwest::Method::DELETE, "/transcode"),
        (reqwest::Method::PUT, "/transcode"),
        (reqwest::Method::POST, "/health"),
        (
            reqwest::Method::GET,
            "/transcode/0b5e1f5c-3ac4-4f4e-9a4f-1f1f1f1f1f1f",
        ),
    ] {
        let response = client
            .request(method.clone(), format!("{base}{path}"))
            .send()
            .await
            .unwrap();
        let answer = read(response).await;
        assert_error(&answer, 405, "METHOD_NOT_ALLOWED");
    }
    assert_counted(&service, "NOT_FOUND", 3).await;
    assert_counted(&service, "METHOD_NOT_ALLOWED", 4).await;
    assert_healthy(&service).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_token_guards_transcode_but_not_health_or_metrics() {
    let origin = Origin::start();
    let service = Service::start(&["--api-token", "s3cret"]);
    let base = service.base_url();
    let url = origin.url("flac_s16.flac", Behaviour::Ranges);
    let body = json!({"source_url": url, "output_format": "pcm"});
    let client = reqwest::Client::new();
    for token in [
        None,
        Some("Bearer wrong"),
        Some("s3cret"),
        Some("Basic s3cret"),
    ] {
        let mut request = client.post(format!("{base}/transcode")).json(&body);
        if let Some(token) = token {
            request = request.header("authorization", token);
        }
        let answer = read(request.send().await.unwrap()).await;
        assert_error(&answer, 401, "UNAUTHORIZED");
    }
    let queried = get_query(&service, &[("source_url", &url)]).await;
    assert_error(&queried, 401, "UNAUTHORIZED");
    let patched = client
        .patch(format!("{base}/transcode/{}", uuid::Uuid::new_v4()))
        .json(&json!({"filters": {"volume": 0.5}}))
        .send()
        .await
        .unwrap();
    assert_error(&read(patched).await, 401, "UNAUTHORIZED");
    assert_eq!(origin.requests(), Vec::new());
    assert_eq!(get_answer(&base, "/metrics").await.status, 200);
    assert_healthy(&service).await;

    for token in ["Bearer s3cret", "bearer s3cret"] {
        let response = client
            .post(format!("{base}/transcode"))
            .header("authorization", token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let answer = read(response).await;
        assert_eq!(answer.status, 200, "{token}");
        assert!(!answer.body.is_empty());
    }
    assert_counted(&service, "UNAUTHORIZED", 6).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_draining_service_refuses_new_streams_with_shutting_down() {
    let origin = Origin::start();
    let mut service = Service::start(&[]);
    let base = service.base_url();
    origin.add_blob("long.wav", tone_wav(440.0, 8000, 1, 30.0));
    let running_url = origin.url(
        "long.wav",
        Behaviour::Drip {
            bytes_per_sec: 16_000,
        },
    );
    let running = reqwest::Client::new()
        .post(format!("{base}/transcode"))
        .json(&json!({"source_url": running_url, "output_format": "pcm"}))
        .send()
        .await
        .unwrap();
    assert_eq!(running.status(), 200);
    let reader = tokio::spawn(body_end(running));

    service.begin_shutdown();
    wait_for(
        "/health reports draining",
        Duration::from_secs(5),
        async || health_of(&base).await.0 == 503,
    )
    .await;
    let (status, health) = health_of(&base).await;
    assert_eq!((status, health["status"].as_str()), (503, Some("draining")));
    assert_eq!(health["active_streams"], 1, "the running stream goes on");

    let url = origin.url("flac_s16.flac", Behaviour::Ranges);
    let posted = post(&service, json!({"source_url": url})).await;
    assert_error(&posted, 503, "SHUTTING_DOWN");
    let queried = get_query(&service, &[("source_url", &url)]).await;
    assert_error(&queried, 503, "SHUTTING_DOWN");
    assert_counted(&service, "SHUTTING_DOWN", 2).await;
    assert!(!reader.is_finished(), "the running stream was cut short");
    reader.abort();
}

/// `len` deterministic pseudo-random bytes.
fn noise(len: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 32) as u8
        })
        .collect()
}
