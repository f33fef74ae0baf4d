//! The ordered processing chain built from a `ChainSpec`; a bypass when nothing is set,
//! and live filter changes while running. Knows the order of the stages and how settings
//! map to them, not how any of them works.

mod resampling;

use crate::eq::{EqPreset, Equalizer};
use crate::normalize::Normalizer;
use crate::stage::{GuardedEq, Stage, output_of, run_stages};
use crate::{Block, ChannelMapper, ConfigError, Filters, Gain, Resampler, Speaker, check_rate};

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

/// The DSP stages between decoder and encoder, in the order of SPEC §3:
/// channel map → resample (with varispeed) → tempo → EQ → normalise → volume and limiter.
///
/// Only stages that change something are built, so a spec that asks for nothing is a
/// bypass: `process` hands back its input without touching it. Between stages the audio
/// ping-pongs between two scratch blocks that keep their capacity, so a running chain
/// does not allocate. `update` changes filters while running: gain and EQ ramp, a stage
/// that becomes needed is inserted in place, and a new varispeed is spliced in (see
/// `Splice`: the old resampler finishes on real look-ahead, the new one starts primed, no
/// click); none of these drops or repeats a frame. A rate change made while the previous
/// one is still being spliced (its first 20 to 40 ms) waits for it and applies from the
/// block after it settles. A new tempo stretch applies from the first frame the
/// resampling stage writes for input read after the change, and always matches the
/// varispeed of the frames it receives, so the output length stays
/// `input / (speed × rate)` through any changes. `flush` and `reset` leave the chain as a
/// freshly built one for the filters in force. Whenever the chain can raise the level
/// (volume above 1, or an EQ with a boost and no normaliser, whose own limiter already
/// covers it) the gain stage's −1 dBFS limiter is engaged; it is released once an EQ
/// crossfade to a curve without a boost is over.
/// Once a live change has made an EQ flat or a volume unity with its limiter drained,
/// that stage holds no state and is dropped at the next block boundary, as is the
/// resampler once a splice to no resampling has settled. A tempo back at speed 1 is kept:
/// it is then a delayed copy still holding frames, which only `flush` can release
/// (padding the rest of its frame with silence), so dropping it mid-stream would cut.
pub struct Chain {
    stages: Vec<Stage>,
    filters: Filters,
    input_rate_hz: u32,
    output_rate_hz: u32,
    output_channels: usize,
    scratch: [Block; 2],
    drained: Block,
    tail: Block,
    /// A varispeed waiting for the running splice to settle.
    queued_varispeed: Option<f64>,
    /// The varispeed of the resampling in force (a running splice's incoming side).
    varispeed_in_force: f64,
    /// True while a live change may still leave a stage to settle or drop.
    settling: bool,
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
            queued_varispeed: None,
            varispeed_in_force: spec.filters.varispeed(),
            settling: false,
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
        self.apply(filters, false)?;
        self.settling = true;
        Ok(())
    }

    /// Runs `input` through every stage and returns the frames that are ready, which may
    /// be fewer or more than went in. A bypass returns `input` itself.
    pub fn process<'a>(&'a mut self, input: &'a Block) -> &'a Block {
        if self.settling {
            self.settle();
        }
        let result = run_stages(&mut self.stages, input, &mut self.scratch);
        output_of(result, &self.scratch, input)
    }

    /// Ends the stream: flushes each stage in order, passing what it releases through the
    /// stages after it, and returns everything that was still held inside.
    pub fn flush(&mut self) -> &Block {
        self.tail.reset_to(self.output_channels);
        for index in 0..self.stages.len() {
            let mut drained = std::mem::take(&mut self.drained);
            self.stages[index].processor().flush(&mut drained);
            let result = run_stages(&mut self.stages[index + 1..], &drained, &mut self.scratch);
            self.tail.append(output_of(result, &self.scratch, &drained));
            self.drained = drained;
        }
        self.restart();
        &self.tail
    }

    /// Forgets all history, as if the chain had just been built.
    pub fn reset(&mut self) {
        self.stages
            .iter_mut()
            .for_each(|stage| stage.processor().reset());
        self.restart();
    }

    /// Brings every filter stage to `filters` (already checked): builds what is newly
    /// needed at its place in the order and retunes what exists. `fresh` builds at the
    /// target directly; a live change starts new stages neutral and ramps from there.
    fn apply(&mut self, filters: &Filters, fresh: bool) -> Result<(), ConfigError> {
        self.change_varispeed(filters.varispeed())?;
        self.apply_tempo(self.stretch_in_force(filters))?;
        self.apply_eq(filters, fresh)?;
        self.apply_normalize(filters.normalize_lufs)?;
        self.apply_volume(filters.volume, fresh)?;
        let guard = filters.normalize_lufs.is_none()
            && self.eq_is_filtering()
            && (can_boost(filters) || can_boost(&self.filters));
        self.apply_guard(guard)?;
        self.filters = filters.clone();
        Ok(())
    }

    /// Retunes the equaliser (it crossfades), inserting it when it becomes needed; a live
    /// insertion starts flat and crossfades in.
    fn apply_eq(&mut self, filters: &Filters, fresh: bool) -> Result<(), ConfigError> {
        let (preset, bands) = (filters.eq_preset, filters.eq_bands.as_slice());
        if let Some(eq) = self.stages.iter_mut().find_map(Stage::as_eq) {
            return eq.equalizer.set(preset, bands);
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
        self.insert(Stage::Eq(GuardedEq::new(eq, channels)));
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
        self.insert(Stage::Normalize(Box::new(normalizer)));
        Ok(())
    }

    /// Ramps the volume and sets the limiter guard for an EQ boost, inserting the gain
    /// stage when it becomes needed (a live insertion starts at unity and ramps).
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

    /// True when an equaliser is built and not (or not yet) flat.
    fn eq_is_filtering(&mut self) -> bool {
        let eq = self.stages.iter_mut().find_map(Stage::as_eq);
        eq.is_some_and(|eq| !eq.equalizer.is_bypass())
    }

    /// Engages (or drains) the −1 dBFS limiter that keeps an EQ boost from clipping: the
    /// gain stage's when there is one (it comes last), else one right after the EQ.
    fn apply_guard(&mut self, needed: bool) -> Result<(), ConfigError> {
        let gain = self.stages.iter_mut().find_map(Stage::as_gain);
        let has_gain = gain.is_some();
        if let Some(gain) = gain {
            gain.set_guard(needed);
        }
        let rate_hz = self.output_rate_hz;
        if let Some(eq) = self.stages.iter_mut().find_map(Stage::as_eq) {
            eq.set_guard(needed && !has_gain, rate_hz)?;
        }
        Ok(())
    }

    /// At a block boundary after a live change: puts back a settled splice's resampler
    /// (or none), starting any queued one, and drops the stages that became neutral.
    fn settle(&mut self) {
        if let Some(index) = self.stages.iter().position(Stage::is_settled_splice) {
            if let Stage::Splice(splice) = self.stages.remove(index) {
                if let Some(resampler) = splice.into_incoming() {
                    self.stages.insert(index, Stage::Resampler(resampler));
                }
            }
            if let Some(varispeed) = self.queued_varispeed.take() {
                // Validated when it was queued, as was the stretch (it is clamped).
                let _ = self.change_varispeed(varispeed);
                let _ = self.apply_tempo(self.stretch_in_force(&self.filters));
            }
        }
        self.stages.retain(|stage| !stage.is_neutral());
        self.settle_guard();
        self.settling = self.stages.iter().any(Stage::may_settle);
    }

    /// Once any EQ crossfade is over, keeps the limiter guard only while the EQ in force
    /// can boost and no normaliser follows it.
    fn settle_guard(&mut self) {
        let eq = self.stages.iter_mut().find_map(Stage::as_eq);
        if eq.is_some_and(|eq| eq.equalizer.is_crossfading()) {
            return;
        }
        let needed = self.filters.normalize_lufs.is_none()
            && self.eq_is_filtering()
            && can_boost(&self.filters);
        // Turning a guard off cannot fail, and one that is needed is already on.
        let _ = self.apply_guard(needed);
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

/// True when `filters` ask for an EQ that raises some frequencies: every preset but flat
/// has a section with a positive gain, and so does a band with `gain_db > 0`.
fn can_boost(filters: &Filters) -> bool {
    filters.eq_preset != EqPreset::Flat || filters.eq_bands.iter().any(|b| b.gain_db > 0.0)
}
