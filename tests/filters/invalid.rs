//! Out-of-range filter values: the CLI refuses them before writing anything,
//! with a non-zero exit status and a one-line error that names the field and
//! its allowed range, and never panics.

use super::*;

/// Longest the CLI may take to refuse a setting.
const REFUSE_LIMIT: Duration = Duration::from_secs(5);

/// Runs the CLI on a valid input with `filters` and checks that it is refused:
/// non-zero exit, no panic, no output file, and exactly one non-empty line on
/// stderr that contains every string of `mentions` (the field and the bounds
/// or allowed values).
fn check_refused(filters: &[&str], mentions: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let input = common::fixture_path("wav_s16.wav");
    let output = dir.path().join("out.pcm");
    let mut cmd = cli();
    cmd.arg("transcode").arg(&input).arg("-o").arg(&output);
    cmd.args(["--format", "pcm"]).args(filters);
    let run = run_with_timeout(&mut cmd, REFUSE_LIMIT);
    let mut failures = Vec::new();
    if run.status.success() {
        failures.push("exit status: measured success, expected failure".to_owned());
    }
    if run.stderr.contains("panicked") {
        failures.push(format!("the CLI panicked: {}", run.stderr.trim()));
    }
    if output.exists() {
        failures.push("an output file was left behind".to_owned());
    }
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    if lines.len() != 1 {
        failures.push(format!(
            "stderr: measured {} non-empty lines, expected 1:\n{}",
            lines.len(),
            run.stderr.trim_end()
        ));
    }
    let missing: Vec<&&str> = mentions
        .iter()
        .filter(|m| !run.stderr.contains(**m))
        .collect();
    if !missing.is_empty() {
        failures.push(format!(
            "message does not mention {missing:?}: {}",
            run.stderr.trim()
        ));
    }
    assert_no_failures(&format!("transcode {}", filters.join(" ")), &failures);
}

#[test]
fn speed_2_5_is_refused() {
    check_refused(&["--speed", "2.5"], &["speed", "0.5", "2"]);
}

#[test]
fn pitch_0_4_is_refused() {
    check_refused(&["--pitch", "0.4"], &["pitch", "0.5", "2"]);
}

#[test]
fn rate_0_is_refused() {
    check_refused(&["--rate", "0"], &["rate", "0.5", "2"]);
}

#[test]
fn volume_3_is_refused() {
    check_refused(&["--volume", "3"], &["volume", "0", "2"]);
}

#[test]
fn eq_band_gain_30_db_is_refused() {
    check_refused(&["--eq-band", "1000:30:1"], &["gain", "-24", "24"]);
}

#[test]
fn unknown_eq_preset_is_refused() {
    let presets = ["eq", "flat", "bass_boost", "voice", "treble"];
    check_refused(&["--eq", "loud"], &presets);
}

#[test]
fn normalize_minus_80_is_refused() {
    check_refused(&["--normalize=-80"], &["normalize", "-70", "-5"]);
}
