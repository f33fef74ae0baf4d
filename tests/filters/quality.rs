//! Time-stretch quality against ffmpeg's `atempo`: THD+N of a 1 kHz sine after
//! `--speed 1.25` and `--speed 0.8` must be no worse than `atempo`'s at the
//! same factor (by at most 0.5 dB), both written as s16 PCM and measured the
//! same way.

use super::*;
use common::signal::dominant_frequency_hz;

/// Frequency of the test sine.
const SINE_HZ: f64 = 1000.0;
/// Peak level of the test sine.
const SINE_PEAK_DBFS: f64 = -6.0;
/// Length of the test sine.
const SINE_SECS: f64 = 4.0;
/// Length of the analysed stretch, taken from the middle of the output.
const ANALYSIS_SECS: f64 = 2.0;
/// How much worse than `atempo` ours may be.
const MARGIN_DB: f64 = 0.5;
/// Refinement steps of the four-parameter sine fit.
const FIT_ITERATIONS: usize = 8;

/// Solves the `N x N` system `m x = v` by Gaussian elimination with partial pivoting.
fn solve<const N: usize>(mut m: [[f64; N]; N], mut v: [f64; N]) -> [f64; N] {
    for col in 0..N {
        let pivot = (col..N)
            .max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs()))
            .unwrap();
        m.swap(col, pivot);
        v.swap(col, pivot);
        for row in col + 1..N {
            let f = m[row][col] / m[col][col];
            let pivot_row = m[col];
            for (dst, src) in m[row][col..].iter_mut().zip(&pivot_row[col..]) {
                *dst -= f * src;
            }
            v[row] -= f * v[col];
        }
    }
    let mut x = [0.0; N];
    for row in (0..N).rev() {
        let tail: f64 = (row + 1..N).map(|k| m[row][k] * x[k]).sum();
        x[row] = (v[row] - tail) / m[row][row];
    }
    x
}

/// Least-squares fit of `columns` (each evaluated at every sample) to `x`.
fn least_squares<const N: usize>(x: &[f32], columns: impl Fn(usize) -> [f64; N]) -> [f64; N] {
    let (mut m, mut v) = ([[0.0; N]; N], [0.0; N]);
    for (n, &s) in x.iter().enumerate() {
        let c = columns(n);
        for i in 0..N {
            for j in 0..N {
                m[i][j] += c[i] * c[j];
            }
            v[i] += c[i] * f64::from(s);
        }
    }
    solve(m, v)
}

/// THD+N of a sine in dB: the fundamental is removed by a least-squares fit of
/// `a cos(wn) + b sin(wn) + c`, its frequency first measured from the spectrum
/// and then refined by the four-parameter fit of IEEE 1057 (which also fits a
/// frequency correction); the result is residual RMS over fundamental RMS.
fn thd_n_db(x: &[f32], rate: u32) -> f64 {
    let centre = x.len() as f64 / 2.0;
    let mut w = 2.0 * std::f64::consts::PI * dominant_frequency_hz(x, rate) / f64::from(rate);
    let three = |w: f64| {
        move |n: usize| {
            let phase = w * (n as f64 - centre);
            [phase.cos(), phase.sin(), 1.0]
        }
    };
    for _ in 0..FIT_ITERATIONS {
        let [a, b, _] = least_squares(x, three(w));
        let [_, _, _, dw] = least_squares(x, |n| {
            let t = n as f64 - centre;
            let (sin, cos) = (w * t).sin_cos();
            [cos, sin, 1.0, t * (b * cos - a * sin) / centre]
        });
        w += dw / centre;
    }
    let [a, b, c] = least_squares(x, three(w));
    let residual: f64 = x
        .iter()
        .enumerate()
        .map(|(n, &s)| {
            let phase = w * (n as f64 - centre);
            (f64::from(s) - a * phase.cos() - b * phase.sin() - c).powi(2)
        })
        .sum();
    let fundamental_ms = (a * a + b * b) / 2.0;
    10.0 * (residual / x.len() as f64 / fundamental_ms).log10()
}

/// The middle [`ANALYSIS_SECS`] of channel 0 of `decoded`.
fn analysed(decoded: &Decoded) -> &[f32] {
    let plane = &decoded.planes[0];
    let n = (ANALYSIS_SECS * f64::from(decoded.sample_rate)) as usize;
    assert!(
        plane.len() >= n,
        "output of {} frames is too short",
        plane.len()
    );
    let start = (plane.len() - n) / 2;
    &plane[start..start + n]
}

/// THD+N of the 1 kHz sine after our `--speed speed` and after ffmpeg's
/// `atempo=speed`; fails when ours is more than [`MARGIN_DB`] worse.
fn compare_with_atempo(speed: &str) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("sine_1k.wav");
    sine_wav(&input, SINE_HZ, SINE_PEAK_DBFS, SINE_SECS);
    let args = ["--speed", speed];
    let ours = transcode(&input, &dir.path().join("ours.pcm"), Format::Pcm, &args);
    let reference = dir.path().join("atempo.pcm");
    let filter = format!("atempo={speed}");
    let (from, to) = (input.to_str().unwrap(), reference.to_str().unwrap());
    ffmpeg(&[
        "-i",
        from,
        "-af",
        &filter,
        "-f",
        "s16le",
        "-c:a",
        "pcm_s16le",
        to,
    ]);
    let atempo = decode_raw_pcm(&reference, RATE, CHANNELS);
    let ours_db = thd_n_db(analysed(&ours), RATE);
    let atempo_db = thd_n_db(analysed(&atempo), RATE);
    eprintln!("THD+N at speed {speed}: ours {ours_db:.1} dB, ffmpeg atempo {atempo_db:.1} dB");
    assert!(
        ours_db <= atempo_db + MARGIN_DB,
        "{}: THD+N measured {ours_db:.1} dB, expected <= atempo's {atempo_db:.1} dB + {MARGIN_DB} dB",
        label(&input, Format::Pcm, &args)
    );
}

#[test]
fn speed_1_25_is_no_worse_than_atempo() {
    compare_with_atempo("1.25");
}

#[test]
fn speed_0_8_is_no_worse_than_atempo() {
    compare_with_atempo("0.8");
}

#[test]
fn thd_n_of_a_clean_sine_is_its_quantisation_noise() {
    let mut x = common::signal::sine(997.3, 0.5, RATE, ANALYSIS_SECS);
    for s in &mut x {
        *s = (*s * 32768.0).round() / 32768.0;
    }
    let thd_n = thd_n_db(&x, RATE);
    // s16 rounding noise is 1/sqrt(12) of a step; the sine's RMS is 0.5/sqrt(2).
    let expected = 20.0 * ((1.0 / 32768.0 / 12f64.sqrt()) / (0.5 / 2f64.sqrt())).log10();
    assert!(
        (thd_n - expected).abs() < 1.0,
        "THD+N measured {thd_n:.1} dB, expected {expected:.1} dB"
    );
}
