//! Live changes leave the exact result: pitch changes keep the duration, a boost changed
//! to a cut releases the limiter, and `reset` or `flush` leave a chain that behaves as a
//! freshly built one.

#![allow(clippy::unwrap_used)]

mod common;

use common::{sine, slice};
use dsp::eq::{EqBand, EqPreset};
use dsp::{Block, Chain, ChainSpec, Filters, Speaker};

const RATE_HZ: u32 = 48_000;
const BLOCK: usize = 960;
const FRAMES: usize = 96_000;
/// The first change comes at 200 ms.
const FIRST_CHANGE: usize = 9_600;

fn chain(filters: Filters) -> Chain {
    Chain::try_new(&ChainSpec {
        input_rate_hz: RATE_HZ,
        input_layout: Speaker::default_layout(2),
        output_rate_hz: RATE_HZ,
        output_channels: 2,
        filters,
    })
    .unwrap()
}

fn filters(rate: f64, pitch: f64, speed: f64) -> Filters {
    Filters {
        rate,
        pitch,
        speed,
        ..Filters::default()
    }
}

/// Feeds `input` in `BLOCK`-frame blocks, applying each change before the block that
/// starts at its frame, then flushes; returns everything that came out.
fn run(chain: &mut Chain, input: &Block, changes: &[(usize, Filters)]) -> Block {
    let mut output = Block::new(input.channels());
    for start in (0..input.frames()).step_by(BLOCK) {
        for (_, change) in changes.iter().filter(|(at, _)| *at == start) {
            chain.update(change).unwrap();
        }
        let end = (start + BLOCK).min(input.frames());
        output.append(chain.process(&slice(input, start, end)));
    }
    output.append(chain.flush());
    output
}

/// The output length the filters ask for: each stretch of input between two changes
/// lasts `frames / (speed × rate)`.
fn expected_frames(initial: &Filters, changes: &[(usize, Filters)]) -> f64 {
    let mut bounds = vec![(0, initial)];
    bounds.extend(changes.iter().map(|(at, f)| (*at, f)));
    let ends = bounds.iter().skip(1).map(|(at, _)| *at).chain([FRAMES]);
    bounds
        .iter()
        .zip(ends)
        .map(|((start, f), end)| (end - start) as f64 / f.tempo_factor())
        .sum()
}

/// Runs a tone from `initial` through `changes` and checks the output length.
fn check_length(initial: Filters, changes: &[(usize, Filters)]) {
    let input = sine(440.0, 0.5, RATE_HZ, FRAMES, 2);
    let output = run(&mut chain(initial.clone()), &input, changes);
    let expected = expected_frames(&initial, changes);
    let error = (output.frames() as f64 - expected).abs();
    assert!(
        error <= 2.0,
        "{} frames, {expected} expected",
        output.frames()
    );
}

fn largest_difference(a: &Block, b: &Block) -> f32 {
    assert_eq!(a.frames(), b.frames(), "lengths differ");
    let pairs = a.planes().iter().zip(b.planes());
    pairs
        .flat_map(|(x, y)| x.iter().zip(y).map(|(p, q)| (p - q).abs()))
        .fold(0.0, f32::max)
}

/// Checks that `used` now turns a tone into what a chain freshly built for `filters` does.
fn check_matches_fresh(used: &mut Chain, filters: Filters) {
    let input = sine(440.0, 0.5, RATE_HZ, 24_000, 2);
    let output = run(used, &input, &[]);
    let fresh = run(&mut chain(filters), &input, &[]);
    let difference = largest_difference(&output, &fresh);
    assert!(
        difference < 1e-6,
        "differs from a fresh chain by {difference}"
    );
}

#[test]
fn a_pitch_change_back_to_one_keeps_the_duration() {
    for pitch in [2.0, 0.5] {
        let back = [(FIRST_CHANGE, filters(1.0, 1.0, 1.0))];
        check_length(filters(1.0, pitch, 1.0), &back);
        check_length(
            filters(1.0, 1.0, 1.0),
            &[(FIRST_CHANGE, filters(1.0, pitch, 1.0))],
        );
    }
}

#[test]
fn two_pitch_changes_20_ms_apart_keep_the_duration() {
    let changes = [
        (FIRST_CHANGE, filters(1.0, 2.0, 1.0)),
        (FIRST_CHANGE + BLOCK, filters(1.0, 0.5, 1.0)),
    ];
    check_length(Filters::default(), &changes);
}

#[test]
fn a_pitch_toggled_every_40_ms_keeps_the_duration() {
    let changes: Vec<(usize, Filters)> = (FIRST_CHANGE..86_400)
        .step_by(2 * BLOCK)
        .enumerate()
        .map(|(i, at)| (at, filters(1.0, if i % 2 == 0 { 2.0 } else { 0.5 }, 1.0)))
        .collect();
    check_length(Filters::default(), &changes);
}

#[test]
fn rate_pitch_and_speed_changes_give_the_sum_of_the_parts() {
    let changes = [
        (FIRST_CHANGE, filters(1.25, 2.0, 1.0)),
        (FIRST_CHANGE + BLOCK, filters(0.8, 0.5, 1.5)),
        (FIRST_CHANGE + 4 * BLOCK, filters(1.0, 1.5, 0.75)),
        (60 * BLOCK, filters(1.5, 1.0, 1.0)),
    ];
    check_length(filters(1.0, 0.8, 1.25), &changes);
}

#[test]
fn a_boost_changed_to_a_cut_releases_the_limiter() {
    let input = sine(1000.0, 1.0, RATE_HZ, FRAMES, 2);
    let band = EqBand {
        freq_hz: 100.0,
        gain_db: -6.0,
        q: 1.0,
    };
    let cut = Filters {
        eq_bands: vec![band],
        ..Filters::default()
    };
    let boost = Filters {
        eq_preset: EqPreset::BassBoost,
        ..Filters::default()
    };
    let live = run(&mut chain(boost), &input, &[(FIRST_CHANGE, cut.clone())]);
    let fresh = run(&mut chain(cut), &input, &[]);
    let (live, fresh) = (slice(&live, 48_000, FRAMES), slice(&fresh, 48_000, FRAMES));
    let difference = largest_difference(&live, &fresh);
    assert!(difference < 1e-4, "the cut is still limited: {difference}");
}

#[test]
fn reset_with_a_queued_rate_change_matches_a_fresh_chain() {
    let input = sine(440.0, 0.5, RATE_HZ, BLOCK, 2);
    let mut used = chain(Filters::default());
    used.update(&filters(1.25, 1.0, 1.0)).unwrap();
    let _ = used.process(&input);
    // The splice to 1.25 is running, so this one waits.
    used.update(&filters(1.5, 1.0, 1.0)).unwrap();
    used.reset();
    assert_eq!(used.filters().rate, 1.5);
    check_matches_fresh(&mut used, filters(1.5, 1.0, 1.0));
}

#[test]
fn reset_during_a_splice_matches_a_fresh_chain() {
    let input = sine(440.0, 0.5, RATE_HZ, BLOCK, 2);
    let mut used = chain(Filters::default());
    let _ = used.process(&input);
    used.update(&filters(1.25, 1.0, 1.0)).unwrap();
    let _ = used.process(&input);
    used.reset();
    check_matches_fresh(&mut used, filters(1.25, 1.0, 1.0));
}

#[test]
fn a_second_stream_after_flush_matches_a_fresh_chain() {
    let input = sine(440.0, 0.5, RATE_HZ, 24_000, 2);
    let mut used = chain(Filters::default());
    let changes = [
        (BLOCK, filters(1.25, 1.0, 1.0)),
        (2 * BLOCK, filters(1.5, 2.0, 1.0)),
    ];
    let _ = run(&mut used, &input, &changes);
    check_matches_fresh(&mut used, filters(1.5, 2.0, 1.0));
}
