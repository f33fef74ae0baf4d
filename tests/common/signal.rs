//! Signal measures on one channel of samples: level, peak, dominant frequency
//! and where a tone starts and ends.

use rustfft::FftPlanner;
use rustfft::num_complex::Complex;

/// Seconds skipped at each end by [`middle`], so that onsets, fades, codec
/// priming and filter transients do not bias level or frequency.
pub const EDGE_SECS: f64 = 0.1;

/// Threshold used by [`tone_region`]: a window belongs to the tone when its
/// level is at most this many dB below the level of the whole signal.
pub const TONE_THRESHOLD_DB: f64 = 20.0;

/// At most this many samples (the central ones) are analysed by
/// [`dominant_frequency_hz`]; more adds cost but no useful precision.
const MAX_FFT_INPUT: usize = 1 << 16;

/// Length of the sliding window used by [`tone_span`].
const ENVELOPE_WINDOW_SECS: f64 = 0.002;

/// A sine of `freq_hz` with peak `amplitude`, `secs` long, starting at phase 0.
pub fn sine(freq_hz: f64, amplitude: f64, rate: u32, secs: f64) -> Vec<f32> {
    let n = (secs * f64::from(rate)).round() as usize;
    let w = 2.0 * std::f64::consts::PI * freq_hz / f64::from(rate);
    (0..n)
        .map(|i| (amplitude * (w * i as f64).sin()) as f32)
        .collect()
}

fn mean_square(samples: &[f32]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len() as f64
}

/// RMS level in dB relative to full scale (a full-scale square wave is 0 dBFS,
/// a sine of peak 0.5 is -9.03 dBFS). Silence or no samples: `-inf`.
pub fn rms_dbfs(samples: &[f32]) -> f64 {
    10.0 * mean_square(samples).log10()
}

/// Largest absolute sample value (0 for no samples).
pub fn peak(samples: &[f32]) -> f32 {
    samples.iter().fold(0.0, |m, s| m.max(s.abs()))
}

/// The samples left after skipping [`EDGE_SECS`] at each end, or all of them
/// when the signal is too short to skip anything.
pub fn middle(samples: &[f32], rate: u32) -> &[f32] {
    let skip = (EDGE_SECS * f64::from(rate)) as usize;
    if samples.len() <= 2 * skip {
        return samples;
    }
    &samples[skip..samples.len() - skip]
}

/// Frequency in Hz of the strongest spectral peak (excluding DC): Hann window,
/// FFT, and Gaussian (log-parabolic) interpolation of the peak.
/// Accurate to well under 0.1 % for a clean tone of a second or more.
pub fn dominant_frequency_hz(samples: &[f32], rate: u32) -> f64 {
    assert!(samples.len() >= 16, "too few samples for a spectrum");
    let excess = samples.len().saturating_sub(MAX_FFT_INPUT);
    let input = &samples[excess / 2..samples.len() - (excess - excess / 2)];
    let magnitudes = hann_spectrum(input);
    let k = (2..magnitudes.len() - 1)
        .max_by(|&a, &b| magnitudes[a].total_cmp(&magnitudes[b]))
        .unwrap();
    let fft_len = 2 * (magnitudes.len() - 1);
    (k as f64 + gaussian_offset(&magnitudes[k - 1..=k + 1])) * f64::from(rate) / fft_len as f64
}

/// Magnitudes of bins 0..=N/2 of the Hann-windowed signal, zero-padded to
/// the next power of two.
fn hann_spectrum(samples: &[f32]) -> Vec<f64> {
    let n = samples.len();
    let fft_len = n.next_power_of_two();
    let mut buf: Vec<Complex<f64>> = vec![Complex::new(0.0, 0.0); fft_len];
    let step = 2.0 * std::f64::consts::PI / (n - 1) as f64;
    for (i, (slot, &s)) in buf.iter_mut().zip(samples).enumerate() {
        slot.re = f64::from(s) * (0.5 - 0.5 * (step * i as f64).cos());
    }
    FftPlanner::new()
        .plan_fft_forward(fft_len)
        .process(&mut buf);
    buf[..=fft_len / 2].iter().map(|c| c.norm()).collect()
}

/// Offset in bins of the true peak from the middle of three magnitudes.
fn gaussian_offset(m: &[f64]) -> f64 {
    let [a, b, c] = [m[0], m[1], m[2]].map(|x| x.max(f64::MIN_POSITIVE).ln());
    let denom = a - 2.0 * b + c;
    if denom == 0.0 {
        0.0
    } else {
        0.5 * (a - c) / denom
    }
}

/// Level in dBFS (on the scale of [`rms_dbfs`]: a sine of peak 0.5 is -9.03 dBFS)
/// of the component of `samples` at exactly `freq_hz`. This is one bin of the
/// discrete-time Fourier transform (what Goertzel's algorithm computes) of the
/// Hann-windowed signal, scaled by the window's coherent gain, so it needs no
/// FFT-bin alignment. Over a second of signal, a tone 50 Hz or more away leaks
/// in at less than -100 dB. `-inf` for silence.
pub fn band_level_dbfs(samples: &[f32], rate: u32, freq_hz: f64) -> f64 {
    assert!(samples.len() >= 16, "too few samples for a band level");
    let w = 2.0 * std::f64::consts::PI * freq_hz / f64::from(rate);
    let step = 2.0 * std::f64::consts::PI / (samples.len() - 1) as f64;
    let (mut re, mut im, mut window_sum) = (0.0, 0.0, 0.0);
    for (i, &s) in samples.iter().enumerate() {
        let window = 0.5 - 0.5 * (step * i as f64).cos();
        let (sin, cos) = (w * i as f64).sin_cos();
        re += f64::from(s) * window * cos;
        im -= f64::from(s) * window * sin;
        window_sum += window;
    }
    let amplitude = 2.0 * re.hypot(im) / window_sum;
    20.0 * (amplitude / std::f64::consts::SQRT_2).log10()
}

/// Index of the first sample whose magnitude reaches `fraction` of the peak of
/// the whole signal: where a tone that starts from silence sets in. `None` for
/// silence.
pub fn onset_frame(samples: &[f32], fraction: f32) -> Option<usize> {
    let threshold = fraction * peak(samples);
    if threshold == 0.0 {
        return None;
    }
    samples.iter().position(|s| s.abs() >= threshold)
}

/// Length of the longest run of consecutive samples whose magnitude lies within
/// `relative_tolerance` (e.g. 0.001 for 0.1 %) of the signal's peak. A sine has
/// runs of one or two samples at its crests; a clipped sine has a flat top of
/// many. 0 for silence.
pub fn longest_run_near_peak(samples: &[f32], relative_tolerance: f32) -> usize {
    let top = peak(samples);
    if top == 0.0 {
        return 0;
    }
    let threshold = top * (1.0 - relative_tolerance);
    let mut longest = 0;
    let mut run = 0;
    for s in samples {
        run = if s.abs() >= threshold { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    longest
}

/// Where the audible part of a signal starts and ends, in seconds: the centres
/// of the first and last 2 ms windows whose level is no more than
/// `threshold_db_below_rms` dB below the RMS level of the whole signal.
/// `(0.0, 0.0)` for silence.
pub fn tone_span(samples: &[f32], rate: u32, threshold_db_below_rms: f64) -> (f64, f64) {
    let threshold = mean_square(samples) * 10f64.powf(-threshold_db_below_rms / 10.0);
    if threshold == 0.0 {
        return (0.0, 0.0);
    }
    let envelope = window_energies(samples, rate);
    let loud = |i: &usize| envelope[*i] >= threshold;
    let first = (0..envelope.len()).find(loud);
    let last = (0..envelope.len()).rev().find(loud);
    match (first, last) {
        (Some(a), Some(b)) => (a as f64 / f64::from(rate), (b + 1) as f64 / f64::from(rate)),
        _ => (0.0, 0.0),
    }
}

/// Mean square over a short window centred on every sample (truncated at the
/// ends), computed from prefix sums.
fn window_energies(samples: &[f32], rate: u32) -> Vec<f64> {
    let half = ((ENVELOPE_WINDOW_SECS * f64::from(rate)) as usize / 2).max(1);
    let mut prefix = Vec::with_capacity(samples.len() + 1);
    prefix.push(0.0);
    for &s in samples {
        prefix.push(prefix.last().unwrap() + f64::from(s).powi(2));
    }
    (0..samples.len())
        .map(|i| {
            let lo = i.saturating_sub(half);
            let hi = (i + half).min(samples.len());
            (prefix[hi] - prefix[lo]) / (hi - lo) as f64
        })
        .collect()
}

/// The steady part of a tone: its [`tone_span`] at [`TONE_THRESHOLD_DB`],
/// then the [`middle`] of that.
pub fn tone_region(samples: &[f32], rate: u32) -> &[f32] {
    let (start, end) = tone_span(samples, rate, TONE_THRESHOLD_DB);
    let to_index = |t: f64| ((t * f64::from(rate)) as usize).min(samples.len());
    middle(&samples[to_index(start)..to_index(end)], rate)
}

/// Frequency, level and peak of the steady part of a tone.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ToneStats {
    /// Dominant frequency in Hz.
    pub frequency_hz: f64,
    /// RMS level in dBFS.
    pub rms_dbfs: f64,
    /// Peak absolute sample value.
    pub peak: f32,
    /// Length of the audible tone ([`tone_span`] at [`TONE_THRESHOLD_DB`]) in seconds.
    pub span_secs: f64,
}

impl ToneStats {
    /// Measures one channel: frequency and level over the [`tone_region`],
    /// peak over the whole signal. The frequency is NaN when there is no tone.
    pub fn measure(samples: &[f32], rate: u32) -> Self {
        let (start, end) = tone_span(samples, rate, TONE_THRESHOLD_DB);
        let region = tone_region(samples, rate);
        let frequency_hz = if region.len() >= 16 {
            dominant_frequency_hz(region, rate)
        } else {
            f64::NAN
        };
        Self {
            frequency_hz,
            rms_dbfs: rms_dbfs(region),
            peak: peak(samples),
            span_secs: end - start,
        }
    }
}
