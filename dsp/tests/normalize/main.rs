//! The loudness normaliser, measured with `ebur128` on its output: quiet and loud
//! music-like input both land within 1 LU of the target under -1 dBTP, a steady tone gets
//! a steady gain, silence stays silent, and the output is time-aligned with the input.

#![allow(clippy::unwrap_used)]

mod signals;

use std::f64::consts::TAU;

use dsp::{Block, Normalizer, Processor};
use ebur128::{EbuR128, Mode};
use signals::{Noise, music, speech};

const RATE_HZ: u32 = 48_000;

/// Integrated loudness (LUFS) and true peak (dBTP) of `block`.
fn measure(block: &Block) -> (f64, f64) {
    let channels = block.channels() as u32;
    let mut meter = EbuR128::new(channels, RATE_HZ, Mode::I | Mode::TRUE_PEAK).unwrap();
    let planes: Vec<&[f32]> = block.planes().iter().map(Vec::as_slice).collect();
    meter.add_frames_planar_f32(&planes).unwrap();
    let peak = (0..channels)
        .map(|c| meter.true_peak(c).unwrap())
        .fold(0.0, f64::max);
    (meter.loudness_global().unwrap(), 20.0 * peak.log10())
}

fn scaled(block: &Block, gain: f64) -> Block {
    let planes = block.planes().iter();
    Block::from_planes(
        planes
            .map(|p| p.iter().map(|&s| (f64::from(s) * gain) as f32).collect())
            .collect(),
    )
}

/// `block` scaled to `lufs` integrated.
fn at_loudness(block: &Block, lufs: f64) -> Block {
    let (loudness, _) = measure(block);
    scaled(block, 10f64.powf((lufs - loudness) / 20.0))
}

/// A mastering-style soft clip: linear up to 0.7, then saturating towards 1.
fn soft_clip(block: &Block) -> Block {
    let clip = |s: f32| {
        let x = f64::from(s);
        let y = if x.abs() <= 0.7 {
            x
        } else {
            x.signum() * (0.7 + 0.3 * ((x.abs() - 0.7) / 0.3).tanh())
        };
        y as f32
    };
    Block::from_planes(
        block
            .planes()
            .iter()
            .map(|p| p.iter().map(|&s| clip(s)).collect())
            .collect(),
    )
}

/// Runs `input` through `normalizer` in chunks of `chunk` frames, then flushes.
fn run(normalizer: &mut Normalizer, input: &Block, chunk: usize) -> Block {
    let mut output = Block::new(input.channels());
    let (mut piece, mut out) = (Block::default(), Block::default());
    let mut start = 0;
    while start < input.frames() {
        let end = (start + chunk).min(input.frames());
        piece.reset_to(input.channels());
        for (dst, src) in piece.planes_mut().iter_mut().zip(input.planes()) {
            dst.extend_from_slice(&src[start..end]);
        }
        normalizer.process(&piece, &mut out);
        output.append(&out);
        start = end;
    }
    normalizer.flush(&mut out);
    output.append(&out);
    output
}

/// Gain in dB of `output` over `input` in each 100 ms window from `from_secs` on.
fn window_gains_db(input: &Block, output: &Block, from_secs: f64) -> Vec<f64> {
    let window = RATE_HZ as usize / 10;
    let energy = |s: &[f32]| s.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>();
    let start = (from_secs * f64::from(RATE_HZ)) as usize;
    (start / window..input.frames() / window)
        .map(|w| {
            let range = w * window..(w + 1) * window;
            let ratio = energy(&output.plane(0)[range.clone()]) / energy(&input.plane(0)[range]);
            10.0 * ratio.log10()
        })
        .collect()
}

fn spread(values: &[f64]) -> f64 {
    let max = values.iter().copied().fold(f64::MIN, f64::max);
    let min = values.iter().copied().fold(f64::MAX, f64::min);
    max - min
}

#[test]
fn quiet_and_loud_music_land_on_the_target() {
    let base = music(60.0);
    let quiet = at_loudness(&base, -30.0);
    let loud = soft_clip(&at_loudness(&base, -7.5));
    for (name, input) in [("quiet", quiet), ("loud", loud)] {
        let (in_lufs, in_peak) = measure(&input);
        let mut normalizer = Normalizer::try_new(-14.0, 2, RATE_HZ).unwrap();
        let output = run(&mut normalizer, &input, 4_096);
        assert_eq!(output.frames(), input.frames());
        let (lufs, peak) = measure(&output);
        let gains = window_gains_db(&input, &output, 3.0);
        println!(
            "{name}: in {in_lufs:.2} LUFS / {in_peak:.2} dBTP -> out {lufs:.2} LUFS / {peak:.3} dBTP; \
             gain {:.2}..{:.2} dB (spread {:.2} dB incl. limiting; {:.2} dB after 10 s)",
            gains.iter().copied().fold(f64::MAX, f64::min),
            gains.iter().copied().fold(f64::MIN, f64::max),
            spread(&gains),
            spread(&gains[70..]),
        );
        assert!((lufs + 14.0).abs() <= 1.0, "{name}: {lufs} LUFS");
        assert!(peak <= -1.0, "{name}: {peak} dBTP");
    }
}

#[test]
fn a_steady_tone_gets_a_steady_gain() {
    let plane: Vec<f32> = (0..30 * RATE_HZ as usize)
        .map(|i| (0.1 * (TAU * 1_000.0 * i as f64 / f64::from(RATE_HZ)).sin()) as f32)
        .collect();
    let input = at_loudness(&Block::from_planes(vec![plane.clone(), plane]), -20.0);
    let mut normalizer = Normalizer::try_new(-14.0, 2, RATE_HZ).unwrap();
    let output = run(&mut normalizer, &input, 1_000);
    let gains = window_gains_db(&input, &output, 2.0);
    let (lufs, peak) = measure(&output);
    println!(
        "tone: gain {:.4} dB, spread {:.5} dB after 2 s; out {lufs:.3} LUFS, {peak:.2} dBTP",
        gains[0],
        spread(&gains)
    );
    assert!(spread(&gains) <= 0.5);
    assert!((gains[0] - 6.0).abs() < 0.1, "{}", gains[0]);
    assert!((lufs + 14.0).abs() < 0.1);
}

#[test]
fn silence_stays_silent() {
    let input = Block::silence(2, 10 * RATE_HZ as usize);
    let mut normalizer = Normalizer::try_new(-14.0, 2, RATE_HZ).unwrap();
    let output = run(&mut normalizer, &input, 4_096);
    assert_eq!(output, input);
}

#[test]
fn near_silence_is_not_boosted() {
    // Noise at about -80 LUFS, under the absolute gate: left alone.
    let mut noise = Noise(99);
    let plane: Vec<f32> = (0..5 * RATE_HZ as usize)
        .map(|_| (noise.next() * 2e-4) as f32)
        .collect();
    let input = Block::from_planes(vec![plane]);
    let mut normalizer = Normalizer::try_new(-14.0, 1, RATE_HZ).unwrap();
    let output = run(&mut normalizer, &input, 4_096);
    assert_eq!(output, input);
}

#[test]
fn output_is_time_aligned_and_whole() {
    // A tone burst that starts and stops mid-stream keeps its place.
    let frames = 5 * RATE_HZ as usize + 77;
    let plane: Vec<f32> = (0..frames)
        .map(|i| {
            let on = (RATE_HZ as usize..4 * RATE_HZ as usize).contains(&i);
            if on {
                (0.05 * (TAU * 440.0 * i as f64 / 48_000.0).sin()) as f32
            } else {
                0.0
            }
        })
        .collect();
    let input = Block::from_planes(vec![plane]);
    for chunk in [480, 10_000] {
        let mut normalizer = Normalizer::try_new(-23.0, 1, RATE_HZ).unwrap();
        let output = run(&mut normalizer, &input, chunk);
        assert_eq!(output.frames(), frames);
        let out = output.plane(0);
        let first = out.iter().position(|&s| s != 0.0).unwrap();
        let last = out.iter().rposition(|&s| s != 0.0).unwrap();
        let on_first = input.plane(0).iter().position(|&s| s != 0.0).unwrap();
        let on_last = input.plane(0).iter().rposition(|&s| s != 0.0).unwrap();
        assert_eq!((first, last), (on_first, on_last));
        // Mid-burst, output / input is the (steady) gain at every sample.
        let ratios: Vec<f64> = (2 * RATE_HZ as usize..2 * RATE_HZ as usize + 480)
            .filter(|&i| input.plane(0)[i].abs() > 0.01)
            .map(|i| f64::from(out[i]) / f64::from(input.plane(0)[i]))
            .collect();
        assert!(spread(&ratios) < 1e-3, "{}", spread(&ratios));
    }
}

#[test]
fn short_streams_come_out_whole() {
    for frames in [0, 1, 4_800, 200_000] {
        let input = scaled(&music(frames as f64 / 48_000.0), 0.1);
        let mut normalizer = Normalizer::try_new(-14.0, 2, RATE_HZ).unwrap();
        assert_eq!(run(&mut normalizer, &input, 1_024).frames(), frames);
    }
}

#[test]
fn a_new_target_glides_in() {
    let input = at_loudness(&music(40.0), -20.0);
    let mut normalizer = Normalizer::try_new(-14.0, 2, RATE_HZ).unwrap();
    let (head, tail) = (20 * RATE_HZ as usize, input.frames());
    let part = |r: std::ops::Range<usize>| {
        Block::from_planes(
            input
                .planes()
                .iter()
                .map(|p| p[r.clone()].to_vec())
                .collect(),
        )
    };
    let mut output = Block::default();
    normalizer.process(&part(0..head), &mut output);
    normalizer.set_target(-24.0).unwrap();
    assert!(normalizer.set_target(-4.0).is_err());
    let rest = run(&mut normalizer, &part(head..tail), 4_096);
    output.append(&rest);
    let gains = window_gains_db(&input, &output, 3.0);
    // The first gain was +6 dB and the last -4 dB; no 100 ms window jumps by much.
    let steps = gains
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .fold(0.0, f64::max);
    println!(
        "target change: gain {:.2} -> {:.2} dB, largest step {steps:.3} dB / 100 ms",
        gains[0],
        gains[gains.len() - 1]
    );
    assert!((gains[0] - 6.0).abs() < 1.0);
    assert!((gains[gains.len() - 1] + 4.0).abs() < 1.0);
    assert!(steps < 1.5);
}

#[test]
fn bad_targets_are_refused() {
    for target in [-70.1, -4.9, f64::NAN] {
        let error = Normalizer::try_new(target, 2, RATE_HZ).unwrap_err();
        assert!(
            error.to_string().starts_with("normalize.target_lufs = "),
            "{error}"
        );
    }
    assert!(Normalizer::try_new(-14.0, 0, RATE_HZ).is_err());
    assert!(Normalizer::try_new(-14.0, 2, 1_000).is_err());
}

/// True peak (dBTP) of `block` at `rate_hz`, as `ebur128` measures it.
fn true_peak_at(block: &Block, rate_hz: u32) -> f64 {
    let channels = block.channels() as u32;
    let mut meter = EbuR128::new(channels, rate_hz, Mode::TRUE_PEAK).unwrap();
    let planes: Vec<&[f32]> = block.planes().iter().map(Vec::as_slice).collect();
    meter.add_frames_planar_f32(&planes).unwrap();
    let peak = (0..channels)
        .map(|c| meter.true_peak(c).unwrap())
        .fold(0.0, f64::max);
    20.0 * peak.log10()
}

#[test]
fn hard_material_stays_under_the_true_peak_ceiling() {
    for rate_hz in [8_000, 44_100, 48_000, 96_000] {
        let frames = 8 * rate_hz as usize;
        let rate = f64::from(rate_hz);
        let mut noise = Noise(rate_hz);
        // White noise bursts, a square wave, and a tone at a quarter of the rate sampled
        // off its crests (inter-sample peaks 3 dB over the samples), boosted by +25 dB.
        let plane: Vec<f32> = (0..frames)
            .map(|i| {
                let t = i as f64 / rate;
                let burst = if (t % 1.0) < 0.3 { noise.next() } else { 0.0 };
                let square = if (t * 220.0) % 1.0 < 0.5 { 0.3 } else { -0.3 };
                let quarter = 0.5 * (TAU * 0.25 * i as f64 + TAU / 8.0).sin();
                let part = (t / 2.0) as usize % 3;
                (0.05 * [burst, square, quarter][part]) as f32
            })
            .collect();
        let input = Block::from_planes(vec![plane.clone(), plane]);
        let mut normalizer = Normalizer::try_new(-5.0, 2, rate_hz).unwrap();
        let output = run(&mut normalizer, &input, 777);
        let peak = true_peak_at(&output, rate_hz);
        println!("{rate_hz} Hz hard material: {peak:.3} dBTP");
        assert!(peak <= -1.0, "{rate_hz} Hz: {peak} dBTP");
    }
}

#[test]
fn long_streams_keep_the_contract() {
    // 8 s: past the look-ahead, so decisions, smoothing and limiting are all exercised.
    let input = at_loudness(&music(8.0), -35.0);
    let fresh = || Normalizer::try_new(-9.0, 2, RATE_HZ).unwrap();
    let whole = run(&mut fresh(), &input, input.frames());
    assert!(true_peak_at(&whole, RATE_HZ) <= -1.0);
    for chunk in [1, 7, 100, 1_024, 4_099] {
        let chunked = run(&mut fresh(), &input, chunk);
        assert_eq!(chunked, whole, "chunks of {chunk}");
    }
    // Reset mid-stream, and flush, both give a fresh normaliser.
    let mut normalizer = fresh();
    let mut scrap = Block::default();
    normalizer.process(&scaled(&input, 3.0), &mut scrap);
    normalizer.reset();
    assert_eq!(run(&mut normalizer, &input, 4_096), whole);
    assert_eq!(run(&mut normalizer, &input, 4_096), whole);
}

#[test]
fn quiet_speech_lands_on_the_target() {
    let input = at_loudness(&speech(60.0), -35.0);
    let mut normalizer = Normalizer::try_new(-14.0, 1, RATE_HZ).unwrap();
    let output = run(&mut normalizer, &input, 960);
    let (lufs, peak) = measure(&output);
    println!(
        "speech: in -35 LUFS / {:.2} dBTP -> out {lufs:.2} LUFS / {peak:.3} dBTP",
        measure(&input).1
    );
    assert!((lufs + 14.0).abs() <= 1.0, "{lufs} LUFS");
    assert!(peak <= -1.0, "{peak} dBTP");
}
