//! Deterministic test material: pseudo-random noise, music-like and speech-like signals.

use std::f64::consts::TAU;

use dsp::Block;

use crate::RATE_HZ;

/// A deterministic pseudo-random source in -0.5..0.5.
pub struct Noise(pub u32);

impl Noise {
    /// The next value.
    pub fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        f64::from(self.0 >> 8) / f64::from(1u32 << 24) - 0.5
    }
}

/// Something like a pop song: a chord progression of decaying notes with tremolo, a kick
/// on every beat and band-passed noise "snare" bursts on the off-beats; stereo.
pub fn music(seconds: f64) -> Block {
    let rate = f64::from(RATE_HZ);
    let frames = (seconds * rate) as usize;
    let roots = [110.0, 146.83, 130.81, 98.0];
    let (mut noise, mut low, mut band) = (Noise(0x1234_5678), 0.0, 0.0);
    let mut planes = vec![Vec::with_capacity(frames), Vec::with_capacity(frames)];
    for i in 0..frames {
        let t = i as f64 / rate;
        let beat = t % 0.5;
        let root = roots[(t / 2.0) as usize % roots.len()];
        let note = (-beat / 0.35).exp() * (1.0 - (-beat / 0.01).exp());
        let tremolo = 1.0 + 0.3 * (TAU * 0.3 * t).sin();
        let chord: f64 = [(1.0, 0.5), (1.5, 0.3), (2.0, 0.25), (2.52, 0.2), (4.0, 0.1)]
            .iter()
            .map(|&(ratio, amp)| amp * (TAU * root * ratio * t).sin())
            .sum();
        let kick = (-beat / 0.08).exp() * (TAU * (50.0 + 60.0 * (-beat / 0.03).exp()) * t).sin();
        // One-pole low-pass minus a slower one: a crude band-pass around a few kHz.
        let white = noise.next();
        low += 0.5 * (white - low);
        band += 0.05 * (low - band);
        let off_beat = (t + 0.25) % 0.5;
        let snare = (-off_beat / 0.06).exp() * (low - band) * 3.0;
        let mid = 0.5 * chord * note * tremolo + 0.6 * kick;
        planes[0].push((mid + 0.8 * snare) as f32);
        planes[1].push((0.9 * mid + snare) as f32);
    }
    Block::from_planes(planes)
}

/// Something like speech: voiced syllables (a harmonic series with formant-like
/// weighting and a gliding pitch) and fricative noise, in phrases separated by pauses.
pub fn speech(seconds: f64) -> Block {
    let rate = f64::from(RATE_HZ);
    let mut noise = Noise(0x5eed);
    let (mut phase, mut hiss) = (0.0, 0.0);
    let plane = (0..(seconds * rate) as usize)
        .map(|i| {
            let t = i as f64 / rate;
            let in_phrase = t % 3.7 < 2.6;
            let syllable = (t * 4.3) % 1.0;
            let envelope = if in_phrase {
                (std::f64::consts::PI * syllable).sin().powi(2)
            } else {
                0.0
            };
            let pitch = 120.0 + 40.0 * (TAU * 0.7 * t).sin();
            phase += TAU * pitch / rate;
            let voiced: f64 = (1..=30)
                .map(|h| {
                    let f = pitch * f64::from(h);
                    let formants = [(500.0, 1.0), (1_500.0, 0.5), (2_500.0, 0.3)];
                    let weight: f64 = formants
                        .iter()
                        .map(|&(c, a)| a / (1.0 + ((f - c) / 150.0).powi(2)))
                        .sum();
                    weight * (phase * f64::from(h)).sin()
                })
                .sum();
            hiss += 0.3 * (noise.next() - hiss);
            let fricative = if syllable > 0.8 && in_phrase {
                noise.next() - hiss
            } else {
                0.0
            };
            (envelope * voiced * 0.3 + fricative * 0.4) as f32
        })
        .collect();
    Block::from_planes(vec![plane])
}
