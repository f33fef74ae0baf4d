//! End-to-end tests of `rust-transcoder transcode`: every fixture into every
//! output format, a few non-default options, and broken inputs. What the CLI
//! writes is decoded by independent tools (ffmpeg, opusinfo) or read as raw
//! PCM, and measured against the fixture table.

#![allow(clippy::unwrap_used)]

mod common;

use common::decode::{Decoded, decode_file, decode_raw_pcm, probe};
use common::fixtures::{CORRUPT, Corrupt, FIXTURES, Fixture, fixture};
use common::opus::{assert_opusinfo_clean, opusinfo_problems};
use common::run::{RunOutput, run_with_timeout};
use common::signal::ToneStats;
use common::{cli, fixture_path};
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Longest a good transcode may take (debug builds included).
const RUN_LIMIT: Duration = Duration::from_secs(60);
/// Longest the CLI may take to give up on a broken input.
const CORRUPT_LIMIT: Duration = Duration::from_secs(5);
/// Allowed difference between output and source length.
const DURATION_TOLERANCE_SECS: f64 = 0.020;
/// Allowed relative error of the tone frequency.
const FREQUENCY_TOLERANCE: f64 = 0.01;
/// Allowed level error with default options.
const LEVEL_TOLERANCE_DB: f64 = 0.5;
/// ADTS cannot signal encoder delay: the output may carry priming and padding
/// of up to this many frames beyond the source length.
const AAC_MAX_EXTRA_FRAMES: f64 = 3072.0;
/// Output sample rate and channel count when none is requested.
const DEFAULT_RATE: u32 = 48000;
const DEFAULT_CHANNELS: usize = 2;
/// Limiter ceiling: -1 dBFS.
const LIMITER_CEILING: f32 = 0.891_250_9;
/// Headroom over the ceiling for s16 rounding in PCM output.
const LIMITER_TOLERANCE: f32 = 0.005;

/// Collects every failed check of one case, so one run reports them all.
struct Report {
    label: String,
    failures: Vec<String>,
}

impl Report {
    fn new(case: &Case) -> Self {
        Self {
            label: case.label(),
            failures: Vec::new(),
        }
    }

    fn expect(&mut self, check: &str, ok: bool, measured: impl Display, expected: impl Display) {
        if !ok {
            let line = format!("{check}: measured {measured}, expected {expected}");
            self.failures.push(line);
        }
    }

    fn finish(self) {
        assert!(
            self.failures.is_empty(),
            "{}:\n  {}",
            self.label,
            self.failures.join("\n  ")
        );
    }
}

/// The CLI output of one case, decoded.
struct Produced {
    _dir: tempfile::TempDir,
    path: PathBuf,
    bytes: u64,
    decoded: Decoded,
}

/// Runs the CLI for `case` into a temporary directory, asserts that it
/// succeeded without panicking, and decodes what it wrote (raw PCM directly,
/// Ogg Opus and ADTS AAC with ffmpeg).
fn transcode(case: &Case) -> Produced {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(case.format.file_name());
    let input = fixture_path(case.fixture.file);
    let run = run_with_timeout(cli().args(case.args(&input, &path)), RUN_LIMIT);
    assert!(
        run.status.success() && !run.stderr.contains("panicked"),
        "{}: CLI failed ({}): {}",
        case.label(),
        run.status,
        run.stderr.trim()
    );
    let decoded = match case.format {
        Format::Pcm => decode_raw_pcm(&path, case.out_rate(), case.out_channels()),
        Format::Opus | Format::Aac => decode_file(&path),
    };
    let bytes = std::fs::metadata(&path).unwrap().len();
    Produced {
        _dir: dir,
        path,
        bytes,
        decoded,
    }
}

/// Container, codec, rate, channels (and AAC profile, opusinfo conformance)
/// of the output as ffprobe and opusinfo see them; nothing for raw PCM.
fn check_stream(case: &Case, out: &Produced, report: &mut Report) {
    if case.format == Format::Pcm {
        return; // raw PCM carries no header: rate and channels are as requested
    }
    let probe = probe(&out.path);
    let (codec, container) = match case.format {
        Format::Opus => ("opus", "ogg"),
        _ => ("aac", "aac"),
    };
    report.expect("codec", probe.codec_name == codec, &probe.codec_name, codec);
    report.expect(
        "container",
        probe.format_name == container,
        &probe.format_name,
        container,
    );
    report.expect(
        "sample rate",
        probe.sample_rate == case.out_rate(),
        probe.sample_rate,
        case.out_rate(),
    );
    report.expect(
        "channels",
        probe.channels == case.out_channels(),
        probe.channels,
        case.out_channels(),
    );
    if case.format == Format::Aac {
        let profile = probe.profile.as_deref().unwrap_or("none");
        report.expect("AAC profile", profile == "LC", profile, "LC");
    }
    if case.format == Format::Opus {
        let problems = opusinfo_problems(&out.path);
        report.expect(
            "opusinfo",
            problems.is_empty(),
            problems.join(" | "),
            "no warnings or errors",
        );
    }
}

/// Output length against the fixture length, within [`DURATION_TOLERANCE_SECS`]
/// plus the padding the source or the output container cannot signal.
fn check_length(case: &Case, out: &Produced, report: &mut Report) {
    let f = case.fixture;
    let rate = f64::from(out.decoded.sample_rate);
    let extra = match case.format {
        Format::Aac => AAC_MAX_EXTRA_FRAMES / rate,
        _ => 0.0,
    };
    let min = f.duration_secs - DURATION_TOLERANCE_SECS;
    let max = f.duration_secs + f.unsignalled_padding_secs + extra + DURATION_TOLERANCE_SECS;
    let total = out.decoded.duration_secs();
    let range = format!("{min:.4}..={max:.4} s");
    report.expect(
        "duration",
        (min..=max).contains(&total),
        format!("{total:.4} s"),
        range,
    );
}

/// Per output channel: tone length, frequency and level.
fn check_channels(case: &Case, out: &Produced, report: &mut Report) {
    let f = case.fixture;
    let rate = out.decoded.sample_rate;
    for (c, plane) in out.decoded.planes.iter().enumerate() {
        let stats = ToneStats::measure(plane, rate);
        let span_ok = (stats.span_secs - f.duration_secs).abs() <= DURATION_TOLERANCE_SECS;
        let tolerance = format!("{} s ± {DURATION_TOLERANCE_SECS}", f.duration_secs);
        report.expect(
            &format!("ch{c} tone length"),
            span_ok,
            format!("{:.4} s", stats.span_secs),
            tolerance,
        );
        let freq_ok = (stats.frequency_hz / f.tone_hz - 1.0).abs() <= FREQUENCY_TOLERANCE;
        let expected = format!("{} Hz ± {}%", f.tone_hz, FREQUENCY_TOLERANCE * 100.0);
        report.expect(
            &format!("ch{c} frequency"),
            freq_ok,
            format!("{:.2} Hz", stats.frequency_hz),
            expected,
        );
        check_level(case, c, &stats, report);
    }
}

/// The level of one output channel: near the expected level, or under the
/// limiter ceiling when the volume pushes the tone above it.
fn check_level(case: &Case, channel: usize, stats: &ToneStats, report: &mut Report) {
    let measured = format!("{:.2} dBFS (peak {:.4})", stats.rms_dbfs, stats.peak);
    match case.level() {
        Level::Near { dbfs, tolerance_db } => {
            let ok = (stats.rms_dbfs - dbfs).abs() <= tolerance_db;
            let expected = format!("{dbfs:.2} ± {tolerance_db} dBFS");
            report.expect(&format!("ch{channel} level"), ok, measured, expected);
        }
        Level::Limited => {
            let ok = stats.peak <= LIMITER_CEILING + LIMITER_TOLERANCE && stats.rms_dbfs >= -7.0;
            let expected =
                format!("peak <= {LIMITER_CEILING} (+{LIMITER_TOLERANCE}), level >= -7 dBFS");
            report.expect(&format!("ch{channel} limiter"), ok, measured, expected);
        }
    }
}

/// Transcodes one case and runs every generic check; returns the output and
/// the report so a caller can add case-specific checks before finishing.
fn check_case(case: &Case) -> (Produced, Report) {
    let out = transcode(case);
    let mut report = Report::new(case);
    check_stream(case, &out, &mut report);
    check_length(case, &out, &mut report);
    check_channels(case, &out, &mut report);
    (out, report)
}

/// Transcodes one case and fails with every generic check that did not pass.
fn run_case(case: Case) {
    check_case(&case).1.finish();
}

macro_rules! matrix {
    ($($name:ident => $file:literal,)*) => {
        /// Every fixture the matrix below covers.
        const MATRIX_FILES: &[&str] = &[$($file),*];
        $(
            mod $name {
                use super::{Case, Format, run_case};
                #[test]
                fn opus() {
                    run_case(Case::new($file, Format::Opus));
                }
                #[test]
                fn pcm() {
                    run_case(Case::new($file, Format::Pcm));
                }
                #[test]
                fn aac() {
                    run_case(Case::new($file, Format::Aac));
                }
            }
        )*
    };
}

matrix! {
    mp3_cbr => "mp3_cbr_128k.mp3",
    mp3_vbr => "mp3_vbr_q4.mp3",
    aac_m4a => "aac_lc.m4a",
    aac_adts => "aac_adts.aac",
    vorbis_ogg => "vorbis.ogg",
    vorbis_mka => "vorbis.mka",
    opus_ogg => "opus.opus",
    opus_webm => "opus.webm",
    mp2 => "mp2.mp2",
    mono_22k_mp3 => "mono_22k.mp3",
    flac_s16 => "flac_s16.flac",
    wav_s16 => "wav_s16.wav",
    wav_f32 => "wav_f32.wav",
    aiff_s16 => "aiff_s16.aiff",
    alac_m4a => "alac.m4a",
    alac_caf => "alac.caf",
    flac_96k_24 => "hires_96k_24.flac",
    wav_full_scale_48k => "full_scale_48k.wav",
    flac_5_1 => "surround_51.flac",
}

#[test]
fn matrix_covers_every_fixture() {
    for f in FIXTURES {
        assert!(
            MATRIX_FILES.contains(&f.file),
            "{} is not in the matrix",
            f.file
        );
    }
}

#[path = "transcode_cli/broken.rs"]
mod broken;
#[path = "transcode_cli/case.rs"]
mod case;
#[path = "transcode_cli/gapless.rs"]
mod gapless;
#[path = "transcode_cli/invocation.rs"]
mod invocation;
#[path = "transcode_cli/options.rs"]
mod options;
#[path = "transcode_cli/surround.rs"]
mod surround;

use case::{Case, Format, Level};
