//! The contract every DSP stage keeps (see `dsp::Processor`), checked by one suite run
//! against every implementation: chunk-size independence, `reset`, flushed length and
//! silence.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Stage, max_difference, run_chunked, slice, test_signal};
use dsp::{Block, Chain, ChainSpec, ChannelMapper, Gain, Processor, Resampler, Speaker};

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
    let spec = |layout: usize, input_rate_hz, output_channels, volume| ChainSpec {
        input_rate_hz,
        input_layout: Speaker::default_layout(layout),
        output_rate_hz: 48_000,
        output_channels,
        volume,
    };
    vec![
        Case::chain(spec(6, 44_100, 2, 1.5)),
        Case::chain(spec(1, 22_050, 2, 0.8)),
        Case::chain(spec(2, 96_000, 1, 2.0)),
        Case::chain(spec(2, 48_000, 2, 1.0)),
    ]
}

fn all_cases() -> Vec<Case> {
    [mappers(), resamplers(), gains(), chains()]
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
            volume: 1.0,
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
        volume: 0.5,
    })
    .unwrap();
    assert!(!not_bypass.is_bypass());
    let input = test_signal(2, 48_000, 480, 0.5);
    assert!(!std::ptr::eq(not_bypass.process(&input), &input));
}
