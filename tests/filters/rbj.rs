//! The analytic response of the EQ presets, written out from Robert
//! Bristow-Johnson's "Cookbook formulae for audio EQ biquad filter
//! coefficients": the reference the measured responses are compared with.

use std::f64::consts::PI;

/// One biquad section, `H(z) = (b0 + b1 z^-1 + b2 z^-2) / (a0 + a1 z^-1 + a2 z^-2)`,
/// designed for a sample rate of [`super::RATE`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Biquad {
    b: [f64; 3],
    a: [f64; 3],
}

/// The cookbook's intermediate values for a centre or corner frequency `f0`
/// and a gain: `A = 10^(gain/40)`, `w0 = 2 pi f0 / Fs`, `cos(w0)`, `sin(w0)`.
fn design(f0: f64, gain_db: f64) -> (f64, f64, f64) {
    let w0 = 2.0 * PI * f0 / f64::from(super::RATE);
    (10f64.powf(gain_db / 40.0), w0.cos(), w0.sin())
}

/// The cookbook's shelf `alpha = sin(w0)/2 * sqrt((A + 1/A)(1/S - 1) + 2)`.
fn shelf_alpha(a: f64, sin: f64, slope: f64) -> f64 {
    sin / 2.0 * ((a + 1.0 / a) * (1.0 / slope - 1.0) + 2.0).sqrt()
}

impl Biquad {
    /// Low shelf of `gain_db` at `f0` with shelf slope `slope`.
    pub(crate) fn low_shelf(f0: f64, gain_db: f64, slope: f64) -> Self {
        let (a, cos, sin) = design(f0, gain_db);
        let k = 2.0 * a.sqrt() * shelf_alpha(a, sin, slope);
        Self {
            b: [
                a * ((a + 1.0) - (a - 1.0) * cos + k),
                2.0 * a * ((a - 1.0) - (a + 1.0) * cos),
                a * ((a + 1.0) - (a - 1.0) * cos - k),
            ],
            a: [
                (a + 1.0) + (a - 1.0) * cos + k,
                -2.0 * ((a - 1.0) + (a + 1.0) * cos),
                (a + 1.0) + (a - 1.0) * cos - k,
            ],
        }
    }

    /// High shelf of `gain_db` at `f0` with shelf slope `slope`.
    pub(crate) fn high_shelf(f0: f64, gain_db: f64, slope: f64) -> Self {
        let (a, cos, sin) = design(f0, gain_db);
        let k = 2.0 * a.sqrt() * shelf_alpha(a, sin, slope);
        Self {
            b: [
                a * ((a + 1.0) + (a - 1.0) * cos + k),
                -2.0 * a * ((a - 1.0) + (a + 1.0) * cos),
                a * ((a + 1.0) + (a - 1.0) * cos - k),
            ],
            a: [
                (a + 1.0) - (a - 1.0) * cos + k,
                2.0 * ((a - 1.0) - (a + 1.0) * cos),
                (a + 1.0) - (a - 1.0) * cos - k,
            ],
        }
    }

    /// Peaking EQ of `gain_db` at `f0` with quality `q` (`alpha = sin(w0) / 2Q`).
    pub(crate) fn peaking(f0: f64, gain_db: f64, q: f64) -> Self {
        let (a, cos, sin) = design(f0, gain_db);
        let alpha = sin / (2.0 * q);
        Self {
            b: [1.0 + alpha * a, -2.0 * cos, 1.0 - alpha * a],
            a: [1.0 + alpha / a, -2.0 * cos, 1.0 - alpha / a],
        }
    }

    /// Second-order high-pass at `f0` with quality `q`.
    pub(crate) fn high_pass(f0: f64, q: f64) -> Self {
        let (_, cos, sin) = design(f0, 0.0);
        let alpha = sin / (2.0 * q);
        Self {
            b: [(1.0 + cos) / 2.0, -(1.0 + cos), (1.0 + cos) / 2.0],
            a: [1.0 + alpha, -2.0 * cos, 1.0 - alpha],
        }
    }

    /// Magnitude response in dB at `freq_hz`: `|H(e^jw)|` evaluated directly.
    pub(crate) fn gain_db_at(&self, freq_hz: f64) -> f64 {
        let w = 2.0 * PI * freq_hz / f64::from(super::RATE);
        let magnitude = |c: &[f64; 3]| {
            let re = c[0] + c[1] * w.cos() + c[2] * (2.0 * w).cos();
            let im = -c[1] * w.sin() - c[2] * (2.0 * w).sin();
            re.hypot(im)
        };
        20.0 * (magnitude(&self.b) / magnitude(&self.a)).log10()
    }
}

/// The sections of an EQ preset as SPEC section 3 defines it (shelves with S = 1).
pub(crate) fn preset(name: &str) -> Vec<Biquad> {
    match name {
        "flat" => Vec::new(),
        "bass_boost" => vec![Biquad::low_shelf(100.0, 6.0, 1.0)],
        "treble" => vec![Biquad::high_shelf(8000.0, 6.0, 1.0)],
        "voice" => vec![
            Biquad::high_pass(80.0, 0.707),
            Biquad::peaking(2500.0, 4.0, 1.0),
            Biquad::low_shelf(200.0, -3.0, 1.0),
        ],
        other => panic!("no EQ preset named {other}"),
    }
}

/// Response in dB of a cascade of sections at `freq_hz`: the sum of theirs.
pub(crate) fn cascade_gain_db(sections: &[Biquad], freq_hz: f64) -> f64 {
    sections.iter().map(|s| s.gain_db_at(freq_hz)).sum()
}

#[test]
fn formulas_meet_their_defining_points() {
    let near = |measured: f64, expected: f64| (measured - expected).abs() < 0.01;
    let bass = Biquad::low_shelf(100.0, 6.0, 1.0);
    assert!(near(bass.gain_db_at(1.0), 6.0), "low shelf at DC");
    assert!(
        near(bass.gain_db_at(100.0), 3.0),
        "low shelf at f0: half the gain"
    );
    let treble = Biquad::high_shelf(8000.0, 6.0, 1.0);
    assert!(
        near(treble.gain_db_at(23_999.0), 6.0),
        "high shelf at Nyquist"
    );
    assert!(near(treble.gain_db_at(8000.0), 3.0), "high shelf at f0");
    let peak = Biquad::peaking(2500.0, 4.0, 1.0);
    assert!(near(peak.gain_db_at(2500.0), 4.0), "peaking at f0");
    let hp = Biquad::high_pass(80.0, 0.707);
    assert!(
        near(hp.gain_db_at(80.0), -3.01),
        "Butterworth high-pass at f0"
    );
}
