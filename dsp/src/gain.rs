//! Volume: a linear gain, followed by a look-ahead limiter when the gain can push
//! samples past full scale. Knows nothing of the rest of the chain.

use crate::limiter::Limiter;
use crate::{Block, ConfigError, Processor, check_channels, check_range, check_rate};

pub use crate::limiter::CEILING;

/// Lowest accepted volume.
pub const MIN_VOLUME: f32 = 0.0;

/// Highest accepted volume.
pub const MAX_VOLUME: f32 = 2.0;

/// How long a live volume change takes to reach its new value.
const RAMP_SECS: f64 = 0.010;

/// Linear volume with a limiter for boosts, changeable while running.
///
/// - volume 1: the output is a copy of the input;
/// - volume below 1: every sample is multiplied, with no delay;
/// - volume above 1: the gain is followed by a look-ahead peak limiter linked across
///   channels (5 ms look-ahead with a linear attack over that span, 80 ms exponential
///   release) whose ceiling is `CEILING` (−1 dBFS). Nothing is clipped: loud passages
///   are turned down smoothly, and a signal whose peaks stay under the ceiling after the
///   gain comes out exactly multiplied. The limiter delays its output internally by the
///   look-ahead; the first frames written are those of the first input frames, and
///   `flush` emits the rest, so the output is as long as the input.
///
/// `set_volume` ramps linearly to the new value over 10 ms, so a change never clicks;
/// the limiter is engaged while the gain is (or is heading) above 1, or while
/// `set_guard` says an earlier stage may have raised the level, and drained out of the
/// path, without losing a frame, once neither holds.
#[derive(Debug, Clone)]
pub struct Gain {
    channels: usize,
    sample_rate_hz: u32,
    current: f32,
    target: f32,
    step: f32,
    /// Limit even at volume 1 or below (an earlier stage may boost).
    guard: bool,
    limiter: Option<Box<Limiter>>,
    gained: Block,
    drained: Block,
}

impl Gain {
    /// A gain of `volume` (0 to 2) on `channels` channels at `sample_rate_hz`
    /// (the rate sets the limiter's time constants and the ramp length).
    pub fn try_new(volume: f32, channels: usize, sample_rate_hz: u32) -> Result<Self, ConfigError> {
        check_volume(volume)?;
        check_channels(channels)?;
        check_rate(sample_rate_hz)?;
        let mut gain = Self {
            channels,
            sample_rate_hz,
            current: volume,
            target: volume,
            step: 0.0,
            guard: false,
            limiter: None,
            gained: Block::new(channels),
            drained: Block::new(channels),
        };
        gain.engage_limiter_if_needed();
        Ok(gain)
    }

    /// True when this gain leaves the signal untouched (volume 1, not ramping).
    pub fn is_unity(&self) -> bool {
        self.current == 1.0 && self.target == 1.0 && self.limiter.is_none()
    }

    /// The volume the gain is at or ramping towards.
    pub fn volume(&self) -> f32 {
        self.target
    }

    /// Ramps to `volume` (0 to 2) over 10 ms.
    pub fn set_volume(&mut self, volume: f32) -> Result<(), ConfigError> {
        check_volume(volume)?;
        if volume == self.target {
            return Ok(());
        }
        self.target = volume;
        let ramp_frames = (RAMP_SECS * f64::from(self.sample_rate_hz)).max(1.0) as f32;
        self.step = (self.target - self.current) / ramp_frames;
        self.engage_limiter_if_needed();
        Ok(())
    }

    /// Keeps the limiter engaged whatever the volume (`true`), for when an earlier stage
    /// can push samples past full scale (an EQ boost), or lets it drain out of the path
    /// once the volume allows (`false`). Takes effect from the next block.
    pub fn set_guard(&mut self, guard: bool) {
        self.guard = guard;
        self.engage_limiter_if_needed();
    }

    /// True while `set_guard` keeps the limiter engaged.
    pub fn is_guarding(&self) -> bool {
        self.guard
    }

    fn engage_limiter_if_needed(&mut self) {
        let boosting = self.guard || self.current > 1.0 || self.target > 1.0;
        if self.limiter.is_none() && boosting {
            self.limiter = Some(Box::new(Limiter::new(
                1.0,
                self.channels,
                self.sample_rate_hz,
            )));
        }
    }

    /// Multiplies `input` into `output` by the current gain, advancing any ramp.
    fn apply(&mut self, input: &Block, output: &mut Block) {
        output.reset_to(self.channels);
        if input.is_empty() {
            return;
        }
        if self.step == 0.0 {
            let gain = self.current;
            for (out, src) in output.planes_mut().iter_mut().zip(input.planes()) {
                out.extend(src.iter().map(|s| s * gain));
            }
            return;
        }
        let (start, target, step) = (self.current, self.target, self.step);
        let ramped = |i: usize| {
            let value = start + step * (i + 1) as f32;
            if (step > 0.0 && value >= target) || (step < 0.0 && value <= target) {
                target
            } else {
                value
            }
        };
        for (out, src) in output.planes_mut().iter_mut().zip(input.planes()) {
            out.extend(src.iter().enumerate().map(|(i, s)| s * ramped(i)));
        }
        self.current = ramped(input.frames().saturating_sub(1));
        if self.current == self.target {
            self.step = 0.0;
        }
    }

    /// Once the gain is settled at or below 1, lets the limiter's held frames out and
    /// takes it out of the path.
    fn release_limiter_if_done(&mut self, output: &mut Block) {
        if self.step == 0.0 && self.current <= 1.0 && !self.guard {
            if let Some(mut limiter) = self.limiter.take() {
                limiter.flush(&mut self.drained);
                output.append(&self.drained);
            }
        }
    }
}

fn check_volume(volume: f32) -> Result<(), ConfigError> {
    let range = f64::from(MIN_VOLUME)..=f64::from(MAX_VOLUME);
    check_range("volume", f64::from(volume), &range)
}

impl Processor for Gain {
    fn process(&mut self, input: &Block, output: &mut Block) {
        debug_assert_eq!(input.channels(), self.channels);
        if self.is_unity() {
            output.copy_from(input);
            return;
        }
        match self.limiter.take() {
            Some(mut limiter) => {
                let mut gained = std::mem::take(&mut self.gained);
                self.apply(input, &mut gained);
                limiter.process(&gained, output);
                self.gained = gained;
                self.limiter = Some(limiter);
                self.release_limiter_if_done(output);
            }
            None => self.apply(input, output),
        }
    }

    fn flush(&mut self, output: &mut Block) {
        match &mut self.limiter {
            Some(limiter) => limiter.flush(output),
            None => output.reset_to(self.channels),
        }
        self.reset();
    }

    fn reset(&mut self) {
        self.current = self.target;
        self.step = 0.0;
        if let Some(limiter) = &mut self.limiter {
            limiter.reset();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::f32::consts::TAU;

    const RATE_HZ: u32 = 48_000;

    fn sine(amplitude: f32, frames: usize) -> Block {
        let plane: Vec<f32> = (0..frames)
            .map(|i| {
                let phase = std::f64::consts::TAU * 1000.0 * i as f64 / f64::from(RATE_HZ);
                amplitude * phase.sin() as f32
            })
            .collect();
        Block::from_planes(vec![plane.clone(), plane])
    }

    fn run(volume: f32, input: &Block) -> Block {
        let mut gain = Gain::try_new(volume, input.channels(), RATE_HZ).unwrap();
        let mut output = Block::default();
        let mut tail = Block::default();
        gain.process(input, &mut output);
        gain.flush(&mut tail);
        output.append(&tail);
        output
    }

    fn peak(block: &Block) -> f32 {
        block
            .planes()
            .iter()
            .flatten()
            .fold(0.0, |m, s| m.max(s.abs()))
    }

    #[test]
    fn half_volume_is_minus_6_db() {
        let output = run(0.5, &sine(1.0, 4800));
        let ratio_db = 20.0 * (peak(&output) / peak(&sine(1.0, 4800))).log10();
        assert!((ratio_db + 6.0206).abs() < 0.001, "{ratio_db} dB");
    }

    #[test]
    fn unity_is_a_copy() {
        let input = sine(0.9, 1000);
        assert_eq!(run(1.0, &input), input);
        assert!(Gain::try_new(1.0, 2, RATE_HZ).unwrap().is_unity());
    }

    #[test]
    fn boost_of_a_quiet_sine_is_exact() {
        let input = sine(0.25, 48_000);
        let output = run(2.0, &input);
        let doubled = sine(0.5, 48_000);
        assert_eq!(output, doubled);
    }

    #[test]
    fn boost_of_a_full_scale_sine_is_limited_without_clipping() {
        let output = run(2.0, &sine(1.0, 48_000));
        assert_eq!(output.frames(), 48_000);
        assert!(peak(&output) <= CEILING, "peak {}", peak(&output));
        // No step larger than the boosted sine itself could make (a clipped or stepped
        // gain would show them), and once the gain has settled, none larger than a sine
        // at the ceiling makes.
        let step = |samples: &[f32]| {
            samples
                .windows(2)
                .map(|w| (w[1] - w[0]).abs())
                .fold(0.0, f32::max)
        };
        let sine_step = TAU * 1000.0 / RATE_HZ as f32;
        for plane in output.planes() {
            assert!(step(plane) <= 2.0 * sine_step);
            assert!(step(&plane[480..]) <= CEILING * sine_step * 1.0001);
        }
        // After the attack the sine sits just under the ceiling.
        let settled = Block::from_planes(vec![output.plane(0)[4800..].to_vec()]);
        assert!(peak(&settled) > CEILING * 0.999);
    }

    #[test]
    fn limiter_output_is_time_aligned() {
        let mut input = Block::silence(1, 1000);
        input.planes_mut()[0][100] = 0.25;
        let output = run(2.0, &input);
        assert_eq!(output.frames(), 1000);
        assert_eq!(output.plane(0)[100], 0.5);
    }

    #[test]
    fn limits_isolated_peaks() {
        let mut input = Block::silence(2, 4000);
        input.planes_mut()[0][2000] = 1.0;
        input.planes_mut()[1][1000] = -0.9;
        let output = run(2.0, &input);
        assert!(peak(&output) <= CEILING);
        assert!(output.plane(0)[2000] > CEILING * 0.999);
    }

    #[test]
    fn short_inputs_come_out_whole() {
        let output = run(1.5, &sine(0.5, 10));
        assert_eq!(output.frames(), 10);
    }

    #[test]
    fn rejects_bad_settings() {
        for volume in [-0.1, 2.01, f32::NAN] {
            assert!(matches!(
                Gain::try_new(volume, 2, RATE_HZ),
                Err(ConfigError::OutOfRange { name: "volume", .. })
            ));
        }
        assert!(Gain::try_new(1.0, 0, RATE_HZ).is_err());
        assert!(Gain::try_new(1.0, 2, 1000).is_err());
    }

    #[test]
    fn a_guard_limits_at_unity_and_drains_when_lifted() {
        let mut gain = Gain::try_new(1.0, 2, RATE_HZ).unwrap();
        gain.set_guard(true);
        assert!(!gain.is_unity() && gain.is_guarding());
        let input = sine(1.0, 4800);
        let (mut output, mut piece) = (Block::default(), Block::default());
        gain.process(&input, &mut output);
        gain.set_guard(false);
        gain.process(&sine(0.5, 4800), &mut piece);
        output.append(&piece);
        assert!(gain.is_unity(), "drained once lifted");
        assert_eq!(output.frames(), 9600, "no frame lost");
        assert!(peak(&output) <= CEILING);
    }
}
