//! Live changes seen in the audio: a rate splice has no jump, no dip and the exact
//! length, an EQ boost is limited rather than clipped, and stages made neutral by a
//! change leave the chain.

#![allow(clippy::unwrap_used)]
mod common;
mod tempo_support;

use std::f64::consts::PI;

use common::sine;
use dsp::eq::EqPreset;
use dsp::gain::CEILING;
use dsp::{Block, Chain, ChainSpec, Filters, Speaker};
use tempo_support::zero_crossing_hz;

const RATE_HZ: u32 = 48_000;
const BLOCK: usize = 960;
/// The change comes before block 17 (input frame 16 320: 149.6 cycles of 440 Hz at
/// 48 kHz, so not at a zero crossing where a jump would hide).
const CHANGE_AT_BLOCK: usize = 17;
const AMPLITUDE: f64 = 0.5;

fn chain(input_rate_hz: u32, filters: Filters) -> Chain {
    Chain::try_new(&ChainSpec {
        input_rate_hz,
        input_layout: Speaker::default_layout(2),
        output_rate_hz: RATE_HZ,
        output_channels: 2,
        filters,
    })
    .unwrap()
}

/// Feeds `input` in `BLOCK`-frame blocks, applying `change` before `CHANGE_AT_BLOCK`,
/// then flushes. Returns the left channel and the stage count seen after each block.
fn run(chain: &mut Chain, input: &Block, change: &Filters) -> (Vec<f32>, Vec<usize>) {
    let (mut output, mut stages) = (Block::new(2), Vec::new());
    for (index, start) in (0..input.frames()).step_by(BLOCK).enumerate() {
        if index == CHANGE_AT_BLOCK {
            chain.update(change).unwrap();
        }
        let end = (start + BLOCK).min(input.frames());
        let planes = input.planes().iter().map(|p| p[start..end].to_vec());
        output.append(chain.process(&Block::from_planes(planes.collect())));
        stages.push(chain.stage_count());
    }
    output.append(chain.flush());
    (output.plane(0).to_vec(), stages)
}

fn largest_step(samples: &[f32]) -> f64 {
    samples
        .windows(2)
        .map(|w| f64::from((w[1] - w[0]).abs()))
        .fold(0.0, f64::max)
}

/// The largest step a sine of `amplitude` at `freq_hz` makes between two samples:
/// `2·A·sin(π·f / fs)`, for samples straddling a zero crossing symmetrically.
fn sine_step(amplitude: f64, freq_hz: f64) -> f64 {
    2.0 * amplitude * (PI * freq_hz / f64::from(RATE_HZ)).sin()
}

/// The smallest and largest peak over windows of 5 ms (two cycles of 440 Hz).
fn envelope_range(samples: &[f32]) -> (f64, f64) {
    samples
        .chunks_exact(240)
        .map(|w| w.iter().fold(0.0f64, |m, s| m.max(f64::from(s.abs()))))
        .fold((f64::MAX, 0.0), |(lo, hi), p| (lo.min(p), hi.max(p)))
}

/// A 440 Hz tone whose rate goes from 1.0 to 1.25 at input frame 16 320, from a source
/// at `input_rate_hz`: checks the splice in the audio and returns the output.
fn check_rate_splice(input_rate_hz: u32) {
    let frames = 2 * input_rate_hz as usize;
    let input = sine(440.0, AMPLITUDE, input_rate_hz, frames, 2);
    let mut chain = chain(input_rate_hz, Filters::default());
    let faster = Filters {
        rate: 1.25,
        ..Filters::default()
    };
    let (output, _) = run(&mut chain, &input, &faster);
    let at = (CHANGE_AT_BLOCK * BLOCK) as f64;
    let out_rate = f64::from(RATE_HZ) / f64::from(input_rate_hz);
    // Exact length: the first part at 1.0, the rest 1.25 times as fast.
    let expected = at * out_rate + (frames as f64 - at) * out_rate / 1.25;
    assert!(
        (output.len() as f64 - expected).abs() <= 2.0,
        "{input_rate_hz} Hz: {} frames, expected {expected:.1}",
        output.len()
    );
    // No jump: no step beyond the steepest of the faster (550 Hz) tone, which also bounds
    // the 440 Hz part and a splice whose two sides are at most one old frame apart. The
    // 1 % covers the resamplers' passband ripple.
    let splice = (at * out_rate) as usize;
    let body = &output[..output.len() - 2000];
    let bound = sine_step(AMPLITUDE, 550.0) * 1.01;
    let step = largest_step(body);
    println!(
        "{input_rate_hz} Hz: largest step {:.4} of the bound",
        step / bound
    );
    assert!(step <= bound, "{input_rate_hz} Hz: step {step} > {bound}");
    // No dip or bump around the splice: every 5 ms keeps the tone's amplitude.
    let (low, high) = envelope_range(&output[splice - 4800..splice + 4800]);
    assert!(
        low > 0.98 * AMPLITUDE && high < 1.01 * AMPLITUDE,
        "{low}..{high}"
    );
    // The pitch before and after.
    let before = zero_crossing_hz(&output[2000..splice - 500], RATE_HZ);
    let after = zero_crossing_hz(&output[splice + 500..output.len() - 2000], RATE_HZ);
    assert!((before / 440.0 - 1.0).abs() < 0.01, "before {before} Hz");
    assert!((after / 550.0 - 1.0).abs() < 0.01, "after {after} Hz");
}

#[test]
fn a_live_rate_change_is_spliced_without_a_click() {
    check_rate_splice(RATE_HZ);
}

#[test]
fn a_live_rate_change_between_two_resamplers_is_spliced_without_a_click() {
    check_rate_splice(44_100);
}

#[test]
fn a_resampler_made_neutral_leaves_the_chain_and_the_audio_stays_whole() {
    let input = sine(440.0, AMPLITUDE, RATE_HZ, 96_000, 2);
    let mut chain = chain(
        RATE_HZ,
        Filters {
            rate: 1.25,
            ..Filters::default()
        },
    );
    let (output, stages) = run(&mut chain, &input, &Filters::default());
    assert_eq!(stages[CHANGE_AT_BLOCK - 1], 1);
    assert_eq!(*stages.last().unwrap(), 0, "identity resampling dropped");
    let at = (CHANGE_AT_BLOCK * BLOCK) as f64;
    let expected = at / 1.25 + (96_000.0 - at);
    assert!(
        (output.len() as f64 - expected).abs() <= 2.0,
        "{}",
        output.len()
    );
    // From frame 200 on: the onset of the stream, a sine starting from silence, rings.
    let step = largest_step(&output[200..output.len() - 2000]);
    assert!(step <= sine_step(AMPLITUDE, 550.0) * 1.01, "step {step}");
}

#[test]
fn eq_and_gain_made_neutral_leave_the_chain() {
    let input = sine(440.0, AMPLITUDE, RATE_HZ, 48_000, 2);
    let start = Filters {
        volume: 1.5,
        eq_preset: EqPreset::Voice,
        ..Filters::default()
    };
    let mut chain = chain(RATE_HZ, start);
    assert_eq!(chain.stage_count(), 2);
    let (output, stages) = run(&mut chain, &input, &Filters::default());
    assert_eq!(*stages.last().unwrap(), 0, "flat EQ and unity gain dropped");
    assert_eq!(output.len(), input.frames());
    let tail = output.len() - 4800;
    assert_eq!(
        &output[tail..],
        &input.plane(0)[tail..],
        "a bit-exact copy again"
    );
}

/// Length of the longest run of samples within 0.1 % of the peak.
fn longest_run_near_peak(samples: &[f32]) -> usize {
    let top = samples.iter().fold(0.0f32, |m, s| m.max(s.abs()));
    let mut run = 0;
    let mut longest = 0;
    for s in samples {
        run = if s.abs() >= top * 0.999 { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    longest
}

#[test]
fn a_bass_boost_on_a_full_scale_tone_is_limited_not_clipped() {
    let input = sine(100.0, 1.0, RATE_HZ, 96_000, 2);
    let mut chain = chain(
        RATE_HZ,
        Filters {
            eq_preset: EqPreset::BassBoost,
            ..Filters::default()
        },
    );
    let mut output = chain.process(&input).clone();
    output.append(chain.flush());
    assert_eq!(output.frames(), input.frames());
    let plane = output.plane(0);
    let peak = plane.iter().fold(0.0f32, |m, s| m.max(s.abs()));
    assert!(peak <= CEILING, "peak {peak}");
    // A 100 Hz sine stays within 0.1 % of its crest for about 7 samples; a clipped one
    // (bass boost lifts it by almost 6 dB) would sit at the ceiling for about 150.
    let run = longest_run_near_peak(&plane[24_000..]);
    assert!(run <= 14, "{run} samples at the peak");
    assert!(
        peak > 0.99 * CEILING,
        "the limiter holds the tone at the ceiling"
    );
}

#[test]
fn a_live_eq_boost_engages_the_limiter() {
    let input = sine(100.0, 1.0, RATE_HZ, 96_000, 2);
    let mut chain = chain(RATE_HZ, Filters::default());
    let boost = Filters {
        eq_bands: vec![dsp::EqBand {
            freq_hz: 100.0,
            gain_db: 12.0,
            q: 1.0,
        }],
        ..Filters::default()
    };
    let (output, _) = run(&mut chain, &input, &boost);
    assert_eq!(output.len(), input.frames());
    let after = &output[CHANGE_AT_BLOCK * BLOCK..];
    let peak = after.iter().fold(0.0f32, |m, s| m.max(s.abs()));
    assert!(peak <= CEILING, "peak {peak}");
    assert!(longest_run_near_peak(&output[48_000..]) <= 14);
}
