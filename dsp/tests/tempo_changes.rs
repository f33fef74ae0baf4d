//! `Tempo::set_speed` mid-stream: click-free, exact piecewise length, independent of
//! block sizes, and safe however abruptly and often the speed jumps.

#![allow(clippy::unwrap_used)]

mod tempo_support;

use std::f64::consts::TAU;

use dsp::{Block, Processor, Tempo};
use tempo_support::{music_like, sine};

const RATE_HZ: u32 = 48_000;

/// Feeds `input` in chunks of `chunk`, applying `changes` (input frame, speed) on the way.
fn stretch_with_changes(input: &Block, chunk: usize, changes: &[(usize, f64)]) -> Block {
    let mut tempo = Tempo::try_new(1.0, input.channels(), RATE_HZ).unwrap();
    let mut output = Block::new(input.channels());
    let mut out = Block::default();
    let mut bounds: Vec<usize> = (0..input.frames()).step_by(chunk).collect();
    bounds.extend(changes.iter().map(|c| c.0));
    bounds.push(input.frames());
    bounds.sort_unstable();
    bounds.dedup();
    for pair in bounds.windows(2) {
        if let Some(&(_, speed)) = changes.iter().find(|c| c.0 == pair[0]) {
            tempo.set_speed(speed).unwrap();
        }
        let piece = Block::from_planes(
            input
                .planes()
                .iter()
                .map(|p| p[pair[0]..pair[1]].to_vec())
                .collect(),
        );
        tempo.process(&piece, &mut out);
        output.append(&out);
    }
    tempo.flush(&mut out);
    output.append(&out);
    output
}

#[test]
fn live_speed_changes_are_click_free_exact_and_chunking_proof() {
    let rate = RATE_HZ as usize;
    let tone = sine(440.0, RATE_HZ, 4.0);
    let input = Block::from_planes(vec![tone.clone(), tone.iter().map(|s| -0.5 * s).collect()]);
    let changes = [(rate, 1.5), (2 * rate + 333, 0.75), (3 * rate, 1.0)];
    let output = stretch_with_changes(&input, 1024, &changes);
    let expected =
        rate as f64 + (rate as f64 + 333.0) / 1.5 + (rate as f64 - 333.0) / 0.75 + rate as f64;
    assert_eq!(output.frames(), (expected + 0.5).floor() as usize);
    // A click would be a step larger than the tone itself ever makes.
    let tone_step = 0.5 * TAU * 440.0 / f64::from(RATE_HZ);
    let body = &output.plane(0)[..output.frames() - rate / 10];
    let step = body
        .windows(2)
        .map(|w| f64::from((w[1] - w[0]).abs()))
        .fold(0.0, f64::max);
    println!(
        "largest step across speed changes: {:.3} of the tone's",
        step / tone_step
    );
    assert!(step < 1.05 * tone_step, "step {step} vs {tone_step}");
    for chunk in [1, 100, 4099] {
        assert_eq!(
            stretch_with_changes(&input, chunk, &changes),
            output,
            "chunk {chunk}"
        );
    }
}

/// `round(Σ frames fed at each speed / speed)` for a stream starting at speed 1.
fn piecewise_frames(total: usize, changes: &[(usize, f64)]) -> usize {
    let (mut owed, mut from, mut speed) = (0.0, 0, 1.0);
    for &(at, next) in changes {
        owed += (at - from) as f64 / speed;
        (from, speed) = (at, next);
    }
    owed += (total - from) as f64 / speed;
    (owed + 0.5 + 1e-9).floor() as usize
}

#[test]
fn abrupt_and_frequent_speed_changes_stay_exact() {
    let input = Block::from_planes(vec![
        music_like(RATE_HZ, 3.0, 5),
        music_like(RATE_HZ, 3.0, 6),
    ]);
    let mut changes = vec![(1000, 4.0), (30_000, 0.25), (30_001, 4.0), (30_500, 0.3)];
    // Then a change every 3 ms, sweeping the whole range.
    changes.extend((0..300).map(|k| {
        (
            40_000 + 144 * k,
            0.25 + 3.75 * ((k * 37) % 100) as f64 / 99.0,
        )
    }));
    changes.extend([
        (100_000, 2.0),
        (100_010, 0.5),
        (120_000, 1.0),
        (130_000, 1.7),
    ]);
    let output = stretch_with_changes(&input, 1024, &changes);
    assert_eq!(output.frames(), piecewise_frames(input.frames(), &changes));
    assert!(output.planes().iter().flatten().all(|s| s.abs() < 1.0));
    for chunk in [1, 7, 4099] {
        assert_eq!(
            stretch_with_changes(&input, chunk, &changes),
            output,
            "chunk {chunk}"
        );
    }
}

#[test]
fn jumping_between_the_extreme_speeds_at_random_block_sizes_is_safe() {
    let input = music_like(RATE_HZ, 2.0, 9);
    let mut output = Block::default();
    for trial in 0..10u32 {
        let mut tempo = Tempo::try_new(4.0, 1, RATE_HZ).unwrap();
        let (mut state, mut start, mut frames) = (trial.wrapping_mul(2_654_435_761), 0, 0);
        let mut changes = Vec::new();
        while start < input.len() {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let end = (start + 1 + (state >> 20) as usize % 3000).min(input.len());
            let speed = if state & 0x100 == 0 { 4.0 } else { 0.25 };
            if speed != tempo.speed() {
                changes.push((start, speed));
            }
            tempo.set_speed(speed).unwrap();
            let piece = Block::from_planes(vec![input[start..end].to_vec()]);
            tempo.process(&piece, &mut output);
            (start, frames) = (end, frames + output.frames());
        }
        tempo.flush(&mut output);
        // The stream started at 4, not 1: count its first stretch at that speed.
        let owed = piecewise_frames(input.len(), &[[(0, 4.0)].as_slice(), &changes].concat());
        assert_eq!(frames + output.frames(), owed, "trial {trial}");
    }
}
