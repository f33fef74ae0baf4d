//! Helpers shared by the `Tempo` test files: test signals, a chunked driver and level
//! measures. Each test file uses a different subset.

#![allow(dead_code)]

use std::f64::consts::TAU;

use dsp::{Block, Processor, Tempo};

/// `seconds` of a sine at `hz` and amplitude 0.5 on one plane.
pub fn sine(hz: f64, rate_hz: u32, seconds: f64) -> Vec<f32> {
    let frames = (seconds * f64::from(rate_hz)) as usize;
    (0..frames)
        .map(|i| (0.5 * (TAU * hz * i as f64 / f64::from(rate_hz)).sin()) as f32)
        .collect()
}

/// Feeds `input` in chunks of `chunk` frames, then flushes; returns everything produced.
pub fn stretch(tempo: &mut Tempo, input: &Block, chunk: usize) -> Block {
    let mut output = Block::new(input.channels());
    let mut piece = Block::new(input.channels());
    let mut out = Block::default();
    for start in (0..input.frames()).step_by(chunk) {
        let end = (start + chunk).min(input.frames());
        piece.reset_to(input.channels());
        for (dst, src) in piece.planes_mut().iter_mut().zip(input.planes()) {
            dst.extend_from_slice(&src[start..end]);
        }
        tempo.process(&piece, &mut out);
        output.append(&out);
    }
    tempo.flush(&mut out);
    output.append(&out);
    output
}

/// Stretches one plane at `speed`, fed in chunks of 1024 frames.
pub fn stretch_mono(speed: f64, plane: Vec<f32>, rate_hz: u32) -> Vec<f32> {
    let mut tempo = Tempo::try_new(speed, 1, rate_hz).unwrap();
    let output = stretch(&mut tempo, &Block::from_planes(vec![plane]), 1024);
    output.plane(0).to_vec()
}

/// Root mean square.
pub fn rms(samples: &[f32]) -> f64 {
    (samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len() as f64).sqrt()
}

pub fn db(ratio: f64) -> f64 {
    20.0 * ratio.log10()
}

/// Chords with a moving bass line and some noise: enough to keep the search busy.
pub fn music_like(rate_hz: u32, seconds: f64, seed: u32) -> Vec<f32> {
    let mut state = seed;
    let frames = (seconds * f64::from(rate_hz)) as usize;
    (0..frames)
        .map(|i| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let noise = f64::from(state >> 8) / f64::from(1u32 << 24) - 0.5;
            let t = i as f64 / f64::from(rate_hz);
            let bass = 55.0 * (1.0 + (t * 2.0).floor() % 4.0 / 4.0);
            let tones = [bass, 220.0, 277.2, 329.6, 1318.5]
                .iter()
                .map(|f| (TAU * f * t).sin())
                .sum::<f64>();
            (0.12 * tones + 0.05 * noise) as f32
        })
        .collect()
}

/// Frequency from the first and last rising zero crossings (linearly interpolated).
pub fn zero_crossing_hz(samples: &[f32], rate_hz: u32) -> f64 {
    let crossings: Vec<f64> = samples
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[0] < 0.0 && w[1] >= 0.0)
        .map(|(i, w)| i as f64 + f64::from(w[0] / (w[0] - w[1])))
        .collect();
    let (first, last) = (crossings[0], crossings[crossings.len() - 1]);
    (crossings.len() - 1) as f64 * f64::from(rate_hz) / (last - first)
}
