//! `--eq` presets and `--eq-band`: the level change a preset makes to steady
//! sines, measured against the same sines through `--eq flat`, matches the
//! analytic RBJ response of [`super::rbj`]; `flat` itself changes nothing.

use super::*;
use common::signal::rms_dbfs;
use rbj::{Biquad, cascade_gain_db, preset};

/// Frequencies at which every preset is measured.
const PROBE_HZ: [f64; 6] = [50.0, 100.0, 1000.0, 2500.0, 8000.0, 12_000.0];
/// Length of each probe sine.
const PROBE_SECS: f64 = 3.0;
/// Peak level of each probe sine.
const PROBE_PEAK_DBFS: f64 = -20.0;
/// Skipped at each end of the output before measuring, so that the filters'
/// transients and any onset ramp do not count.
const SKIP_SECS: f64 = 0.5;
/// Allowed difference between the measured and the analytic response.
const TOLERANCE_DB: f64 = 0.5;

/// RMS level of each channel of `decoded` over all but [`SKIP_SECS`] at each end.
fn steady_levels(decoded: &Decoded) -> Vec<f64> {
    let skip = (SKIP_SECS * f64::from(decoded.sample_rate)) as usize;
    decoded
        .planes
        .iter()
        .map(|plane| {
            assert!(
                plane.len() > 4 * skip,
                "output of {} frames is too short",
                plane.len()
            );
            rms_dbfs(&plane[skip..plane.len() - skip])
        })
        .collect()
}

/// Writes a probe sine of `freq_hz` into `dir`, transcodes it to PCM with
/// `filters` and with `--eq flat`, and returns the level change per channel.
fn measured_gain_db(dir: &Path, freq_hz: f64, filters: &[&str]) -> Vec<f64> {
    let input = dir.join(format!("sine_{freq_hz}.wav"));
    sine_wav(&input, freq_hz, PROBE_PEAK_DBFS, PROBE_SECS);
    let flat = transcode(
        &input,
        &dir.join("flat.pcm"),
        Format::Pcm,
        &["--eq", "flat"],
    );
    let filtered = transcode(&input, &dir.join("eq.pcm"), Format::Pcm, filters);
    steady_levels(&filtered)
        .iter()
        .zip(steady_levels(&flat))
        .map(|(eq, flat)| eq - flat)
        .collect()
}

/// Measures `filters` at every frequency in `probes` and compares the level
/// change with the response of `sections`, within [`TOLERANCE_DB`].
fn check_response(filters: &[&str], sections: &[Biquad], probes: &[f64]) {
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    let mut table = Vec::new();
    for &freq_hz in probes {
        let expected = cascade_gain_db(sections, freq_hz);
        for (c, gain) in measured_gain_db(dir.path(), freq_hz, filters)
            .into_iter()
            .enumerate()
        {
            table.push(format!(
                "{freq_hz} Hz ch{c}: {gain:+.2} dB (analytic {expected:+.2})"
            ));
            if (gain - expected).abs() > TOLERANCE_DB {
                failures.push(format!(
                    "{freq_hz} Hz ch{c}: measured {gain:+.2} dB, expected {expected:+.2} ± {TOLERANCE_DB} dB"
                ));
            }
        }
    }
    eprintln!("{}: {}", filters.join(" "), table.join("; "));
    assert_no_failures(&format!("sines -> pcm {}", filters.join(" ")), &failures);
}

/// Checks one preset against its analytic response at every [`PROBE_HZ`].
fn check_preset(name: &str) {
    check_response(&["--eq", name], &preset(name), &PROBE_HZ);
}

#[test]
fn bass_boost_matches_its_rbj_response() {
    check_preset("bass_boost");
}

#[test]
fn treble_matches_its_rbj_response() {
    check_preset("treble");
}

#[test]
fn voice_matches_its_rbj_response() {
    check_preset("voice");
}

#[test]
fn plus_12_db_band_at_1_khz_raises_a_1_khz_tone_by_12_db() {
    let band = [Biquad::peaking(1000.0, 12.0, 1.0)];
    assert!((cascade_gain_db(&band, 1000.0) - 12.0).abs() < 1e-9);
    check_response(&["--eq-band", "1000:12:1"], &band, &[1000.0]);
}

/// SPEC section 3: `flat` is a bit-exact bypass, so it writes the very bytes
/// a run without any filter writes.
#[test]
fn flat_is_a_bit_exact_bypass() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("sine_1000.wav");
    sine_wav(&input, 1000.0, PROBE_PEAK_DBFS, PROBE_SECS);
    let (flat, plain) = (dir.path().join("flat.pcm"), dir.path().join("plain.pcm"));
    transcode(&input, &flat, Format::Pcm, &["--eq", "flat"]);
    transcode(&input, &plain, Format::Pcm, &[]);
    let (flat, plain) = (std::fs::read(flat).unwrap(), std::fs::read(plain).unwrap());
    assert!(
        flat == plain,
        "--eq flat wrote {} bytes, no filter {} bytes, or their contents differ",
        flat.len(),
        plain.len()
    );
}
