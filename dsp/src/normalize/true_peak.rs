//! `TruePeak`: a 4x oversampling inter-sample peak detector for the limiter (BS.1770
//! Annex 2 style). It reads the larger of two interpolations: the one `ebur128` measures
//! with, and a longer, flatter one that also catches content near Nyquist the way sharper
//! meters (ffmpeg, `ebur128` at 96 kHz) do. Knows nothing of loudness or of the
//! limiter's gain computer.

use std::ops::Range;

use crate::limiter::PeakDetector;

/// Oversampling factor.
const FACTOR: usize = 4;

/// Taps of each polyphase branch of the long filter.
const TAPS: usize = 24;

/// Taps of each polyphase branch of the `ebur128`-like filter.
const SHORT_TAPS: usize = 12;

/// Frames from a sample entering to the interpolated values around it being known.
const LATENCY: usize = TAPS / 2;

/// Kaiser window shape: about -55 dB stop band, passband flat to about 0.4 x the rate.
const KAISER_BETA: f64 = 5.0;

/// Polyphase coefficients: `[tap][phase]`, tap 0 on the newest sample.
type Bank<const N: usize> = [[f32; FACTOR]; N];

/// Frames judged together by the quiet-stretch bound.
const GROUP: usize = 32;

/// Where the short filter's taps start in the history, so that both filters are centred
/// on the same sample.
const SHORT_OFFSET: usize = (TAPS - SHORT_TAPS) / 2;

/// The level of each frame as the largest absolute value of the signal interpolated 4x
/// (by either filter) over the interval before and the interval after the frame, across
/// channels.
///
/// Phase `p` of the interpolator, fed up to frame `n`, estimates the signal at
/// `n - L + p/4` (`L = LATENCY`); so the four phases cover the interval from frame `n - L`
/// to `n - L + 1`, and the level of frame `n - L` is known once frame `n` has entered.
///
/// Only levels above `quiet_below` matter to the limiter (anything at or below it gets a
/// gain of 1), so a run of frames whose largest sample times the filters' largest gain
/// stays under it is given that bound instead of being interpolated: the limiter's
/// output is the same, and quiet and moderate passages cost a fraction of the work.
#[derive(Debug, Clone)]
pub(crate) struct TruePeak {
    /// The long filter and the `ebur128`-like one, boxed to keep the detector small.
    banks: Box<(Bank<TAPS>, Bank<SHORT_TAPS>)>,
    /// The largest sum of absolute coefficients of any phase of either filter: no
    /// interpolated value exceeds the window's largest sample times this.
    max_filter_gain: f32,
    quiet_below: f32,
    /// Per channel, the last `TAPS - 1` samples (oldest first), then the current run.
    lines: Vec<Vec<f32>>,
    /// The interval peak of the previous frame (the interval before the current frame).
    previous: f32,
}

impl TruePeak {
    /// A detector for `channels` channels feeding a limiter that acts on levels above
    /// `quiet_below`.
    pub(crate) fn new(channels: usize, quiet_below: f32) -> Self {
        let banks = Box::new((kaiser_bank(), hann_bank()));
        let max_filter_gain = filter_gain(&banks.0).max(filter_gain(&banks.1));
        Self {
            banks,
            max_filter_gain,
            quiet_below,
            lines: vec![vec![0.0; TAPS - 1]; channels],
            previous: 0.0,
        }
    }

    /// Interval peaks of one channel's run, folded into `peaks` (max across channels).
    fn detect_channel(&self, line: &[f32], peaks: &mut [f32]) {
        let (long, short) = &*self.banks;
        for (group, group_peaks) in peaks.chunks_mut(GROUP).enumerate() {
            let first = group * GROUP;
            let reach = &line[first..first + group_peaks.len() + TAPS - 1];
            let bound = reach.iter().fold(0.0f32, |m, x| m.max(x.abs())) * self.max_filter_gain;
            if bound < self.quiet_below {
                group_peaks
                    .iter_mut()
                    .for_each(|peak| *peak = peak.max(bound));
                continue;
            }
            for (offset, peak) in group_peaks.iter_mut().enumerate() {
                let window = &line[first + offset..first + offset + TAPS];
                let short_window = &window[TAPS - SHORT_OFFSET - SHORT_TAPS..TAPS - SHORT_OFFSET];
                let level =
                    interpolated_peak(long, window).max(interpolated_peak(short, short_window));
                *peak = peak.max(level);
            }
        }
    }
}

/// The largest sum of absolute coefficients over the phases of `bank`.
fn filter_gain<const N: usize>(bank: &Bank<N>) -> f32 {
    (0..FACTOR)
        .map(|phase| bank.iter().map(|taps| taps[phase].abs()).sum::<f32>())
        .fold(0.0, f32::max)
}

/// The filter `ebur128` uses: a Hann-windowed `sinc(m / 4)` over `4 x SHORT_TAPS` taps.
fn hann_bank() -> Bank<SHORT_TAPS> {
    let mut bank = [[0.0; FACTOR]; SHORT_TAPS];
    let len = (FACTOR * SHORT_TAPS) as f64;
    for (j, coefficient) in bank.iter_mut().flatten().enumerate() {
        let j = j as f64;
        let window = 0.5 * (1.0 - (std::f64::consts::TAU * j / len).cos());
        let x = (j - len / 2.0) * std::f64::consts::PI / FACTOR as f64;
        let sinc = if x.abs() < 1e-9 { 1.0 } else { x.sin() / x };
        *coefficient = (window * sinc) as f32;
    }
    bank
}

/// The long filter: a Kaiser-windowed `sinc(m / 4)` over `4 x TAPS` taps, each phase
/// scaled to a DC gain of exactly 1. Phase 0 is the identity (the sample itself).
fn kaiser_bank() -> Bank<TAPS> {
    let mut bank = [[0.0; FACTOR]; TAPS];
    let half = (FACTOR * TAPS / 2) as f64;
    let mut phase_sums = [0.0f64; FACTOR];
    let mut taps = [[0.0f64; FACTOR]; TAPS];
    for (j, coefficient) in taps.iter_mut().flatten().enumerate() {
        let m = j as f64 - half;
        let shape = (1.0 - (m / half).powi(2)).max(0.0).sqrt();
        let window = bessel_i0(KAISER_BETA * shape) / bessel_i0(KAISER_BETA);
        let x = m * std::f64::consts::PI / FACTOR as f64;
        let sinc = if x.abs() < 1e-9 { 1.0 } else { x.sin() / x };
        *coefficient = window * sinc;
        phase_sums[j % FACTOR] += window * sinc;
    }
    for (out, taps) in bank.iter_mut().zip(&taps) {
        for ((out, tap), sum) in out.iter_mut().zip(taps).zip(&phase_sums) {
            *out = (tap / sum) as f32;
        }
    }
    bank
}

/// The modified Bessel function of the first kind, order 0 (power series).
fn bessel_i0(x: f64) -> f64 {
    let (mut sum, mut term, mut k) = (1.0, 1.0, 1.0);
    while term > 1e-12 * sum {
        term *= (x / (2.0 * k)).powi(2);
        sum += term;
        k += 1.0;
    }
    sum
}

/// The largest absolute value of the four phases of `bank` over `window` (oldest sample
/// first, so tap 0 meets its last sample).
#[inline]
fn interpolated_peak<const N: usize>(bank: &Bank<N>, window: &[f32]) -> f32 {
    let mut phases = [0.0f32; FACTOR];
    for (taps, &x) in bank.iter().zip(window.iter().rev()) {
        for (phase, tap) in phases.iter_mut().zip(taps) {
            *phase += tap * x;
        }
    }
    phases.iter().fold(0.0f32, |m, v| m.max(v.abs()))
}

impl PeakDetector for TruePeak {
    fn latency(&self) -> usize {
        LATENCY
    }

    fn detect(&mut self, input: &[Vec<f32>], frames: Range<usize>, gain: f32, peaks: &mut [f32]) {
        peaks.fill(0.0);
        let mut lines = std::mem::take(&mut self.lines);
        for (line, plane) in lines.iter_mut().zip(input) {
            line.extend(plane[frames.clone()].iter().map(|&sample| sample * gain));
            self.detect_channel(line, peaks);
            line.drain(..line.len() - (TAPS - 1));
        }
        self.lines = lines;
        // Each frame's level covers the interval before it as well as the one after.
        for peak in peaks.iter_mut() {
            let interval = *peak;
            *peak = interval.max(self.previous);
            self.previous = interval;
        }
    }

    fn reset(&mut self) {
        for line in &mut self.lines {
            line.clear();
            line.resize(TAPS - 1, 0.0);
        }
        self.previous = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_zero_is_the_sample_itself() {
        let short = hann_bank();
        for (bank, centre) in [
            (&kaiser_bank()[..], LATENCY),
            (&short[..], LATENCY - SHORT_OFFSET),
        ] {
            for (tap, phases) in bank.iter().enumerate() {
                let expected = if tap == centre { 1.0 } else { 0.0 };
                assert!(
                    (phases[0] - expected).abs() < 1e-6,
                    "tap {tap}: {}",
                    phases[0]
                );
            }
        }
    }

    #[test]
    fn finds_the_peak_between_samples() {
        // A sine at fs/4 sampled 45 degrees off its crests: samples reach only
        // 0.707, the waveform reaches 1.
        let plane: Vec<f32> = (0..64)
            .map(|i| {
                (std::f64::consts::FRAC_PI_2 * i as f64 + std::f64::consts::FRAC_PI_4).sin() as f32
            })
            .collect();
        let mut detector = TruePeak::new(1, 0.5);
        let mut peaks = vec![0.0; 64];
        detector.detect(&[plane], 0..64, 1.0, &mut peaks);
        let settled = peaks[20..].iter().fold(0.0f32, |m, &p| m.max(p));
        assert!(settled > 0.95 && settled < 1.05, "{settled}");
    }
}
