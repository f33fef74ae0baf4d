//! Tests of the shared test harness itself: the signal measures on synthetic
//! signals, the decoders on files ffmpeg makes, and the fixture table against
//! the committed fixtures.

#![allow(clippy::unwrap_used)]

mod common;

use common::decode::{Decoded, Probe, decode_file, decode_raw_pcm, probe};
use common::fixture_path;
use common::fixtures::{
    CORRUPT, FIXTURES, Fixture, SINE_HALF_DBFS, SURROUND_TONE_PEAK, SURROUND_TONES_FILE,
    SURROUND_TONES_HZ, SURROUND_TONES_RATE,
};
use common::opus::{assert_opusinfo_clean, opusinfo_problems, opusinfo_report};
use common::signal::{
    ToneStats, band_level_dbfs, dominant_frequency_hz, middle, peak, rms_dbfs, sine, tone_span,
};
use std::f32::consts::{FRAC_1_SQRT_2, SQRT_2};
use std::path::Path;
use std::process::Command;

const MAX_FIXTURE_BYTES: u64 = 300_000;

/// Fails unless `measured` is within `tolerance` of `expected`.
fn assert_close(what: &str, measured: f64, expected: f64, tolerance: f64) {
    assert!(
        (measured - expected).abs() <= tolerance,
        "{what}: measured {measured:.5}, expected {expected:.5} ± {tolerance}"
    );
}

/// `tone` with `before_secs` of silence in front and `after_secs` behind.
fn with_silence(before_secs: f64, tone: &[f32], after_secs: f64, rate: u32) -> Vec<f32> {
    let pad = |secs: f64| vec![0.0f32; (secs * f64::from(rate)) as usize];
    [pad(before_secs), tone.to_vec(), pad(after_secs)].concat()
}

#[test]
fn dominant_frequency_is_accurate_to_a_tenth_of_a_percent() {
    for (freq, rate) in [
        (440.0, 44100),
        (1000.0, 48000),
        (997.3, 22050),
        (15000.0, 96000),
    ] {
        let tone = sine(freq, 0.5, rate, 1.0);
        let measured = dominant_frequency_hz(&tone, rate);
        assert_close(
            &format!("{freq} Hz at {rate} Hz"),
            measured,
            freq,
            freq * 0.001,
        );
    }
}

#[test]
fn dominant_frequency_ignores_weaker_tones_and_short_signals_still_work() {
    let rate = 48000;
    let main = sine(523.25, 0.5, rate, 0.5);
    let harmonic = sine(1046.5, 0.05, rate, 0.5);
    let mixed: Vec<f32> = main.iter().zip(&harmonic).map(|(a, b)| a + b).collect();
    assert_close(
        "tone + harmonic",
        dominant_frequency_hz(&mixed, rate),
        523.25,
        0.5,
    );
}

#[test]
fn levels_and_peaks_of_known_signals() {
    let tone = sine(440.0, 0.5, 48000, 1.0);
    assert_close("sine 0.5", rms_dbfs(&tone), SINE_HALF_DBFS, 0.01);
    assert_close(
        "square 0.5",
        rms_dbfs(&[0.5, -0.5, 0.5, -0.5]),
        -6.0206,
        0.001,
    );
    assert_close("peak", f64::from(peak(&tone)), 0.5, 1e-3);
    assert_eq!(peak(&[0.1, -0.7, 0.3]), 0.7);
    assert_eq!(rms_dbfs(&[0.0; 10]), f64::NEG_INFINITY);
    assert_eq!(rms_dbfs(&[]), f64::NEG_INFINITY);
}

#[test]
fn tone_span_finds_onset_and_end() {
    let rate = 44100;
    let signal = with_silence(0.3, &sine(440.0, 0.5, rate, 1.0), 0.2, rate);
    let (start, end) = tone_span(&signal, rate, 20.0);
    assert_close("start", start, 0.3, 0.002);
    assert_close("end", end, 1.3, 0.002);
    assert_eq!(tone_span(&[0.0; 1000], rate, 20.0), (0.0, 0.0));
}

#[test]
fn middle_skips_a_tenth_of_a_second_at_each_end() {
    let samples = vec![0.0f32; 48000];
    assert_eq!(middle(&samples, 48000).len(), 48000 - 2 * 4800);
    assert_eq!(middle(&samples[..9000], 48000).len(), 9000);
}

#[test]
fn tone_stats_measure_the_steady_part_only() {
    let rate = 48000;
    let mut tone = sine(440.0, 0.5, rate, 1.0);
    tone[10] = 0.99; // a click near the start must not change the level
    let signal = with_silence(0.25, &tone, 0.5, rate);
    let stats = ToneStats::measure(&signal, rate);
    assert_close("frequency", stats.frequency_hz, 440.0, 0.44);
    assert_close("level", stats.rms_dbfs, SINE_HALF_DBFS, 0.02);
    assert_close("span", stats.span_secs, 1.0, 0.004);
    assert_eq!(stats.peak, 0.99);
    assert!(ToneStats::measure(&[0.0; 4800], rate).frequency_hz.is_nan());
}

#[test]
fn decode_raw_pcm_reads_interleaved_s16le() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("raw.pcm");
    let frames: [[i16; 2]; 3] = [[0, 16384], [-32768, 32767], [100, -100]];
    let bytes: Vec<u8> = frames
        .iter()
        .flatten()
        .flat_map(|s| s.to_le_bytes())
        .collect();
    std::fs::write(&path, bytes).unwrap();
    let decoded = decode_raw_pcm(&path, 8000, 2);
    assert_eq!(
        (decoded.sample_rate, decoded.channels, decoded.frames()),
        (8000, 2, 3)
    );
    assert_eq!(decoded.planes[0], [0.0, -1.0, 100.0 / 32768.0]);
    assert_eq!(
        decoded.planes[1],
        [0.5, 32767.0 / 32768.0, -100.0 / 32768.0]
    );
    assert_close("duration", decoded.duration_secs(), 3.0 / 8000.0, 1e-12);
}

/// Makes a 48 kHz stereo file with 440 Hz left and 1000 Hz right.
fn ffmpeg_tone_file(dir: &Path, name: &str, codec_args: &[&str]) -> std::path::PathBuf {
    let path = dir.join(name);
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("aevalsrc=0.5*sin(2*PI*440*t)|0.5*sin(2*PI*1000*t):s=48000:d=1.5")
        .args(codec_args)
        .arg(&path)
        .status()
        .expect("ffmpeg must be installed");
    assert!(status.success(), "ffmpeg failed to make {name}");
    path
}

#[test]
fn decode_file_keeps_rate_channels_order_and_length() {
    let dir = tempfile::tempdir().unwrap();
    let path = ffmpeg_tone_file(dir.path(), "tone.wav", &["-c:a", "pcm_s16le"]);
    let decoded = decode_file(&path);
    assert_eq!((decoded.sample_rate, decoded.channels), (48000, 2));
    assert_eq!(decoded.frames(), 72000);
    let left = ToneStats::measure(&decoded.planes[0], 48000);
    let right = ToneStats::measure(&decoded.planes[1], 48000);
    assert_close("left frequency", left.frequency_hz, 440.0, 0.44);
    assert_close("right frequency", right.frequency_hz, 1000.0, 1.0);
    assert_close("left level", left.rms_dbfs, SINE_HALF_DBFS, 0.01);
}

#[test]
fn opusinfo_accepts_ffmpeg_opus_and_flags_a_cut_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = ffmpeg_tone_file(dir.path(), "tone.opus", &["-c:a", "libopus", "-b:a", "96k"]);
    assert_opusinfo_clean(&good);
    assert!(opusinfo_report(&good).contains("Opus stream"));
    let bytes = std::fs::read(&good).unwrap();
    let cut = dir.path().join("cut.opus");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let problems = opusinfo_problems(&cut);
    assert!(
        problems.iter().any(|l| l.contains("EOS")),
        "a file without its last page must be flagged, got {problems:?}"
    );
    assert!(!opusinfo_problems(&fixture_path("random.bin")).is_empty());
}

#[test]
fn every_fixture_exists_and_is_small() {
    let names = FIXTURES
        .iter()
        .map(|f| f.file)
        .chain(CORRUPT.iter().map(|c| c.file))
        .chain([SURROUND_TONES_FILE]);
    for name in names {
        let len = std::fs::metadata(fixture_path(name)).unwrap().len();
        assert!(len < MAX_FIXTURE_BYTES, "{name} is {len} bytes");
    }
    assert_eq!(
        std::fs::metadata(fixture_path("empty.bin")).unwrap().len(),
        0
    );
    assert_eq!(
        std::fs::metadata(fixture_path("random.bin")).unwrap().len(),
        65536
    );
}

#[test]
fn fixture_levels_follow_from_their_amplitudes() {
    for f in FIXTURES {
        let per_channel = 20.0 * (f.amplitude / 2f64.sqrt()).log10();
        let downmix = if f.channels == 6 {
            20.0 * (1.7071 / 2.4142f64).log10()
        } else {
            0.0
        };
        assert_close(
            f.file,
            f.level_dbfs,
            per_channel + downmix + f.codec_gain_db,
            0.001,
        );
    }
}

/// The stereo downmix of the 5.1 fixture, left channel:
/// L = (FL + 0.7071 FC + 0.7071 BL) / 2.4142, in ffmpeg's 5.1 channel order.
fn surround_left(d: &Decoded) -> Vec<f32> {
    let p = &d.planes;
    (0..d.frames())
        .map(|i| (p[0][i] + FRAC_1_SQRT_2 * (p[2][i] + p[4][i])) / (1.0 + SQRT_2))
        .collect()
}

fn check_fixture_format(f: &Fixture, probe: &Probe) {
    if probe.codec_name.starts_with("pcm_") {
        assert_eq!(probe.format_name, f.format, "{}: container", f.file);
    } else {
        assert_eq!(probe.codec_name, f.format, "{}: codec", f.file);
    }
}

fn check_fixture_length(f: &Fixture, probe: &Probe, d: &Decoded) {
    let decoded = d.duration_secs();
    let stated = probe.duration_secs.unwrap_or(decoded).min(decoded);
    let max = f.duration_secs + f.unsignalled_padding_secs + 0.001;
    assert!(
        decoded >= f.duration_secs - 0.001 && stated <= max,
        "{}: decoded {decoded:.4} s, container states {:?}, expected {} s (+{:.4} s)",
        f.file,
        probe.duration_secs,
        f.duration_secs,
        f.unsignalled_padding_secs
    );
}

fn check_fixture_tone(f: &Fixture, d: &Decoded) {
    let planes = if f.channels == 6 {
        vec![surround_left(d)]
    } else {
        d.planes.clone()
    };
    for plane in &planes {
        let stats = ToneStats::measure(plane, d.sample_rate);
        let what = |check: &str| format!("{} {check}", f.file);
        assert_close(
            &what("frequency"),
            stats.frequency_hz,
            f.tone_hz,
            f.tone_hz * 0.002,
        );
        assert_close(&what("level"), stats.rms_dbfs, f.level_dbfs, 0.1);
        assert_close(&what("tone length"), stats.span_secs, f.duration_secs, 0.01);
    }
}

#[test]
fn fixture_table_matches_what_ffmpeg_decodes() {
    for f in FIXTURES {
        let path = fixture_path(f.file);
        let probe = probe(&path);
        let decoded = decode_file(&path);
        check_fixture_format(f, &probe);
        assert_eq!(decoded.sample_rate, f.sample_rate, "{}: rate", f.file);
        assert_eq!(decoded.channels, f.channels, "{}: channels", f.file);
        check_fixture_length(f, &probe, &decoded);
        check_fixture_tone(f, &decoded);
    }
}

#[test]
fn surround_fixture_is_5_1_with_the_tone_in_front_only() {
    let decoded = decode_file(&fixture_path("surround_51.flac"));
    let layout = probe(&fixture_path("surround_51.flac")).channel_layout;
    assert!(
        layout.as_deref().is_some_and(|l| l.starts_with("5.1")),
        "{layout:?}"
    );
    for c in 0..3 {
        let level = rms_dbfs(middle(&decoded.planes[c], 44100));
        assert_close(&format!("channel {c}"), level, SINE_HALF_DBFS, 0.01);
    }
    assert!(
        decoded.planes[0] == decoded.planes[2],
        "FL and FC must be identical"
    );
    for c in 3..6 {
        assert!(
            peak(&decoded.planes[c]) == 0.0,
            "channel {c} must be silent"
        );
    }
}

#[test]
fn surround_tones_fixture_has_its_own_tone_in_every_5_1_channel() {
    let path = fixture_path(SURROUND_TONES_FILE);
    let layout = probe(&path).channel_layout;
    assert_eq!(
        layout.as_deref(),
        Some("5.1"),
        "{SURROUND_TONES_FILE} layout"
    );
    let decoded = decode_file(&path);
    assert_eq!(decoded.sample_rate, SURROUND_TONES_RATE);
    assert_eq!((decoded.channels, decoded.frames()), (6, 88200));
    let level = 20.0 * (SURROUND_TONE_PEAK / 2f64.sqrt()).log10();
    for (c, plane) in decoded.planes.iter().enumerate() {
        for (t, &hz) in SURROUND_TONES_HZ.iter().enumerate() {
            let measured = band_level_dbfs(plane, SURROUND_TONES_RATE, hz);
            let what = format!("channel {c}, {hz} Hz");
            if t == c {
                assert_close(&what, measured, level, 0.01);
            } else {
                assert!(measured < level - 80.0, "{what}: {measured:.1} dBFS");
            }
        }
    }
}

#[test]
fn broken_fixtures_are_rejected_by_ffprobe() {
    for name in ["empty.bin", "random.bin", "html.html"] {
        let ok = Command::new("ffprobe")
            .args(["-v", "quiet", "-show_streams"])
            .arg(fixture_path(name))
            .status()
            .unwrap()
            .success();
        assert!(!ok, "{name} must not be decodable");
    }
}

#[path = "harness/measures.rs"]
mod measures;
