//! `Gain` changed while running: live volume ramps, engaging and draining the limiter
//! without losing a frame, and refused values.

#![allow(clippy::unwrap_used)]

mod common;

use common::{peak, sine, slice};
use dsp::gain::CEILING;
use dsp::{Block, Gain, Processor};

const RATE_HZ: u32 = 48_000;

/// Feeds `input` in 480-frame blocks, calling `change` before block `at`.
fn run_with_change(input: &Block, at: usize, change: impl FnOnce(&mut Gain)) -> Block {
    let mut gain = Gain::try_new(0.5, input.channels(), RATE_HZ).unwrap();
    let mut change = Some(change);
    let mut output = Block::new(input.channels());
    let mut piece = Block::default();
    for (index, start) in (0..input.frames()).step_by(480).enumerate() {
        if index == at {
            (change.take().unwrap())(&mut gain);
        }
        let end = (start + 480).min(input.frames());
        let chunk = slice(input, start, end);
        gain.process(&chunk, &mut piece);
        output.append(&piece);
    }
    gain.flush(&mut piece);
    output.append(&piece);
    output
}

#[test]
fn a_live_volume_change_ramps_without_a_jump() {
    let input = sine(1000.0, 0.5, RATE_HZ, 9600, 2);
    let output = run_with_change(&input, 10, |g| g.set_volume(1.0).unwrap());
    assert_eq!(output.frames(), input.frames());
    let largest_step = |p: &[f32]| {
        p.windows(2)
            .map(|w| (w[1] - w[0]).abs())
            .fold(0.0, f32::max)
    };
    // The output's steepest step is the input's at full volume, never a jump on top.
    assert!(largest_step(output.plane(0)) <= largest_step(input.plane(0)) * 1.001);
    assert!(
        (peak(&Block::from_planes(vec![output.plane(0)[..4800].to_vec()])) - 0.25).abs() < 1e-3
    );
    assert!((peak(&Block::from_planes(vec![output.plane(0)[6000..].to_vec()])) - 0.5).abs() < 1e-3);
}

#[test]
fn boosting_live_engages_the_limiter_and_loses_no_frame() {
    let input = sine(1000.0, 1.0, RATE_HZ, 48_000, 2);
    let output = run_with_change(&input, 20, |g| g.set_volume(2.0).unwrap());
    assert_eq!(output.frames(), input.frames());
    assert!(peak(&output) <= CEILING, "limited: {}", peak(&output));
    let before = &output.plane(0)[..9000];
    assert!(
        before
            .iter()
            .zip(input.plane(0))
            .all(|(o, i)| (o - i * 0.5).abs() < 1e-6)
    );
}

#[test]
fn returning_to_unity_drains_the_limiter_in_order() {
    let input = sine(1000.0, 0.25, RATE_HZ, 19_200, 2);
    let mut gain = Gain::try_new(2.0, 2, RATE_HZ).unwrap();
    let mut output = Block::new(2);
    let mut piece = Block::default();
    for (index, start) in (0..input.frames()).step_by(960).enumerate() {
        if index == 5 {
            gain.set_volume(1.0).unwrap();
        }
        let chunk = Block::from_planes(
            input
                .planes()
                .iter()
                .map(|p| p[start..start + 960].to_vec())
                .collect(),
        );
        gain.process(&chunk, &mut piece);
        output.append(&piece);
    }
    assert!(
        gain.is_unity(),
        "the limiter left the path once back at unity"
    );
    gain.flush(&mut piece);
    output.append(&piece);
    assert_eq!(output.frames(), input.frames());
    let tail = &output.plane(0)[10_000..];
    assert!(
        tail.iter()
            .zip(&input.plane(0)[10_000..])
            .all(|(o, i)| o == i),
        "unity after the ramp"
    );
}

#[test]
fn live_volume_out_of_range_is_refused() {
    let mut gain = Gain::try_new(1.0, 2, RATE_HZ).unwrap();
    assert!(gain.set_volume(2.5).is_err());
    assert_eq!(gain.volume(), 1.0);
}
