//! `EqPreset`: the fixed equaliser curves of SPEC section 3, their names, and the RBJ
//! sections each is made of. Knows nothing of processing.

use std::fmt;
use std::str::FromStr;

use super::cascade::Section;

/// A fixed equaliser curve (SPEC section 3); shelves have a shelf slope S = 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EqPreset {
    /// No filter: a bit-exact bypass.
    #[default]
    Flat,
    /// Low shelf +6 dB at 100 Hz.
    BassBoost,
    /// High-pass 80 Hz (Q 0.707), peaking +4 dB at 2.5 kHz (Q 1), low shelf -3 dB at 200 Hz.
    Voice,
    /// High shelf +6 dB at 8 kHz.
    Treble,
}

impl EqPreset {
    /// Every preset, in the order of SPEC section 2.
    pub const ALL: [EqPreset; 4] = [Self::Flat, Self::BassBoost, Self::Voice, Self::Treble];

    /// The name the API uses: `flat`, `bass_boost`, `voice` or `treble`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Flat => "flat",
            Self::BassBoost => "bass_boost",
            Self::Voice => "voice",
            Self::Treble => "treble",
        }
    }

    /// The preset's filters, in processing order.
    pub(super) fn sections(self) -> &'static [Section] {
        match self {
            Self::Flat => &[],
            Self::BassBoost => BASS_BOOST,
            Self::Voice => VOICE,
            Self::Treble => TREBLE,
        }
    }
}

/// `bass_boost`: low shelf +6 dB at 100 Hz.
const BASS_BOOST: &[Section] = &[Section::LowShelf {
    freq_hz: 100.0,
    gain_db: 6.0,
    slope: 1.0,
}];

/// `voice`: high-pass 80 Hz (Q 0.707), peaking +4 dB at 2.5 kHz (Q 1), low shelf
/// -3 dB at 200 Hz.
const VOICE: &[Section] = &[
    Section::HighPass {
        freq_hz: 80.0,
        q: 0.707,
    },
    Section::Peaking {
        freq_hz: 2_500.0,
        gain_db: 4.0,
        q: 1.0,
    },
    Section::LowShelf {
        freq_hz: 200.0,
        gain_db: -3.0,
        slope: 1.0,
    },
];

/// `treble`: high shelf +6 dB at 8 kHz.
const TREBLE: &[Section] = &[Section::HighShelf {
    freq_hz: 8_000.0,
    gain_db: 6.0,
    slope: 1.0,
}];

impl fmt::Display for EqPreset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A preset name that is not one of `EqPreset::ALL`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown eq_preset {0:?}: expected flat, bass_boost, voice or treble")]
pub struct UnknownPreset(pub String);

impl FromStr for EqPreset {
    type Err = UnknownPreset;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|preset| preset.name() == name)
            .ok_or_else(|| UnknownPreset(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn preset_names_round_trip() {
        for preset in EqPreset::ALL {
            assert_eq!(preset.name().parse::<EqPreset>(), Ok(preset));
            assert_eq!(preset.to_string(), preset.name());
        }
        let error = "loud".parse::<EqPreset>().unwrap_err();
        assert_eq!(error, UnknownPreset("loud".into()));
        assert!(error.to_string().contains("bass_boost"));
    }
}
