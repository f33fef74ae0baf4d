//! Slots and shutdown (SPEC §5): a full service refuses at once and accepts again when a
//! stream ends, /health and /metrics never wait behind the limit; SIGTERM drains the
//! real binary, letting running streams finish until the drain timeout, then exits 0.

use std::time::{Duration, Instant};

use serde_json::json;

use super::common::origin::{Behaviour, Origin};
use super::common::service::{Service, ServiceProcess};
use super::{BodyEnd, assert_error, body_end, get_answer, health_of, read, tone_wav, wait_for};

/// POSTs a PCM transcode of `url` (8 kHz mono, the tone's own format).
async fn send(base_url: &str, url: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base_url}/transcode"))
        .json(&json!({
            "source_url": url,
            "output_format": "pcm",
            "sample_rate": 8000,
            "channels": 1,
        }))
        .send()
        .await
        .unwrap()
}

/// Starts a stream and returns its body reader once the headers (200) are in.
async fn start_stream(base_url: &str, url: &str) -> tokio::task::JoinHandle<BodyEnd> {
    let response = send(base_url, url).await;
    assert_eq!(response.status(), 200, "{url}");
    tokio::spawn(body_end(response))
}

/// An origin serving 8 kHz mono tones of 2 s and 60 s, dripped in real time (16 kB/s).
fn dripping_origin() -> (Origin, String, String) {
    let origin = Origin::start();
    origin.add_blob("short.wav", tone_wav(440.0, 8000, 1, 2.0));
    origin.add_blob("long.wav", tone_wav(440.0, 8000, 1, 60.0));
    let drip = Behaviour::Drip {
        bytes_per_sec: 16_000,
    };
    let short = origin.url("short.wav", drip.clone());
    let long = origin.url("long.wav", drip);
    (origin, short, long)
}

/// The PCM body of a complete stream.
async fn complete(reader: tokio::task::JoinHandle<BodyEnd>) -> Vec<u8> {
    match reader.await.unwrap() {
        BodyEnd::Complete(body) => body,
        BodyEnd::Aborted(bytes) => panic!("the stream was aborted after {bytes} bytes"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn full_slots_refuse_at_once_and_a_finished_stream_frees_its_slot() {
    let (origin, short, long) = dripping_origin();
    let service = Service::start(&["--max-streams", "2"]);
    let base = service.base_url();
    let first = start_stream(&base, &short).await;
    let second = start_stream(&base, &long).await;

    let started = Instant::now();
    let refused = read(send(&base, &origin.url("flac_s16.flac", Behaviour::Ranges)).await).await;
    let elapsed = started.elapsed();
    assert_error(&refused, 503, "CAPACITY_EXCEEDED");
    assert!(refused.header("retry-after").is_some());
    assert!(
        elapsed < Duration::from_secs(1),
        "refused after {elapsed:?}"
    );

    let started = Instant::now();
    let (status, health) = health_of(&base).await;
    assert_eq!((status, health["active_streams"].as_u64()), (200, Some(2)));
    assert_eq!(health["max_streams"], 2);
    let metrics = get_answer(&base, "/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(String::from_utf8_lossy(&metrics.body).contains("\nactive_streams 2\n"));
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(1),
        "answered after {elapsed:?}"
    );

    assert_eq!(complete(first).await.len(), 2 * 16_000);
    wait_for(
        "the finished stream's slot is free",
        Duration::from_secs(2),
        async || health_of(&base).await.1["active_streams"] == 1,
    )
    .await;
    let url = origin.url("flac_s16.flac", Behaviour::Ranges);
    let accepted = read(send(&base, &url).await).await;
    assert_eq!(accepted.status, 200);
    assert!(!second.is_finished(), "the long stream is still running");
    second.abort();
}

/// Polls the process's /health until it reports draining.
async fn wait_draining(base_url: &str) {
    wait_for(
        "/health reports draining",
        Duration::from_secs(5),
        async || health_of(base_url).await.0 == 503,
    )
    .await;
    let (_, health) = health_of(base_url).await;
    assert_eq!(health["status"], "draining", "{health}");
}

/// Waits for the process to exit; its exit code.
fn exit_code(process: &mut ServiceProcess, limit: Duration) -> Option<i32> {
    tokio::task::block_in_place(|| process.wait_exit(limit))
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_running_streams_finish_then_exits_0() {
    let origin = Origin::start();
    origin.add_blob("three.wav", tone_wav(440.0, 8000, 1, 3.0));
    let url = origin.url(
        "three.wav",
        Behaviour::Drip {
            bytes_per_sec: 16_000,
        },
    );
    let mut process = ServiceProcess::start(&[]);
    let base = process.base_url.clone();
    let running = start_stream(&base, &url).await;

    process.terminate();
    wait_draining(&base).await;
    let refused = read(send(&base, &url).await).await;
    assert_error(&refused, 503, "SHUTTING_DOWN");

    assert_eq!(complete(running).await.len(), 3 * 16_000);
    assert_eq!(exit_code(&mut process, Duration::from_secs(15)), Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_aborts_streams_that_outlast_the_drain_timeout() {
    let (_origin, _, long) = dripping_origin();
    let mut process = ServiceProcess::start(&["--drain-timeout-secs", "1"]);
    let base = process.base_url.clone();
    let running = start_stream(&base, &long).await;

    let signalled = Instant::now();
    process.terminate();
    wait_draining(&base).await;
    let end = running.await.unwrap();
    assert!(matches!(end, BodyEnd::Aborted(_)), "{end:?}");
    let aborted = signalled.elapsed();
    assert!(
        (Duration::from_millis(900)..Duration::from_secs(10)).contains(&aborted),
        "aborted {aborted:?} after SIGTERM"
    );
    assert_eq!(exit_code(&mut process, Duration::from_secs(10)), Some(0));
    let log = process.log().join("\n");
    assert!(log.contains("draining"), "{log}");
}
