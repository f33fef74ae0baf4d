//! What operators see: a bare `rust-transcoder` serves with its environment's settings,
//! every metric of SPEC section 2 is exported, each stream ends with one summary line
//! carrying its transcode id, and the CLI reads URLs through the same source module.

use serde_json::json;

use super::common::origin::{Behaviour, Origin};
use super::common::service::ServiceProcess;
use super::{get_answer, health_of, read};

/// The metric families SPEC section 2 asks for.
const SPEC_METRICS: [&str; 11] = [
    "transcode_requests_total",
    "active_streams",
    "transcode_latency_ms",
    "transcode_errors_total",
    "source_bytes_total",
    "output_bytes_total",
    "audio_seconds_total",
    "upstream_resumes_total",
    "decode_realtime_factor",
    "process_resident_memory_bytes",
    "process_cpu_seconds_total",
];

#[tokio::test(flavor = "multi_thread")]
async fn a_bare_binary_serves_with_its_environment_and_reports_each_stream() {
    let origin = Origin::start();
    let mut command = super::common::cli();
    command
        .env("TRANSCODER_BIND", "127.0.0.1:0")
        .env("TRANSCODER_ALLOW_NETS", "127.0.0.0/8")
        .env("TRANSCODER_MAX_STREAMS", "7");
    let service = ServiceProcess::spawn(command);
    let (status, health) = health_of(&service.base_url).await;
    assert_eq!(
        (status, health["max_streams"].as_u64()),
        (200, Some(7)),
        "{health}"
    );

    let url = origin.url("flac_s16.flac", Behaviour::Ranges);
    let response = reqwest::Client::new()
        .post(format!("{}/transcode", service.base_url))
        .json(&json!({"source_url": url, "output_format": "pcm"}))
        .send()
        .await
        .unwrap();
    let answer = read(response).await;
    assert_eq!(answer.status, 200);
    let id = answer.header("x-transcode-id").unwrap();

    let metrics = String::from_utf8(get_answer(&service.base_url, "/metrics").await.body).unwrap();
    let missing: Vec<_> = SPEC_METRICS
        .iter()
        .filter(|name| !metrics.lines().any(|line| line.starts_with(*name)))
        .collect();
    assert!(missing.is_empty(), "missing metrics: {missing:?}");

    let summary = wait_for_line(&service, "stream summary").await;
    for field in [
        id.as_str(),
        "outcome=\"ok\"",
        "source_format=flac",
        "bytes_out=",
    ] {
        assert!(summary.contains(field), "{field} not in: {summary}");
    }
}

/// The first log line containing `text`, waiting up to 5 s for it.
async fn wait_for_line(service: &ServiceProcess, text: &str) -> String {
    for _ in 0..250 {
        if let Some(line) = service.log().into_iter().find(|line| line.contains(text)) {
            return line;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("no log line with {text:?} in {:#?}", service.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_transcodes_a_url_through_the_source_module() {
    let origin = Origin::start();
    let url = origin.url("vorbis.ogg", Behaviour::Ranges);
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.pcm");
    let forbidden = super::common::cli()
        .args(["transcode", &url, "-o"])
        .arg(&output)
        .env_remove("TRANSCODER_ALLOW_NETS")
        .output()
        .unwrap();
    assert!(
        !forbidden.status.success(),
        "a loopback URL is refused by default"
    );
    assert!(String::from_utf8_lossy(&forbidden.stderr).contains("forbidden"));

    let allowed = super::common::cli()
        .args(["transcode", &url, "-f", "pcm", "-o"])
        .arg(&output)
        .env("TRANSCODER_ALLOW_NETS", "127.0.0.0/8")
        .output()
        .unwrap();
    assert!(
        allowed.status.success(),
        "{}",
        String::from_utf8_lossy(&allowed.stderr)
    );
    let fixture = super::common::fixtures::fixture("vorbis.ogg");
    let decoded = super::common::decode::decode_raw_pcm(&output, 48_000, 2);
    assert_eq!(decoded.frames(), fixture.frames_at(48_000));
}
