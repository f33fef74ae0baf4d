//! Happy paths through real sockets: every fixture to PCM exact to the frame, Opus and
//! AAC checked by ffmpeg, filters applied, the headers of SPEC section 2, and the GET
//! form played by `ffmpeg -i http://...` as a real client.

use super::*;
use common::fixtures::{FIXTURES, fixture};
use common::signal::ToneStats;

/// Largest relative error of a measured tone frequency.
const FREQUENCY_TOLERANCE: f64 = 0.01;
/// Largest error of a measured level, in dB.
const LEVEL_TOLERANCE_DB: f64 = 0.5;

fn assert_tone(label: &str, decoded: &Decoded, tone_hz: f64, level_dbfs: f64) {
    for (channel, plane) in decoded.planes.iter().enumerate() {
        let stats = ToneStats::measure(plane, decoded.sample_rate);
        assert!(
            (stats.frequency_hz / tone_hz - 1.0).abs() < FREQUENCY_TOLERANCE
                && (stats.rms_dbfs - level_dbfs).abs() < LEVEL_TOLERANCE_DB,
            "{label} ch{channel}: {stats:?}, expected {tone_hz} Hz at {level_dbfs:.2} dBFS"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_fixture_becomes_pcm_exact_to_the_frame() {
    let origin = Origin::start();
    let service = Service::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    for fixture in FIXTURES {
        let url = origin.url(fixture.file, Behaviour::Ranges);
        let body = json!({"source_url": url, "output_format": "pcm", "sample_rate": 48000});
        let answer = post(&service, body).await;
        assert_eq!(answer.status, 200, "{}: {:?}", fixture.file, answer.json());
        assert_eq!(
            answer.header("x-source-format").as_deref(),
            Some(fixture.format)
        );
        assert_eq!(answer.header("x-start-offset").as_deref(), Some("0"));
        let decoded = answer.pcm(dir.path(), 48_000, 2);
        let expected = fixture.frames_at(48_000) as f64;
        let slack = (fixture.unsignalled_padding_secs + fixture.length_precision_secs) * 48_000.0;
        let frames = decoded.frames() as f64;
        assert!(
            frames >= expected - slack - 1.0 && frames <= expected + slack + 1.0,
            "{}: {frames} frames, expected {expected} (+- {slack})",
            fixture.file
        );
        // X-Content-Duration is what the container states: the decoded length, or
        // exactly what ffprobe reads from the container when that is only an upper
        // bound (ALAC in CAF states whole packets; the last one is shorter).
        let announced: f64 = answer
            .header("x-content-duration")
            .unwrap()
            .parse()
            .unwrap();
        let stated = common::decode::probe(&common::fixture_path(fixture.file)).duration_secs;
        assert!(
            (announced * 48_000.0 - frames).abs() <= slack + 2.0
                || stated.is_some_and(|stated| (stated - announced).abs() < 1e-3),
            "{}: X-Content-Duration {announced} vs {frames} frames (container: {stated:?})",
            fixture.file
        );
        assert_tone(fixture.file, &decoded, fixture.tone_hz, fixture.level_dbfs);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn opus_and_aac_outputs_decode_to_the_tone() {
    let origin = Origin::start();
    let service = Service::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let fixture = fixture("mp3_vbr_q4.mp3");
    let cases = [
        ("opus", "ogg", "audio/ogg; codecs=opus", 48_000),
        ("aac", "aac", "audio/aac", 44_100),
    ];
    for (format, extension, content_type, rate) in cases {
        let url = origin.url(fixture.file, Behaviour::Plain);
        let body = json!({"source_url": url, "output_format": format, "sample_rate": rate});
        let answer = post(&service, body).await;
        assert_eq!(answer.status, 200, "{format}: {:?}", answer.json());
        assert_eq!(answer.header("content-type").as_deref(), Some(content_type));
        let decoded = answer.decode(dir.path(), extension);
        assert_eq!(
            (decoded.sample_rate, decoded.channels),
            (rate, 2),
            "{format}"
        );
        let length_error = decoded.duration_secs() - fixture.duration_secs;
        assert!(
            (-0.01..0.06).contains(&length_error),
            "{format}: {} s, expected {} s",
            decoded.duration_secs(),
            fixture.duration_secs
        );
        assert_tone(format, &decoded, fixture.tone_hz, fixture.level_dbfs);
        if format == "opus" {
            common::opus::assert_opusinfo_clean(&dir.path().join("out.ogg"));
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn filters_start_and_duration_shape_the_output() {
    let origin = Origin::start();
    let service = Service::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let fixture = fixture("flac_s16.flac");
    let url = origin.url(fixture.file, Behaviour::Ranges);
    let body = json!({
        "source_url": url, "output_format": "pcm", "channels": 1,
        "start_seconds": 0.25, "duration_seconds": 1.0,
        "filters": {"rate": 1.25, "volume": 0.5},
    });
    let answer = post(&service, body).await;
    assert_eq!(answer.status, 200, "{:?}", answer.json());
    assert_eq!(answer.header("x-start-offset").as_deref(), Some("0.25"));
    assert_eq!(answer.header("x-content-duration").as_deref(), Some("1"));
    let decoded = answer.pcm(dir.path(), 48_000, 1);
    assert_eq!(decoded.frames(), 48_000, "duration_seconds is exact");
    let half_volume_db = 20.0 * 0.5f64.log10();
    assert_tone(
        "rate 1.25",
        &decoded,
        fixture.tone_hz * 1.25,
        fixture.level_dbfs + half_volume_db,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ffmpeg_plays_the_get_form_as_a_real_client() {
    let origin = Origin::start();
    let service = Service::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let fixture = fixture("vorbis.ogg");
    let source = origin.url(fixture.file, Behaviour::Chunked);
    let url = reqwest::Url::parse_with_params(
        &format!("{}/transcode", service.base_url()),
        [
            ("source_url", source.as_str()),
            ("output_format", "opus"),
            ("speed", "1.25"),
        ],
    )
    .unwrap();
    let output = dir.path().join("played.wav");
    let mut ffmpeg = std::process::Command::new("ffmpeg");
    ffmpeg
        .args(["-nostdin", "-v", "error", "-y", "-i", url.as_str()])
        .arg(&output);
    let status = tokio::task::spawn_blocking(move || ffmpeg.status().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "ffmpeg could not play {url}");
    let decoded = decode_file(&output);
    let expected_secs = fixture.duration_secs / 1.25;
    assert!(
        (decoded.duration_secs() / expected_secs - 1.0).abs() < 0.01 + 0.01 / expected_secs,
        "{} s, expected {expected_secs} s",
        decoded.duration_secs()
    );
    assert_tone("speed 1.25", &decoded, fixture.tone_hz, fixture.level_dbfs);
}
