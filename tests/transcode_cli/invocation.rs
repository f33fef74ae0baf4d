//! Ways of invoking the CLI beyond the output options: `--start` and
//! `--duration`, and reading the input from standard input.

use super::*;
use common::run::run_with_stdin;
use common::signal::{middle, rms_dbfs};

/// Fixtures whose container puts the index the decoder needs after the audio
/// (MP4 `moov` at the end, CAF `pakt` after `data`): they need a seekable
/// input and cannot be read from a pipe.
const NEEDS_SEEKABLE_INPUT: &[&str] = &["aac_lc.m4a", "alac.m4a", "alac.caf"];
/// Largest allowed difference between a `--start` cut and the same frames of
/// the uncut output, relative to the signal.
const MAX_CUT_DIFFERENCE_DB: f64 = -60.0;

/// Runs `transcode INPUT -o OUTPUT --format pcm` plus `extra`, asserting success.
fn pcm(label: &str, input: &Path, output: &Path, extra: &[&str]) {
    let mut cmd = cli();
    cmd.arg("transcode").arg(input).arg("-o").arg(output);
    cmd.args(["--format", "pcm"]).args(extra);
    let run = run_with_timeout(&mut cmd, RUN_LIMIT);
    assert!(
        run.status.success(),
        "{label}: CLI failed ({}): {}",
        run.status,
        run.stderr.trim()
    );
}

/// `--start 0.5 --duration 1.0` to PCM at 48 kHz: exactly 48000 frames, the
/// fixture's tone, and the very frames 24000..72000 of the uncut output.
fn start_and_duration_are_exact(file: &str) {
    let f = fixture(file);
    let label = format!("{file} -> pcm --start 0.5 --duration 1.0");
    let dir = tempfile::tempdir().unwrap();
    let (cut_path, whole_path) = (dir.path().join("cut.pcm"), dir.path().join("whole.pcm"));
    let input = fixture_path(file);
    pcm(
        &label,
        &input,
        &cut_path,
        &["--start", "0.5", "--duration", "1.0"],
    );
    pcm(&label, &input, &whole_path, &[]);
    let cut = decode_raw_pcm(&cut_path, DEFAULT_RATE, DEFAULT_CHANNELS);
    let whole = decode_raw_pcm(&whole_path, DEFAULT_RATE, DEFAULT_CHANNELS);
    let mut failures = Vec::new();
    if cut.frames() != 48000 {
        failures.push(format!(
            "length: measured {} frames, expected 48000",
            cut.frames()
        ));
    }
    for (c, plane) in cut.planes.iter().enumerate() {
        let stats = ToneStats::measure(plane, DEFAULT_RATE);
        if (stats.frequency_hz / f.tone_hz - 1.0).abs() > FREQUENCY_TOLERANCE {
            failures.push(format!(
                "ch{c} frequency: measured {:.2} Hz, expected {} Hz",
                stats.frequency_hz, f.tone_hz
            ));
        }
        if (stats.rms_dbfs - f.level_dbfs).abs() > LEVEL_TOLERANCE_DB {
            failures.push(format!(
                "ch{c} level: measured {:.2} dBFS, expected {:.2} ± {LEVEL_TOLERANCE_DB}",
                stats.rms_dbfs, f.level_dbfs
            ));
        }
        let n = plane.len().min(48000);
        let same = &whole.planes[c][24000..24000 + n];
        let diff: Vec<f32> = plane[..n].iter().zip(same).map(|(a, b)| a - b).collect();
        let rate = DEFAULT_RATE;
        let difference = rms_dbfs(middle(&diff, rate)) - rms_dbfs(middle(same, rate));
        if difference > MAX_CUT_DIFFERENCE_DB {
            failures.push(format!(
                "ch{c} position: differs from the uncut output's frames 24000.. at {difference:.1} dB, expected <= {MAX_CUT_DIFFERENCE_DB} dB"
            ));
        }
    }
    assert!(failures.is_empty(), "{label}:\n  {}", failures.join("\n  "));
}

#[test]
fn start_and_duration_on_gapless_mp3() {
    start_and_duration_are_exact("mp3_cbr_128k.mp3");
}

#[test]
fn start_and_duration_on_gapless_aac_m4a() {
    start_and_duration_are_exact("aac_lc.m4a");
}

#[test]
fn start_and_duration_on_ogg_opus() {
    start_and_duration_are_exact("opus.opus");
}

/// Standard input (a pipe) gives the same PCM bytes as the file, for every
/// fixture whose container can be read front to back.
#[test]
fn stdin_input_gives_the_same_pcm_as_the_file() {
    let mut failures = Vec::new();
    for f in FIXTURES
        .iter()
        .filter(|f| !NEEDS_SEEKABLE_INPUT.contains(&f.file))
    {
        let dir = tempfile::tempdir().unwrap();
        let from_file = dir.path().join("file.pcm");
        let input = fixture_path(f.file);
        pcm(f.file, &input, &from_file, &[]);
        let mut cmd = cli();
        cmd.args(["transcode", "-", "-o", "-", "--format", "pcm"]);
        let run = run_with_stdin(&mut cmd, std::fs::read(&input).unwrap(), RUN_LIMIT);
        let file = std::fs::read(&from_file).unwrap();
        if !run.status.success() {
            failures.push(format!(
                "{}: stdin run failed: {}",
                f.file,
                run.stderr.trim()
            ));
        } else if run.stdout != file {
            failures.push(format!(
                "{}: from stdin {} bytes, from the file {} bytes, or their contents differ",
                f.file,
                run.stdout.len(),
                file.len()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "transcode - (stdin) -> pcm:\n  {}",
        failures.join("\n  ")
    );
}
