//! Broken inputs: the CLI fails fast with a one-line error and never panics;
//! a truncated file may instead yield the audio before the cut.

use super::*;

fn corrupt(file: &str) -> &'static Corrupt {
    CORRUPT
        .iter()
        .find(|c| c.file == file)
        .unwrap_or_else(|| panic!("no broken fixture named {file}"))
}

/// Runs `transcode INPUT -o DIR/out.opus` with the default options.
fn run_default(input: &Path, dir: &Path) -> RunOutput {
    let mut cmd = cli();
    cmd.arg("transcode")
        .arg(input)
        .arg("-o")
        .arg(dir.join("out.opus"));
    run_with_timeout(&mut cmd, CORRUPT_LIMIT)
}

fn assert_no_panic(name: &str, run: &RunOutput) {
    assert!(
        !run.stderr.contains("panicked"),
        "{name}: the CLI panicked: {}",
        run.stderr
    );
}

fn assert_clean_failure(name: &str, run: &RunOutput) {
    assert!(
        !run.status.success(),
        "{name}: the CLI must fail, it exited with {}",
        run.status
    );
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert!(
        lines.len() == 1,
        "{name}: expected a one-line error on stderr, got {} lines:\n{}",
        lines.len(),
        run.stderr
    );
}

/// A truncated file that transcodes successfully must hold a clean stream of
/// the original tone, no longer than the original.
fn check_audio_before_cut(name: &str, original: &Fixture, output: &Path) {
    assert_opusinfo_clean(output);
    let decoded = decode_file(output);
    let secs = decoded.duration_secs();
    assert!(
        secs > 0.0 && secs <= original.duration_secs + DURATION_TOLERANCE_SECS,
        "{name}: output is {secs:.4} s, the uncut file {} s",
        original.duration_secs
    );
    for plane in &decoded.planes {
        let stats = ToneStats::measure(plane, decoded.sample_rate);
        let error = (stats.frequency_hz / original.tone_hz - 1.0).abs();
        assert!(
            stats.span_secs < 0.3 || error <= FREQUENCY_TOLERANCE,
            "{name}: tone at {:.2} Hz, expected {} Hz",
            stats.frequency_hz,
            original.tone_hz
        );
    }
}

fn check_broken(file: &str) {
    let broken = corrupt(file);
    let dir = tempfile::tempdir().unwrap();
    let run = run_default(&fixture_path(file), dir.path());
    assert_no_panic(file, &run);
    match broken.cut_from {
        Some(original) if run.status.success() => {
            check_audio_before_cut(file, fixture(original), &dir.path().join("out.opus"));
        }
        _ => assert_clean_failure(file, &run),
    }
}

#[test]
fn empty_input_fails_cleanly() {
    check_broken("empty.bin");
}

#[test]
fn random_bytes_fail_cleanly() {
    check_broken("random.bin");
}

#[test]
fn html_page_fails_cleanly() {
    check_broken("html.html");
}

#[test]
fn truncated_mp3_gives_the_audio_before_the_cut_or_fails_cleanly() {
    check_broken("truncated.mp3");
}

#[test]
fn truncated_flac_gives_the_audio_before_the_cut_or_fails_cleanly() {
    check_broken("truncated.flac");
}

#[test]
fn missing_input_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_default(&dir.path().join("no-such-file.mp3"), dir.path());
    assert_no_panic("missing input", &run);
    assert_clean_failure("missing input", &run);
}

#[test]
fn every_broken_fixture_is_tested() {
    let tested = [
        "empty.bin",
        "random.bin",
        "html.html",
        "truncated.mp3",
        "truncated.flac",
    ];
    for c in CORRUPT {
        assert!(tested.contains(&c.file), "{} has no test", c.file);
    }
}
