//! The look-ahead peak limiter behind `Gain` for volumes above 1 (and, with a true-peak
//! detector, behind `Normalizer`): applies a gain and keeps every sample under a ceiling
//! without clipping. Knows nothing of how it is used nor how peaks are detected beyond
//! the `PeakDetector` it is given.

use std::collections::VecDeque;
use std::fmt::Debug;
use std::ops::Range;

use crate::Block;

/// The limiter ceiling: −1 dBFS.
pub const CEILING: f32 = 0.891_250_9;

/// The level the gain computer aims for: a hair under the ceiling, so that rounding in
/// the gain smoothing can never push a sample over it.
const TARGET: f64 = CEILING as f64 * 0.9999;

/// How far ahead the limiter looks, which is also how long a gain reduction takes to
/// reach full depth (a linear ramp) and the delay the limiter adds.
const LOOKAHEAD_SECS: f64 = 0.005;

/// Time constant of the exponential recovery after a peak has passed.
const RELEASE_SECS: f64 = 0.08;

/// A gain this close to 1 is 1: the recovery would otherwise crawl towards it forever.
const UNITY_SNAP: f64 = 1e-6;

/// How a `Limiter` measures the level of each frame.
pub(crate) trait PeakDetector: Clone + Debug + Send {
    /// Frames between a frame entering the detector and its level coming out.
    fn latency(&self) -> usize;

    /// For each frame of `input` in `frames` (all planes, scaled by `gain`), writes into
    /// `peaks` the level, over the loudest channel, of the frame `latency()` frames
    /// earlier in the stream.
    fn detect(&mut self, input: &[Vec<f32>], frames: Range<usize>, gain: f32, peaks: &mut [f32]);

    /// Forgets all history.
    fn reset(&mut self);
}

/// The sample peak: the largest absolute sample of each frame, with no latency.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SamplePeak;

impl PeakDetector for SamplePeak {
    fn latency(&self) -> usize {
        0
    }

    fn detect(&mut self, input: &[Vec<f32>], frames: Range<usize>, gain: f32, peaks: &mut [f32]) {
        peaks.fill(0.0);
        for plane in input {
            let plane = &plane[frames.clone()];
            for (peak, sample) in peaks.iter_mut().zip(plane) {
                *peak = peak.max((sample * gain).abs());
            }
        }
    }

    fn reset(&mut self) {}
}

/// Gain, then a look-ahead brick-wall limiter linked across channels.
///
/// For every input frame it computes the gain that would put the frame's loudest channel
/// at the ceiling, holds the minimum of that over the look-ahead window, lets it recover
/// exponentially, and smooths the result with a moving average as long as the window.
/// The average of values that were all at most the requirement of the frame leaving the
/// delay line is itself at most that requirement, so no output exceeds the ceiling, and
/// the gain moves in ramps rather than steps. A signal whose peaks stay under the ceiling
/// meets a gain of exactly 1.
///
/// The level of each frame comes from a `PeakDetector`; a detector with latency (a
/// true-peak detector looks at the samples around a frame) lengthens the delay line by
/// that latency, so the gain still reaches each frame before the frame leaves.
#[derive(Debug, Clone)]
pub(crate) struct Limiter<D: PeakDetector = SamplePeak> {
    gain: f32,
    target: f64,
    detector: D,
    release: f64,
    hold: MinHold,
    smoothing: MovingAverage,
    recovered: f64,
    /// One ring buffer of `window - 1 + latency` gained samples per channel.
    delay: Vec<Vec<f32>>,
    delay_pos: usize,
    delay_filled: usize,
    /// Scratch for one run: the peak of each frame entering the delay line, then the
    /// gain of each frame leaving it.
    gains: Vec<f32>,
}

impl Limiter {
    /// A sample-peak limiter applying `gain` to `channels` channels at `sample_rate_hz`,
    /// with its ceiling at `CEILING`.
    pub(crate) fn new(gain: f32, channels: usize, sample_rate_hz: u32) -> Self {
        Self::with_detector(gain, channels, sample_rate_hz, TARGET, SamplePeak)
    }
}

impl<D: PeakDetector> Limiter<D> {
    /// A limiter applying `gain` to `channels` channels at `sample_rate_hz` that keeps the
    /// level `detector` measures at or under `target` (linear).
    pub(crate) fn with_detector(
        gain: f32,
        channels: usize,
        sample_rate_hz: u32,
        target: f64,
        detector: D,
    ) -> Self {
        let rate = f64::from(sample_rate_hz);
        let window = ((LOOKAHEAD_SECS * rate).round() as usize).max(2);
        let line_len = window - 1 + detector.latency();
        Self {
            gain,
            target,
            detector,
            release: 1.0 - (-1.0 / (RELEASE_SECS * rate)).exp(),
            hold: MinHold::new(window),
            smoothing: MovingAverage::new(window),
            recovered: 1.0,
            delay: vec![vec![0.0; line_len]; channels],
            delay_pos: 0,
            delay_filled: 0,
            gains: vec![0.0; line_len],
        }
    }

    /// Length of the delay line: the limiter's latency in frames.
    fn line_len(&self) -> usize {
        self.gains.len()
    }

    /// Applies gain and limiting to `input`; the output lags by `line_len()` frames.
    pub(crate) fn process(&mut self, input: &Block, output: &mut Block) {
        output.reset_to(self.delay.len());
        let mut start = 0;
        while start < input.frames() {
            // A run ends where the ring buffer wraps, so it touches one contiguous range.
            let len = (self.line_len() - self.delay_pos).min(input.frames() - start);
            self.process_run(input.planes(), start..start + len, output);
            start += len;
        }
    }

    /// Emits the frames still in the delay line and returns to the initial state.
    pub(crate) fn flush(&mut self, output: &mut Block) {
        if self.delay_filled > 0 {
            // Pushing a full delay line of silence emits exactly the frames held in it.
            let silence = Block::silence(self.delay.len(), self.line_len());
            self.process(&silence, output);
        } else {
            output.reset_to(self.delay.len());
        }
        self.reset();
    }

    /// Forgets all history.
    pub(crate) fn reset(&mut self) {
        self.detector.reset();
        self.hold.reset();
        self.smoothing.reset();
        self.recovered = 1.0;
        self.delay.iter_mut().for_each(|line| line.fill(0.0));
        self.delay_pos = 0;
        self.delay_filled = 0;
    }

    /// Takes the input frames in `frames`, which fit in the ring buffer from `delay_pos`
    /// without wrapping, and emits the frames leaving the delay line once it is full.
    fn process_run(&mut self, input: &[Vec<f32>], frames: Range<usize>, output: &mut Block) {
        let len = frames.len();
        self.compute_gains(input, frames.clone());
        let line_len = self.line_len();
        let (pos, gains) = (self.delay_pos, &self.gains[..len]);
        // Frames that arrive before the delay line is full only fill it.
        let silent = (line_len - self.delay_filled).min(len);
        let channels = self.delay.iter_mut().zip(input).zip(output.planes_mut());
        for ((line, plane), out) in channels {
            let (line, plane) = (&mut line[pos..pos + len], &plane[frames.clone()]);
            let (filling, leaving) = line.split_at_mut(silent);
            for (slot, &sample) in filling.iter_mut().zip(plane) {
                *slot = sample * self.gain;
            }
            let entering = leaving
                .iter_mut()
                .zip(&plane[silent..])
                .zip(&gains[silent..]);
            out.extend(entering.map(|((slot, &sample), &gain)| {
                let delayed = std::mem::replace(slot, sample * self.gain);
                delayed * gain
            }));
        }
        self.delay_pos = (pos + len) % line_len;
        self.delay_filled = (self.delay_filled + len).min(line_len);
    }

    /// Fills `gains[..frames.len()]` with the gain for each frame leaving the delay line
    /// as the frames of `input` in `frames` enter it.
    fn compute_gains(&mut self, input: &[Vec<f32>], frames: Range<usize>) {
        let len = frames.len();
        let peaks = &mut self.gains[..len];
        self.detector.detect(input, frames, self.gain, peaks);
        let mut i = 0;
        while i < len {
            if self.at_rest() {
                // At rest, frames under the target get a gain of exactly 1 and leave the
                // state at rest: skip the per-frame work.
                let target = self.target;
                let quiet = (self.gains[i..len].iter())
                    .take_while(|&&peak| f64::from(peak) <= target)
                    .count();
                if quiet > 0 {
                    self.gains[i..i + quiet].fill(1.0);
                    self.hold.push_ones(quiet);
                    self.smoothing.push_zeros(quiet);
                    i += quiet;
                    continue;
                }
            }
            let peak = f64::from(self.gains[i]);
            self.gains[i] = self.smoothed_gain(peak);
            i += 1;
        }
    }

    /// True when the next frame's gain is exactly 1 if its peak is under the target, and
    /// the state afterwards is the same: fully recovered, nothing held under 1, nothing
    /// being smoothed.
    fn at_rest(&self) -> bool {
        self.recovered == 1.0 && self.smoothing.is_zero() && self.hold.is_unity()
    }

    /// The gain for the frame leaving the delay line, given the peak entering it.
    fn smoothed_gain(&mut self, peak: f64) -> f32 {
        let required = if peak > self.target {
            self.target / peak
        } else {
            1.0
        };
        let held = self.hold.push(required);
        let mut recovered = self.recovered + (1.0 - self.recovered) * self.release;
        if 1.0 - recovered < UNITY_SNAP {
            recovered = 1.0;
        }
        self.recovered = held.min(recovered);
        (1.0 - self.smoothing.push(1.0 - self.recovered)) as f32
    }
}

/// The minimum of the last `window` values pushed (values before the first push count
/// as 1), in amortised constant time.
#[derive(Debug, Clone)]
struct MinHold {
    window: usize,
    index: usize,
    candidates: VecDeque<(usize, f64)>,
}

impl MinHold {
    fn new(window: usize) -> Self {
        Self {
            window,
            index: 0,
            candidates: VecDeque::with_capacity(window + 1),
        }
    }

    fn push(&mut self, value: f64) -> f64 {
        while self.candidates.back().is_some_and(|&(_, v)| v >= value) {
            self.candidates.pop_back();
        }
        self.candidates.push_back((self.index, value));
        while self
            .candidates
            .front()
            .is_some_and(|&(i, _)| i + self.window <= self.index)
        {
            self.candidates.pop_front();
        }
        self.index += 1;
        self.candidates.front().map_or(1.0, |&(_, v)| v.min(1.0))
    }

    /// True when the minimum held is 1 (or nothing has been pushed).
    fn is_unity(&self) -> bool {
        self.candidates.front().is_none_or(|&(_, v)| v >= 1.0)
    }

    /// Pushes `count` values of 1 while `is_unity`: the same as `count` calls of
    /// `push(1.0)`.
    fn push_ones(&mut self, count: usize) {
        debug_assert!(self.is_unity());
        self.index += count;
        self.candidates.clear();
        self.candidates.push_back((self.index - 1, 1.0));
    }

    fn reset(&mut self) {
        self.index = 0;
        self.candidates.clear();
    }
}

/// The mean of the last `window` non-negative values pushed (values before the first
/// push count as 0). Exactly 0 whenever the window holds only zeros, so that a signal
/// under the ceiling gets a gain of exactly 1 however long the stream runs.
#[derive(Debug, Clone)]
struct MovingAverage {
    values: Vec<f64>,
    pos: usize,
    sum: f64,
    nonzero: usize,
}

impl MovingAverage {
    fn new(window: usize) -> Self {
        Self {
            values: vec![0.0; window],
            pos: 0,
            sum: 0.0,
            nonzero: 0,
        }
    }

    fn push(&mut self, value: f64) -> f64 {
        let old = std::mem::replace(&mut self.values[self.pos], value);
        self.pos += 1;
        if self.pos == self.values.len() {
            self.pos = 0;
        }
        self.nonzero = self.nonzero + usize::from(value != 0.0) - usize::from(old != 0.0);
        self.sum = if self.nonzero == 0 {
            0.0
        } else {
            (self.sum + value - old).max(0.0)
        };
        self.sum / self.values.len() as f64
    }

    /// True when the window holds only zeros (the mean is exactly 0).
    fn is_zero(&self) -> bool {
        self.nonzero == 0
    }

    /// Pushes `count` zeros while `is_zero`: the same as `count` calls of `push(0.0)`.
    fn push_zeros(&mut self, count: usize) {
        debug_assert!(self.is_zero());
        self.pos = (self.pos + count) % self.values.len();
    }

    fn reset(&mut self) {
        self.values.fill(0.0);
        self.pos = 0;
        self.sum = 0.0;
        self.nonzero = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_hold_forgets_after_its_window() {
        let mut hold = MinHold::new(3);
        let out: Vec<f64> = [0.5, 0.9, 0.8, 0.95, 1.0, 1.0]
            .into_iter()
            .map(|v| hold.push(v))
            .collect();
        assert_eq!(out, [0.5, 0.5, 0.5, 0.8, 0.8, 0.95]);
    }

    #[test]
    fn moving_average_returns_to_exact_zero() {
        let mut average = MovingAverage::new(4);
        for v in [0.1, 0.3, 0.7, 0.2] {
            average.push(v);
        }
        let tail: Vec<f64> = (0..4).map(|_| average.push(0.0)).collect();
        assert_eq!(tail[3], 0.0);
        assert!(tail[0] > tail[1] && tail[1] > tail[2] && tail[2] > 0.0);
    }
}
