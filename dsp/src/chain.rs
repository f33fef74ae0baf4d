//! The ordered processing chain built from a `ChainSpec`; a bypass when nothing is set,
//! and live filter changes while running. Knows the order of the stages and how settings
//! map to them, not how any of them works.

use crate::eq::Equalizer;
use crate::normalize::Normalizer;
use crate::tempo::Tempo;
use crate::{
    Block, ChannelMapper, ConfigError, Filters, Gain, Processor, Resampler, Speaker, check_rate,
};

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
    /// The filters to apply.
    pub filters: Filters,
}

/// One stage; the variants are declared in processing order (SPEC section 3).
enum Stage {
    Mapper(ChannelMapper),
    Resampler(Resampler),
    Tempo(Tempo),
    Eq(Equalizer),
    Normalize(Normalizer),
    Gain(Gain),
}

impl Stage {
    fn processor(&mut self) -> &mut dyn Processor {
        match self {
            Self::Mapper(stage) => stage,
            Self::Resampler(stage) => stage,
            Self::Tempo(stage) => stage,
            Self::Eq(stage) => stage,
            Self::Normalize(stage) => stage,
            Self::Gain(stage) => stage,
        }
    }

    /// Position in the processing order.
    fn rank(&self) -> u8 {
        match self {
            Self::Mapper(_) => 0,
            Self::Resampler(_) => 1,
            Self::Tempo(_) => 2,
            Self::Eq(_) => 3,
            Self::Normalize(_) => 4,
            Self::Gain(_) => 5,
        }
    }
}

/// The DSP stages between decoder and encoder, in the order of SPEC §3:
/// channel map → resample (with varispeed) → tempo → EQ → normalise → volume and limiter.
///
/// Only stages that change something are built, so a spec that asks for nothing is a
/// bypass: `process` hands back its input without touching it. Between stages the audio
/// ping-pongs between two scratch blocks that keep their capacity, so a running chain
/// does not allocate. `update` changes filters while running: gain and EQ ramp, tempo
/// changes at the block boundary, and a stage that becomes needed is inserted in place;
/// none of these drops or repeats a frame.
pub struct Chain {
    stages: Vec<Stage>,
    filters: Filters,
    input_rate_hz: u32,
    output_rate_hz: u32,
    output_channels: usize,
    scratch: [Block; 2],
    drained: Block,
    tail: Block,
    /// Frames a replaced stage released, still to pass the stages after `index`.
    carry: Option<(usize, Block)>,
}

impl Chain {
    /// Validates `spec` and builds the stages it needs.
    pub fn try_new(spec: &ChainSpec) -> Result<Chain, ConfigError> {
        check_rate(spec.input_rate_hz)?;
        check_rate(spec.output_rate_hz)?;
        spec.filters.validate()?;
        let channels = spec.output_channels;
        let mapper = ChannelMapper::try_new(&spec.input_layout, channels)?;
        let mut chain = Chain {
            stages: Vec::new(),
            filters: Filters::default(),
            input_rate_hz: spec.input_rate_hz,
            output_rate_hz: spec.output_rate_hz,
            output_channels: channels,
            scratch: [Block::new(channels), Block::new(channels)],
            drained: Block::new(channels),
            tail: Block::new(channels),
            carry: None,
        };
        if !mapper.is_identity() {
            chain.stages.push(Stage::Mapper(mapper));
        }
        let resampler = chain.resampler_for(spec.filters.varispeed())?;
        if resampler.input_rate_hz() != resampler.output_rate_hz() {
            chain.stages.push(Stage::Resampler(resampler));
        }
        // The resampler above already carries the varispeed.
        (chain.filters.rate, chain.filters.pitch) = (spec.filters.rate, spec.filters.pitch);
        chain.apply(&spec.filters, true)?;
        Ok(chain)
    }

    /// True when the chain has nothing to do and `process` returns its input.
    pub fn is_bypass(&self) -> bool {
        self.stages.is_empty() && self.carry.is_none()
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

    /// The filters in force.
    pub fn filters(&self) -> &Filters {
        &self.filters
    }

    /// Changes the filters of a running chain; the change applies from the next block.
    pub fn update(&mut self, filters: &Filters) -> Result<(), ConfigError> {
        filters.validate()?;
        self.apply(filters, false)
    }

    /// Runs `input` through every stage and returns the frames that are ready, which may
    /// be fewer or more than went in. A bypass returns `input` itself.
    pub fn process<'a>(&'a mut self, input: &'a Block) -> &'a Block {
        let Some((index, carried)) = self.carry.take() else {
            return match run_stages(&mut self.stages, input, &mut self.scratch) {
                Some(index) => &self.scratch[index],
                None => input,
            };
        };
        self.tail.reset_to(self.output_channels);
        self.pass_later_stages(index, &carried);
        let result = match run_stages(&mut self.stages, input, &mut self.scratch) {
            Some(index) => &self.scratch[index],
            None => input,
        };
        self.tail.append(result);
        &self.tail
    }

    /// Ends the stream: flushes each stage in order, passing what it releases through the
    /// stages after it, and returns everything that was still held inside.
    pub fn flush(&mut self) -> &Block {
        self.tail.reset_to(self.output_channels);
        if let Some((index, carried)) = self.carry.take() {
            self.pass_later_stages(index, &carried);
        }
        for index in 0..self.stages.len() {
            let mut drained = std::mem::take(&mut self.drained);
            self.stages[index].processor().flush(&mut drained);
            self.pass_later_stages(index, &drained);
            self.drained = drained;
        }
        &self.tail
    }

    /// Forgets all history, as if the chain had just been built.
    pub fn reset(&mut self) {
        self.carry = None;
        self.stages
            .iter_mut()
            .for_each(|stage| stage.processor().reset());
    }

    /// Runs `block` through the stages after `index` and appends the result to `tail`.
    fn pass_later_stages(&mut self, index: usize, block: &Block) {
        let released = match run_stages(&mut self.stages[index + 1..], block, &mut self.scratch) {
            Some(result) => &self.scratch[result],
            None => block,
        };
        self.tail.append(released);
    }

    /// Brings every filter stage to `filters`: builds what is newly needed (at its place
    /// in the order) and retunes what exists. `fresh` builds at the target directly; a
    /// live change starts new stages at their neutral setting and ramps from there.
    fn apply(&mut self, filters: &Filters, fresh: bool) -> Result<(), ConfigError> {
        if filters.varispeed() != self.filters.varispeed() {
            self.replace_resampler(filters.varispeed())?;
        }
        self.apply_tempo(filters.stretch())?;
        self.apply_eq(filters, fresh)?;
        self.apply_normalize(filters.normalize_lufs)?;
        self.apply_volume(filters.volume, fresh)?;
        self.filters = filters.clone();
        Ok(())
    }

    fn apply_tempo(&mut self, stretch: f64) -> Result<(), ConfigError> {
        match self.find(2) {
            Some(Stage::Tempo(tempo)) => tempo.set_speed(stretch),
            _ if stretch == 1.0 => Ok(()),
            _ => {
                let tempo = Tempo::try_new(stretch, self.output_channels, self.output_rate_hz)?;
                self.insert(Stage::Tempo(tempo));
                Ok(())
            }
        }
    }

    fn apply_eq(&mut self, filters: &Filters, fresh: bool) -> Result<(), ConfigError> {
        let (preset, bands) = (filters.eq_preset, filters.eq_bands.as_slice());
        match self.find(3) {
            Some(Stage::Eq(eq)) => eq.set(preset, bands),
            _ => {
                let (channels, rate) = (self.output_channels, self.output_rate_hz);
                let mut eq = Equalizer::try_new(preset, bands, channels, rate)?;
                if eq.is_bypass() {
                    return Ok(());
                }
                if !fresh {
                    eq = Equalizer::try_new(crate::eq::EqPreset::Flat, &[], channels, rate)?;
                    eq.set(preset, bands)?;
                }
                self.insert(Stage::Eq(eq));
                Ok(())
            }
        }
    }

    fn apply_normalize(&mut self, target: Option<f64>) -> Result<(), ConfigError> {
        match (self.find(4), target) {
            (Some(Stage::Normalize(normalizer)), Some(target)) => normalizer.set_target(target),
            (_, None) => Ok(()),
            (_, Some(target)) => {
                let normalizer =
                    Normalizer::try_new(target, self.output_channels, self.output_rate_hz)?;
                self.insert(Stage::Normalize(normalizer));
                Ok(())
            }
        }
    }

    fn apply_volume(&mut self, volume: f32, fresh: bool) -> Result<(), ConfigError> {
        match self.find(5) {
            Some(Stage::Gain(gain)) => gain.set_volume(volume),
            _ if volume == 1.0 => Ok(()),
            _ => {
                let start = if fresh { volume } else { 1.0 };
                let mut gain = Gain::try_new(start, self.output_channels, self.output_rate_hz)?;
                gain.set_volume(volume)?;
                self.insert(Stage::Gain(gain));
                Ok(())
            }
        }
    }

    /// Swaps in a resampler for a new varispeed factor; the old one's buffered frames are
    /// flushed and carried through the later stages so that none is lost.
    fn replace_resampler(&mut self, varispeed: f64) -> Result<(), ConfigError> {
        let resampler = self.resampler_for(varispeed)?;
        let position = self
            .stages
            .iter()
            .position(|s| matches!(s, Stage::Resampler(_)));
        match position {
            Some(index) => {
                let mut released = Block::new(self.output_channels);
                self.stages[index].processor().flush(&mut released);
                self.stages[index] = Stage::Resampler(resampler);
                self.carry = Some((index, released));
            }
            None => self.insert(Stage::Resampler(resampler)),
        }
        Ok(())
    }

    /// A resampler from the input rate, sped up by `varispeed`, to the output rate.
    fn resampler_for(&self, varispeed: f64) -> Result<Resampler, ConfigError> {
        let effective_rate_hz = (f64::from(self.input_rate_hz) * varispeed).round() as u32;
        Resampler::try_new(effective_rate_hz, self.output_rate_hz, self.output_channels)
    }

    fn find(&mut self, rank: u8) -> Option<&mut Stage> {
        self.stages.iter_mut().find(|stage| stage.rank() == rank)
    }

    fn insert(&mut self, stage: Stage) {
        let at = self.stages.iter().position(|s| s.rank() > stage.rank());
        self.stages.insert(at.unwrap_or(self.stages.len()), stage);
    }
}

/// Runs `input` through `stages`, alternating between the two scratch blocks. Returns the
/// index of the block holding the result, or `None` when there are no stages.
fn run_stages(stages: &mut [Stage], input: &Block, scratch: &mut [Block; 2]) -> Option<usize> {
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
