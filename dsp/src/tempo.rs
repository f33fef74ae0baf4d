//! Tempo change that keeps pitch (ffmpeg `atempo` semantics): owns the `Tempo` processor,
//! its speed range and the output-length bookkeeping; the WSOLA engine and its
//! similarity search live in the submodules. Knows nothing of the rest of the chain.

mod fractional;
mod search;
mod wsola;

use wsola::Wsola;

use crate::{Block, ConfigError, Processor, check_channels, check_rate};

/// Lowest accepted speed (a quarter of the original tempo).
pub const MIN_SPEED: f64 = 0.25;

/// Highest accepted speed (four times the original tempo).
pub const MAX_SPEED: f64 = 4.0;

/// Time-stretch keeping pitch: the output lasts `input / speed`.
///
/// WSOLA (waveform-similarity overlap-add): the output is a sequence of 30 ms frames,
/// Hann-windowed and overlapping by half (15 ms output hop), each cut from the input
/// around its nominal place `output time × speed`, moved by up to ±12 ms to the position
/// whose waveform best continues the previous frame (normalised cross-correlation,
/// summed over channels: one decision for all channels, so the stereo image is kept; a
/// coarse search on a signal decimated to about 6 kHz, then a full-rate search around the
/// winner, refined between samples by a parabola through the peak). Frames are read at
/// that sub-sample position (32-tap windowed-sinc interpolation), so overlapping frames
/// add in phase: pitch is untouched and tones do not roughen at the splices.
///
/// Contract: the output depends only on the input, never on how it is split into blocks;
/// the first output frame is the first input frame (the engine's look-ahead of
/// 15 ms × (1 + speed) + 12 ms of input is held back, never output as silence), and a
/// frame's content sits within ±12 ms of its nominal input time. `flush` pads with
/// silence until the total output is `round(input_frames / speed)` frames (halves up).
/// Speed 1 from the start is a plain copy with no delay. Steady-state processing does not
/// allocate. Above speed 2 frames no longer cover all of the input: short sounds falling
/// between them (under about 15 ms × (speed - 2)) can be skipped, as in any WSOLA.
///
/// Live changes (`set_speed`) apply from the next input frame: the bookkeeping is
/// piecewise, so after any number of changes `flush` makes the total output
/// `round(Σ frames_fed_at_speed_s / s)` over the stretches of input fed at each speed.
/// The output stays continuous: frames keep overlapping and aligning across the change
/// (leaving speed 1 starts stretching from the history kept while copying; returning to
/// speed 1 keeps the engine running, a delayed copy, until the next `flush` or `reset`).
#[derive(Debug, Clone)]
pub struct Tempo {
    channels: usize,
    speed: f64,
    /// False while the processor copies (speed 1 since the fresh state).
    stretching: bool,
    engine: Wsola,
    frames_in: u64,
    frames_out: u64,
    /// Exact output owed for the input before `changed_at` (fed at earlier speeds).
    owed_before_change: f64,
    changed_at: u64,
}

impl Tempo {
    /// A time-stretch at `speed` (`MIN_SPEED..=MAX_SPEED`) for `channels` channels at
    /// `sample_rate_hz` (8 kHz to 384 kHz).
    pub fn try_new(speed: f64, channels: usize, sample_rate_hz: u32) -> Result<Self, ConfigError> {
        check_speed(speed)?;
        check_channels(channels)?;
        check_rate(sample_rate_hz)?;
        let mut tempo = Self {
            channels,
            speed,
            stretching: false,
            engine: Wsola::new(channels, sample_rate_hz, speed),
            frames_in: 0,
            frames_out: 0,
            owed_before_change: 0.0,
            changed_at: 0,
        };
        tempo.reset();
        Ok(tempo)
    }

    /// The current speed.
    pub fn speed(&self) -> f64 {
        self.speed
    }

    /// Changes the speed for the input fed from now on, without a click (see the type's
    /// documentation for what `flush` then guarantees). `reset` and `flush` keep it.
    pub fn set_speed(&mut self, speed: f64) -> Result<(), ConfigError> {
        check_speed(speed)?;
        if speed == self.speed {
            return Ok(());
        }
        self.owed_before_change = self.owed_exactly();
        self.changed_at = self.frames_in;
        if self.stretching {
            self.engine.change_speed(self.frames_in, speed);
        } else {
            self.engine.begin(self.frames_in, speed);
            self.stretching = true;
        }
        self.speed = speed;
        Ok(())
    }

    /// Output owed for all input so far, before rounding.
    fn owed_exactly(&self) -> f64 {
        self.owed_before_change + (self.frames_in - self.changed_at) as f64 / self.speed
    }

    /// Output owed for all input so far, rounded to the nearest frame (halves up; the
    /// tolerance absorbs the binary rounding of speeds such as 0.8).
    fn frames_owed(&self) -> u64 {
        (self.owed_exactly() + 0.5 + 1e-9).floor() as u64
    }
}

/// Checks that `speed` lies within `MIN_SPEED..=MAX_SPEED`.
pub(crate) fn check_speed(speed: f64) -> Result<(), ConfigError> {
    if (MIN_SPEED..=MAX_SPEED).contains(&speed) {
        Ok(())
    } else {
        Err(ConfigError::OutOfRange {
            name: "speed",
            value: speed,
            min: MIN_SPEED,
            max: MAX_SPEED,
        })
    }
}

impl Processor for Tempo {
    fn process(&mut self, input: &Block, output: &mut Block) {
        debug_assert_eq!(input.channels(), self.channels);
        output.reset_to(self.channels);
        if self.stretching {
            self.engine.process(input, output);
        } else {
            output.append(input);
            self.engine.remember(input);
        }
        self.frames_in += input.frames() as u64;
        self.frames_out += output.frames() as u64;
    }

    fn flush(&mut self, output: &mut Block) {
        output.reset_to(self.channels);
        if self.stretching {
            let owed = self.frames_owed().saturating_sub(self.frames_out);
            self.engine
                .flush(usize::try_from(owed).unwrap_or(usize::MAX), output);
        }
        self.reset();
    }

    fn reset(&mut self) {
        self.engine.reset(self.speed);
        self.stretching = self.speed != 1.0;
        self.frames_in = 0;
        self.frames_out = 0;
        self.owed_before_change = 0.0;
        self.changed_at = 0;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ramp(channels: usize, frames: usize) -> Block {
        Block::from_planes(
            (0..channels)
                .map(|c| {
                    (0..frames)
                        .map(|i| ((i * (c + 3)) % 97 + 1) as f32 / 98.0)
                        .collect()
                })
                .collect(),
        )
    }

    fn run(tempo: &mut Tempo, input: &Block) -> Block {
        let (mut output, mut tail) = (Block::default(), Block::default());
        tempo.process(input, &mut output);
        tempo.flush(&mut tail);
        output.append(&tail);
        output
    }

    #[test]
    fn rejects_bad_settings() {
        for speed in [0.24, 4.01, f64::NAN, 0.0, -1.0] {
            assert!(matches!(
                Tempo::try_new(speed, 2, 48_000),
                Err(ConfigError::OutOfRange { name: "speed", .. })
            ));
        }
        assert!(Tempo::try_new(1.5, 0, 48_000).is_err());
        assert!(Tempo::try_new(1.5, 2, 7_999).is_err());
        let mut tempo = Tempo::try_new(1.5, 2, 48_000).unwrap();
        assert!(tempo.set_speed(5.0).is_err());
        assert_eq!(tempo.speed(), 1.5);
    }

    #[test]
    fn speed_one_is_an_undelayed_copy() {
        let mut tempo = Tempo::try_new(1.0, 2, 44_100).unwrap();
        let input = ramp(2, 5000);
        let mut output = Block::default();
        tempo.process(&input, &mut output);
        assert_eq!(output, input);
        assert_eq!(run(&mut tempo, &input), input);
    }

    #[test]
    fn the_first_output_frame_is_the_first_input_frame() {
        for speed in [0.25, 0.8, 1.5, 4.0] {
            let mut tempo = Tempo::try_new(speed, 2, 48_000).unwrap();
            let input = ramp(2, 20_000);
            let output = run(&mut tempo, &input);
            for c in 0..2 {
                assert_eq!(output.plane(c)[0], input.plane(c)[0], "speed {speed}");
            }
        }
    }
}
