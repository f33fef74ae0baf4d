//! The pipeline through its library API: early stop when the sink goes away, exact
//! start/duration trimming (sought or decoded through), start past the end, and Opus
//! bitrate on music-like audio.

#![allow(clippy::unwrap_used)]

mod common;

use std::fs::File;
use std::path::Path;
use std::process::Command;

use bytes::Bytes;
use common::fixture_path;
use common::signal::{dominant_frequency_hz, middle};
use rust_transcoder::decode::{Decoder, FormatHint, ReadOnlySource};
use rust_transcoder::encode::{OutputFormat, OutputSpec};
use rust_transcoder::pipeline::{
    FilterUpdate, PipelineError, SinkClosed, Transcode, TranscodeSpec,
};

fn open(path: &Path) -> Decoder {
    let file = File::open(path).expect("open fixture");
    Decoder::try_new(Box::new(file), &FormatHint::default()).expect("decodable fixture")
}

fn pcm_spec(rate_hz: u32) -> TranscodeSpec {
    TranscodeSpec {
        output: OutputSpec {
            format: OutputFormat::Pcm,
            sample_rate_hz: rate_hz,
            channels: 2,
            bitrate_kbps: 128,
        },
        ..TranscodeSpec::default()
    }
}

/// Runs a transcode to completion and returns everything it produced.
fn collect(decoder: Decoder, spec: &TranscodeSpec) -> Result<Vec<u8>, PipelineError> {
    let mut out = Vec::new();
    let transcode = Transcode::try_new(decoder, spec)?;
    transcode.run(
        |chunk| {
            out.extend_from_slice(&chunk);
            Ok(())
        },
        |_| {},
    )?;
    Ok(out)
}

fn s16_left_channel(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|frame| f32::from(i16::from_le_bytes([frame[0], frame[1]])) / 32768.0)
        .collect()
}

#[test]
fn a_closed_sink_stops_the_pipeline_at_once() {
    let transcode =
        Transcode::try_new(open(&fixture_path("mp3_cbr_128k.mp3")), &pcm_spec(48_000)).unwrap();
    let mut delivered = 0;
    let mut decoded_frames = 0;
    let outcome = transcode.run(
        |_chunk: Bytes| {
            delivered += 1;
            if delivered == 2 {
                Err(SinkClosed)
            } else {
                Ok(())
            }
        },
        |frames| decoded_frames = frames,
    );
    assert!(
        matches!(outcome, Err(PipelineError::SinkClosed)),
        "{outcome:?}"
    );
    assert_eq!(delivered, 2, "nothing is produced after the sink went away");
    assert!(
        decoded_frames < 44_100,
        "decoding stopped early ({decoded_frames} frames)"
    );
}

#[test]
fn start_and_duration_are_exact_to_the_frame() {
    let spec = TranscodeSpec {
        start_secs: 0.25,
        duration_secs: Some(0.5),
        ..pcm_spec(44_100)
    };
    let out = collect(open(&fixture_path("wav_s16.wav")), &spec).unwrap();
    assert_eq!(out.len(), 22_050 * 4, "0.5 s of 44.1 kHz stereo s16");
    let tone = s16_left_channel(&out);
    let frequency = dominant_frequency_hz(middle(&tone, 44_100), 44_100);
    assert!((frequency - 440.0).abs() < 4.4, "tone at {frequency} Hz");
}

#[test]
fn start_skips_exactly_the_requested_frames() {
    let whole = collect(open(&fixture_path("wav_s16.wav")), &pcm_spec(44_100)).unwrap();
    let spec = TranscodeSpec {
        start_secs: 0.1,
        ..pcm_spec(44_100)
    };
    let skipped = collect(open(&fixture_path("wav_s16.wav")), &spec).unwrap();
    assert_eq!(skipped.len(), whole.len() - 4_410 * 4);
    assert_eq!(skipped[..4000], whole[4_410 * 4..4_410 * 4 + 4000]);
}

#[test]
fn a_start_is_exact_and_reported_whether_or_not_the_source_can_seek() {
    let path = fixture_path("mp3_cbr_128k.mp3");
    let spec = TranscodeSpec {
        start_secs: 1.0001,
        ..pcm_spec(44_100)
    };
    let unseekable = ReadOnlySource::new(std::io::Cursor::new(std::fs::read(&path).unwrap()));
    let decoders = [
        open(&path),
        Decoder::try_new(Box::new(unseekable), &FormatHint::default()).unwrap(),
    ];
    let outputs = decoders.map(|decoder| {
        let transcode = Transcode::try_new(decoder, &spec).unwrap();
        assert_eq!(transcode.start_offset_secs(), 44_104.0 / 44_100.0);
        let mut out = Vec::new();
        let sink = |chunk: Bytes| {
            out.extend_from_slice(&chunk);
            Ok(())
        };
        transcode.run(sink, |_| {}).unwrap();
        out
    });
    assert_eq!(outputs[0].len(), (110_250 - 44_104) * 4);
    assert!(
        outputs[0] == outputs[1],
        "sought and decoded-through outputs differ"
    );
}

#[test]
fn start_past_the_end_of_a_finite_source_is_refused() {
    let spec = TranscodeSpec {
        start_secs: 60.0,
        ..pcm_spec(48_000)
    };
    let outcome = collect(open(&fixture_path("flac_s16.flac")), &spec);
    assert!(
        matches!(outcome, Err(PipelineError::StartBeyondEnd { .. })),
        "{outcome:?}"
    );
}

#[test]
fn invalid_output_settings_are_refused_before_any_output() {
    for (format, rate, channels, bitrate) in [
        (OutputFormat::Aac, 7_000, 2, 128),
        (OutputFormat::Pcm, 200_000, 2, 128),
        (OutputFormat::Opus, 48_000, 3, 128),
        (OutputFormat::Opus, 48_000, 2, 600),
        (OutputFormat::Aac, 48_000, 2, 4),
    ] {
        let spec = TranscodeSpec {
            output: OutputSpec {
                format,
                sample_rate_hz: rate,
                channels,
                bitrate_kbps: bitrate,
            },
            ..TranscodeSpec::default()
        };
        let outcome = Transcode::try_new(open(&fixture_path("flac_s16.flac")), &spec);
        assert!(
            outcome.is_err(),
            "{format} {rate} Hz {channels} ch {bitrate} kbps accepted"
        );
    }
}

/// Twenty seconds of changing chords, amplitude modulation and percussive noise: what
/// music looks like to a rate controller (a pure tone would undershoot any bitrate).
fn music_like_flac(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("music.flac");
    let chords = "aevalsrc=exprs='0.25*sin(2*PI*(220*pow(2,floor(mod(t,8))/12))*t)*(0.6+0.4*sin(2*PI*2*t))\
        +0.12*sin(2*PI*(330*pow(2,floor(mod(t*2,5))/12))*t)':s=44100:d=20";
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i", chords, "-f", "lavfi", "-i"])
        .arg("anoisesrc=c=pink:r=44100:a=0.08:d=20:seed=7")
        .args(["-filter_complex"])
        .arg("[1]volume='0.3+0.7*exp(-mod(t,0.25)*20)':eval=frame[n];[0][n]amix=inputs=2:normalize=0,aformat=channel_layouts=stereo")
        .arg(&path)
        .status()
        .expect("run ffmpeg");
    assert!(
        status.success(),
        "ffmpeg could not make the music-like input"
    );
    path
}

#[test]
fn opus_honours_the_requested_bitrate_on_music() {
    let dir = tempfile::tempdir().unwrap();
    let input = music_like_flac(dir.path());
    for kbps in [64, 128] {
        let spec = TranscodeSpec {
            output: OutputSpec {
                bitrate_kbps: kbps,
                ..OutputSpec::default()
            },
            ..TranscodeSpec::default()
        };
        let out = collect(open(&input), &spec).unwrap();
        let measured_kbps = out.len() as f64 * 8.0 / 20.0 / 1000.0;
        let error = (measured_kbps - f64::from(kbps)).abs() / f64::from(kbps);
        assert!(
            error <= 0.10,
            "{kbps} kbps requested, {measured_kbps:.1} kbps produced"
        );
    }
}

#[test]
fn source_info_names_every_fixture_format() {
    let mut failures = Vec::new();
    for f in common::fixtures::FIXTURES {
        let decoder = open(&fixture_path(f.file));
        let name = &decoder.info().format_name;
        if name != f.format {
            failures.push(format!(
                "{}: format_name measured {name:?}, expected {:?}",
                f.file, f.format
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "SourceInfo.format_name:\n  {}",
        failures.join("\n  ")
    );
}

/// Runs flac_s16.flac to 44.1 kHz PCM, sending `filters` once 22 050 frames are decoded;
/// returns the left channel and the answer to the update.
fn run_with_update(filters: dsp::Filters) -> (Vec<f32>, Result<(), dsp::ConfigError>) {
    let (updates, receiver) = std::sync::mpsc::channel();
    let (reply, answer) = tokio::sync::oneshot::channel();
    let transcode = Transcode::try_new(open(&fixture_path("flac_s16.flac")), &pcm_spec(44_100))
        .unwrap()
        .with_filter_updates(receiver);
    let mut out = Vec::new();
    let mut update = Some(FilterUpdate { filters, reply });
    transcode
        .run(
            |chunk| {
                out.extend_from_slice(&chunk);
                Ok(())
            },
            |frames| {
                if frames >= 22_050 {
                    if let Some(update) = update.take() {
                        updates.send(update).unwrap();
                    }
                }
            },
        )
        .unwrap();
    (s16_left_channel(&out), answer.blocking_recv().unwrap())
}

#[test]
fn a_filter_update_mid_stream_changes_the_rest_of_the_stream_smoothly() {
    let (left, answer) = run_with_update(dsp::Filters {
        volume: 0.5,
        ..dsp::Filters::default()
    });
    assert!(answer.is_ok(), "{answer:?}");
    assert_eq!(left.len(), 66_150, "1.5 s, no frame lost or repeated");
    let level = |range: std::ops::Range<usize>| common::signal::rms_dbfs(&left[range]);
    // The update applies from the block holding frame 22 050 (FLAC blocks of 4608
    // frames: from frame 18 432 on).
    let change_db = level(30_000..60_000) - level(2_000..16_000);
    assert!(
        (change_db + 6.02).abs() < 0.1,
        "volume 0.5 mid-stream: {change_db:.2} dB"
    );
    let steepest = left
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .fold(0.0, f32::max);
    let sine_step = (std::f32::consts::TAU * 440.0 / 44_100.0) * 0.5 + 2.0 / 32768.0;
    assert!(
        steepest <= sine_step,
        "a jump of {steepest} (a 440 Hz sine moves at most {sine_step})"
    );
}

#[test]
fn a_refused_update_is_answered_and_the_stream_goes_on_unchanged() {
    let (left, answer) = run_with_update(dsp::Filters {
        speed: 5.0,
        volume: 0.5,
        ..dsp::Filters::default()
    });
    assert!(answer.is_err(), "speed 5 must be refused");
    assert_eq!(
        left.len(),
        66_150,
        "the stream ran to its end at its old settings"
    );
    let level = |range: std::ops::Range<usize>| common::signal::rms_dbfs(&left[range]);
    let change_db = level(30_000..60_000) - level(2_000..16_000);
    assert!(
        change_db.abs() < 0.1,
        "nothing of the refused update applied: {change_db:.2} dB"
    );
}
