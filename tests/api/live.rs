//! `PATCH /transcode/{id}`: a running stream's filters change mid-way, smoothly, and
//! only the keys given change; bad values and unknown ids get the spec's errors.

use super::*;
use common::signal::rms_dbfs;

/// A tone long enough that a change lands in the middle of the stream.
const TONE_SECS: f64 = 20.0;
const RATE: u32 = 48_000;
/// Level window for the before/after comparison.
const WINDOW_FRAMES: usize = 4_800;
/// The gain ramp (10 ms) spreads a 6 dB step over 480 frames: the largest step between
/// neighbouring samples of a 0.5-peak 440 Hz tone is about 0.029; a jump of the whole
/// gain change at once would add up to 0.25.
const LARGEST_SMOOTH_STEP: f32 = 0.04;

/// Serves a 20 s 440 Hz mono tone (peak 0.5) as a WAV blob, at about 1 MB/s.
fn long_tone(origin: &Origin) -> String {
    let samples = common::signal::sine(440.0, 0.5, RATE, TONE_SECS);
    let mut wav = Vec::new();
    let data_bytes = (samples.len() * 2) as u32;
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data_bytes).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    for field in [16u32, 1 | (1 << 16), RATE, RATE * 2, 2 | (16 << 16)] {
        wav.extend_from_slice(&field.to_le_bytes());
    }
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data_bytes.to_le_bytes());
    for sample in samples {
        wav.extend_from_slice(&((sample * 32767.0).round() as i16).to_le_bytes());
    }
    origin.add_blob("long_tone.wav", wav);
    // Dripped so that the stream is still running when the test changes it (the whole
    // output would otherwise fit in the loopback socket buffers at once).
    origin.url(
        "long_tone.wav",
        Behaviour::Drip {
            bytes_per_sec: 1_000_000,
        },
    )
}

async fn patch(service: &Service, id: &str, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .patch(format!("{}/transcode/{id}", service.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Starts a mono PCM stream of `url`, reads its first chunk and returns the response,
/// its transcode id and the bytes read so far.
async fn start_mono_pcm(service: &Service, url: &str) -> (reqwest::Response, String, Vec<u8>) {
    let mut response = reqwest::Client::new()
        .post(format!("{}/transcode", service.base_url()))
        .json(&json!({"source_url": url, "output_format": "pcm", "channels": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let id = response.headers()["x-transcode-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let first = response.chunk().await.unwrap().unwrap().to_vec();
    (response, id, first)
}

/// Reads the rest of `response` after `body` and returns all of it as samples.
async fn read_samples(mut response: reqwest::Response, mut body: Vec<u8>) -> Vec<f32> {
    while let Some(chunk) = response.chunk().await.unwrap() {
        body.extend_from_slice(&chunk);
    }
    body.chunks_exact(2)
        .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_volume_patch_changes_the_rest_of_the_stream_smoothly() {
    let origin = Origin::start();
    let service = Service::start(&[]);
    let (response, id, body) = start_mono_pcm(&service, &long_tone(&origin)).await;
    let answer = patch(&service, &id, json!({"filters": {"volume": 0.5}})).await;
    assert_eq!(answer.status(), 204);
    let read_at_patch = body.len() / 2;
    let samples = read_samples(response, body).await;
    assert_eq!(samples.len(), (TONE_SECS * f64::from(RATE)) as usize);
    let before = rms_dbfs(&samples[..WINDOW_FRAMES]);
    let after = rms_dbfs(&samples[samples.len() - WINDOW_FRAMES..]);
    assert!(
        (after - before + 6.02).abs() < 0.3,
        "level before {before:.2} dBFS, after {after:.2} dBFS"
    );
    let change = samples
        .chunks(WINDOW_FRAMES)
        .position(|window| rms_dbfs(window) < before - 3.0)
        .unwrap()
        * WINDOW_FRAMES;
    assert!(change >= read_at_patch, "the change came before the PATCH");
    let largest_step = samples
        .windows(2)
        .map(|pair| (pair[1] - pair[0]).abs())
        .fold(0.0f32, f32::max);
    assert!(
        largest_step < LARGEST_SMOOTH_STEP,
        "a sample jump of {largest_step} (a click) around frame {change}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn patch_answers_404_for_unknown_streams_and_400_for_bad_values() {
    let origin = Origin::start();
    let service = Service::start(&[]);
    let unknown = patch(
        &service,
        &uuid::Uuid::new_v4().to_string(),
        json!({"filters": {}}),
    )
    .await;
    assert_error(&read(unknown).await, 404, "NOT_FOUND");
    let not_an_id = patch(&service, "not-an-id", json!({"filters": {}})).await;
    assert_error(&read(not_an_id).await, 404, "NOT_FOUND");

    let url = long_tone(&origin);
    let mut response = reqwest::Client::new()
        .post(format!("{}/transcode", service.base_url()))
        .json(&json!({"source_url": url, "output_format": "pcm"}))
        .send()
        .await
        .unwrap();
    let id = response.headers()["x-transcode-id"]
        .to_str()
        .unwrap()
        .to_owned();
    response.chunk().await.unwrap();
    let too_fast = patch(&service, &id, json!({"filters": {"speed": 4.0}})).await;
    let message = assert_error(&read(too_fast).await, 400, "FILTER_INVALID");
    assert!(message.contains("speed"), "{message}");
    let unknown_key = patch(&service, &id, json!({"filters": {"echo": 1}})).await;
    assert_error(&read(unknown_key).await, 400, "FILTER_INVALID");
    let good = patch(
        &service,
        &id,
        json!({"filters": {"speed": 1.5, "eq_preset": "voice"}}),
    )
    .await;
    assert_eq!(good.status(), 204);
    drop(response);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_speed_patch_shortens_the_rest_of_the_stream_and_keeps_the_pitch() {
    let origin = Origin::start();
    let service = Service::start(&[]);
    let (response, id, body) = start_mono_pcm(&service, &long_tone(&origin)).await;
    let answer = patch(&service, &id, json!({"filters": {"speed": 2.0}})).await;
    assert_eq!(answer.status(), 204);
    let read_at_patch = body.len() / 2;
    let samples = read_samples(response, body).await;
    // Whatever was produced before the change plays at speed 1, the rest at speed 2:
    // the whole is shorter than the source and at least half of it.
    let source_frames = TONE_SECS * f64::from(RATE);
    let frames = samples.len() as f64;
    assert!(
        frames < source_frames * 0.95 && frames >= source_frames / 2.0 - f64::from(RATE) * 0.1,
        "{frames} frames from a {source_frames}-frame source at speed 2 after frame {read_at_patch}"
    );
    let tail = &samples[samples.len() - 2 * WINDOW_FRAMES..];
    let pitch = common::signal::dominant_frequency_hz(tail, RATE);
    assert!(
        (pitch / 440.0 - 1.0).abs() < 0.01,
        "{pitch} Hz after the speed change"
    );
    let level = rms_dbfs(tail);
    let before = rms_dbfs(&samples[..WINDOW_FRAMES]);
    assert!(
        (level - before).abs() < 0.5,
        "level {before:.2} -> {level:.2} dBFS"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_patch_raises_the_pitch_of_the_rest_without_a_click() {
    let origin = Origin::start();
    let service = Service::start(&[]);
    let (response, id, body) = start_mono_pcm(&service, &long_tone(&origin)).await;
    let answer = patch(&service, &id, json!({"filters": {"rate": 1.25}})).await;
    assert_eq!(answer.status(), 204);
    let samples = read_samples(response, body).await;
    let tail = &samples[samples.len() - 2 * WINDOW_FRAMES..];
    let pitch = common::signal::dominant_frequency_hz(tail, RATE);
    assert!(
        (pitch / 550.0 - 1.0).abs() < 0.01,
        "{pitch} Hz after rate 1.25"
    );
    // The steepest a 0.5-peak 550 Hz sine moves between samples, plus s16 rounding: a
    // splice that lost or repeated audio would jump by up to the whole amplitude.
    let steepest = 2.0 * 0.5 * (std::f32::consts::PI * 550.0 / RATE as f32).sin();
    let largest_step = samples
        .windows(2)
        .map(|pair| (pair[1] - pair[0]).abs())
        .fold(0.0f32, f32::max);
    assert!(
        largest_step <= steepest * 1.02 + 2.0 / 32768.0,
        "a sample jump of {largest_step} (the tone allows {steepest})"
    );
}
