//! The ordered processing chain built from a `ChainSpec`; a bypass when nothing is set.
//! Knows the order of the stages, not how any of them works.

use crate::{Block, ChannelMapper, ConfigError, Gain, Processor, Resampler, Speaker, check_rate};

/// What the chain must turn its input into.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainSpec {
    /// Sample rate of the decoded input.
    pub input_rate_hz: u32,
    /// The speaker of each input channel, in plane order.
    pub input_layout: Vec<Speaker>,
    /// Sample rate the encoder wants.
    pub output_rate_hz: u32,
    /// Channel count the encoder wants (1 or 2).
    pub output_channels: usize,
    /// Linear volume, 0 to 2; above 1 a limiter keeps peaks under −1 dBFS.
    pub volume: f32,
}

/// The DSP stages between decoder and encoder, in the order of SPEC §3:
/// channel map → resample → volume and limiter.
///
/// Only stages that change something are built, so a spec that asks for nothing is a
/// bypass: `process` hands back its input without touching it. Between stages the audio
/// ping-pongs between two scratch blocks that keep their capacity, so a running chain
/// does not allocate.
pub struct Chain {
    stages: Vec<Box<dyn Processor>>,
    scratch: [Block; 2],
    drained: Block,
    tail: Block,
    output_channels: usize,
    output_rate_hz: u32,
}

impl Chain {
    /// Validates `spec` and builds the stages it needs.
    pub fn try_new(spec: &ChainSpec) -> Result<Chain, ConfigError> {
        check_rate(spec.input_rate_hz)?;
        check_rate(spec.output_rate_hz)?;
        let channels = spec.output_channels;
        let mut stages: Vec<Box<dyn Processor>> = Vec::new();
        let mapper = ChannelMapper::try_new(&spec.input_layout, channels)?;
        if !mapper.is_identity() {
            stages.push(Box::new(mapper));
        }
        if spec.input_rate_hz != spec.output_rate_hz {
            let resampler = Resampler::try_new(spec.input_rate_hz, spec.output_rate_hz, channels)?;
            stages.push(Box::new(resampler));
        }
        let gain = Gain::try_new(spec.volume, channels, spec.output_rate_hz)?;
        if !gain.is_unity() {
            stages.push(Box::new(gain));
        }
        Ok(Chain {
            stages,
            scratch: [Block::new(channels), Block::new(channels)],
            drained: Block::new(channels),
            tail: Block::new(channels),
            output_channels: channels,
            output_rate_hz: spec.output_rate_hz,
        })
    }

    /// True when the chain has nothing to do and `process` returns its input.
    pub fn is_bypass(&self) -> bool {
        self.stages.is_empty()
    }

    /// Number of stages built (0 for a bypass).
    pub fn stage_count(&self) -> usize {
        self.stages.len()
    }

    /// Channel count of the output.
    pub fn output_channels(&self) -> usize {
        self.output_channels
    }

    /// Sample rate of the output.
    pub fn output_rate_hz(&self) -> u32 {
        self.output_rate_hz
    }

    /// Runs `input` through every stage and returns the frames that are ready, which may
    /// be fewer or more than went in. A bypass returns `input` itself.
    pub fn process<'a>(&'a mut self, input: &'a Block) -> &'a Block {
        match run_stages(&mut self.stages, input, &mut self.scratch) {
            Some(index) => &self.scratch[index],
            None => input,
        }
    }

    /// Ends the stream: flushes each stage in order, passing what it releases through the
    /// stages after it, and returns everything that was still held inside.
    pub fn flush(&mut self) -> &Block {
        self.tail.reset_to(self.output_channels);
        for index in 0..self.stages.len() {
            let (done, later) = self.stages.split_at_mut(index + 1);
            done[index].flush(&mut self.drained);
            let released = match run_stages(later, &self.drained, &mut self.scratch) {
                Some(index) => &self.scratch[index],
                None => &self.drained,
            };
            self.tail.append(released);
        }
        &self.tail
    }

    /// Forgets all history, as if the chain had just been built.
    pub fn reset(&mut self) {
        self.stages.iter_mut().for_each(|stage| stage.reset());
    }
}

/// Runs `input` through `stages`, alternating between the two scratch blocks. Returns the
/// index of the block holding the result, or `None` when there are no stages.
fn run_stages(
    stages: &mut [Box<dyn Processor>],
    input: &Block,
    scratch: &mut [Block; 2],
) -> Option<usize> {
    let (first, rest) = stages.split_first_mut()?;
    let [front, back] = scratch;
    first.process(input, front);
    let (mut source, mut target) = (front, back);
    let mut result = 0;
    for stage in rest {
        stage.process(source, target);
        std::mem::swap(&mut source, &mut target);
        result ^= 1;
    }
    Some(result)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn spec(layout: Vec<Speaker>, input_rate_hz: u32, volume: f32) -> ChainSpec {
        ChainSpec {
            input_rate_hz,
            input_layout: layout,
            output_rate_hz: 48_000,
            output_channels: 2,
            volume,
        }
    }

    #[test]
    fn builds_only_the_stages_that_change_something() {
        let stereo = Speaker::default_layout(2);
        let count = |s: ChainSpec| Chain::try_new(&s).unwrap().stage_count();
        assert_eq!(count(spec(stereo.clone(), 48_000, 1.0)), 0);
        assert_eq!(count(spec(Speaker::default_layout(6), 48_000, 1.0)), 1);
        assert_eq!(count(spec(stereo.clone(), 44_100, 1.0)), 1);
        assert_eq!(count(spec(stereo, 48_000, 0.5)), 1);
        assert_eq!(count(spec(Speaker::default_layout(1), 22_050, 1.5)), 3);
    }

    #[test]
    fn rejects_invalid_specs() {
        let stereo = Speaker::default_layout(2);
        assert!(Chain::try_new(&spec(stereo.clone(), 4_000, 1.0)).is_err());
        assert!(Chain::try_new(&spec(stereo.clone(), 48_000, 2.5)).is_err());
        assert!(Chain::try_new(&spec(Vec::new(), 48_000, 1.0)).is_err());
        let mut bad_output = spec(stereo, 48_000, 1.0);
        bad_output.output_rate_hz = 500_000;
        assert!(Chain::try_new(&bad_output).is_err());
    }

    #[test]
    fn flush_passes_each_tail_through_the_later_stages() {
        let mut chain = Chain::try_new(&spec(Speaker::default_layout(1), 44_100, 2.0)).unwrap();
        let input = Block::from_planes(vec![vec![0.25; 44_100]]);
        let mut output = chain.process(&input).clone();
        output.append(chain.flush());
        assert_eq!((output.channels(), output.frames()), (2, 48_000));
        // Mono duplicated at full level, then doubled: 0.5 away from the edges.
        let middle = output.plane(1)[24_000];
        assert!((middle - 0.5).abs() < 1e-4, "{middle}");
    }
}
