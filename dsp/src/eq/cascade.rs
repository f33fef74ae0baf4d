//! `Cascade`: RBJ cookbook biquad sections (computed by the `biquad` crate) run in series
//! on every channel, and the analytic magnitude response of the series. Knows nothing of
//! presets, user bands or crossfades.

use biquad::{Biquad, Coefficients, DirectForm2Transposed, Type};

/// A filter state this small is set to zero, so that decaying states never reach the
/// subnormal range, where arithmetic is slow.
const STATE_FLOOR: f64 = 1e-30;

/// One RBJ cookbook filter, described by its design parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Section {
    /// Second-order high-pass.
    HighPass {
        /// Cut-off frequency, Hz.
        freq_hz: f64,
        /// Quality factor.
        q: f64,
    },
    /// Low shelf with shelf slope `slope` (S = 1 is the steepest monotonic slope).
    LowShelf {
        /// Shelf midpoint frequency, Hz.
        freq_hz: f64,
        /// Shelf gain, dB.
        gain_db: f64,
        /// Shelf slope S.
        slope: f64,
    },
    /// High shelf with shelf slope `slope`.
    HighShelf {
        /// Shelf midpoint frequency, Hz.
        freq_hz: f64,
        /// Shelf gain, dB.
        gain_db: f64,
        /// Shelf slope S.
        slope: f64,
    },
    /// Peaking (bell) filter.
    Peaking {
        /// Centre frequency, Hz.
        freq_hz: f64,
        /// Gain at the centre, dB.
        gain_db: f64,
        /// Quality factor.
        q: f64,
    },
}

impl Section {
    /// The section's frequency in Hz.
    pub(super) fn freq_hz(&self) -> f64 {
        match *self {
            Self::HighPass { freq_hz, .. }
            | Self::LowShelf { freq_hz, .. }
            | Self::HighShelf { freq_hz, .. }
            | Self::Peaking { freq_hz, .. } => freq_hz,
        }
    }

    /// Normalised coefficients at `sample_rate_hz`, or `None` when the frequency is not
    /// strictly between 0 and the Nyquist frequency.
    pub(super) fn coefficients(&self, sample_rate_hz: u32) -> Option<Coefficients<f64>> {
        let (kind, q) = match *self {
            Self::HighPass { q, .. } => (Type::HighPass, q),
            Self::LowShelf { gain_db, slope, .. } => {
                (Type::LowShelf(gain_db), shelf_q(gain_db, slope))
            }
            Self::HighShelf { gain_db, slope, .. } => {
                (Type::HighShelf(gain_db), shelf_q(gain_db, slope))
            }
            Self::Peaking { gain_db, q, .. } => (Type::PeakingEQ(gain_db), q),
        };
        let normalized = self.freq_hz() / (f64::from(sample_rate_hz) / 2.0);
        if !(normalized > 0.0 && normalized < 1.0) {
            return None;
        }
        Coefficients::from_normalized_params(kind, normalized, q).ok()
    }
}

/// The Q that gives an RBJ shelf of `gain_db` the shelf slope `slope`: the cookbook's
/// `alpha = sin(w0)/2 * sqrt((A + 1/A)(1/S - 1) + 2)` written as `sin(w0) / (2 Q)`.
fn shelf_q(gain_db: f64, slope: f64) -> f64 {
    let a = 10f64.powf(gain_db / 40.0);
    1.0 / ((a + 1.0 / a) * (1.0 / slope - 1.0) + 2.0).sqrt()
}

/// Biquad sections in series, with separate Direct Form II transposed state (f64) for
/// every channel.
#[derive(Debug, Clone)]
pub(super) struct Cascade {
    coefficients: Vec<Coefficients<f64>>,
    /// `channels × sections` filters, channel-major.
    filters: Vec<DirectForm2Transposed<f64, f64>>,
}

impl Cascade {
    /// A cascade of the given sections on `channels` channels, with silent state.
    pub(super) fn new(coefficients: Vec<Coefficients<f64>>, channels: usize) -> Self {
        let filters = (0..channels)
            .flat_map(|_| coefficients.iter().map(|&c| DirectForm2Transposed::new(c)))
            .collect();
        Self {
            coefficients,
            filters,
        }
    }

    /// True when the cascade has no section (its output is its input).
    pub(super) fn is_empty(&self) -> bool {
        self.coefficients.is_empty()
    }

    /// The sections of `channel`, to pass to `run`.
    pub(super) fn channel(&mut self, channel: usize) -> &mut [DirectForm2Transposed<f64, f64>] {
        let sections = self.coefficients.len();
        &mut self.filters[channel * sections..(channel + 1) * sections]
    }

    /// The sections of every channel in turn (nothing when the cascade is empty).
    pub(super) fn channels_mut(
        &mut self,
    ) -> std::slice::ChunksMut<'_, DirectForm2Transposed<f64, f64>> {
        let sections = self.coefficients.len().max(1);
        self.filters.chunks_mut(sections)
    }

    /// Runs one sample through the sections of one channel.
    #[inline]
    pub(super) fn run(sections: &mut [DirectForm2Transposed<f64, f64>], sample: f64) -> f64 {
        sections
            .iter_mut()
            .fold(sample, |x, section| section.run(x))
    }

    /// Sets every state that has decayed below `STATE_FLOOR` to exactly zero.
    pub(super) fn flush_tiny_states(&mut self) {
        for filter in &mut self.filters {
            if filter.s1.abs() < STATE_FLOOR && filter.s2.abs() < STATE_FLOOR {
                filter.reset_state();
            }
        }
    }

    /// Forgets all history.
    pub(super) fn reset(&mut self) {
        self.filters.iter_mut().for_each(Biquad::reset_state);
    }

    /// The magnitude response in dB at `freq_hz` for a stream at `sample_rate_hz`: the
    /// product of `|H(e^jw)|` of every section, `w = 2 pi f / fs`.
    pub(super) fn response_db(&self, freq_hz: f64, sample_rate_hz: u32) -> f64 {
        let w = std::f64::consts::TAU * freq_hz / f64::from(sample_rate_hz);
        let (c1, s1, c2, s2) = (w.cos(), w.sin(), (2.0 * w).cos(), (2.0 * w).sin());
        let power: f64 = self
            .coefficients
            .iter()
            .map(|k| {
                // H = (b0 + b1 z^-1 + b2 z^-2) / (1 + a1 z^-1 + a2 z^-2), z^-n = e^-jnw.
                let num = (k.b0 + k.b1 * c1 + k.b2 * c2, -(k.b1 * s1 + k.b2 * s2));
                let den = (1.0 + k.a1 * c1 + k.a2 * c2, -(k.a1 * s1 + k.a2 * s2));
                (num.0 * num.0 + num.1 * num.1) / (den.0 * den.0 + den.1 * den.1)
            })
            .product();
        10.0 * power.log10()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn slope_one_shelf_is_a_butterworth_q() {
        for gain_db in [-12.0, -3.0, 6.0, 24.0] {
            let q = shelf_q(gain_db, 1.0);
            assert!((q - std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-12);
        }
    }

    #[test]
    fn sections_at_or_above_nyquist_are_refused() {
        let shelf = Section::HighShelf {
            freq_hz: 8_000.0,
            gain_db: 6.0,
            slope: 1.0,
        };
        assert!(shelf.coefficients(16_000).is_none());
        assert!(shelf.coefficients(16_001).is_some());
    }

    #[test]
    fn empty_cascade_is_flat() {
        let cascade = Cascade::new(Vec::new(), 2);
        assert!(cascade.is_empty());
        assert_eq!(cascade.response_db(1000.0, 48_000), 0.0);
    }

    #[test]
    fn peaking_response_peaks_at_its_gain() {
        let peak = Section::Peaking {
            freq_hz: 1000.0,
            gain_db: 12.0,
            q: 1.0,
        };
        let cascade = Cascade::new(vec![peak.coefficients(48_000).unwrap()], 1);
        assert!((cascade.response_db(1000.0, 48_000) - 12.0).abs() < 1e-9);
        assert!(cascade.response_db(20.0, 48_000).abs() < 0.05);
    }
}
