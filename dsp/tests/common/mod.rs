//! Shared helpers for the dsp integration tests: a uniform driver over every kind of
//! stage, chunked feeding, and deterministic test signals.

#![allow(dead_code)] // each test file uses a subset

use dsp::{Block, Chain, Processor};

/// Anything that turns blocks into blocks and can be flushed and reset: every
/// `Processor`, and the `Chain` (whose `process` returns its output instead).
pub trait Stage {
    /// Processes `input` and appends whatever comes out to `output`.
    fn feed(&mut self, input: &Block, output: &mut Block);
    /// Flushes and appends the tail to `output`.
    fn finish(&mut self, output: &mut Block);
    /// Resets to the freshly built state.
    fn restart(&mut self);
}

impl Stage for Box<dyn Processor> {
    fn feed(&mut self, input: &Block, output: &mut Block) {
        let mut out = Block::default();
        self.process(input, &mut out);
        append(output, &out);
    }

    fn finish(&mut self, output: &mut Block) {
        let mut out = Block::default();
        self.flush(&mut out);
        append(output, &out);
    }

    fn restart(&mut self) {
        self.reset();
    }
}

impl Stage for Chain {
    fn feed(&mut self, input: &Block, output: &mut Block) {
        let out = self.process(input);
        append(output, out);
    }

    fn finish(&mut self, output: &mut Block) {
        let out = self.flush();
        append(output, out);
    }

    fn restart(&mut self) {
        self.reset();
    }
}

/// Appends `tail` to `output`, adopting its channel count when `output` is still empty.
fn append(output: &mut Block, tail: &Block) {
    if output.is_empty() && output.channels() != tail.channels() {
        output.reset_to(tail.channels());
    }
    output.append(tail);
}

/// Feeds `input` in chunks of `chunk` frames, flushes, and returns everything produced.
pub fn run_chunked(stage: &mut dyn Stage, input: &Block, chunk: usize) -> Block {
    let mut output = Block::default();
    let mut start = 0;
    while start < input.frames() {
        let end = (start + chunk).min(input.frames());
        stage.feed(&slice(input, start, end), &mut output);
        start = end;
    }
    stage.finish(&mut output);
    output
}

/// Frames `start..end` of `block`.
pub fn slice(block: &Block, start: usize, end: usize) -> Block {
    Block::from_planes(
        block
            .planes()
            .iter()
            .map(|p| p[start..end].to_vec())
            .collect(),
    )
}

/// A deterministic test signal: a different pair of tones on each channel plus a little
/// pseudo-random noise, peaking near `peak`.
pub fn test_signal(channels: usize, rate_hz: u32, frames: usize, peak: f32) -> Block {
    let mut seed = 0x2545_f491_u32;
    let planes = (0..channels)
        .map(|c| {
            let (f1, f2) = (220.0 * (c + 1) as f64, 3_100.0 + 450.0 * c as f64);
            (0..frames)
                .map(|i| {
                    seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    let noise = (seed >> 8) as f64 / f64::from(1u32 << 24) - 0.5;
                    let t = i as f64 / f64::from(rate_hz);
                    let tones = 0.6 * (std::f64::consts::TAU * f1 * t).sin()
                        + 0.3 * (std::f64::consts::TAU * f2 * t).sin();
                    (f64::from(peak) * (tones + 0.1 * noise)) as f32
                })
                .collect()
        })
        .collect();
    Block::from_planes(planes)
}

/// `channels` identical planes of a sine at `freq_hz` and `amplitude` (peak), sampled at
/// `rate_hz`.
pub fn sine(freq_hz: f64, amplitude: f64, rate_hz: u32, frames: usize, channels: usize) -> Block {
    let plane: Vec<f32> = (0..frames)
        .map(|i| {
            (amplitude * (std::f64::consts::TAU * freq_hz * i as f64 / f64::from(rate_hz)).sin())
                as f32
        })
        .collect();
    Block::from_planes(vec![plane; channels])
}

/// Largest absolute sample-wise difference; panics when the shapes differ.
pub fn max_difference(a: &Block, b: &Block) -> f32 {
    assert_eq!(
        (a.channels(), a.frames()),
        (b.channels(), b.frames()),
        "shapes differ"
    );
    a.planes()
        .iter()
        .flatten()
        .zip(b.planes().iter().flatten())
        .fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

/// Largest absolute sample.
pub fn peak(block: &Block) -> f32 {
    block
        .planes()
        .iter()
        .flatten()
        .fold(0.0, |m, s| m.max(s.abs()))
}
