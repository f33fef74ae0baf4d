//! Tests of the band-level, onset and peak-shape measures on synthetic signals.

use super::{assert_close, with_silence};
use crate::common::signal::{band_level_dbfs, longest_run_near_peak, onset_frame, sine};

#[test]
fn band_level_measures_one_tone_among_others() {
    let rate = 44100;
    let tones = [(440.0, 0.5), (997.3, 0.05), (60.0, 0.3)];
    let mut mixed = vec![0.0f32; 2 * rate as usize];
    for (freq, amplitude) in tones {
        for (m, s) in mixed.iter_mut().zip(sine(freq, amplitude, rate, 2.0)) {
            *m += s;
        }
    }
    for (freq, amplitude) in tones {
        let expected = 20.0 * (amplitude / 2f64.sqrt()).log10();
        let measured = band_level_dbfs(&mixed, rate, freq);
        assert_close(&format!("{freq} Hz"), measured, expected, 0.01);
    }
    for absent in [300.0, 700.0, 1320.0] {
        let level = band_level_dbfs(&mixed, rate, absent);
        assert!(
            level < -100.0,
            "{absent} Hz must be absent, measured {level:.1} dBFS"
        );
    }
    assert_eq!(
        band_level_dbfs(&[0.0; 1000], rate, 440.0),
        f64::NEG_INFINITY
    );
}

#[test]
fn onset_is_the_first_sample_at_half_the_peak() {
    let rate = 48000;
    let signal = with_silence(0.1, &sine(440.0, 0.5, rate, 0.5), 0.0, rate);
    // 0.5 sin(2π 440 n / 48000) first reaches 0.25 at n = 9.09 -> sample 10.
    assert_eq!(onset_frame(&signal, 0.5), Some(4800 + 10));
    assert_eq!(onset_frame(&[0.0; 100], 0.5), None);
}

#[test]
fn a_clipped_sine_has_flat_tops_and_a_third_harmonic_a_smaller_sine_has_neither() {
    let rate = 48000;
    let smaller: Vec<f32> = sine(440.0, 0.891, rate, 1.0);
    let clipped: Vec<f32> = sine(440.0, 2.0, rate, 1.0)
        .iter()
        .map(|s| s.clamp(-0.891, 0.891))
        .collect();
    let third = |x: &[f32]| band_level_dbfs(x, rate, 1320.0) - band_level_dbfs(x, rate, 440.0);
    assert!(longest_run_near_peak(&smaller, 0.001) <= 2);
    assert!(third(&smaller) < -100.0, "sine: {}", third(&smaller));
    assert!(longest_run_near_peak(&clipped, 0.001) > 30);
    assert!(third(&clipped) > -30.0, "clipped: {}", third(&clipped));
    assert_eq!(longest_run_near_peak(&[0.0; 10], 0.001), 0);
}
