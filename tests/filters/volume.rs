//! `--volume`: half volume is a plain -6 dB gain, and double volume on a
//! full-scale tone is held under the -1 dBFS limiter ceiling.

use super::*;
use common::fixture_path;
use common::signal::{peak, rms_dbfs, tone_region};

/// Expected gain of `--volume 0.5`: 20 log10(0.5), rounded as SPEC states it.
const HALF_VOLUME_DB: f64 = -6.0;
/// Allowed error of the half-volume gain.
const HALF_VOLUME_TOLERANCE_DB: f64 = 0.3;
/// Limiter ceiling: -1 dBFS.
const CEILING_DBFS: f64 = -1.0;
/// What s16 output may add to the ceiling: one step (rounding to the nearest
/// step, whichever full-scale convention the writer uses).
const S16_STEP: f64 = 1.0 / 32768.0;

#[test]
fn half_volume_is_minus_6_db() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("tone_440.wav");
    sine_wav(&input, 440.0, -6.0, 2.0);
    let unity = transcode(&input, &dir.path().join("unity.pcm"), Format::Pcm, &[]);
    let args = ["--volume", "0.5"];
    let half = transcode(&input, &dir.path().join("half.pcm"), Format::Pcm, &args);
    let mut failures = Vec::new();
    for (c, (half, unity)) in half.planes.iter().zip(&unity.planes).enumerate() {
        let gain = rms_dbfs(tone_region(half, RATE)) - rms_dbfs(tone_region(unity, RATE));
        if (gain - HALF_VOLUME_DB).abs() > HALF_VOLUME_TOLERANCE_DB {
            failures.push(format!(
                "ch{c} gain: measured {gain:+.2} dB, expected {HALF_VOLUME_DB} ± {HALF_VOLUME_TOLERANCE_DB} dB"
            ));
        }
    }
    assert_no_failures(&label(&input, Format::Pcm, &args), &failures);
}

#[test]
fn double_volume_on_full_scale_never_exceeds_minus_1_dbfs() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture_path("full_scale_48k.wav");
    let args = ["--volume", "2.0"];
    let out = transcode(&input, &dir.path().join("out.pcm"), Format::Pcm, &args);
    let limit = db_to_gain(CEILING_DBFS) + S16_STEP;
    let mut failures = Vec::new();
    for (c, plane) in out.planes.iter().enumerate() {
        let top = f64::from(peak(plane));
        if top > limit {
            failures.push(format!(
                "ch{c} peak: measured {top:.5} ({:+.3} dBFS), expected <= {limit:.5} (-1 dBFS + one s16 step)",
                20.0 * top.log10()
            ));
        }
        if out.frames() == 0 || top < 0.5 {
            failures.push(format!(
                "ch{c}: {} frames with peak {top:.4}: the tone is missing",
                out.frames()
            ));
        }
    }
    assert_no_failures(&label(&input, Format::Pcm, &args), &failures);
}
