//! The time-stretch stage of a chain, able to change speed at exact frames of its input.
//! Knows the `Tempo` verbs it needs, nothing of the chain around it.

use std::collections::VecDeque;

use crate::tempo::Tempo;
use crate::{Block, ConfigError, Processor};

/// A `Tempo` whose speed changes may wait for given frames of its input.
///
/// The resampler before it holds back output for input it has already read (and during a
/// varispeed splice still emits frames of the old rate). Those frames stem from input fed
/// before a change, so they keep the old stretch and the new one starts right after them;
/// otherwise the output length drifts from `input / (speed × rate)`.
pub(crate) struct Retimed {
    pub(crate) tempo: Tempo,
    /// Input frames read so far in this stream.
    fed: u64,
    /// Speeds to take, each from an input frame on (ascending).
    scheduled: VecDeque<(u64, f64)>,
    part: Block,
    stretched: Block,
}

impl Retimed {
    /// Wraps `tempo` with nothing scheduled.
    pub(crate) fn new(tempo: Tempo, channels: usize) -> Self {
        Self {
            tempo,
            fed: 0,
            scheduled: VecDeque::new(),
            part: Block::new(channels),
            stretched: Block::new(channels),
        }
    }

    /// Takes `speed` after `frames` more input frames (at once when `frames` is 0),
    /// replacing what was scheduled from that frame on.
    pub(crate) fn set_speed_after(&mut self, frames: usize, speed: f64) -> Result<(), ConfigError> {
        crate::tempo::check_speed(speed)?;
        let at = self.fed + frames as u64;
        while self.scheduled.back().is_some_and(|&(later, _)| later >= at) {
            self.scheduled.pop_back();
        }
        if self.scheduled.is_empty() && frames == 0 {
            return self.tempo.set_speed(speed);
        }
        self.scheduled.push_back((at, speed));
        Ok(())
    }

    /// Takes every scheduled speed now (at a stream's end).
    fn take_scheduled(&mut self) {
        if let Some((_, speed)) = self.scheduled.drain(..).next_back() {
            // Checked when it was scheduled.
            let _ = self.tempo.set_speed(speed);
        }
    }

    /// Stretches `input[start..end]` and appends the result to `output`.
    fn stretch_part(&mut self, input: &Block, start: usize, end: usize, output: &mut Block) {
        self.part.copy_from(input);
        self.part.truncate(end);
        self.part.drop_front(start);
        self.tempo.process(&self.part, &mut self.stretched);
        output.append(&self.stretched);
        self.fed += (end - start) as u64;
    }
}

impl Processor for Retimed {
    fn process(&mut self, input: &Block, output: &mut Block) {
        if self.scheduled.is_empty() {
            self.fed += input.frames() as u64;
            return self.tempo.process(input, output);
        }
        output.reset_to(input.channels());
        let mut done = 0;
        while let Some(&(at, speed)) = self.scheduled.front() {
            let left = usize::try_from(at - self.fed).unwrap_or(usize::MAX);
            if left > input.frames() - done {
                break;
            }
            self.stretch_part(input, done, done + left, output);
            done += left;
            self.scheduled.pop_front();
            // Checked when it was scheduled.
            let _ = self.tempo.set_speed(speed);
        }
        self.stretch_part(input, done, input.frames(), output);
    }

    fn flush(&mut self, output: &mut Block) {
        self.take_scheduled();
        self.tempo.flush(output);
        self.fed = 0;
    }

    fn reset(&mut self) {
        self.take_scheduled();
        self.tempo.reset();
        self.fed = 0;
    }
}
