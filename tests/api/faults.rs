//! Faults after the first byte (SPEC §2, §5): a source that dies or stalls mid-way aborts
//! the body unless it can be resumed; a slow source still gives the right audio; a client
//! that leaves, reads slowly or stops reading costs a bounded amount and is let go.

use std::time::{Duration, Instant};

use serde_json::json;

use super::common::decode::decode_raw_pcm;
use super::common::fixtures::fixture;
use super::common::origin::{Behaviour, Origin};
use super::common::service::{Service, ServiceProcess};
use super::common::signal::ToneStats;
use super::{BodyEnd, body_end, health_of, metric_value, tone_wav, wait_for};

/// Starts a PCM transcode of `url` at `rate` Hz and `channels`, expecting a 200.
async fn start_pcm(base_url: &str, url: &str, rate: u32, channels: u16) -> reqwest::Response {
    let response = reqwest::Client::new()
        .post(format!("{base_url}/transcode"))
        .json(&json!({
            "source_url": url,
            "output_format": "pcm",
            "sample_rate": rate,
            "channels": channels,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{url}");
    response
}

/// `active_streams` from `/health`.
async fn active_streams(base_url: &str) -> u64 {
    health_of(base_url).await.1["active_streams"]
        .as_u64()
        .unwrap()
}

/// A 10 s, 8 kHz mono tone (160 kB) served as `tone.wav`.
fn origin_with_tone() -> Origin {
    let origin = Origin::start();
    origin.add_blob("tone.wav", tone_wav(440.0, 8000, 1, 10.0));
    origin
}

#[tokio::test(flavor = "multi_thread")]
async fn a_source_dying_mid_way_without_range_support_aborts_the_body() {
    let origin = origin_with_tone();
    let service = Service::start(&[]);
    let base = service.base_url();
    let url = origin.url(
        "tone.wav",
        Behaviour::Die {
            after: 80_000,
            ranges: false,
            every_request: false,
        },
    );
    let response = start_pcm(&base, &url, 8000, 1).await;
    match body_end(response).await {
        BodyEnd::Aborted(bytes) => assert!(bytes < 160_000, "{bytes} bytes before the abort"),
        BodyEnd::Complete(body) => panic!("a clean end after {} bytes", body.len()),
    }
    let aborted = r#"transcode_requests_total{format="pcm",outcome="aborted",pipeline="native"}"#;
    assert_eq!(metric_value(&base, aborted).await, Some(1.0));
    let errors = r#"transcode_errors_total{code="SOURCE_UNREACHABLE"}"#;
    assert_eq!(metric_value(&base, errors).await, Some(1.0));
    assert_eq!(active_streams(&base).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_source_dying_mid_way_with_range_support_is_resumed_unnoticed() {
    let origin = origin_with_tone();
    let service = Service::start(&[]);
    let base = service.base_url();
    let url = origin.url(
        "tone.wav",
        Behaviour::Die {
            after: 80_000,
            ranges: true,
            every_request: false,
        },
    );
    let response = start_pcm(&base, &url, 8000, 1).await;
    let BodyEnd::Complete(body) = body_end(response).await else {
        panic!("the resumable source's stream was aborted");
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.pcm");
    std::fs::write(&path, &body).unwrap();
    let decoded = decode_raw_pcm(&path, 8000, 1);
    assert_eq!(decoded.frames(), 80_000);
    let stats = ToneStats::measure(&decoded.planes[0], 8000);
    assert!((stats.frequency_hz / 440.0 - 1.0).abs() < 0.01, "{stats:?}");
    let resumed = origin
        .requests()
        .into_iter()
        .nth(1)
        .expect("a second request");
    assert_eq!(resumed.range.as_deref(), Some("bytes=80000-"));
    assert!(resumed.if_range.is_some(), "the resume is validated");
    assert_eq!(
        metric_value(&base, "upstream_resumes_total").await,
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_source_stalling_after_the_first_audio_aborts_the_body() {
    let origin = origin_with_tone();
    let service = Service::start(&["--read-idle-timeout-secs", "1"]);
    let url = origin.url("tone.wav", Behaviour::Stall { after: 80_000 });
    let response = start_pcm(&service.base_url(), &url, 8000, 1).await;
    let started = Instant::now();
    let end = body_end(response).await;
    assert!(matches!(end, BodyEnd::Aborted(_)), "{end:?}");
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(10),
        "aborted after {elapsed:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slowly_dripping_source_still_gives_the_whole_tone() {
    let origin = Origin::start();
    let service = Service::start(&[]);
    // 29.5 kB at 15 kB/s: about two seconds for 1.5 s of audio.
    let url = origin.url(
        "flac_s16.flac",
        Behaviour::Drip {
            bytes_per_sec: 15_000,
        },
    );
    let response = start_pcm(&service.base_url(), &url, 44_100, 2).await;
    let BodyEnd::Complete(body) = body_end(response).await else {
        panic!("the dripping source's stream was aborted");
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.pcm");
    std::fs::write(&path, &body).unwrap();
    let decoded = decode_raw_pcm(&path, 44_100, 2);
    let flac = fixture("flac_s16.flac");
    assert_eq!(decoded.frames(), flac.frames_at(44_100));
    let stats = ToneStats::measure(&decoded.planes[0], 44_100);
    assert!(
        (stats.frequency_hz / flac.tone_hz - 1.0).abs() < 0.01,
        "{stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_disconnects_frees_its_slot_and_stops_the_download() {
    let origin = Origin::start();
    origin.add_blob("long.wav", tone_wav(440.0, 8000, 1, 600.0));
    let service = Service::start(&[]);
    let base = service.base_url();
    // A fast source (the service waits on the client) and a real-time one (the service
    // waits on the source).
    let behaviours = [
        Behaviour::Ranges,
        Behaviour::Drip {
            bytes_per_sec: 16_000,
        },
    ];
    for (left, behaviour) in behaviours.into_iter().enumerate() {
        let url = origin.url("long.wav", behaviour);
        let mut response = start_pcm(&base, &url, 48_000, 2).await;
        assert!(response.chunk().await.unwrap().is_some());
        assert!(response.chunk().await.unwrap().is_some());
        assert_eq!(active_streams(&base).await, 1);
        drop(response);
        let freed = wait_for("the slot is freed", Duration::from_secs(5), async || {
            active_streams(&base).await == 0
        })
        .await;
        assert!(freed < Duration::from_millis(1500), "freed after {freed:?}");
        let gone =
            r#"transcode_requests_total{format="pcm",outcome="client_gone",pipeline="native"}"#;
        assert_eq!(metric_value(&base, gone).await, Some(left as f64 + 1.0));
        // The pipeline stopped: nothing more is taken from the origin.
        wait_for("the download stops", Duration::from_secs(5), async || {
            let before = origin.bytes_sent();
            tokio::time::sleep(Duration::from_millis(500)).await;
            origin.bytes_sent() == before
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_stops_reading_is_dropped_after_the_idle_timeout() {
    let origin = Origin::start();
    origin.add_blob("long.wav", tone_wav(440.0, 8000, 1, 600.0));
    let service = Service::start(&["--client-idle-timeout-secs", "1"]);
    let base = service.base_url();
    let url = origin.url("long.wav", Behaviour::Ranges);
    let response = start_pcm(&base, &url, 48_000, 2).await;
    let started = Instant::now();
    let dropped = wait_for(
        "the idle client is dropped",
        Duration::from_secs(15),
        async || active_streams(&base).await == 0,
    )
    .await;
    assert!(
        dropped >= Duration::from_secs(1),
        "dropped after {dropped:?}"
    );
    let end = body_end(response).await;
    assert!(matches!(end, BodyEnd::Aborted(_)), "{end:?}");
    assert!(started.elapsed() < Duration::from_secs(30));
}

/// Generates `secs` of a 440 Hz tone as 44.1 kHz stereo FLAC (fastest, so least
/// compressed, setting: about 19 kB per second).
fn long_flac(dir: &std::path::Path, secs: u32) -> Vec<u8> {
    let path = dir.join("long.flac");
    let source = format!("sine=frequency=440:sample_rate=44100:duration={secs}");
    let status = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-f", "lavfi", "-i", &source])
        .args(["-ac", "2", "-compression_level", "0"])
        .arg(&path)
        .status()
        .expect("ffmpeg is installed");
    assert!(status.success());
    std::fs::read(path).unwrap()
}

/// The most the kernel may buffer in one TCP connection: the largest receive buffer of
/// one end plus the largest send buffer of the other (`tcp_rmem`, `tcp_wmem` maxima).
fn kernel_socket_buffers_max() -> f64 {
    let max = |name: &str| -> f64 {
        let text = std::fs::read_to_string(format!("/proc/sys/net/ipv4/{name}")).unwrap();
        text.split_whitespace().last().unwrap().parse().unwrap()
    };
    max("tcp_rmem") + max("tcp_wmem")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_client_keeps_memory_flat_and_the_source_read_bounded() {
    const SOURCE_SECS: u32 = 1800;
    const OUTPUT_BYTES_PER_SEC: f64 = 48_000.0 * 4.0;
    const READ_BYTES_PER_SEC: f64 = 400_000.0;
    let dir = tempfile::tempdir().unwrap();
    let flac = long_flac(dir.path(), SOURCE_SECS);
    let source_bytes_per_sec = flac.len() as f64 / f64::from(SOURCE_SECS);
    let flac_len = flac.len() as u64;
    let origin = Origin::start();
    origin.add_blob("long.flac", flac);
    let url = origin.url("long.flac", Behaviour::Ranges);
    let service = ServiceProcess::start(&[]);
    let mut response = start_pcm(&service.base_url, &url, 48_000, 2).await;

    // Read at about twice real time for a while, sampling the RSS once warmed up.
    let started = Instant::now();
    let mut consumed = 0_usize;
    let mut rss_kib = Vec::new();
    while started.elapsed() < Duration::from_secs(8) {
        let chunk = response.chunk().await.unwrap().expect("the stream goes on");
        consumed += chunk.len();
        let due = Duration::from_secs_f64(consumed as f64 / READ_BYTES_PER_SEC);
        tokio::time::sleep(due.saturating_sub(started.elapsed())).await;
        if started.elapsed() > Duration::from_secs(2) {
            rss_kib.push(service.rss_kib());
        }
    }
    let (first_kib, peak_kib) = (rss_kib[0], rss_kib.iter().copied().max().unwrap());
    assert!(
        peak_kib - first_kib < 10 * 1024,
        "RSS grew from {first_kib} to {peak_kib} KiB while streaming"
    );

    // The service took in from the network only what the client has taken out, plus
    // what fits between them: the service's own bounded buffers (a few MiB), and the output
    // the kernel holds in the connection to the client.
    let intake = metric_value(&service.base_url, "source_bytes_total")
        .await
        .unwrap();
    let consumed_equivalent = consumed as f64 / OUTPUT_BYTES_PER_SEC * source_bytes_per_sec;
    let in_kernel_equivalent =
        kernel_socket_buffers_max() / OUTPUT_BYTES_PER_SEC * source_bytes_per_sec;
    let ahead = intake - consumed_equivalent;
    let allowed = in_kernel_equivalent + 8.0 * 1024.0 * 1024.0;
    assert!(
        ahead < allowed,
        "the service read {ahead:.0} B of the source ahead of its client (allowed {allowed:.0})"
    );
    let sent = origin.bytes_sent();
    assert!(
        sent < flac_len,
        "the origin was drained: {sent} of {flac_len} B"
    );
    eprintln!("{ahead:.0} B ahead (allowed {allowed:.0}), origin sent {sent} of {flac_len} B");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_source_sending_bytes_without_audio_is_stalled_before_the_read_idle_timeout() {
    let origin = Origin::start();
    // A real MP3's first 8 KiB, then zeros that the demuxer keeps scanning for a frame.
    let mp3 = std::fs::read(super::common::fixture_path("mp3_vbr_q4.mp3")).unwrap();
    let mut blob = mp3[..8 * 1024].to_vec();
    blob.resize(blob.len() + 4 * 1024 * 1024, 0);
    origin.add_blob("junk_tail.mp3", blob);
    let url = origin.url(
        "junk_tail.mp3",
        Behaviour::Drip {
            bytes_per_sec: 64 * 1024,
        },
    );
    let service = Service::start(&["--stall-timeout-secs", "1"]);
    let response = start_pcm(&service.base_url(), &url, 48_000, 2).await;
    let started = Instant::now();
    let end = body_end(response).await;
    assert!(matches!(end, BodyEnd::Aborted(_)), "{end:?}");
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(10),
        "aborted after {elapsed:?}, not by the 1 s stall timeout"
    );
}
