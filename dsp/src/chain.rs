//! The ordered processing chain built from a `ChainSpec`; a bypass when nothing is set,
//! and live filter changes while running. Knows the order of the stages and how settings
//! map to them, not how any of them works.

use crate::eq::{EqPreset, Equalizer};
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

    fn as_tempo(&mut self) -> Option<&mut Tempo> {
        if let Self::Tempo(stage) = self {
            Some(stage)
        } else {
            None
        }
    }

    fn as_eq(&mut self) -> Option<&mut Equalizer> {
        if let Self::Eq(stage) = self {
            Some(stage)
        } else {
            None
        }
    }

    fn as_normalizer(&mut self) -> Option<&mut Normalizer> {
        if let Self::Normalize(stage) = self {
            Some(stage)
        } else {
            None
        }
    }

    fn as_gain(&mut self) -> Option<&mut Gain> {
        if let Self::Gain(stage) = self {
            Some(stage)
        } else {
            None
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
/// changes at the block boundary, a stage that becomes needed is inserted in place, and
/// a new varispeed swaps the resampler after flushing the old one; none of these drops
/// or repeats a frame.
pub struct Chain {
    stages: Vec<Stage>,
    filters: Filters,
    input_rate_hz: u32,
    output_rate_hz: u32,
    output_channels: usize,
    scratch: [Block; 2],
    drained: Block,
    tail: Block,
    /// Finished output frames released by a live change, emitted before the next block.
    pending: Block,
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
            pending: Block::new(channels),
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
        chain.check(&spec.filters)?;
        chain.apply(&spec.filters, true)?;
        Ok(chain)
    }

    /// True when the chain has nothing to do and `process` returns its input.
    pub fn is_bypass(&self) -> bool {
        self.stages.is_empty() && self.pending.is_empty()
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

    /// Checks that this chain can take `filters`: every range, the EQ bands against the
    /// processing rate, the resampling the varispeed needs, and no switching
    /// normalisation off while running (its look-ahead holds audio at the old gain).
    pub fn check(&self, filters: &Filters) -> Result<(), ConfigError> {
        filters.validate()?;
        crate::eq::validate_bands_at(&filters.eq_bands, self.output_rate_hz)?;
        self.resampler_for(filters.varispeed())?;
        if self.filters.normalize_lufs.is_some() && filters.normalize_lufs.is_none() {
            return Err(ConfigError::NotLive("normalize (switching it off)"));
        }
        Ok(())
    }

    /// Changes the filters of a running chain from the next block on. Nothing changes
    /// unless the whole set is accepted (see `check`).
    pub fn update(&mut self, filters: &Filters) -> Result<(), ConfigError> {
        self.check(filters)?;
        self.apply(filters, false)
    }

    /// Runs `input` through every stage and returns the frames that are ready, which may
    /// be fewer or more than went in. A bypass returns `input` itself.
    pub fn process<'a>(&'a mut self, input: &'a Block) -> &'a Block {
        let result = run_stages(&mut self.stages, input, &mut self.scratch);
        if self.pending.is_empty() {
            return output_of(result, &self.scratch, input);
        }
        std::mem::swap(&mut self.tail, &mut self.pending);
        self.pending.reset_to(self.output_channels);
        self.tail.append(output_of(result, &self.scratch, input));
        &self.tail
    }

    /// Ends the stream: flushes each stage in order, passing what it releases through the
    /// stages after it, and returns everything that was still held inside.
    pub fn flush(&mut self) -> &Block {
        std::mem::swap(&mut self.tail, &mut self.pending);
        self.pending.reset_to(self.output_channels);
        for index in 0..self.stages.len() {
            let mut drained = std::mem::take(&mut self.drained);
            self.stages[index].processor().flush(&mut drained);
            let result = run_stages(&mut self.stages[index + 1..], &drained, &mut self.scratch);
            self.tail.append(output_of(result, &self.scratch, &drained));
            self.drained = drained;
        }
        &self.tail
    }

    /// Forgets all history, as if the chain had just been built.
    pub fn reset(&mut self) {
        self.pending.clear();
        self.stages
            .iter_mut()
            .for_each(|stage| stage.processor().reset());
    }

    /// Brings every filter stage to `filters` (already checked): builds what is newly
    /// needed at its place in the order and retunes what exists. `fresh` builds at the
    /// target directly; a live change starts new stages neutral and ramps from there.
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

    /// Retunes the time-stretch, inserting it when it becomes needed.
    fn apply_tempo(&mut self, stretch: f64) -> Result<(), ConfigError> {
        if let Some(tempo) = self.stages.iter_mut().find_map(Stage::as_tempo) {
            return tempo.set_speed(stretch);
        }
        if stretch != 1.0 {
            let tempo = Tempo::try_new(stretch, self.output_channels, self.output_rate_hz)?;
            self.insert(Stage::Tempo(tempo));
        }
        Ok(())
    }

    /// Retunes the equaliser (it crossfades), inserting it when it becomes needed; a live
    /// insertion starts flat and crossfades in.
    fn apply_eq(&mut self, filters: &Filters, fresh: bool) -> Result<(), ConfigError> {
        let (preset, bands) = (filters.eq_preset, filters.eq_bands.as_slice());
        if let Some(eq) = self.stages.iter_mut().find_map(Stage::as_eq) {
            return eq.set(preset, bands);
        }
        if preset == EqPreset::Flat && bands.is_empty() {
            return Ok(());
        }
        let (channels, rate) = (self.output_channels, self.output_rate_hz);
        let eq = if fresh {
            Equalizer::try_new(preset, bands, channels, rate)?
        } else {
            let mut eq = Equalizer::try_new(EqPreset::Flat, &[], channels, rate)?;
            eq.set(preset, bands)?;
            eq
        };
        self.insert(Stage::Eq(eq));
        Ok(())
    }

    /// Retargets the normaliser, inserting it when it becomes needed (`check` refuses
    /// switching it off).
    fn apply_normalize(&mut self, target: Option<f64>) -> Result<(), ConfigError> {
        let Some(target) = target else {
            return Ok(());
        };
        if let Some(normalizer) = self.stages.iter_mut().find_map(Stage::as_normalizer) {
            return normalizer.set_target(target);
        }
        let normalizer = Normalizer::try_new(target, self.output_channels, self.output_rate_hz)?;
        self.insert(Stage::Normalize(normalizer));
        Ok(())
    }

    /// Ramps the volume, inserting the gain stage when it becomes needed (a live insertion
    /// starts at unity and ramps).
    fn apply_volume(&mut self, volume: f32, fresh: bool) -> Result<(), ConfigError> {
        if let Some(gain) = self.stages.iter_mut().find_map(Stage::as_gain) {
            return gain.set_volume(volume);
        }
        if volume != 1.0 {
            let start = if fresh { volume } else { 1.0 };
            let mut gain = Gain::try_new(start, self.output_channels, self.output_rate_hz)?;
            gain.set_volume(volume)?;
            self.insert(Stage::Gain(gain));
        }
        Ok(())
    }

    /// Swaps in a resampler for a new varispeed factor. The old one's buffered frames are
    /// flushed through the later stages, still at their old settings, into `pending`, so
    /// none is lost and none is processed twice.
    fn replace_resampler(&mut self, varispeed: f64) -> Result<(), ConfigError> {
        let resampler = self.resampler_for(varispeed)?;
        let position = self
            .stages
            .iter()
            .position(|s| matches!(s, Stage::Resampler(_)));
        let Some(index) = position else {
            self.insert(Stage::Resampler(resampler));
            return Ok(());
        };
        let mut released = std::mem::take(&mut self.drained);
        self.stages[index].processor().flush(&mut released);
        self.stages[index] = Stage::Resampler(resampler);
        let result = run_stages(&mut self.stages[index + 1..], &released, &mut self.scratch);
        self.pending
            .append(output_of(result, &self.scratch, &released));
        self.drained = released;
        Ok(())
    }

    /// A resampler from the input rate, sped up by `varispeed`, to the output rate.
    fn resampler_for(&self, varispeed: f64) -> Result<Resampler, ConfigError> {
        let effective_rate_hz = (f64::from(self.input_rate_hz) * varispeed).round() as u32;
        Resampler::try_new(effective_rate_hz, self.output_rate_hz, self.output_channels)
    }

    /// Inserts `stage` at its place in the processing order.
    fn insert(&mut self, stage: Stage) {
        let at = self.stages.iter().position(|s| s.rank() > stage.rank());
        self.stages.insert(at.unwrap_or(self.stages.len()), stage);
    }
}

/// The block holding a `run_stages` result: a scratch block, or the input itself when
/// there were no stages.
fn output_of<'a>(result: Option<usize>, scratch: &'a [Block; 2], input: &'a Block) -> &'a Block {
    result.map_or(input, |index| &scratch[index])
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
