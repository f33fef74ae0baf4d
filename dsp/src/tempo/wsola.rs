//! The WSOLA engine behind `Tempo`: input history, frame placement, Hann overlap-add and
//! the speed schedule that maps output time to input time. Knows nothing of the
//! `Processor` contract's bookkeeping (lengths owed, pass-through).

use std::collections::VecDeque;

use super::fractional::{FractionalReader, HALF_TAPS};
use super::search::Search;
use crate::Block;

/// Length of one analysis/synthesis frame; frames overlap by half.
const FRAME_SECS: f64 = 0.030;

/// How far, either way, a frame may move from its nominal place to fit its neighbour.
const SEEK_SECS: f64 = 0.012;

/// Rate the coarse stage of the similarity search runs at (roughly).
const COARSE_RATE_HZ: u32 = 6_000;

/// Speed changes that may wait for the frames before them; later ones overwrite the last.
const MAX_PENDING_CHANGES: usize = 16;

/// Waveform-similarity overlap-add over a planar input history.
///
/// Output frame `k` is a Hann-windowed (periodic, so that halves sum to one) segment of
/// `2 × hop` input frames centred at output time `o_k = o_0 + k × hop`. Its nominal input
/// centre `n_k` follows the speed schedule (`n_{k+1} = n_k + hop × speed`, piecewise); the
/// actual centre is the position within `±seek` of `n_k`, to a fraction of a frame, whose
/// first half best continues what followed the previous frame's centre in the input (see
/// `Search`; fractional positions are read with `FractionalReader`), so overlapping
/// halves add in phase. The first frame is placed exactly at its nominal centre, so output
/// starts on the first input frame. At speed 1 the natural continuation itself is taken:
/// the output is then the input, delayed by the frame offset reached so far.
#[derive(Debug, Clone)]
pub(super) struct Wsola {
    hop: usize,
    seek: usize,
    window: Vec<f32>,
    /// `input[c][i]` is input frame `base + i` of channel `c`; frames before 0 are silence.
    input: Vec<Vec<f32>>,
    base: i64,
    /// Overlap-add accumulator: output frames `o_k - hop .. o_k + hop` of the next frame.
    accumulator: Vec<Vec<f32>>,
    /// Nominal input centre of the next frame.
    nominal: f64,
    /// Actual input centre of the previous frame (`None` before the first frame).
    previous: Option<i64>,
    /// How far past `previous` (0 to 1 frame) the previous frame's centre really was.
    fraction: f64,
    /// Speed in effect at `nominal`.
    speed: f64,
    /// Speed changes `(input frame, speed)` at or after `nominal`, in order.
    changes: VecDeque<(f64, f64)>,
    search: Search,
    reader: FractionalReader,
}

impl Wsola {
    /// An engine for `channels` channels at `sample_rate_hz`, in its fresh state.
    pub(super) fn new(channels: usize, sample_rate_hz: u32, speed: f64) -> Self {
        let rate = f64::from(sample_rate_hz);
        let hop = ((rate * FRAME_SECS / 2.0).round() as usize).max(1);
        let seek = (rate * SEEK_SECS).round() as usize;
        let decimation = (sample_rate_hz / COARSE_RATE_HZ).max(1) as usize;
        let window = (0..2 * hop)
            .map(|i| {
                (std::f64::consts::PI * i as f64 / (2 * hop) as f64)
                    .sin()
                    .powi(2) as f32
            })
            .collect();
        let mut engine = Self {
            hop,
            seek,
            window,
            input: vec![Vec::with_capacity(4 * (hop + seek)); channels],
            base: 0,
            accumulator: vec![vec![0.0; 2 * hop]; channels],
            nominal: 0.0,
            previous: None,
            fraction: 0.0,
            speed,
            changes: VecDeque::with_capacity(MAX_PENDING_CHANGES),
            search: Search::new(channels, hop, 2 * seek, decimation),
            reader: FractionalReader::new(2 * hop),
        };
        engine.reset(speed);
        engine
    }

    /// Input a frame reaches either side of its nominal centre: half a frame, the search
    /// reach, the interpolator's reach and a frame for rounding. Also the history kept for
    /// a later `begin`.
    fn history(&self) -> usize {
        self.hop + self.seek + HALF_TAPS + 1
    }

    /// Back to the fresh state at `speed`: silence before input frame 0, the first frame
    /// centred on input frame 0.
    pub(super) fn reset(&mut self, speed: f64) {
        let history = self.history();
        for plane in &mut self.input {
            plane.clear();
            plane.resize(history, 0.0);
        }
        self.base = -(history as i64);
        self.begin(0, speed);
    }

    /// Starts stretching at `speed` with a frame centred on input frame `at`, the end of
    /// the history given so far (see `remember`).
    pub(super) fn begin(&mut self, at: u64, speed: f64) {
        debug_assert_eq!(at as i64, self.end());
        self.accumulator.iter_mut().for_each(|acc| acc.fill(0.0));
        self.nominal = at as f64;
        self.previous = None;
        self.fraction = 0.0;
        self.speed = speed;
        self.changes.clear();
    }

    /// Keeps the end of `input` as history while nothing is being stretched.
    pub(super) fn remember(&mut self, input: &Block) {
        let history = self.history();
        let Some(skip) = input.frames().checked_sub(history) else {
            for (plane, new) in self.input.iter_mut().zip(input.planes()) {
                plane.extend_from_slice(new);
            }
            self.drop_before(self.end() - history as i64);
            return;
        };
        self.base = self.end() + skip as i64;
        for (plane, new) in self.input.iter_mut().zip(input.planes()) {
            plane.clear();
            plane.extend_from_slice(&new[skip..]);
        }
    }

    /// Makes `speed` apply from input frame `at` (the end of the input so far) on.
    pub(super) fn change_speed(&mut self, at: u64, speed: f64) {
        let at = at as f64;
        if at < self.nominal {
            // The next frame's centre lies past the change: re-place it on the new slope.
            debug_assert!(self.changes.is_empty());
            self.nominal = at + (self.nominal - at) * speed / self.speed;
            self.speed = speed;
        } else if self.changes.len() == MAX_PENDING_CHANGES
            || self.changes.back().is_some_and(|last| last.0 == at)
        {
            if let Some(last) = self.changes.back_mut() {
                last.1 = speed;
            }
        } else {
            self.changes.push_back((at, speed));
        }
    }

    /// Takes in `input` and appends every output frame that is final to `output`.
    pub(super) fn process(&mut self, input: &Block, output: &mut Block) {
        for (plane, new) in self.input.iter_mut().zip(input.planes()) {
            plane.extend_from_slice(new);
        }
        while self.next_frame_end() <= self.end() {
            self.synthesise(output, usize::MAX);
        }
        // The next frame reaches `history` before its nominal centre, which a speed change
        // may pull back to the end of the input; its reference starts at `previous`.
        let nominal = (self.nominal.round() as i64).min(self.end());
        let keep = nominal - self.history() as i64;
        self.drop_before(self.previous.map_or(keep, |previous| keep.min(previous)));
    }

    /// Appends `frames` more output frames to `output`, reading silence past the end of
    /// the input.
    pub(super) fn flush(&mut self, frames: usize, output: &mut Block) {
        let target = output.frames() + frames;
        while output.frames() < target {
            let missing = usize::try_from(self.next_frame_end() - self.end()).unwrap_or(0);
            for plane in &mut self.input {
                plane.resize(plane.len() + missing, 0.0);
            }
            self.synthesise(output, target - output.frames());
        }
    }

    /// Number of input frames held.
    fn end_frames(&self) -> usize {
        self.input.first().map_or(0, Vec::len)
    }

    /// The input frame just past the history.
    fn end(&self) -> i64 {
        self.base + self.end_frames() as i64
    }

    /// The input the next frame needs: up to its furthest candidate's end.
    fn next_frame_end(&self) -> i64 {
        self.nominal.round() as i64 + self.history() as i64
    }

    /// Forgets input before frame `keep`, once enough has piled up to make it worth it.
    fn drop_before(&mut self, keep: i64) {
        let dead = usize::try_from(keep - self.base).unwrap_or(0);
        if dead >= 2 * self.hop {
            self.input.iter_mut().for_each(|plane| {
                plane.drain(..dead);
            });
            self.base += dead as i64;
        }
    }

    /// Index in the history of input frame `frame`.
    fn index(&self, frame: i64) -> usize {
        debug_assert!(frame >= self.base);
        (frame - self.base) as usize
    }

    /// Places the next frame, adds it in, and appends up to `limit` final output frames.
    fn synthesise(&mut self, output: &mut Block, limit: usize) {
        let (centre, fraction) = self.choose_centre();
        let start = self.index(centre - (self.hop + HALF_TAPS - 1) as i64);
        let len = 2 * self.hop + 2 * HALF_TAPS - 1;
        for (acc, plane) in self.accumulator.iter_mut().zip(&self.input) {
            let samples = &plane[start..start + len];
            self.reader.add(acc, &self.window, samples, fraction);
        }
        if self.previous.is_some() {
            let take = self.hop.min(limit);
            for (out, acc) in output.planes_mut().iter_mut().zip(&self.accumulator) {
                out.extend_from_slice(&acc[..take]);
            }
        }
        for acc in &mut self.accumulator {
            acc.copy_within(self.hop.., 0);
            acc[self.hop..].fill(0.0);
        }
        self.previous = Some(centre);
        self.fraction = fraction;
        self.advance();
    }

    /// The input centre of the next frame: a frame and the fraction of a frame past it.
    ///
    /// The search compares candidates with the input after the previous centre rounded
    /// down, and places the best match between frames; adding back what the rounding
    /// dropped puts the frame where the previous one's continuation really lies, so a
    /// tone's phase neither jumps nor drifts from splice to splice.
    fn choose_centre(&mut self) -> (i64, f64) {
        let nominal = self.nominal.round() as i64;
        let Some(previous) = self.previous else {
            return (nominal, 0.0);
        };
        let (hop, seek) = (self.hop as i64, self.seek as i64);
        let natural = previous + hop;
        if self.speed == 1.0 && (natural - nominal).abs() <= seek {
            return (natural, self.fraction);
        }
        let first = nominal - seek;
        let reference = self.index(previous);
        let candidates = self.index(first - hop);
        let (lag, offset) = self
            .search
            .best_lag(&self.input, reference, candidates, 2 * self.seek);
        let ideal = lag as f64 + offset + self.fraction;
        let whole = ideal.floor();
        (first + whole as i64, ideal - whole)
    }

    /// Moves `nominal` one hop of output time on, through any speed changes on the way.
    fn advance(&mut self) {
        let mut output_left = self.hop as f64;
        while let Some(&(at, speed)) = self.changes.front() {
            if at > self.nominal + output_left * self.speed {
                break;
            }
            output_left -= (at - self.nominal) / self.speed;
            self.nominal = at;
            self.speed = speed;
            self.changes.pop_front();
        }
        self.nominal += output_left * self.speed;
    }
}
