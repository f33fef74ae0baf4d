//! The HTTP service through real sockets: a loopback media origin serves fixtures, the
//! service transcodes them, and what comes back is decoded by independent tools and
//! measured. Error codes, the SSRF guard, faults, live changes and the lifecycle each
//! have their own file.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::decode::{Decoded, decode_file, decode_raw_pcm};
use common::origin::{Behaviour, Origin};
use common::service::Service;
use serde_json::{Value, json};

/// A finished response: status, headers and the whole body.
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: reqwest::header::HeaderMap,
    /// The whole body.
    pub body: Vec<u8>,
}

impl Answer {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|value| value.to_str().unwrap().to_owned())
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|err| {
            panic!("not JSON ({err}): {}", String::from_utf8_lossy(&self.body))
        })
    }

    /// Writes the body to a file in `dir` and decodes it with ffmpeg.
    pub fn decode(&self, dir: &Path, extension: &str) -> Decoded {
        let path = dir.join(format!("out.{extension}"));
        std::fs::write(&path, &self.body).unwrap();
        decode_file(&path)
    }

    /// Reads the body as raw s16le PCM.
    pub fn pcm(&self, dir: &Path, rate: u32, channels: usize) -> Decoded {
        let path = dir.join("out.pcm");
        std::fs::write(&path, &self.body).unwrap();
        decode_raw_pcm(&path, rate, channels)
    }
}

/// POSTs `body` to `/transcode` and reads the whole answer.
pub async fn post(service: &Service, body: Value) -> Answer {
    let response = reqwest::Client::new()
        .post(format!("{}/transcode", service.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    read(response).await
}

/// Reads a whole response (the body read must succeed).
pub async fn read(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await.unwrap().to_vec();
    Answer {
        status,
        headers,
        body,
    }
}

/// Asserts the spec's error shape with `code` and `status`, and returns the message.
pub fn assert_error(answer: &Answer, status: u16, code: &str) -> String {
    let body = answer.json();
    assert_eq!(
        (answer.status, body["error"]["code"].as_str()),
        (status, Some(code)),
        "{body}"
    );
    assert_eq!(
        answer.header("content-type").as_deref(),
        Some("application/json")
    );
    let id = body["error"]["transcode_id"].as_str().unwrap();
    uuid::Uuid::parse_str(id).unwrap();
    body["error"]["message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn pcm_through_real_sockets_is_the_tone_at_the_right_length() {
    let origin = Origin::start();
    let service = Service::start(&[]);
    let url = origin.url("flac_s16.flac", Behaviour::Ranges);
    let answer = post(
        &service,
        json!({"source_url": url, "output_format": "pcm", "sample_rate": 44100}),
    )
    .await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert_eq!(
        answer.header("content-type").as_deref(),
        Some("audio/pcm;rate=44100;channels=2;format=s16le")
    );
    assert_eq!(answer.header("x-source-format").as_deref(), Some("flac"));
    assert_eq!(answer.header("x-pipeline").as_deref(), Some("native"));
    let dir = tempfile::tempdir().unwrap();
    let decoded = answer.pcm(dir.path(), 44_100, 2);
    let fixture = common::fixtures::fixture("flac_s16.flac");
    assert_eq!(decoded.frames(), fixture.frames_at(44_100));
    let stats = common::signal::ToneStats::measure(&decoded.planes[0], 44_100);
    assert!(
        (stats.frequency_hz / fixture.tone_hz - 1.0).abs() < 0.01,
        "{stats:?}"
    );
}

#[path = "api/errors.rs"]
mod errors;
#[path = "api/faults.rs"]
mod faults;
#[path = "api/happy.rs"]
mod happy;
#[path = "api/lifecycle.rs"]
mod lifecycle;
#[path = "api/live.rs"]
mod live;
#[path = "api/observe.rs"]
mod observe;
#[path = "api/refusals.rs"]
mod refusals;
#[path = "api/ssrf.rs"]
mod ssrf;

/// `GET base_url + path`, read whole.
pub async fn get_answer(base_url: &str, path: &str) -> Answer {
    read(reqwest::get(format!("{base_url}{path}")).await.unwrap()).await
}

/// `GET /health`: the status code and the JSON body.
pub async fn health_of(base_url: &str) -> (u16, Value) {
    let answer = get_answer(base_url, "/health").await;
    (answer.status, answer.json())
}

/// The value of one sample in `/metrics`, e.g. `transcode_errors_total{code="TIMEOUT"}`
/// (labels in alphabetical order, as the exporter writes them); `None` when absent.
pub async fn metric_value(base_url: &str, sample: &str) -> Option<f64> {
    let answer = get_answer(base_url, "/metrics").await;
    assert_eq!(answer.status, 200);
    String::from_utf8(answer.body)
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
}

/// Polls `check` every 20 ms until it holds and returns how long that took; panics
/// naming `what` when it still does not hold after `limit`.
pub async fn wait_for(
    what: &str,
    limit: std::time::Duration,
    mut check: impl AsyncFnMut() -> bool,
) -> std::time::Duration {
    let started = std::time::Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    started.elapsed()
}

/// How a streamed body ended.
#[derive(Debug)]
pub enum BodyEnd {
    /// The body ended cleanly with these bytes.
    Complete(Vec<u8>),
    /// The body broke off (connection reset, chunked stream not terminated) after this
    /// many bytes.
    Aborted(usize),
}

/// Reads a streamed body to its end, telling a clean end from an abort; panics when the
/// body neither ends nor breaks within a minute.
pub async fn body_end(mut response: reqwest::Response) -> BodyEnd {
    let mut body = Vec::new();
    let reading = async {
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) => return true,
                Err(_) => return false,
            }
        }
    };
    let complete = tokio::time::timeout(std::time::Duration::from_secs(60), reading)
        .await
        .expect("the body neither ended nor broke off within 60 s");
    if complete {
        BodyEnd::Complete(body)
    } else {
        BodyEnd::Aborted(body.len())
    }
}

/// A 16-bit PCM WAV file of a half-scale `freq_hz` sine, `secs` long, in every channel.
pub fn tone_wav(freq_hz: f64, rate: u32, channels: u16, secs: f64) -> Vec<u8> {
    let samples = common::signal::sine(freq_hz, 0.5, rate, secs);
    let data_len = (samples.len() * usize::from(channels) * 2) as u32;
    let block_align = channels * 2;
    let mut wav = Vec::with_capacity(44 + data_len as usize);
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_len).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16_u32.to_le_bytes());
    wav.extend_from_slice(&1_u16.to_le_bytes());
    wav.extend_from_slice(&channels.to_le_bytes());
    wav.extend_from_slice(&rate.to_le_bytes());
    wav.extend_from_slice(&(rate * u32::from(block_align)).to_le_bytes());
    wav.extend_from_slice(&block_align.to_le_bytes());
    wav.extend_from_slice(&16_u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_len.to_le_bytes());
    for sample in samples {
        let value = (sample * 32767.0).round() as i16;
        for _ in 0..channels {
            wav.extend_from_slice(&value.to_le_bytes());
        }
    }
    wav
}
