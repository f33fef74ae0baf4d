//! How a `Chain` moves its resampling and time-stretch through live rate, pitch and
//! speed changes so that the output length stays `input / (speed × rate)`.

use super::Chain;
use crate::retime::Retimed;
use crate::splice::Splice;
use crate::stage::Stage;
use crate::tempo::{MAX_SPEED, MIN_SPEED, Tempo};
use crate::{ConfigError, Filters};

impl Chain {
    /// After `flush` or `reset`: drops a queued varispeed and puts a plain resampler for
    /// the filters in force (or none) in place of a splice, and the tempo at their
    /// stretch (dropped at speed 1), as a freshly built chain would have them.
    pub(super) fn restart(&mut self) {
        self.queued_varispeed = None;
        let varispeed = self.filters.varispeed();
        self.varispeed_in_force = varispeed;
        if let Some(index) = self
            .stages
            .iter()
            .position(|s| matches!(s, Stage::Splice(_)))
        {
            self.stages.remove(index);
            // Checked when these filters were applied.
            if let Ok(resampler) = self.resampler_for(varispeed) {
                if resampler.input_rate_hz() != resampler.output_rate_hz() {
                    self.stages.insert(index, Stage::Resampler(resampler));
                }
            }
        }
        let stretch = self.filters.stretch();
        if let Some(tempo) = self.stages.iter_mut().find_map(Stage::as_tempo) {
            // In range: a fresh chain takes it.
            let _ = tempo.set_speed_after(0, stretch);
        }
        if stretch == 1.0 {
            self.stages
                .retain(|stage| !matches!(stage, Stage::Tempo(_)));
        }
    }

    /// The stretch that gives `filters`' tempo for frames resampled at the varispeed in
    /// force, which differs from theirs while a change waits for a running splice:
    /// `(speed × rate) / varispeed`, kept within the range of `Tempo`.
    pub(super) fn stretch_in_force(&self, filters: &Filters) -> f64 {
        if self.varispeed_in_force == filters.varispeed() {
            return filters.stretch();
        }
        (filters.tempo_factor() / self.varispeed_in_force).clamp(MIN_SPEED, MAX_SPEED)
    }

    /// Retunes the time-stretch, inserting it when it becomes needed. The frames the
    /// resampling stage still owes for input read before the change (a splice's old-rate
    /// frames among them) keep the old stretch; `stretch` applies from the next one.
    pub(super) fn apply_tempo(&mut self, stretch: f64) -> Result<(), ConfigError> {
        let old_frames = self.stages.iter().map(Stage::frames_pending).sum();
        if let Some(tempo) = self.stages.iter_mut().find_map(Stage::as_tempo) {
            return tempo.set_speed_after(old_frames, stretch);
        }
        if stretch != 1.0 {
            let start = if old_frames > 0 { 1.0 } else { stretch };
            let tempo = Tempo::try_new(start, self.output_channels, self.output_rate_hz)?;
            let mut tempo = Retimed::new(tempo, self.output_channels);
            tempo.set_speed_after(old_frames, stretch)?;
            self.insert(Stage::Tempo(Box::new(tempo)));
        }
        Ok(())
    }

    /// Splices in the resampling for a new varispeed factor (none when the rates then
    /// match). An untouched splice is retargeted; a running one queues the change; the
    /// varispeed in force drops any queued one.
    pub(super) fn change_varispeed(&mut self, varispeed: f64) -> Result<(), ConfigError> {
        if varispeed == self.varispeed_in_force {
            self.queued_varispeed = None;
            return Ok(());
        }
        let resampler = self.resampler_for(varispeed)?;
        let incoming =
            (resampler.input_rate_hz() != resampler.output_rate_hz()).then_some(resampler);
        let channels = self.output_channels;
        let Some(index) = self.stages.iter().position(Stage::is_resampling) else {
            if incoming.is_some() {
                self.insert(Stage::Splice(Splice::new(None, incoming, channels)));
            }
            self.varispeed_in_force = varispeed;
            return Ok(());
        };
        match self.stages.remove(index) {
            Stage::Splice(mut splice) if splice.is_untouched() => {
                splice.retarget(incoming, channels);
                self.stages.insert(index, Stage::Splice(splice));
            }
            Stage::Resampler(old) => {
                let splice = Splice::new(Some(old), incoming, channels);
                self.stages.insert(index, Stage::Splice(splice));
            }
            stage => {
                self.stages.insert(index, stage);
                self.queued_varispeed = Some(varispeed);
                return Ok(());
            }
        }
        self.varispeed_in_force = varispeed;
        Ok(())
    }
}
