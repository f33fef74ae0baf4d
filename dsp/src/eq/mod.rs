//! The equaliser: the fixed presets of SPEC section 3 and the user's peaking bands as a
//! cascade of RBJ cookbook biquads (through the `biquad` crate), with click-free live
//! changes. Owns the preset definitions and the crossfade; knows nothing of the chain,
//! of how settings arrive, or of other stages.

mod band;
mod cascade;
mod preset;

use crate::{Block, ConfigError, Processor, check_channels, check_rate};
use cascade::{Cascade, Section};

pub use band::{
    EqBand, FREQ_RANGE_HZ, GAIN_RANGE_DB, MAX_BANDS, Q_RANGE, validate_bands, validate_bands_at,
};
pub use preset::{EqPreset, UnknownPreset};

/// How long a live change crossfades from the old filters to the new ones.
pub const CROSSFADE_SECS: f64 = 0.020;

/// A preset followed by peaking bands, as biquads computed for the processing rate.
///
/// Every channel has its own filter state (f64, Direct Form II transposed); samples are
/// filtered in f64 and rounded to f32 once. There is no delay, so every `process` writes
/// as many frames as it read.
///
/// - `Flat` with no bands is a bypass (`is_bypass`): the output is a bit-exact copy.
/// - A preset filter whose frequency is at or above the Nyquist frequency of the
///   processing rate is left out (the treble shelf at 8 kHz does nothing for streams at
///   16 kHz or less: there is no content up there to boost). User bands must lie below
///   the Nyquist frequency instead, or construction fails.
/// - `set` changes the curve live: for `CROSSFADE_SECS` both the old and the new
///   cascade run, and the output moves linearly from one to the other (equal-gain
///   crossfade), so a change never clicks. A change asked for during a crossfade starts
///   when the running one ends. `flush` and `reset` complete any crossfade at once.
#[derive(Debug, Clone)]
pub struct Equalizer {
    channels: usize,
    sample_rate_hz: u32,
    preset: EqPreset,
    bands: Vec<EqBand>,
    /// The filters in force (being faded in while `outgoing` is set).
    active: Cascade,
    /// The filters being faded out, and how many frames of the fade are done.
    outgoing: Option<(Cascade, usize)>,
    /// Filters of a change that waits for the running crossfade to end.
    queued: Option<Cascade>,
    fade_frames: usize,
}

impl Equalizer {
    /// An equaliser applying `preset`, then `bands`, to `channels` channels at
    /// `sample_rate_hz`. Fails when a band is out of range (the error names the field,
    /// e.g. `eq_bands[2].gain_db`), lies at or above the Nyquist frequency, or there are
    /// more than `MAX_BANDS`.
    pub fn try_new(
        preset: EqPreset,
        bands: &[EqBand],
        channels: usize,
        sample_rate_hz: u32,
    ) -> Result<Self, ConfigError> {
        check_channels(channels)?;
        check_rate(sample_rate_hz)?;
        let active = build_cascade(preset, bands, channels, sample_rate_hz)?;
        let fade_frames = (CROSSFADE_SECS * f64::from(sample_rate_hz)).round() as usize;
        Ok(Self {
            channels,
            sample_rate_hz,
            preset,
            bands: bands.to_vec(),
            active,
            outgoing: None,
            queued: None,
            fade_frames: fade_frames.max(1),
        })
    }

    /// True when the equaliser leaves the signal untouched: `Flat`, no bands, and no
    /// crossfade under way. A chain need not build such an equaliser.
    pub fn is_bypass(&self) -> bool {
        self.active.is_empty() && self.outgoing.is_none() && self.queued.is_none()
    }

    /// True while a change is still being crossfaded in (or waits to be).
    pub fn is_crossfading(&self) -> bool {
        self.outgoing.is_some() || self.queued.is_some()
    }

    /// The preset of the latest settings.
    pub fn preset(&self) -> EqPreset {
        self.preset
    }

    /// The bands of the latest settings.
    pub fn bands(&self) -> &[EqBand] {
        &self.bands
    }

    /// Changes the curve while running, crossfading over `CROSSFADE_SECS`. Settings equal
    /// to the current ones change nothing. On error the equaliser is unchanged.
    pub fn set(&mut self, preset: EqPreset, bands: &[EqBand]) -> Result<(), ConfigError> {
        if preset == self.preset && bands == self.bands.as_slice() {
            return Ok(());
        }
        let cascade = build_cascade(preset, bands, self.channels, self.sample_rate_hz)?;
        self.preset = preset;
        self.bands.clear();
        self.bands.extend_from_slice(bands);
        if self.outgoing.is_some() {
            self.queued = Some(cascade);
        } else {
            let old = std::mem::replace(&mut self.active, cascade);
            self.outgoing = Some((old, 0));
        }
        Ok(())
    }

    /// The magnitude response in dB of the whole cascade at `freq_hz` (0 to the Nyquist
    /// frequency), from the analytic `H(e^jw)` of each biquad, for the latest settings
    /// (those being, or about to be, faded in during a crossfade).
    pub fn response_db(&self, freq_hz: f64) -> f64 {
        self.queued
            .as_ref()
            .unwrap_or(&self.active)
            .response_db(freq_hz, self.sample_rate_hz)
    }

    /// Filters frames `range` of `input` through the active cascade only, two channels
    /// per loop: each sample's recurrence is a chain of dependent operations, and two
    /// independent chains side by side run in about the time of one.
    fn filter(&mut self, input: &Block, range: std::ops::Range<usize>, output: &mut Block) {
        if self.active.is_empty() {
            for (src, out) in input.planes().iter().zip(output.planes_mut()) {
                out.extend_from_slice(&src[range.clone()]);
            }
            return;
        }
        let mut lanes = (self.active.channels_mut())
            .zip(input.planes())
            .zip(output.planes_mut());
        while let Some(((first, src), out)) = lanes.next() {
            let src = &src[range.clone()];
            let start = out.len();
            out.resize(start + src.len(), 0.0);
            let out = &mut out[start..];
            let Some(((second, src2), out2)) = lanes.next() else {
                for (y, &x) in out.iter_mut().zip(src) {
                    *y = Cascade::run(first, f64::from(x)) as f32;
                }
                break;
            };
            let src2 = &src2[range.clone()];
            out2.resize(start + src2.len(), 0.0);
            let pairs = out
                .iter_mut()
                .zip(&mut out2[start..])
                .zip(src.iter().zip(src2));
            for ((y, y2), (&x, &x2)) in pairs {
                *y = Cascade::run(first, f64::from(x)) as f32;
                *y2 = Cascade::run(second, f64::from(x2)) as f32;
            }
        }
    }

    /// Crossfades frames `range` of `input` from the outgoing to the active cascade and
    /// ends the fade (starting any queued one) when it completes.
    fn crossfade(&mut self, input: &Block, range: std::ops::Range<usize>, output: &mut Block) {
        let Some((outgoing, done)) = &mut self.outgoing else {
            return;
        };
        let step = 1.0 / self.fade_frames as f64;
        let planes = input.planes().iter().zip(output.planes_mut());
        for (channel, (src, out)) in planes.enumerate() {
            let (old, new) = (outgoing.channel(channel), self.active.channel(channel));
            out.extend(src[range.clone()].iter().enumerate().map(|(i, &x)| {
                let weight = (*done + i + 1) as f64 * step;
                let (from, to) = (
                    Cascade::run(old, f64::from(x)),
                    Cascade::run(new, f64::from(x)),
                );
                (from + (to - from) * weight) as f32
            }));
        }
        *done += range.len();
        if *done >= self.fade_frames {
            self.outgoing = None;
            if let Some(next) = self.queued.take() {
                let old = std::mem::replace(&mut self.active, next);
                self.outgoing = Some((old, 0));
            }
        }
    }

    /// Ends any crossfade at once: the latest settings take over.
    fn settle(&mut self) {
        self.outgoing = None;
        if let Some(latest) = self.queued.take() {
            self.active = latest;
        }
    }
}

/// The cascade for `preset` then `bands` at `sample_rate_hz`, after validating the bands.
fn build_cascade(
    preset: EqPreset,
    bands: &[EqBand],
    channels: usize,
    sample_rate_hz: u32,
) -> Result<Cascade, ConfigError> {
    validate_bands_at(bands, sample_rate_hz)?;
    let peaking = bands.iter().map(|band| Section::Peaking {
        freq_hz: band.freq_hz,
        gain_db: band.gain_db,
        q: band.q,
    });
    let coefficients = preset
        .sections()
        .iter()
        .copied()
        .chain(peaking)
        .filter_map(|section| section.coefficients(sample_rate_hz))
        .collect();
    Ok(Cascade::new(coefficients, channels))
}

impl Processor for Equalizer {
    fn process(&mut self, input: &Block, output: &mut Block) {
        debug_assert_eq!(input.channels(), self.channels);
        if self.is_bypass() {
            output.copy_from(input);
            return;
        }
        output.reset_to(self.channels);
        let frames = input.frames();
        let mut start = 0;
        while start < frames {
            let end = match &self.outgoing {
                Some((_, done)) => frames.min(start + self.fade_frames - done),
                None => frames,
            };
            if self.outgoing.is_some() {
                self.crossfade(input, start..end, output);
            } else {
                self.filter(input, start..end, output);
            }
            start = end;
        }
        self.active.flush_tiny_states();
    }

    fn flush(&mut self, output: &mut Block) {
        output.reset_to(self.channels);
        self.reset();
    }

    fn reset(&mut self) {
        self.settle();
        self.active.reset();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn flat_is_a_bypass_and_others_are_not() {
        let flat = Equalizer::try_new(EqPreset::Flat, &[], 2, 48_000).unwrap();
        assert!(flat.is_bypass());
        for preset in [EqPreset::BassBoost, EqPreset::Voice, EqPreset::Treble] {
            assert!(
                !Equalizer::try_new(preset, &[], 2, 48_000)
                    .unwrap()
                    .is_bypass()
            );
        }
        let band = EqBand {
            freq_hz: 1000.0,
            gain_db: 0.5,
            q: 1.0,
        };
        assert!(
            !Equalizer::try_new(EqPreset::Flat, &[band], 1, 8_000)
                .unwrap()
                .is_bypass()
        );
    }

    #[test]
    fn treble_above_nyquist_is_left_out() {
        let eq = Equalizer::try_new(EqPreset::Treble, &[], 1, 16_000).unwrap();
        assert!(eq.is_bypass());
        assert_eq!(eq.response_db(1000.0), 0.0);
    }

    #[test]
    fn same_settings_do_not_fade() {
        let mut eq = Equalizer::try_new(EqPreset::Voice, &[], 1, 48_000).unwrap();
        eq.set(EqPreset::Voice, &[]).unwrap();
        assert!(eq.outgoing.is_none());
        eq.set(EqPreset::Treble, &[]).unwrap();
        assert!(eq.outgoing.is_some());
        eq.set(EqPreset::BassBoost, &[]).unwrap();
        assert!(eq.queued.is_some());
        assert_eq!(eq.preset(), EqPreset::BassBoost);
        assert!((eq.response_db(20.0) - 6.0).abs() < 0.1);
    }

    #[test]
    fn rejects_bad_settings() {
        let band = EqBand {
            freq_hz: 5_000.0,
            gain_db: 3.0,
            q: 1.0,
        };
        assert!(Equalizer::try_new(EqPreset::Flat, &[band], 2, 8_000).is_err());
        assert!(Equalizer::try_new(EqPreset::Flat, &[], 0, 48_000).is_err());
        assert!(Equalizer::try_new(EqPreset::Flat, &[], 2, 1_000).is_err());
        let mut eq = Equalizer::try_new(EqPreset::Voice, &[], 2, 8_000).unwrap();
        assert!(eq.set(EqPreset::Flat, &[band]).is_err());
        assert_eq!(
            eq.preset(),
            EqPreset::Voice,
            "a refused change changes nothing"
        );
    }
}
