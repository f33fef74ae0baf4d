//! 5.1 downmix, speaker by speaker: `surround_51_tones.flac` carries a
//! different tone in each channel, so the level of each tone in the output is
//! that speaker's coefficient in the mix. The expected matrix is the documented
//! one (README "Channels", `dsp/src/channels.rs`): ITU-R BS.775 with centre and
//! surrounds at -3 dB and LFE dropped, divided by the largest row sum so that
//! no output can clip (for 5.1 both rows sum to the same, so each sums to 1).

use super::*;
use common::fixtures::{
    SURROUND_TONE_PEAK, SURROUND_TONES_FILE, SURROUND_TONES_HZ, SURROUND_TONES_RATE,
};
use common::signal::band_level_dbfs;
use std::f64::consts::FRAC_1_SQRT_2;

/// Allowed error of a tone's level against the documented coefficient.
const COEFFICIENT_TOLERANCE_DB: f64 = 0.5;
/// A speaker the mix drops must come out at least this far below its source level.
const ABSENT_BELOW_DB: f64 = -60.0;
/// Speaker names in file order (ffmpeg's "5.1": back surrounds).
const SPEAKERS: [&str; 6] = ["FL", "FR", "FC", "LFE", "BL", "BR"];

/// Scales a row of gains so that they sum to 1.
fn normalised(row: [f64; 6]) -> [f64; 6] {
    let sum: f64 = row.iter().sum();
    row.map(|g| g / sum)
}

/// The documented stereo downmix, rows L and R over FL FR FC LFE BL BR:
/// L = (FL + 0.7071 FC + 0.7071 BL) / 2.4142, R mirrored, LFE dropped.
fn stereo_rows() -> [[f64; 6]; 2] {
    let m = FRAC_1_SQRT_2;
    [
        normalised([1.0, 0.0, m, 0.0, m, 0.0]),
        normalised([0.0, 1.0, m, 0.0, 0.0, m]),
    ]
}

/// The documented mono downmix: 0.7071 × (L + R) of the raw stereo rows, i.e.
/// FL and FR 0.7071, FC 1, BL and BR 0.5, LFE 0, normalised to sum to 1
/// (FL -13.67 dB, FC -10.67 dB, BL -16.69 dB).
fn mono_row() -> [[f64; 6]; 1] {
    let m = FRAC_1_SQRT_2;
    [normalised([m, m, 1.0, 0.0, 0.5, 0.5])]
}

/// Transcodes the 5.1 tones fixture to PCM at its own rate (no resampling)
/// with `channels` outputs and checks every tone in every output channel
/// against `rows[output][speaker]`.
fn check_downmix(channels: usize, rows: &[[f64; 6]]) {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.pcm");
    let input = fixture_path(SURROUND_TONES_FILE);
    let label = format!("{SURROUND_TONES_FILE} -> pcm --channels {channels}");
    let mut cmd = cli();
    cmd.arg("transcode").arg(&input).arg("-o").arg(&output);
    cmd.args(["--format", "pcm", "--channels", &channels.to_string()]);
    cmd.args(["--sample-rate", &SURROUND_TONES_RATE.to_string()]);
    let run = run_with_timeout(&mut cmd, RUN_LIMIT);
    assert!(
        run.status.success(),
        "{label}: CLI failed ({}): {}",
        run.status,
        run.stderr.trim()
    );
    let decoded = decode_raw_pcm(&output, SURROUND_TONES_RATE, channels);
    let source_dbfs = 20.0 * (SURROUND_TONE_PEAK * FRAC_1_SQRT_2).log10();
    let mut failures = Vec::new();
    for (c, (plane, row)) in decoded.planes.iter().zip(rows).enumerate() {
        for (s, (&hz, &gain)) in SURROUND_TONES_HZ.iter().zip(row).enumerate() {
            let relative = band_level_dbfs(plane, SURROUND_TONES_RATE, hz) - source_dbfs;
            let what = format!("out ch{c}: {} ({hz} Hz)", SPEAKERS[s]);
            if gain > 0.0 {
                let expected = 20.0 * gain.log10();
                if (relative - expected).abs() > COEFFICIENT_TOLERANCE_DB {
                    failures.push(format!(
                        "{what}: measured {relative:.2} dB, expected {expected:.2} ± {COEFFICIENT_TOLERANCE_DB} dB (gain {gain:.4})"
                    ));
                }
            } else if relative > ABSENT_BELOW_DB {
                failures.push(format!(
                    "{what}: measured {relative:.2} dB, expected absent (below {ABSENT_BELOW_DB} dB)"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{label}: tone levels relative to their source level:\n  {}",
        failures.join("\n  ")
    );
}

#[test]
fn surround_tones_to_stereo_follow_the_documented_matrix() {
    check_downmix(2, &stereo_rows());
}

#[test]
fn surround_tones_to_mono_follow_the_documented_matrix() {
    check_downmix(1, &mono_row());
}

#[test]
fn documented_stereo_coefficients_are_the_stated_levels() {
    let [left, right] = stereo_rows();
    let db = |g: f64| 20.0 * g.log10();
    assert!(
        (db(left[0]) + 7.66).abs() < 0.01,
        "FL in L: {}",
        db(left[0])
    );
    assert!(
        (db(left[2]) + 10.67).abs() < 0.01,
        "FC in L: {}",
        db(left[2])
    );
    assert!(
        (db(left[4]) + 10.67).abs() < 0.01,
        "BL in L: {}",
        db(left[4])
    );
    assert_eq!(
        left.map(|g| g > 0.0),
        [true, false, true, false, true, false]
    );
    assert_eq!(
        right.map(|g| g > 0.0),
        [false, true, true, false, false, true]
    );
}
