//! Tests of the resampler: tone fidelity, odd rate pairs, settings checks.

#![allow(clippy::unwrap_used)]
use super::*;
use std::f64::consts::TAU;

const TONE_HZ: f64 = 1000.0;

/// One second of a 1 kHz sine at amplitude 0.5, resampled and flushed.
fn resampled_tone(input_rate_hz: u32, output_rate_hz: u32) -> Vec<f32> {
    let plane = (0..input_rate_hz)
        .map(|i| 0.5 * (TAU * TONE_HZ * f64::from(i) / f64::from(input_rate_hz)).sin() as f32)
        .collect();
    let mut resampler = Resampler::try_new(input_rate_hz, output_rate_hz, 1).unwrap();
    let (mut output, mut tail) = (Block::default(), Block::default());
    resampler.process(&Block::from_planes(vec![plane]), &mut output);
    resampler.flush(&mut tail);
    output.append(&tail);
    output.plane(0).to_vec()
}

/// Least-squares amplitude and phase (against a sine starting at frame 0) of the tone
/// in `samples`, away from the edges.
fn fit_tone(samples: &[f32], rate_hz: u32) -> (f64, f64) {
    let (mut ss, mut sc, mut cc, mut ys, mut yc) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for (i, &y) in samples
        .iter()
        .enumerate()
        .take(samples.len() - 1000)
        .skip(1000)
    {
        let (s, c) = (TAU * TONE_HZ * i as f64 / f64::from(rate_hz)).sin_cos();
        let y = f64::from(y);
        (ss, sc, cc, ys, yc) = (ss + s * s, sc + s * c, cc + c * c, ys + y * s, yc + y * c);
    }
    let det = ss * cc - sc * sc;
    let (a, b) = ((ys * cc - yc * sc) / det, (yc * ss - ys * sc) / det);
    (a.hypot(b), b.atan2(a))
}

/// Frequency from the first and last rising zero crossings (linearly interpolated).
fn zero_crossing_hz(samples: &[f32], rate_hz: u32) -> f64 {
    let crossings: Vec<f64> = samples
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[0] < 0.0 && w[1] >= 0.0)
        .map(|(i, w)| i as f64 + f64::from(w[0] / (w[0] - w[1])))
        .collect();
    let (first, last) = (crossings[1], crossings[crossings.len() - 2]);
    (crossings.len() - 3) as f64 * f64::from(rate_hz) / (last - first)
}

#[test]
fn a_sine_keeps_amplitude_frequency_and_phase() {
    for (from, to) in [
        (44_100, 48_000),
        (48_000, 44_100),
        (22_050, 48_000),
        (8_000, 48_000),
        (96_000, 48_000),
    ] {
        let output = resampled_tone(from, to);
        assert_eq!(output.len(), to as usize);
        let (amplitude, phase) = fit_tone(&output, to);
        let error_db = 20.0 * (amplitude / 0.5).log10();
        assert!(error_db.abs() < 0.01, "{from}->{to}: {error_db} dB");
        assert!(phase.abs() < 1e-4, "{from}->{to}: phase {phase}");
        let frequency = zero_crossing_hz(&output, to);
        assert!(
            (frequency - TONE_HZ).abs() < 0.01,
            "{from}->{to}: {frequency} Hz"
        );
    }
}

#[test]
fn odd_rate_pairs_use_the_sinc_fallback_and_stay_clean() {
    let output = resampled_tone(44_100, 47_999);
    let (amplitude, phase) = fit_tone(&output, 47_999);
    assert!((20.0 * (amplitude / 0.5).log10()).abs() < 0.01);
    // Within one output frame of alignment.
    assert!(phase.abs() < TAU * TONE_HZ / 47_999.0, "phase {phase}");
    assert!((zero_crossing_hz(&output, 47_999) - TONE_HZ).abs() < 0.01);
}

#[test]
fn rejects_bad_settings() {
    assert!(matches!(
        Resampler::try_new(1_999, 48_000, 2),
        Err(ConfigError::SampleRate { rate_hz: 1_999, .. })
    ));
    assert!(Resampler::try_new(48_000, 1_536_001, 2).is_err());
    assert!(
        Resampler::try_new(2_756, 48_000, 2).is_ok(),
        "varispeed's virtual rates"
    );
    assert!(Resampler::try_new(44_100, 48_000, 0).is_err());
}
