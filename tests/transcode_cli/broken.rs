//! Broken inputs: the CLI fails fast with a one-line error and never panics,
//! and a failed run leaves no output file behind; a truncated file yields the
//! audio before the cut.

use super::*;
use common::decode::{decode_file_lenient, packet_frames};

/// The broken fixture named `file`; panics if there is none.
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

/// Fails if the CLI panicked.
fn assert_no_panic(name: &str, run: &RunOutput) {
    assert!(
        !run.stderr.contains("panicked"),
        "{name}: the CLI panicked: {}",
        run.stderr
    );
}

/// Fails unless the CLI exited with an error status and a one-line message.
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

/// Runs a broken fixture to Ogg Opus: a truncated file must succeed with the
/// audio before the cut, anything else must fail cleanly.
fn check_broken(file: &str) {
    let broken = corrupt(file);
    let dir = tempfile::tempdir().unwrap();
    let run = run_default(&fixture_path(file), dir.path());
    assert_no_panic(file, &run);
    match broken.cut_from {
        Some(original) => {
            assert!(
                run.status.success(),
                "{file}: a truncated file must yield the audio before the cut, the CLI failed ({}): {}",
                run.status,
                run.stderr.trim()
            );
            check_audio_before_cut(file, fixture(original), &dir.path().join("out.opus"));
        }
        None => assert_clean_failure(file, &run),
    }
}

/// Transcodes a truncated file to PCM at the uncut fixture's rate and channel
/// count and compares it with ffmpeg's decode of the same truncated file: the
/// same length within one codec frame (ffmpeg may decode, or drop, the last
/// partial one) and, over the length both decoded, the same samples (so the
/// audio is the audio before the cut, at its place), carrying the uncut
/// fixture's tone at its level.
fn check_truncated_pcm(file: &str) {
    let original = fixture(corrupt(file).cut_from.unwrap());
    let (rate, channels) = (original.sample_rate, original.channels);
    let input = fixture_path(file);
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.pcm");
    let mut cmd = cli();
    cmd.arg("transcode").arg(&input).arg("-o").arg(&output);
    cmd.args(["--format", "pcm", "--sample-rate", &rate.to_string()]);
    cmd.args(["--channels", &channels.to_string()]);
    let run = run_with_timeout(&mut cmd, CORRUPT_LIMIT);
    assert_no_panic(file, &run);
    assert!(
        run.status.success(),
        "{file} -> pcm: a truncated file must yield the audio before the cut, the CLI failed ({}): {}",
        run.status,
        run.stderr.trim()
    );
    let ours = decode_raw_pcm(&output, rate, channels);
    let theirs = decode_file_lenient(&input);
    let packet = packet_frames(&input);
    let mut failures = Vec::new();
    if ours.frames().abs_diff(theirs.frames()) > packet {
        failures.push(format!(
            "length: measured {} frames, expected ffmpeg's {} ± {packet} (one codec frame)",
            ours.frames(),
            theirs.frames()
        ));
    }
    let common = ours.frames().min(theirs.frames());
    for c in 0..channels {
        let difference = difference_db(&ours.planes[c][..common], &theirs.planes[c][..common]);
        if difference > MAX_DIFFERENCE_DB {
            failures.push(format!(
                "ch{c} samples: differ from ffmpeg's decode at {difference:.1} dB, expected <= {MAX_DIFFERENCE_DB} dB"
            ));
        }
        let stats = ToneStats::measure(&ours.planes[c], rate);
        if (stats.frequency_hz / original.tone_hz - 1.0).abs() > FREQUENCY_TOLERANCE {
            failures.push(format!(
                "ch{c} frequency: measured {:.2} Hz, expected {} Hz",
                stats.frequency_hz, original.tone_hz
            ));
        }
        if (stats.rms_dbfs - original.level_dbfs).abs() > LEVEL_TOLERANCE_DB {
            failures.push(format!(
                "ch{c} level: measured {:.2} dBFS, expected {:.2} ± {LEVEL_TOLERANCE_DB}",
                stats.rms_dbfs, original.level_dbfs
            ));
        }
        if (stats.span_secs - ours.duration_secs()).abs() > DURATION_TOLERANCE_SECS {
            failures.push(format!(
                "ch{c} tone length: measured {:.4} s, expected the whole output {:.4} s ± {DURATION_TOLERANCE_SECS}",
                stats.span_secs,
                ours.duration_secs()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{file} -> pcm (cut from {}):\n  {}",
        original.file,
        failures.join("\n  ")
    );
}

/// Largest allowed difference between our decode of a truncated file and
/// ffmpeg's, relative to the signal (s16 rounding and two decoders' arithmetic).
const MAX_DIFFERENCE_DB: f64 = -60.0;

/// Level of `a - b` relative to the level of `b`, in dB.
fn difference_db(a: &[f32], b: &[f32]) -> f64 {
    let diff: Vec<f32> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    common::signal::rms_dbfs(&diff) - common::signal::rms_dbfs(b)
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
fn truncated_mp3_gives_the_audio_before_the_cut() {
    check_broken("truncated.mp3");
}

#[test]
fn truncated_flac_gives_the_audio_before_the_cut() {
    check_broken("truncated.flac");
}

#[test]
fn truncated_mp3_to_pcm_matches_ffmpeg() {
    check_truncated_pcm("truncated.mp3");
}

#[test]
fn truncated_flac_to_pcm_matches_ffmpeg() {
    check_truncated_pcm("truncated.flac");
}

#[test]
fn missing_input_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_default(&dir.path().join("no-such-file.mp3"), dir.path());
    assert_no_panic("missing input", &run);
    assert_clean_failure("missing input", &run);
}

/// A 4 s AAC-LC M4A with its index up front (`+faststart`) and the second half
/// of its audio data zeroed: the packets stay where the index says, but every
/// one of the last ~85 fails to decode, well over the 50-in-a-row limit, after
/// two seconds of good audio.
fn aac_failing_halfway(dir: &Path) -> PathBuf {
    let path = dir.join("fails_halfway.m4a");
    let status = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("aevalsrc=0.5*sin(2*PI*440*t)|0.5*sin(2*PI*440*t):s=44100:d=4")
        .args([
            "-fflags",
            "+bitexact",
            "-flags:a",
            "+bitexact",
            "-map_metadata",
            "-1",
        ])
        .args(["-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart"])
        .arg(&path)
        .status()
        .expect("ffmpeg must be installed");
    assert!(status.success(), "ffmpeg could not make {}", path.display());
    let mut bytes = std::fs::read(&path).unwrap();
    let mdat = bytes
        .windows(4)
        .position(|w| w == b"mdat")
        .expect("an M4A file has an mdat box")
        + 4;
    let half = mdat + (bytes.len() - mdat) / 2;
    bytes[half..].fill(0);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn a_run_that_fails_midway_leaves_no_output_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = aac_failing_halfway(dir.path());
    let name = "AAC with its second half zeroed";
    // To stdout: audio comes out before the failure, so the failure is mid-way.
    let mut cmd = cli();
    cmd.arg("transcode")
        .arg(&input)
        .args(["-o", "-", "--format", "pcm"]);
    let run = run_with_timeout(&mut cmd, RUN_LIMIT);
    assert_no_panic(name, &run);
    assert_clean_failure(name, &run);
    assert!(
        run.stdout.len() >= 4 * 48000,
        "{name}: expected at least 1 s of PCM on stdout before the failure, got {} bytes",
        run.stdout.len()
    );
    for format in [Format::Pcm, Format::Opus, Format::Aac] {
        let output = dir.path().join(format.file_name());
        let mut cmd = cli();
        cmd.arg("transcode").arg(&input).arg("-o").arg(&output);
        cmd.args(["--format", format.name()]);
        let run = run_with_timeout(&mut cmd, RUN_LIMIT);
        assert_no_panic(name, &run);
        assert_clean_failure(name, &run);
        assert!(
            !output.exists(),
            "{name} -> {}: the failed run left {} ({} bytes)",
            format.name(),
            output.display(),
            std::fs::metadata(&output).map_or(0, |m| m.len())
        );
    }
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
