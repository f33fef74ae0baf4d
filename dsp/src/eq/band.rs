//! `EqBand`: one user peaking band, its ranges, and the validation of a band list.
//! Knows nothing of filters or of how bands are processed.

use std::ops::RangeInclusive;

use crate::{ConfigError, check_range};

/// Most extra bands a stream may have.
pub const MAX_BANDS: usize = 16;

/// Accepted centre frequencies, in Hz (also below the Nyquist frequency of the stream).
pub const FREQ_RANGE_HZ: RangeInclusive<f64> = 20.0..=20_000.0;

/// Accepted band gains, in dB.
pub const GAIN_RANGE_DB: RangeInclusive<f64> = -24.0..=24.0;

/// Accepted quality factors.
pub const Q_RANGE: RangeInclusive<f64> = 0.1..=10.0;

/// One extra equaliser band: an RBJ peaking filter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EqBand {
    /// Centre frequency in Hz, 20 to 20 000 and below the Nyquist frequency.
    pub freq_hz: f64,
    /// Gain at the centre frequency in dB, -24 to 24.
    pub gain_db: f64,
    /// Quality factor, 0.1 to 10 (higher is narrower).
    pub q: f64,
}

/// Builds the field names of every band as the user knows them, e.g. `eq_bands[2].q`.
macro_rules! field_names {
    ($($index:literal)*) => {
        [$([
            concat!("eq_bands[", $index, "].freq_hz"),
            concat!("eq_bands[", $index, "].gain_db"),
            concat!("eq_bands[", $index, "].q"),
        ]),*]
    };
}

/// `[freq_hz, gain_db, q]` names of band `i`, for `ConfigError::OutOfRange`.
const FIELD_NAMES: [[&str; 3]; MAX_BANDS] = field_names!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15);

/// Checks the number of bands and every band's ranges, independently of the sample rate.
/// The error names the offending field, e.g. `eq_bands[2].gain_db`.
pub fn validate_bands(bands: &[EqBand]) -> Result<(), ConfigError> {
    if bands.len() > MAX_BANDS {
        return Err(ConfigError::OutOfRange {
            name: "eq_bands",
            value: bands.len() as f64,
            min: 0.0,
            max: MAX_BANDS as f64,
        });
    }
    for (band, [freq, gain, q]) in bands.iter().zip(FIELD_NAMES) {
        check_range(freq, band.freq_hz, &FREQ_RANGE_HZ)?;
        check_range(gain, band.gain_db, &GAIN_RANGE_DB)?;
        check_range(q, band.q, &Q_RANGE)?;
    }
    Ok(())
}

/// `validate_bands`, and every centre frequency below the Nyquist frequency of
/// `sample_rate_hz` (the error then gives the Nyquist frequency as the maximum).
pub fn validate_bands_at(bands: &[EqBand], sample_rate_hz: u32) -> Result<(), ConfigError> {
    validate_bands(bands)?;
    let nyquist_hz = f64::from(sample_rate_hz) / 2.0;
    for (band, [freq, _, _]) in bands.iter().zip(FIELD_NAMES) {
        if band.freq_hz >= nyquist_hz {
            return Err(ConfigError::OutOfRange {
                name: freq,
                value: band.freq_hz,
                min: *FREQ_RANGE_HZ.start(),
                max: nyquist_hz,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: EqBand = EqBand {
        freq_hz: 1000.0,
        gain_db: 3.0,
        q: 1.0,
    };

    fn field_of(result: Result<(), ConfigError>) -> &'static str {
        match result {
            Err(ConfigError::OutOfRange { name, .. }) => name,
            other => panic!("expected OutOfRange, got {other:?}"),
        }
    }

    #[test]
    fn names_the_offending_field() {
        let mut bands = [GOOD; 4];
        bands[2].gain_db = 30.0;
        assert_eq!(field_of(validate_bands(&bands)), "eq_bands[2].gain_db");
        bands[2] = GOOD;
        bands[3].q = 0.05;
        assert_eq!(field_of(validate_bands(&bands)), "eq_bands[3].q");
        bands[3] = GOOD;
        bands[0].freq_hz = f64::NAN;
        assert_eq!(field_of(validate_bands(&bands)), "eq_bands[0].freq_hz");
        assert_eq!(FIELD_NAMES[15][1], "eq_bands[15].gain_db");
    }

    #[test]
    fn limits_the_band_count_and_nyquist() {
        assert!(validate_bands(&[GOOD; MAX_BANDS]).is_ok());
        assert_eq!(field_of(validate_bands(&[GOOD; MAX_BANDS + 1])), "eq_bands");
        let high = EqBand {
            freq_hz: 12_000.0,
            ..GOOD
        };
        assert!(validate_bands_at(&[high], 48_000).is_ok());
        let error = validate_bands_at(&[GOOD, high], 22_050);
        assert_eq!(
            error,
            Err(ConfigError::OutOfRange {
                name: "eq_bands[1].freq_hz",
                value: 12_000.0,
                min: 20.0,
                max: 11_025.0,
            })
        );
    }
}
