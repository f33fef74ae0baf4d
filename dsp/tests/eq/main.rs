//! The equaliser against the RBJ cookbook: measured sine responses match both
//! `Equalizer::response_db` and the cookbook formulas written out here independently;
//! flat is bit-exact; live changes crossfade without clicks; bad settings are named.

#![allow(clippy::unwrap_used)]

#[path = "../common/mod.rs"]
mod common;
mod rbj;

use std::f64::consts::TAU;

use common::sine;
use dsp::{Block, ConfigError, EqBand, EqPreset, Equalizer, Processor};
use rbj::{Rbj, spec_filters};

const RATE_HZ: u32 = 48_000;

/// Frequencies every preset is measured at.
const PROBES_HZ: [f64; 6] = [50.0, 100.0, 1_000.0, 2_500.0, 8_000.0, 12_000.0];

fn run(eq: &mut Equalizer, input: &Block, chunk: usize) -> Block {
    let mut output = Block::new(input.channels());
    let (mut piece, mut out) = (Block::default(), Block::default());
    let mut start = 0;
    while start < input.frames() {
        let end = start.saturating_add(chunk).min(input.frames());
        piece.reset_to(input.channels());
        for (dst, src) in piece.planes_mut().iter_mut().zip(input.planes()) {
            dst.extend_from_slice(&src[start..end]);
        }
        eq.process(&piece, &mut out);
        output.append(&out);
        start = end;
    }
    eq.flush(&mut out);
    output.append(&out);
    output
}

fn rms(samples: &[f32]) -> f64 {
    (samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len() as f64).sqrt()
}

/// Steady-state gain in dB of `eq` for a sine at `freq`: RMS over 0.5 s (a whole number
/// of periods for every probe) after 0.5 s of settling.
fn measured_db(eq: &mut Equalizer, freq: f64) -> f64 {
    let input = sine(freq, 0.25, RATE_HZ, RATE_HZ as usize, 2);
    let output = run(eq, &input, 1024);
    let window = RATE_HZ as usize / 2..RATE_HZ as usize;
    let ratio = rms(&output.plane(1)[window.clone()]) / rms(&input.plane(1)[window]);
    20.0 * ratio.log10()
}

#[test]
fn presets_match_the_cookbook_and_their_analytic_response() {
    for preset in EqPreset::ALL {
        let mut eq = Equalizer::try_new(preset, &[], 2, RATE_HZ).unwrap();
        for freq in PROBES_HZ {
            let measured = measured_db(&mut eq, freq);
            let analytic = eq.response_db(freq);
            let cookbook: f64 = spec_filters(preset)
                .iter()
                .map(|f| f.response_db(freq, f64::from(RATE_HZ)))
                .sum();
            println!(
                "{preset:>10} {freq:>6} Hz: measured {measured:+.4} dB, response_db {analytic:+.4}, \
                 cookbook {cookbook:+.4} (errors {:.4}, {:.4})",
                (measured - analytic).abs(),
                (measured - cookbook).abs()
            );
            assert!((measured - analytic).abs() <= 0.1, "{preset} {freq} Hz");
            assert!((measured - cookbook).abs() <= 0.1, "{preset} {freq} Hz");
            assert!((analytic - cookbook).abs() <= 0.01, "{preset} {freq} Hz");
        }
    }
}

#[test]
fn preset_corner_values_are_the_spec() {
    let db = |preset, freq| {
        Equalizer::try_new(preset, &[], 1, RATE_HZ)
            .unwrap()
            .response_db(freq)
    };
    assert!((db(EqPreset::BassBoost, 20.0) - 6.0).abs() < 0.1);
    assert!(
        (db(EqPreset::BassBoost, 100.0) - 3.0).abs() < 0.05,
        "shelf midpoint"
    );
    assert!(
        (db(EqPreset::Treble, 8_000.0) - 3.0).abs() < 0.05,
        "shelf midpoint"
    );
    assert!((db(EqPreset::Treble, 20_000.0) - 6.0).abs() < 0.2);
    assert!(
        (db(EqPreset::Voice, 80.0) + 3.0 + 2.9).abs() < 0.3,
        "-3 dB HP + shelf"
    );
    assert!(db(EqPreset::Voice, 20.0) < -20.0);
}

#[test]
fn a_12_db_band_raises_its_tone_by_12_db() {
    let band = EqBand {
        freq_hz: 1_000.0,
        gain_db: 12.0,
        q: 1.0,
    };
    let mut eq = Equalizer::try_new(EqPreset::Flat, &[band], 2, RATE_HZ).unwrap();
    let measured = measured_db(&mut eq, 1_000.0);
    println!("+12 dB band at 1 kHz: measured {measured:+.4} dB");
    assert!((measured - 12.0).abs() <= 0.1, "{measured}");
    assert!((eq.response_db(1_000.0) - 12.0).abs() < 1e-9);
}

#[test]
fn bands_follow_the_preset_and_match_the_cookbook() {
    let bands = [
        EqBand {
            freq_hz: 300.0,
            gain_db: -6.0,
            q: 2.0,
        },
        EqBand {
            freq_hz: 5_000.0,
            gain_db: 9.0,
            q: 0.5,
        },
    ];
    let mut eq = Equalizer::try_new(EqPreset::Voice, &bands, 2, RATE_HZ).unwrap();
    let mut filters = spec_filters(EqPreset::Voice);
    filters.extend(
        bands
            .iter()
            .map(|b| Rbj::Peaking(b.freq_hz, b.gain_db, b.q)),
    );
    for freq in [50.0, 300.0, 1_000.0, 5_000.0, 12_000.0] {
        let cookbook: f64 = filters.iter().map(|f| f.response_db(freq, 48_000.0)).sum();
        let measured = measured_db(&mut eq, freq);
        assert!(
            (measured - cookbook).abs() <= 0.1,
            "{freq} Hz: {measured} vs {cookbook}"
        );
        assert!((eq.response_db(freq) - cookbook).abs() <= 0.01);
    }
}

#[test]
fn coefficients_follow_the_processing_rate() {
    for rate in [22_050, 44_100, 96_000] {
        let eq = Equalizer::try_new(EqPreset::Voice, &[], 1, rate).unwrap();
        for freq in [100.0, 2_500.0, 8_000.0] {
            let cookbook: f64 = spec_filters(EqPreset::Voice)
                .iter()
                .map(|f| f.response_db(freq, f64::from(rate)))
                .sum();
            assert!(
                (eq.response_db(freq) - cookbook).abs() < 0.01,
                "{rate} {freq}"
            );
        }
    }
}

#[test]
fn flat_and_treble_without_room_are_bit_exact() {
    let mut seed = 7u32;
    let plane: Vec<f32> = (0..10_000)
        .map(|_| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        })
        .collect();
    let input = Block::from_planes(vec![plane.clone(), plane]);
    let mut flat = Equalizer::try_new(EqPreset::Flat, &[], 2, RATE_HZ).unwrap();
    assert_eq!(run(&mut flat, &input, 333), input);
    // At 16 kHz the 8 kHz treble shelf would sit at Nyquist: it is left out.
    let mut treble = Equalizer::try_new(EqPreset::Treble, &[], 2, 16_000).unwrap();
    assert!(treble.is_bypass());
    assert_eq!(run(&mut treble, &input, 1000), input);
}

#[test]
fn bad_settings_name_their_field() {
    let band = |freq_hz, gain_db, q| EqBand {
        freq_hz,
        gain_db,
        q,
    };
    let ok = band(1_000.0, 3.0, 1.0);
    let message = |bands: &[EqBand], rate| {
        Equalizer::try_new(EqPreset::Flat, bands, 2, rate)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        message(&[ok, ok, band(1_000.0, 30.0, 1.0)], RATE_HZ),
        "eq_bands[2].gain_db = 30 is outside -24..=24"
    );
    assert_eq!(
        message(&[band(10.0, 3.0, 1.0)], RATE_HZ),
        "eq_bands[0].freq_hz = 10 is outside 20..=20000"
    );
    assert_eq!(
        message(&[ok, band(1_000.0, 3.0, 11.0)], RATE_HZ),
        "eq_bands[1].q = 11 is outside 0.1..=10"
    );
    assert_eq!(
        message(&[band(6_000.0, 3.0, 1.0)], 11_025),
        "eq_bands[0].freq_hz = 6000 is outside 20..=5512.5"
    );
    assert_eq!(
        message(&[ok; 17], RATE_HZ),
        "eq_bands = 17 is outside 0..=16"
    );
    assert!(matches!(
        Equalizer::try_new(EqPreset::Voice, &[], 0, RATE_HZ),
        Err(ConfigError::Channels { .. })
    ));
    assert!(matches!(
        Equalizer::try_new(EqPreset::Voice, &[], 2, 4_000),
        Err(ConfigError::SampleRate { .. })
    ));
}

/// Largest step between consecutive samples of `samples`.
fn max_step(samples: &[f32]) -> f32 {
    samples
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .fold(0.0, f32::max)
}

#[test]
fn live_changes_crossfade_without_clicks() {
    let bass = EqBand {
        freq_hz: 60.0,
        gain_db: 12.0,
        q: 0.7,
    };
    let changes: [(EqPreset, &[EqBand], EqPreset, &[EqBand]); 4] = [
        (EqPreset::Flat, &[], EqPreset::BassBoost, &[]),
        (EqPreset::BassBoost, &[], EqPreset::Voice, &[]),
        (EqPreset::Voice, &[], EqPreset::Flat, &[bass]),
        (EqPreset::Treble, &[bass], EqPreset::Flat, &[]),
    ];
    let frames = RATE_HZ as usize;
    let switch = frames / 2 + 123;
    // Bass, mid and treble tones, so every filter has something to change.
    let tones = [(55.0, 0.3), (440.0, 0.2), (9_000.0, 0.05)];
    let plane: Vec<f32> = (0..frames)
        .map(|i| {
            let t = i as f64 / f64::from(RATE_HZ);
            tones
                .iter()
                .map(|&(f, a)| a * (TAU * f * t).sin())
                .sum::<f64>() as f32
        })
        .collect();
    let input = Block::from_planes(vec![plane]);
    let (head, tail) = split(&input, switch);
    for (from, from_bands, to, to_bands) in changes {
        let mut eq = Equalizer::try_new(from, from_bands, 1, RATE_HZ).unwrap();
        let mut before = run_open(&mut eq, &head);
        eq.set(to, to_bands).unwrap();
        let after = run_open(&mut eq, &tail);
        before.append(&after);
        let out = before.plane(0);
        // The signal's own largest step, in the old and in the new settings.
        let settled = max_step(&out[switch - 4_800..switch]).max(max_step(&out[switch + 4_800..]));
        let fade = max_step(&out[switch - 1..switch + 4_800]);
        println!("{from} -> {to}: largest step {fade:.5} in the fade, {settled:.5} settled");
        assert!(fade <= settled * 1.01, "{from} -> {to}: {fade} > {settled}");
    }
}

#[test]
fn a_change_during_a_crossfade_waits_for_it() {
    let input = sine(1_000.0, 0.5, RATE_HZ, 4_800, 1);
    let mut eq = Equalizer::try_new(EqPreset::Flat, &[], 1, RATE_HZ).unwrap();
    let band = |gain_db| EqBand {
        freq_hz: 1_000.0,
        gain_db,
        q: 1.0,
    };
    eq.set(EqPreset::Flat, &[band(6.0)]).unwrap();
    let mut out = Block::default();
    eq.process(&split(&input, 480).0, &mut out);
    eq.set(EqPreset::Flat, &[band(-6.0)]).unwrap();
    assert!(
        (eq.response_db(1_000.0) + 6.0).abs() < 1e-9,
        "reports the latest"
    );
    let rest = run_open(&mut eq, &split(&input, 480).1);
    out.append(&rest);
    let steady = rms(&out.plane(0)[3_840..]) / rms(&input.plane(0)[3_840..]);
    assert!((20.0 * steady.log10() + 6.0).abs() < 0.1);
    let settled = max_step(input.plane(0)) * 2.0; // +6 dB at most
    assert!(max_step(out.plane(0)) <= settled);
}

/// Processes `input` in one call, without flushing.
fn run_open(eq: &mut Equalizer, input: &Block) -> Block {
    let mut out = Block::default();
    eq.process(input, &mut out);
    out
}

fn split(block: &Block, at: usize) -> (Block, Block) {
    let part = |r: std::ops::Range<usize>| {
        Block::from_planes(
            block
                .planes()
                .iter()
                .map(|p| p[r.clone()].to_vec())
                .collect(),
        )
    };
    (part(0..at), part(at..block.frames()))
}

#[test]
fn a_crossfade_does_not_depend_on_chunking() {
    let input = sine(200.0, 0.5, RATE_HZ, 9_000, 2);
    let (head, tail) = split(&input, 1_000);
    let with_change = |chunk| {
        let mut eq = Equalizer::try_new(EqPreset::Voice, &[], 2, RATE_HZ).unwrap();
        let mut output = run_chunks(&mut eq, &head, chunk);
        eq.set(EqPreset::BassBoost, &[]).unwrap();
        output.append(&run(&mut eq, &tail, chunk));
        output
    };
    let whole = with_change(usize::MAX);
    for chunk in [1, 7, 100, 1_024] {
        assert_eq!(with_change(chunk), whole, "chunks of {chunk}");
    }
}

/// Processes `input` in chunks of `chunk` frames, without flushing.
fn run_chunks(eq: &mut Equalizer, input: &Block, chunk: usize) -> Block {
    let mut output = Block::new(input.channels());
    let mut start = 0;
    while start < input.frames() {
        let end = start.saturating_add(chunk).min(input.frames());
        let piece = split(&split(input, end).0, start).1;
        output.append(&run_open(eq, &piece));
        start = end;
    }
    output
}
