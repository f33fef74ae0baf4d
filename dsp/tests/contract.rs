//! The contract every DSP stage keeps (see `dsp::Processor`), checked by one suite run
//! against every implementation: chunk-size independence, `reset`, flushed length and
//! silence.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Stage, max_difference, run_chunked, slice, test_signal};
use dsp::eq::{EqBand, EqPreset};
use dsp::{
    Block, Chain, ChainSpec, ChannelMapper, Filters, Gain, Processor, Resampler, Speaker, Tempo,
};

/// Chunk sizes every stage is fed with; 7 and 4099 are deliberately odd.
const CHUNK_SIZES: [usize; 5] = [1, 7, 100, 1024, 4099];

/// Outputs of different chunkings may differ by this much at most.
const TOLERANCE: f32 = 1e-6;

/// A stage under test: how to build it and what it does to rate and channels.
struct Case {
    name: String,
    build: Box<dyn Fn() -> Box<dyn Stage>>,
    input_channels: usize,
    input_rate_hz: u32,
    output_rate_hz: u32,
    /// Peak of the test signal: high enough to make limiters work.
    peak: f32,
}

impl Case {
    fn processor<P: Processor + 'static>(
        name: &str,
        input_channels: usize,
        rates_hz: (u32, u32),
        build: impl Fn() -> P + 'static,
    ) -> Self {
        Case {
            name: name.to_string(),
            build: Box::new(move || Box::new(Box::new(build()) as Box<dyn Processor>)),
            input_channels,
            input_rate_hz: rates_hz.0,
            output_rate_hz: rates_hz.1,
            peak: 0.9,
        }
    }

    fn chain(spec: ChainSpec) -> Self {
        Case {
            name: format!("chain {spec:?}"),
            input_channels: spec.input_layout.len(),
            input_rate_hz: spec.input_rate_hz,
            output_rate_hz: spec.output_rate_hz,
            peak: 0.9,
            build: Box::new(move || Box::new(Chain::try_new(&spec).unwrap())),
        }
    }

    /// A quarter of a second of test signal.
    fn signal(&self) -> Block {
        let frames = self.input_rate_hz as usize / 4 + 13;
        test_signal(self.input_channels, self.input_rate_hz, frames, self.peak)
    }

    /// `round(input_frames × output rate / input rate)`.
    fn expected_frames(&self, input_frames: usize) -> usize {
        let (input, output) = (self.input_rate_hz as u64, self.output_rate_hz as u64);
        ((input_frames as u64 * output + input / 2) / input) as usize
    }
}

fn mappers() -> Vec<Case> {
    let layouts = [(6, 2), (8, 2), (2, 1), (1, 2), (2, 2), (3, 1)];
    layouts
        .into_iter()
        .map(|(input, output)| {
            let layout = Speaker::default_layout(input);
            Case::processor(
                &format!("mapper {input}->{output}"),
                input,
                (48_000, 48_000),
                move || ChannelMapper::try_new(&layout, output).unwrap(),
            )
        })
        .collect()
}

fn resamplers() -> Vec<Case> {
    let pairs = [
        (44_100, 48_000),
        (48_000, 44_100),
        (22_050, 48_000),
        (96_000, 48_000),
        (8_000, 48_000),
        (48_000, 8_000),
        (11_025, 8_000),
        (192_000, 44_100),
        (44_100, 47_999),
    ];
    pairs
        .into_iter()
        .map(|(from, to)| {
            Case::processor(
                &format!("resampler {from}->{to}"),
                2,
                (from, to),
                move || Resampler::try_new(from, to, 2).unwrap(),
            )
        })
        .collect()
}

fn gains() -> Vec<Case> {
    [0.0, 0.5, 1.0, 1.3, 2.0]
        .into_iter()
        .map(|volume| {
            let mut case =
                Case::processor(&format!("gain {volume}"), 2, (44_100, 44_100), move || {
                    Gain::try_new(volume, 2, 44_100).unwrap()
                });
            case.peak = 0.99;
            case
        })
        .collect()
}

fn chains() -> Vec<Case> {
    let spec = |layout: usize, input_rate_hz, output_channels, filters| ChainSpec {
        input_rate_hz,
        input_layout: Speaker::default_layout(layout),
        output_rate_hz: 48_000,
        output_channels,
        filters,
    };
    let volume = |volume| Filters {
        volume,
        ..Filters::default()
    };
    // Every length-preserving stage at once: downmix, resampling, EQ, loudness, limiter.
    let full = Filters {
        volume: 1.5,
        eq_preset: EqPreset::BassBoost,
        eq_bands: vec![EqBand {
            freq_hz: 1_000.0,
            gain_db: 6.0,
            q: 1.0,
        }],
        normalize_lufs: Some(-14.0),
        ..Filters::default()
    };
    vec![
        Case::chain(spec(6, 44_100, 2, volume(1.5))),
        Case::chain(spec(1, 22_050, 2, volume(0.8))),
        Case::chain(spec(2, 96_000, 1, volume(2.0))),
        Case::chain(spec(2, 48_000, 2, volume(1.0))),
        Case::chain(spec(6, 44_100, 2, full)),
    ]
}

fn all_cases() -> Vec<Case> {
    [
        mappers(),
        resamplers(),
        gains(),
        chains(),
        tempos(),
        equalizers(),
        normalizers(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

#[test]
fn chunk_size_does_not_change_the_output() {
    for case in all_cases() {
        let input = case.signal();
        let whole = run_chunked((case.build)().as_mut(), &input, input.frames());
        for chunk in CHUNK_SIZES {
            let chunked = run_chunked((case.build)().as_mut(), &input, chunk);
            let difference = max_difference(&whole, &chunked);
            assert!(
                difference <= TOLERANCE,
                "{}: chunk {chunk} differs by {difference}",
                case.name
            );
        }
    }
}

#[test]
fn reset_restores_the_fresh_state() {
    for case in all_cases() {
        let input = case.signal();
        let fresh = run_chunked((case.build)().as_mut(), &input, 1024);
        let mut stage = (case.build)();
        let mut scrap = Block::default();
        stage.feed(&slice(&input, 0, input.frames() / 3), &mut scrap);
        stage.restart();
        let after_reset = run_chunked(stage.as_mut(), &input, 1024);
        assert!(
            max_difference(&fresh, &after_reset) <= TOLERANCE,
            "{}",
            case.name
        );
        // Flushing ends the stream and leaves the stage ready for the next one.
        let again = run_chunked(stage.as_mut(), &input, 1024);
        assert!(
            max_difference(&fresh, &again) <= TOLERANCE,
            "{}: after flush",
            case.name
        );
    }
}

#[test]
fn flushed_length_is_input_length_times_ratio() {
    for case in all_cases() {
        for frames in [
            0,
            1,
            100,
            147,
            1_000,
            12_345,
            case.input_rate_hz as usize / 4 + 13,
        ] {
            let input = test_signal(case.input_channels, case.input_rate_hz, frames, 0.5);
            for chunk in CHUNK_SIZES {
                let output = run_chunked((case.build)().as_mut(), &input, chunk);
                let expected = case.expected_frames(frames);
                assert_eq!(
                    output.frames(),
                    expected,
                    "{}: {frames} frames in chunks of {chunk}",
                    case.name
                );
            }
        }
    }
}

#[test]
fn silence_in_gives_silence_out() {
    for case in all_cases() {
        let frames = case.input_rate_hz as usize / 4;
        let input = Block::silence(case.input_channels, frames);
        let output = run_chunked((case.build)().as_mut(), &input, 1024);
        assert_eq!(
            output.frames(),
            case.expected_frames(frames),
            "{}",
            case.name
        );
        let loudest = common::peak(&output);
        assert!(loudest < 1e-9, "{}: {loudest}", case.name);
    }
}

#[test]
fn a_chain_with_nothing_to_do_is_a_bypass() {
    for (layout, rate_hz, channels) in [(2, 48_000, 2), (1, 44_100, 1)] {
        let spec = ChainSpec {
            input_rate_hz: rate_hz,
            input_layout: Speaker::default_layout(layout),
            output_rate_hz: rate_hz,
            output_channels: channels,
            filters: Filters::default(),
        };
        let mut chain = Chain::try_new(&spec).unwrap();
        assert!(chain.is_bypass());
        let input = test_signal(layout, rate_hz, 480, 0.5);
        assert!(std::ptr::eq(chain.process(&input), &input));
        assert!(chain.flush().is_empty());
    }
    let mut not_bypass = Chain::try_new(&ChainSpec {
        input_rate_hz: 48_000,
        input_layout: Speaker::default_layout(2),
        output_rate_hz: 48_000,
        output_channels: 2,
        filters: Filters {
            volume: 0.5,
            ..Filters::default()
        },
    })
    .unwrap();
    assert!(!not_bypass.is_bypass());
    let input = test_signal(2, 48_000, 480, 0.5);
    assert!(!std::ptr::eq(not_bypass.process(&input), &input));
}

/// Time-stretches: a speed `s` makes `round(frames / s)` frames, which the case states as
/// an output rate of `rate / s` (every speed here divides the rate exactly).
fn tempos() -> Vec<Case> {
    let settings = [
        (0.25, 2, 48_000),
        (0.5, 2, 48_000),
        (0.75, 2, 48_000),
        (0.8, 2, 48_000),
        (1.0, 2, 48_000),
        (1.25, 2, 48_000),
        (1.5, 2, 48_000),
        (2.0, 2, 48_000),
        (4.0, 2, 48_000),
        (1.5, 1, 44_100),
        (0.8, 1, 8_000),
        (2.0, 3, 8_000),
    ];
    settings
        .into_iter()
        .map(|(speed, channels, rate_hz)| {
            let output_rate_hz = (f64::from(rate_hz) / speed).round() as u32;
            Case::processor(
                &format!("tempo {speed} ({channels} ch, {rate_hz} Hz)"),
                channels,
                (rate_hz, output_rate_hz),
                move || Tempo::try_new(speed, channels, rate_hz).unwrap(),
            )
        })
        .collect()
}

fn equalizers() -> Vec<Case> {
    use dsp::{EqBand, EqPreset, Equalizer};
    let band = |freq_hz, gain_db, q| EqBand {
        freq_hz,
        gain_db,
        q,
    };
    let settings: Vec<(EqPreset, Vec<EqBand>, usize, u32)> = vec![
        (EqPreset::Flat, vec![], 2, 48_000),
        (EqPreset::BassBoost, vec![], 2, 44_100),
        (EqPreset::Voice, vec![], 1, 48_000),
        (EqPreset::Treble, vec![], 2, 22_050),
        (EqPreset::Treble, vec![], 1, 16_000),
        (
            EqPreset::Voice,
            vec![band(1_000.0, 12.0, 1.0), band(3_000.0, -24.0, 10.0)],
            2,
            8_000,
        ),
        (
            EqPreset::Flat,
            (0..16)
                .map(|i| band(30.0 + 1_000.0 * f64::from(i), 6.0, 0.5))
                .collect(),
            2,
            48_000,
        ),
    ];
    settings
        .into_iter()
        .map(|(preset, bands, channels, rate_hz)| {
            Case::processor(
                &format!(
                    "eq {preset} + {} bands, {channels} ch at {rate_hz} Hz",
                    bands.len()
                ),
                channels,
                (rate_hz, rate_hz),
                move || Equalizer::try_new(preset, &bands, channels, rate_hz).unwrap(),
            )
        })
        .collect()
}

fn normalizers() -> Vec<Case> {
    use dsp::Normalizer;
    [(-14.0, 2, 48_000), (-23.0, 1, 44_100), (-5.0, 2, 8_000)]
        .into_iter()
        .map(|(target, channels, rate_hz)| {
            Case::processor(
                &format!("normalize {target} LUFS, {channels} ch at {rate_hz} Hz"),
                channels,
                (rate_hz, rate_hz),
                move || Normalizer::try_new(target, channels, rate_hz).unwrap(),
            )
        })
        .collect()
}
