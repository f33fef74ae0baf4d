//! Loudness normalisation in one pass: a BS.1770 loudness measurement (the `ebur128`
//! crate) running ahead of the output through a look-ahead delay line, a slowly riding
//! gain that also makes up for limiting, and a true-peak limiter at -1 dBTP. Owns the look-ahead and the gain policy;
//! knows nothing of the chain, of how settings arrive, or of other stages.

mod meters;
mod rider;
mod true_peak;

use std::ops::Range;

use crate::limiter::Limiter;
use crate::{Block, ConfigError, Processor, check_channels, check_rate};
use rider::{GainRider, HOP_SECS};
use true_peak::TruePeak;

pub use rider::{MAX_GAIN_DB, MIN_GAIN_DB};

/// Lowest accepted target, LUFS.
pub const MIN_TARGET_LUFS: f64 = -70.0;

/// Highest accepted target, LUFS.
pub const MAX_TARGET_LUFS: f64 = -5.0;

/// The output's true-peak ceiling, dBTP.
pub const TRUE_PEAK_CEILING_DBTP: f64 = -1.0;

/// Margin under the ceiling the limiter aims for, dB: covers the gain changing across
/// the few samples an inter-sample peak depends on, and f32 rounding.
const TRUE_PEAK_MARGIN_DB: f64 = 0.1;

/// How far the measurement runs ahead of the output, in hops (3 s).
const LOOKAHEAD_HOPS: usize = 30;

/// One-pass loudness normaliser with a bounded look-ahead.
///
/// The input is measured as it arrives and held in a 3 s delay line, so the gain for a
/// passage is decided before it is played. The gain follows `target - loudness`, where
/// the loudness is the gated integrated loudness (BS.1770, `ebur128`) of the last 30 s
/// of input: the 3 s look-ahead plus what has been played. It moves slowly (0.75 s time
/// constant down, 3 s up, decided every 100 ms and ramped per frame), so steady material
/// gets a constant gain: no pumping. The gain stays within `MIN_GAIN_DB..=MAX_GAIN_DB`,
/// and material under the -70 LUFS absolute gate is never measured, so silence and
/// near-silence are not boosted.
///
/// A look-ahead limiter linked across channels (5 ms attack, 80 ms release) with a
/// 4x-oversampling true-peak detector then keeps the output under
/// `TRUE_PEAK_CEILING_DBTP`. On peaky material (speech, acoustic music boosted a lot)
/// limiting lowers the loudness; the loudness the limiter has taken from the last 30 s
/// played (measured before and after it) is added to the gain, up to 6 LU, so the output
/// still reaches the target.
///
/// The output is time-aligned with the input: the first frames written are those of the
/// first input frames, about 3 s of input later, and `flush` writes the rest, so the
/// output is exactly as long as the input.
#[derive(Debug)]
pub struct Normalizer {
    channels: usize,
    rider: GainRider,
    lookahead: DelayLine,
    /// Scratch: the gain of each frame of one run.
    gains: Vec<f32>,
    /// Scratch: the delayed frames of one run with the gain applied, before the limiter.
    ridden: Block,
    /// Scratch: what the limiter let out during one run.
    limited: Block,
    limiter: Limiter<TruePeak>,
}

impl Normalizer {
    /// A normaliser aiming at `target_lufs` (-70 to -5) for `channels` channels at
    /// `sample_rate_hz`.
    pub fn try_new(
        target_lufs: f64,
        channels: usize,
        sample_rate_hz: u32,
    ) -> Result<Self, ConfigError> {
        check_target(target_lufs)?;
        check_channels(channels)?;
        check_rate(sample_rate_hz)?;
        let rider = GainRider::try_new(target_lufs, channels, sample_rate_hz)?;
        let hop = rider.hop_frames();
        let ceiling = 10f64.powf((TRUE_PEAK_CEILING_DBTP - TRUE_PEAK_MARGIN_DB) / 20.0);
        let detector = TruePeak::new(channels, ceiling as f32);
        Ok(Self {
            channels,
            rider,
            lookahead: DelayLine::new(channels, LOOKAHEAD_HOPS * hop),
            gains: vec![0.0; hop],
            ridden: Block::new(channels),
            limited: Block::new(channels),
            limiter: Limiter::with_detector(1.0, channels, sample_rate_hz, ceiling, detector),
        })
    }

    /// Changes the target while running; the gain glides to it at the smoothing speed.
    pub fn set_target(&mut self, target_lufs: f64) -> Result<(), ConfigError> {
        check_target(target_lufs)?;
        self.rider.set_target(target_lufs);
        Ok(())
    }

    /// The gain decided last, in dB (before the limiter).
    pub fn gain_db(&self) -> f64 {
        self.rider.gain_db()
    }

    /// How long the measurement runs ahead of the output (nominally: 30 hops of 100 ms,
    /// each rounded to whole frames).
    pub fn lookahead_secs(&self) -> f64 {
        LOOKAHEAD_HOPS as f64 * HOP_SECS
    }

    /// Passes `frames` frames through the look-ahead, the gain and the limiter, and
    /// appends what comes out to `output`: frames of `input` (measured first), or silence
    /// when `input` is `None`. Runs end at every decision, so what the meters have seen
    /// when the gain is decided does not depend on how the input was chunked.
    fn ride(&mut self, input: Option<&Block>, frames: usize, output: &mut Block) {
        let mut start = 0;
        while start < frames {
            let len = (frames - start)
                .min(self.rider.frames_to_decision())
                .min(self.lookahead.until_wrap());
            let range = start..start + len;
            if let Some(block) = input {
                self.rider.measure(block.planes(), range.clone());
            }
            self.rider.ramp(&mut self.gains[..len]);
            self.ridden.reset_to(self.channels);
            let planes = input.map(|block| (block.planes(), range));
            let gains = &self.gains[..len];
            self.lookahead
                .exchange(planes, len, gains, &mut self.ridden);
            self.limiter.process(&self.ridden, &mut self.limited);
            self.rider.measure_limiter(&self.ridden, &self.limited);
            output.append(&self.limited);
            let playing = self.lookahead.is_full();
            self.rider.advance(len, input.is_some(), playing);
            start += len;
        }
    }
}

fn check_target(target_lufs: f64) -> Result<(), ConfigError> {
    if (MIN_TARGET_LUFS..=MAX_TARGET_LUFS).contains(&target_lufs) {
        Ok(())
    } else {
        Err(ConfigError::OutOfRange {
            name: "normalize.target_lufs",
            value: target_lufs,
            min: MIN_TARGET_LUFS,
            max: MAX_TARGET_LUFS,
        })
    }
}

impl Processor for Normalizer {
    fn process(&mut self, input: &Block, output: &mut Block) {
        debug_assert_eq!(input.channels(), self.channels);
        output.reset_to(self.channels);
        self.ride(Some(input), input.frames(), output);
    }

    fn flush(&mut self, output: &mut Block) {
        // A delay line's worth of silence pushes out exactly the frames held in it; the
        // gain keeps gliding towards the last decision meanwhile.
        output.reset_to(self.channels);
        let held = self.lookahead.len();
        self.ride(None, held, output);
        self.limiter.flush(&mut self.limited);
        output.append(&self.limited);
        self.reset();
    }

    fn reset(&mut self) {
        self.rider.reset();
        self.lookahead.reset();
        self.limiter.reset();
    }
}

/// A ring buffer per channel that delays audio by a fixed number of frames.
#[derive(Debug)]
struct DelayLine {
    lines: Vec<Vec<f32>>,
    pos: usize,
    filled: usize,
}

impl DelayLine {
    fn new(channels: usize, frames: usize) -> Self {
        Self {
            lines: vec![vec![0.0; frames.max(1)]; channels],
            pos: 0,
            filled: 0,
        }
    }

    /// The delay in frames.
    fn len(&self) -> usize {
        self.lines.first().map_or(0, Vec::len)
    }

    /// True once the line holds a whole delay: every frame in now pushes one out.
    fn is_full(&self) -> bool {
        self.filled == self.len()
    }

    /// Frames that can be exchanged before the ring buffer wraps.
    fn until_wrap(&self) -> usize {
        self.len() - self.pos
    }

    /// Puts `frames` frames in (frames `range` of the planes, or silence) and appends the
    /// frames that come out, times `gains`, to `output`. Must not run past `until_wrap`.
    fn exchange(
        &mut self,
        input: Option<(&[Vec<f32>], Range<usize>)>,
        frames: usize,
        gains: &[f32],
        output: &mut Block,
    ) {
        let (pos, len) = (self.pos, self.len());
        // Frames arriving before the line is full only fill it.
        let filling = (len - self.filled).min(frames);
        for (channel, (line, out)) in self.lines.iter_mut().zip(output.planes_mut()).enumerate() {
            let line = &mut line[pos..pos + frames];
            let source = input
                .as_ref()
                .map(|(planes, range)| &planes[channel][range.clone()]);
            for i in 0..frames {
                let sample = source.map_or(0.0, |s| s[i]);
                let delayed = std::mem::replace(&mut line[i], sample);
                if i >= filling {
                    out.push(delayed * gains[i]);
                }
            }
        }
        self.pos = (pos + frames) % len;
        self.filled = (self.filled + frames).min(len);
    }

    fn reset(&mut self) {
        self.lines.iter_mut().for_each(|line| line.fill(0.0));
        self.pos = 0;
        self.filled = 0;
    }
}
