//! `Filters`: the user-facing filter settings (SPEC section 2 `filters`), their ranges,
//! and how speed, pitch and rate decompose into a varispeed resampling and a pitch-keeping
//! time-stretch. Knows nothing of how the settings arrive.

use std::ops::RangeInclusive;

use crate::eq::{EqBand, EqPreset};
use crate::{ConfigError, check_range};

/// Accepted range of `speed`, `pitch` and `rate`.
pub const RATIO_RANGE: RangeInclusive<f64> = 0.5..=2.0;

/// Accepted range of a normalisation target, in LUFS.
pub const TARGET_LUFS_RANGE: RangeInclusive<f64> = -70.0..=-5.0;

/// The normalisation target when none is given (`normalize: {}`).
pub const DEFAULT_TARGET_LUFS: f64 = -14.0;

/// Every filter a stream can have. The default changes nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Filters {
    /// Tempo factor keeping pitch (ffmpeg `atempo`): output duration = input / speed.
    pub speed: f64,
    /// Pitch ratio keeping tempo (2.0 = one octave up).
    pub pitch: f64,
    /// Varispeed: tempo and pitch together, like a record played faster.
    pub rate: f64,
    /// Linear gain 0..=2; above 1 a limiter keeps peaks under -1 dBFS.
    pub volume: f32,
    /// A fixed equaliser curve.
    pub eq_preset: EqPreset,
    /// Extra peaking bands applied after the preset.
    pub eq_bands: Vec<EqBand>,
    /// Loudness normalisation target in LUFS, or `None` for none.
    pub normalize_lufs: Option<f64>,
}

impl Default for Filters {
    fn default() -> Self {
        Self {
            speed: 1.0,
            pitch: 1.0,
            rate: 1.0,
            volume: 1.0,
            eq_preset: EqPreset::Flat,
            eq_bands: Vec::new(),
            normalize_lufs: None,
        }
    }
}

impl Filters {
    /// Checks every value against its range; the error names the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range("speed", self.speed, &RATIO_RANGE)?;
        check_range("pitch", self.pitch, &RATIO_RANGE)?;
        check_range("rate", self.rate, &RATIO_RANGE)?;
        let volume_range = f64::from(crate::gain::MIN_VOLUME)..=f64::from(crate::gain::MAX_VOLUME);
        check_range("volume", f64::from(self.volume), &volume_range)?;
        crate::eq::validate_bands(&self.eq_bands)?;
        if let Some(target) = self.normalize_lufs {
            check_range("normalize.target_lufs", target, &TARGET_LUFS_RANGE)?;
        }
        Ok(())
    }

    /// The resampling factor of the varispeed part: `rate x pitch` (a factor of 2 plays
    /// twice as fast and an octave higher).
    pub fn varispeed(&self) -> f64 {
        self.rate * self.pitch
    }

    /// The pitch-keeping time-stretch factor that restores the wanted tempo after the
    /// varispeed: `speed / pitch`.
    pub fn stretch(&self) -> f64 {
        self.speed / self.pitch
    }

    /// How much faster the output runs than the source: `speed x rate`
    /// (output duration = source duration / this).
    pub fn tempo_factor(&self) -> f64 {
        self.speed * self.rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pitch_is_varispeed_plus_inverse_stretch() {
        let pitch_up = Filters {
            pitch: 2.0,
            ..Filters::default()
        };
        assert_eq!((pitch_up.varispeed(), pitch_up.stretch()), (2.0, 0.5));
        assert_eq!(pitch_up.tempo_factor(), 1.0, "pitch keeps the duration");
        let all = Filters {
            speed: 1.5,
            pitch: 0.5,
            rate: 1.25,
            ..Filters::default()
        };
        assert_eq!(all.varispeed(), 0.625);
        assert_eq!(all.stretch(), 3.0);
        assert_eq!(all.tempo_factor(), 1.875);
    }

    #[test]
    fn out_of_range_values_name_their_field() {
        let cases = [
            (
                Filters {
                    speed: 2.5,
                    ..Filters::default()
                },
                "speed",
            ),
            (
                Filters {
                    pitch: 0.4,
                    ..Filters::default()
                },
                "pitch",
            ),
            (
                Filters {
                    rate: f64::NAN,
                    ..Filters::default()
                },
                "rate",
            ),
            (
                Filters {
                    volume: 3.0,
                    ..Filters::default()
                },
                "volume",
            ),
            (
                Filters {
                    normalize_lufs: Some(0.0),
                    ..Filters::default()
                },
                "normalize.target_lufs",
            ),
        ];
        for (filters, field) in cases {
            match filters.validate() {
                Err(ConfigError::OutOfRange { name, .. }) => assert_eq!(name, field),
                other => panic!("{field}: {other:?}"),
            }
        }
        assert!(Filters::default().validate().is_ok());
    }
}
