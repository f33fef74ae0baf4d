//! Volume: a linear gain, followed by a look-ahead limiter when the gain can push
//! samples past full scale. Knows nothing of the rest of the chain.

use crate::limiter::Limiter;
use crate::{Block, ConfigError, Processor, check_channels, check_rate};

pub use crate::limiter::CEILING;

/// Lowest accepted volume.
pub const MIN_VOLUME: f32 = 0.0;

/// Highest accepted volume.
pub const MAX_VOLUME: f32 = 2.0;

/// What a `Gain` does to each block.
#[derive(Debug, Clone)]
enum Mode {
    /// Volume 1: a copy.
    Unity,
    /// Volume below 1: a multiplication, no delay.
    Linear(f32),
    /// Volume above 1: gain then a limiter with a ceiling of −1 dBFS.
    Limited(Box<Limiter>),
}

/// Linear volume with a limiter for boosts.
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
#[derive(Debug, Clone)]
pub struct Gain {
    channels: usize,
    mode: Mode,
}

impl Gain {
    /// A gain of `volume` (0 to 2) on `channels` channels at `sample_rate_hz`
    /// (the rate sets the limiter's time constants).
    pub fn try_new(volume: f32, channels: usize, sample_rate_hz: u32) -> Result<Self, ConfigError> {
        if !(MIN_VOLUME..=MAX_VOLUME).contains(&volume) {
            return Err(ConfigError::OutOfRange {
                name: "volume",
                value: f64::from(volume),
                min: f64::from(MIN_VOLUME),
                max: f64::from(MAX_VOLUME),
            });
        }
        check_channels(channels)?;
        check_rate(sample_rate_hz)?;
        let mode = if volume == 1.0 {
            Mode::Unity
        } else if volume < 1.0 {
            Mode::Linear(volume)
        } else {
            Mode::Limited(Box::new(Limiter::new(volume, channels, sample_rate_hz)))
        };
        Ok(Self { channels, mode })
    }

    /// True when this gain leaves the signal untouched (volume 1).
    pub fn is_unity(&self) -> bool {
        matches!(self.mode, Mode::Unity)
    }
}

impl Processor for Gain {
    fn process(&mut self, input: &Block, output: &mut Block) {
        debug_assert_eq!(input.channels(), self.channels);
        match &mut self.mode {
            Mode::Unity => output.copy_from(input),
            Mode::Linear(gain) => {
                output.reset_to(self.channels);
                for (out, src) in output.planes_mut().iter_mut().zip(input.planes()) {
                    out.extend(src.iter().map(|s| s * *gain));
                }
            }
            Mode::Limited(limiter) => limiter.process(input, output),
        }
    }

    fn flush(&mut self, output: &mut Block) {
        match &mut self.mode {
            Mode::Limited(limiter) => limiter.flush(output),
            Mode::Unity | Mode::Linear(_) => output.reset_to(self.channels),
        }
    }

    fn reset(&mut self) {
        if let Mode::Limited(limiter) = &mut self.mode {
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
}
