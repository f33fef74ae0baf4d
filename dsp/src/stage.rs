//! One stage of a `Chain` and the ping-pong run through a row of them. Knows which
//! processors a chain holds and their order, not when the chain builds or drops them.

use crate::eq::{EqPreset, Equalizer};
use crate::normalize::Normalizer;
use crate::retime::Retimed;
use crate::splice::Splice;
use crate::{Block, ChannelMapper, ConfigError, Gain, Processor, Resampler};

/// One stage; the variants are declared in processing order (SPEC section 3).
pub(crate) enum Stage {
    Mapper(ChannelMapper),
    Resampler(Resampler),
    /// The resampling stage while a live varispeed change takes over.
    Splice(Splice),
    Tempo(Box<Retimed>),
    Eq(GuardedEq),
    Normalize(Box<Normalizer>),
    Gain(Gain),
}

impl Stage {
    pub(crate) fn processor(&mut self) -> &mut dyn Processor {
        match self {
            Self::Mapper(stage) => stage,
            Self::Resampler(stage) => stage,
            Self::Splice(stage) => stage,
            Self::Tempo(stage) => stage.as_mut(),
            Self::Eq(stage) => stage,
            Self::Normalize(stage) => stage.as_mut(),
            Self::Gain(stage) => stage,
        }
    }

    pub(crate) fn as_tempo(&mut self) -> Option<&mut Retimed> {
        if let Self::Tempo(stage) = self {
            Some(stage)
        } else {
            None
        }
    }

    pub(crate) fn as_eq(&mut self) -> Option<&mut GuardedEq> {
        if let Self::Eq(stage) = self {
            Some(stage)
        } else {
            None
        }
    }

    pub(crate) fn as_normalizer(&mut self) -> Option<&mut Normalizer> {
        if let Self::Normalize(stage) = self {
            Some(stage)
        } else {
            None
        }
    }

    pub(crate) fn as_gain(&mut self) -> Option<&mut Gain> {
        if let Self::Gain(stage) = self {
            Some(stage)
        } else {
            None
        }
    }

    /// Output frames the stage owes for the input it has read but not yet written (only
    /// the resampling stage holds any back).
    pub(crate) fn frames_pending(&self) -> usize {
        match self {
            Self::Resampler(resampler) => resampler.frames_pending(),
            Self::Splice(splice) => splice.frames_pending(),
            _ => 0,
        }
    }

    /// True for the stage that resamples (plain or splicing).
    pub(crate) fn is_resampling(&self) -> bool {
        matches!(self, Self::Resampler(_) | Self::Splice(_))
    }

    /// True when the stage would pass every later frame through unchanged and holds
    /// nothing still to come out, so the chain may drop it at a block boundary. Only EQ
    /// and gain qualify: a tempo back at speed 1 stays a delayed copy holding frames
    /// (see `Tempo`), and a settled splice is put back by the chain itself.
    pub(crate) fn is_neutral(&self) -> bool {
        match self {
            Self::Eq(eq) => eq.equalizer.is_bypass() && eq.guard.is_none(),
            Self::Gain(gain) => gain.is_unity(),
            _ => false,
        }
    }

    /// True for a splice that is over (see `Splice::is_settled`).
    pub(crate) fn is_settled_splice(&self) -> bool {
        matches!(self, Self::Splice(splice) if splice.is_settled())
    }

    /// True while a live change may still make this stage settle or turn neutral: a
    /// splice, an EQ crossfading (its guard may go), fading to flat or with its guard
    /// draining, a gain heading for unity.
    pub(crate) fn may_settle(&self) -> bool {
        match self {
            Self::Splice(_) => true,
            Self::Eq(eq) => {
                let flat = eq.equalizer.preset() == EqPreset::Flat;
                let draining = eq.guard.as_ref().is_some_and(|gain| !gain.is_guarding());
                flat && eq.equalizer.bands().is_empty() || eq.equalizer.is_crossfading() || draining
            }
            Self::Gain(gain) => gain.volume() == 1.0 && !gain.is_guarding(),
            _ => false,
        }
    }

    /// Position in the processing order.
    pub(crate) fn rank(&self) -> u8 {
        match self {
            Self::Mapper(_) => 0,
            Self::Resampler(_) | Self::Splice(_) => 1,
            Self::Tempo(_) => 2,
            Self::Eq(_) => 3,
            Self::Normalize(_) => 4,
            Self::Gain(_) => 5,
        }
    }
}

/// The equaliser, followed by a −1 dBFS limiter (a unity `Gain` with its guard set)
/// while its boost could clip and no gain stage comes after it to limit.
pub(crate) struct GuardedEq {
    pub(crate) equalizer: Equalizer,
    guard: Option<Box<Gain>>,
    between: Block,
}

impl GuardedEq {
    pub(crate) fn new(equalizer: Equalizer, channels: usize) -> Self {
        Self {
            equalizer,
            guard: None,
            between: Block::new(channels),
        }
    }

    /// Engages the limiter, or lets it drain and leave (from the next block on).
    pub(crate) fn set_guard(&mut self, on: bool, rate_hz: u32) -> Result<(), ConfigError> {
        match &mut self.guard {
            Some(gain) => gain.set_guard(on),
            None if on => {
                let mut gain = Gain::try_new(1.0, self.between.channels(), rate_hz)?;
                gain.set_guard(true);
                self.guard = Some(Box::new(gain));
            }
            None => {}
        }
        Ok(())
    }
}

impl Processor for GuardedEq {
    fn process(&mut self, input: &Block, output: &mut Block) {
        let Some(gain) = &mut self.guard else {
            return self.equalizer.process(input, output);
        };
        self.equalizer.process(input, &mut self.between);
        gain.process(&self.between, output);
        if gain.is_unity() {
            self.guard = None;
        }
    }

    fn flush(&mut self, output: &mut Block) {
        let Some(gain) = &mut self.guard else {
            return self.equalizer.flush(output);
        };
        self.equalizer.flush(&mut self.between);
        gain.process(&self.between, output);
        gain.flush(&mut self.between);
        output.append(&self.between);
    }

    fn reset(&mut self) {
        self.equalizer.reset();
        if let Some(gain) = &mut self.guard {
            gain.reset();
        }
    }
}

/// The block holding a `run_stages` result: a scratch block, or the input itself when
/// there were no stages.
pub(crate) fn output_of<'a>(
    result: Option<usize>,
    scratch: &'a [Block; 2],
    input: &'a Block,
) -> &'a Block {
    result.map_or(input, |index| &scratch[index])
}

/// Runs `input` through `stages`, alternating between the two scratch blocks. Returns the
/// index of the block holding the result, or `None` when there are no stages.
pub(crate) fn run_stages(
    stages: &mut [Stage],
    input: &Block,
    scratch: &mut [Block; 2],
) -> Option<usize> {
    let (first, rest) = stages.split_first_mut()?;
    let [front, back] = scratch;
    first.processor().process(input, front);
    let (mut source, mut target) = (front, back);
    let mut result = 0;
    for stage in rest {
        stage.processor().process(source, target);
        std::mem::swap(&mut source, &mut target);
        result ^= 1;
    }
    Some(result)
}
