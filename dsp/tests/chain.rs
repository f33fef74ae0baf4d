//! The chain as a whole: which stages it builds, the bypass, the flushed tail, and live
//! filter changes that insert or retune stages without dropping or repeating a frame.

#![allow(clippy::unwrap_used)]
mod common;

use common::sine;
use dsp::eq::EqPreset;
use dsp::{Block, Chain, ChainSpec, Filters, Speaker};

const RATE_HZ: u32 = 48_000;

fn spec(layout: Vec<Speaker>, input_rate_hz: u32, filters: Filters) -> ChainSpec {
    ChainSpec {
        input_rate_hz,
        input_layout: layout,
        output_rate_hz: RATE_HZ,
        output_channels: 2,
        filters,
    }
}

fn stereo(filters: Filters) -> Chain {
    Chain::try_new(&spec(Speaker::default_layout(2), RATE_HZ, filters)).unwrap()
}

/// Feeds `input` in 960-frame blocks, applying each of `changes` in turn before block
/// `at`, then flushes.
fn run(chain: &mut Chain, input: &Block, at: usize, changes: &[Filters]) -> Block {
    let mut output = Block::new(2);
    for (index, start) in (0..input.frames()).step_by(960).enumerate() {
        if index == at {
            changes
                .iter()
                .for_each(|filters| chain.update(filters).unwrap());
        }
        let end = (start + 960).min(input.frames());
        let chunk = Block::from_planes(
            input
                .planes()
                .iter()
                .map(|p| p[start..end].to_vec())
                .collect(),
        );
        output.append(chain.process(&chunk));
    }
    output.append(chain.flush());
    output
}

fn largest_step(plane: &[f32]) -> f32 {
    plane
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .fold(0.0, f32::max)
}

fn rms(plane: &[f32]) -> f32 {
    (plane.iter().map(|s| s * s).sum::<f32>() / plane.len() as f32).sqrt()
}

#[test]
fn builds_only_the_stages_that_change_something() {
    let stereo_layout = Speaker::default_layout(2);
    let count = |s: ChainSpec| Chain::try_new(&s).unwrap().stage_count();
    let with = |f: Filters| spec(stereo_layout.clone(), RATE_HZ, f);
    assert_eq!(count(with(Filters::default())), 0);
    assert_eq!(
        count(spec(
            Speaker::default_layout(6),
            RATE_HZ,
            Filters::default()
        )),
        1
    );
    assert_eq!(
        count(spec(stereo_layout.clone(), 44_100, Filters::default())),
        1
    );
    assert_eq!(
        count(with(Filters {
            volume: 0.5,
            ..Filters::default()
        })),
        1
    );
    assert_eq!(
        count(with(Filters {
            speed: 1.5,
            ..Filters::default()
        })),
        1
    );
    assert_eq!(
        count(with(Filters {
            rate: 1.25,
            ..Filters::default()
        })),
        1,
        "varispeed is a resampler"
    );
    assert_eq!(
        count(with(Filters {
            pitch: 2.0,
            ..Filters::default()
        })),
        2,
        "resampler and tempo"
    );
    assert_eq!(
        count(with(Filters {
            eq_preset: EqPreset::Voice,
            ..Filters::default()
        })),
        1
    );
    assert_eq!(
        count(with(Filters {
            normalize_lufs: Some(-14.0),
            ..Filters::default()
        })),
        1
    );
    let mono = spec(
        Speaker::default_layout(1),
        22_050,
        Filters {
            volume: 1.5,
            ..Filters::default()
        },
    );
    assert_eq!(count(mono), 3);
}

#[test]
fn an_empty_chain_is_a_bypass() {
    let mut chain = stereo(Filters::default());
    assert!(chain.is_bypass());
    let input = sine(440.0, 0.5, RATE_HZ, 100, 2);
    assert!(std::ptr::eq(chain.process(&input), &input));
}

#[test]
fn invalid_specs_and_filters_are_refused() {
    let layout = Speaker::default_layout(2);
    assert!(Chain::try_new(&spec(layout.clone(), 4_000, Filters::default())).is_err());
    assert!(
        Chain::try_new(&spec(
            layout.clone(),
            RATE_HZ,
            Filters {
                volume: 2.5,
                ..Filters::default()
            }
        ))
        .is_err()
    );
    assert!(Chain::try_new(&spec(Vec::new(), RATE_HZ, Filters::default())).is_err());
    let mut chain = stereo(Filters::default());
    assert!(
        chain
            .update(&Filters {
                speed: 3.0,
                ..Filters::default()
            })
            .is_err()
    );
    assert_eq!(
        chain.filters(),
        &Filters::default(),
        "a refused update changes nothing"
    );
}

#[test]
fn flush_passes_each_tail_through_the_later_stages() {
    let filters = Filters {
        volume: 2.0,
        ..Filters::default()
    };
    let mut chain = Chain::try_new(&spec(Speaker::default_layout(1), 44_100, filters)).unwrap();
    let input = Block::from_planes(vec![vec![0.25; 44_100]]);
    let mut output = chain.process(&input).clone();
    output.append(chain.flush());
    assert_eq!((output.channels(), output.frames()), (2, 48_000));
    let middle = output.plane(1)[24_000];
    assert!(
        (middle - 0.5).abs() < 1e-4,
        "mono duplicated, then doubled: {middle}"
    );
}

#[test]
fn a_live_volume_change_ramps_in_without_a_jump_or_a_lost_frame() {
    // 441 Hz changed at block 17 (frame 16 320, 149.94 cycles): not at a zero crossing,
    // so an unramped jump would show as a step.
    let input = sine(441.0, 0.4, RATE_HZ, 48_000, 2);
    let mut chain = stereo(Filters::default());
    let louder = Filters {
        volume: 1.5,
        ..Filters::default()
    };
    let output = run(&mut chain, &input, 17, &[louder]);
    assert_eq!(output.frames(), input.frames());
    let plane = output.plane(0);
    assert!(largest_step(plane) <= largest_step(input.plane(0)) * 1.5 * 1.001);
    let (before, after) = (rms(&plane[..16_000]), rms(&plane[24_000..]));
    assert!(
        (after / before - 1.5).abs() < 0.01,
        "level ratio {}",
        after / before
    );
}

#[test]
fn a_live_eq_change_crossfades_without_a_click() {
    // 101 Hz changed at frame 16 320 (34.3 cycles): an unfaded switch would step.
    let input = sine(101.0, 0.3, RATE_HZ, 48_000, 2);
    let mut chain = stereo(Filters::default());
    let bass = Filters {
        eq_preset: EqPreset::BassBoost,
        ..Filters::default()
    };
    let output = run(&mut chain, &input, 17, &[bass]);
    assert_eq!(output.frames(), input.frames());
    let plane = output.plane(0);
    let boost = rms(&plane[30_000..]) / rms(&plane[..16_000]);
    assert!(boost > 1.3, "the preset took effect: x{boost}");
    assert!(largest_step(plane) <= largest_step(input.plane(0)) * boost * 1.05);
}

#[test]
fn a_live_speed_change_shortens_the_rest_of_the_stream() {
    let input = sine(440.0, 0.4, RATE_HZ, 96_000, 2);
    let mut chain = stereo(Filters::default());
    let faster = Filters {
        speed: 2.0,
        ..Filters::default()
    };
    let output = run(&mut chain, &input, 50, &[faster]);
    // 48 000 frames at 1x, then 48 000 frames at 2x.
    let expected = 48_000 + 24_000;
    assert!(
        output.frames().abs_diff(expected) <= 960,
        "{} frames",
        output.frames()
    );
}

#[test]
fn a_live_rate_change_swaps_the_resampler_without_losing_audio() {
    let input = sine(440.0, 0.4, RATE_HZ, 96_000, 2);
    let mut chain = Chain::try_new(&spec(
        Speaker::default_layout(2),
        44_100,
        Filters::default(),
    ))
    .unwrap();
    let faster = Filters {
        rate: 2.0,
        ..Filters::default()
    };
    let output = run(&mut chain, &input, 50, &[faster]);
    // 48 000 input frames at 44.1 -> 48 kHz, then 48 000 more played twice as fast.
    let expected = (48_000.0 * 48_000.0 / 44_100.0 * 1.5) as usize;
    assert!(
        output.frames().abs_diff(expected) <= 2,
        "{} frames, expected {expected}",
        output.frames()
    );
}

#[test]
fn two_rate_changes_before_one_block_lose_nothing() {
    let input = sine(440.0, 0.4, RATE_HZ, 96_000, 2);
    let mut chain = Chain::try_new(&spec(
        Speaker::default_layout(2),
        44_100,
        Filters::default(),
    ))
    .unwrap();
    let changes = [
        Filters {
            rate: 2.0,
            ..Filters::default()
        },
        Filters {
            rate: 1.5,
            ..Filters::default()
        },
    ];
    let output = run(&mut chain, &input, 50, &changes);
    // 48 000 frames at 44.1 -> 48 kHz, then 48 000 frames played 1.5 times as fast.
    let expected = 48_000.0 * 48_000.0 / 44_100.0 * (1.0 + 1.0 / 1.5);
    assert!(
        (output.frames() as f64 - expected).abs() <= 2.0,
        "{} frames, expected {expected:.0}",
        output.frames()
    );
}

#[test]
fn a_live_pitch_change_keeps_the_duration() {
    let input = sine(440.0, 0.4, RATE_HZ, 96_000, 2);
    let mut chain = stereo(Filters::default());
    let octave_up = Filters {
        pitch: 2.0,
        ..Filters::default()
    };
    let output = run(&mut chain, &input, 50, &[octave_up]);
    assert!(
        output.frames().abs_diff(input.frames()) <= 2,
        "{} frames",
        output.frames()
    );
}

#[test]
fn a_refused_update_changes_nothing_at_all() {
    let mut chain = Chain::try_new(&ChainSpec {
        input_rate_hz: 8_000,
        input_layout: Speaker::default_layout(2),
        output_rate_hz: 8_000,
        output_channels: 2,
        filters: Filters::default(),
    })
    .unwrap();
    // Speed and volume are fine; a 5 kHz band is above the 4 kHz Nyquist frequency.
    let mixed = Filters {
        speed: 1.5,
        volume: 0.5,
        eq_bands: vec![dsp::eq::EqBand {
            freq_hz: 5_000.0,
            gain_db: 3.0,
            q: 1.0,
        }],
        ..Filters::default()
    };
    assert!(chain.update(&mixed).is_err());
    assert_eq!(
        (chain.stage_count(), chain.filters()),
        (0, &Filters::default())
    );
}

#[test]
fn normalisation_cannot_be_switched_off_mid_stream() {
    let mut chain = stereo(Filters {
        normalize_lufs: Some(-14.0),
        ..Filters::default()
    });
    assert!(chain.update(&Filters::default()).is_err());
    assert!(
        chain
            .update(&Filters {
                normalize_lufs: Some(-20.0),
                ..Filters::default()
            })
            .is_ok()
    );
}

#[test]
fn varispeed_below_the_lowest_stream_rate_is_accepted() {
    let slow = Filters {
        rate: 0.5,
        pitch: 0.5,
        ..Filters::default()
    };
    let mut chain = Chain::try_new(&spec(Speaker::default_layout(1), 11_025, slow)).unwrap();
    let input = Block::from_planes(vec![vec![0.25; 11_025]]);
    let mut output = chain.process(&input).clone();
    output.append(chain.flush());
    // 1 s of source at rate 0.5 lasts 2 s (the pitch part keeps its duration). The
    // virtual rate 11 025 x 0.25 = 2756.25 Hz is rounded to whole hertz: 1e-4 relative.
    let error = output.frames().abs_diff(96_000) as f64 / 96_000.0;
    assert!(error <= 1e-4, "{} frames", output.frames());
}
