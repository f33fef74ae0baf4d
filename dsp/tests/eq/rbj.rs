//! The Audio EQ Cookbook (R. Bristow-Johnson) formulas and the SPEC section 3 presets,
//! written out independently of the crate under test.

use std::f64::consts::PI;

use dsp::EqPreset;

/// One cookbook filter: which formula, f0, gain in dB, and Q (or S for shelves).
#[derive(Clone, Copy)]
pub enum Rbj {
    /// High-pass: f0, Q.
    HighPass(f64, f64),
    /// Low shelf: f0, gain dB, S.
    LowShelf(f64, f64, f64),
    /// High shelf: f0, gain dB, S.
    HighShelf(f64, f64, f64),
    /// Peaking: f0, gain dB, Q.
    Peaking(f64, f64, f64),
}

impl Rbj {
    /// `([b0, b1, b2], [a0, a1, a2])` straight from the Audio EQ Cookbook, shelves in
    /// their shelf-slope (S) form.
    fn coefficients(self, fs: f64) -> ([f64; 3], [f64; 3]) {
        let (f0, gain_db) = match self {
            Rbj::HighPass(f0, _) => (f0, 0.0),
            Rbj::LowShelf(f0, g, _) | Rbj::HighShelf(f0, g, _) | Rbj::Peaking(f0, g, _) => (f0, g),
        };
        let a = 10f64.powf(gain_db / 40.0);
        let w0 = 2.0 * PI * f0 / fs;
        let (cos, sin) = (w0.cos(), w0.sin());
        match self {
            Rbj::HighPass(_, q) => {
                let alpha = sin / (2.0 * q);
                let b = [(1.0 + cos) / 2.0, -(1.0 + cos), (1.0 + cos) / 2.0];
                (b, [1.0 + alpha, -2.0 * cos, 1.0 - alpha])
            }
            Rbj::Peaking(_, _, q) => {
                let alpha = sin / (2.0 * q);
                let b = [1.0 + alpha * a, -2.0 * cos, 1.0 - alpha * a];
                (b, [1.0 + alpha / a, -2.0 * cos, 1.0 - alpha / a])
            }
            Rbj::LowShelf(_, _, s) | Rbj::HighShelf(_, _, s) => {
                let alpha = sin / 2.0 * ((a + 1.0 / a) * (1.0 / s - 1.0) + 2.0).sqrt();
                let k = 2.0 * a.sqrt() * alpha;
                let sign = if matches!(self, Rbj::LowShelf(..)) {
                    1.0
                } else {
                    -1.0
                };
                let b = [
                    a * ((a + 1.0) - sign * (a - 1.0) * cos + k),
                    sign * 2.0 * a * ((a - 1.0) - sign * (a + 1.0) * cos),
                    a * ((a + 1.0) - sign * (a - 1.0) * cos - k),
                ];
                let den = [
                    (a + 1.0) + sign * (a - 1.0) * cos + k,
                    -sign * 2.0 * ((a - 1.0) + sign * (a + 1.0) * cos),
                    (a + 1.0) + sign * (a - 1.0) * cos - k,
                ];
                (b, den)
            }
        }
    }

    /// `20 log10 |H(e^jw)|` at `freq`.
    pub fn response_db(self, freq: f64, fs: f64) -> f64 {
        let (b, a) = self.coefficients(fs);
        let w = 2.0 * PI * freq / fs;
        let magnitude = |c: [f64; 3]| {
            let re = c[0] + c[1] * w.cos() + c[2] * (2.0 * w).cos();
            let im = -(c[1] * w.sin() + c[2] * (2.0 * w).sin());
            re.hypot(im)
        };
        20.0 * (magnitude(b) / magnitude(a)).log10()
    }
}

/// SPEC section 3, written out independently of the crate.
pub fn spec_filters(preset: EqPreset) -> Vec<Rbj> {
    match preset {
        EqPreset::Flat => vec![],
        EqPreset::BassBoost => vec![Rbj::LowShelf(100.0, 6.0, 1.0)],
        EqPreset::Treble => vec![Rbj::HighShelf(8_000.0, 6.0, 1.0)],
        EqPreset::Voice => vec![
            Rbj::HighPass(80.0, 0.707),
            Rbj::Peaking(2_500.0, 4.0, 1.0),
            Rbj::LowShelf(200.0, -3.0, 1.0),
        ],
    }
}
