//! Criterion benchmarks of the audio filters on 30 s of 48 kHz stereo music-like audio:
//! the first 30 s of the benchmark input (`bench-data/music.mp3`), decoded once and
//! resampled to 48 kHz, fed in the blocks the pipeline's chain hands on: the resampler
//! works in chunks of 588 -> 640 frames, so each 1152-frame MP3 frame comes out as 640 or
//! 1280 frames (1150 blocks, 1252 frames on average). `FILTER_BLOCK_FRAMES=N` re-cuts
//! the same audio into blocks of N frames instead (to check block-size sensitivity).
//!
//! * `filters_30s/tempo_1.25`, `eq_bass_boost`, `normalize_-14`, `gain_1.5_limiter`:
//!   each processor alone (`try_new` + `process` per block + `flush`), 48 kHz stereo.
//! * `filters_30s/chain_48k_fx`: the full filter chain at 48 kHz (speed 1.25 +
//!   bass_boost + volume 1.5 + normalize -14; no resampler since the rate is kept), and
//!   `chain_48k_fx_no_normalize` without the normaliser (the CLI job of
//!   `benches/compare.sh`'s `opus_fx` row).
//! * `filters_30s/chain_44k1_to_48k_fx`: the chain as the pipeline builds it for that job
//!   from the decoded 44.1 kHz blocks (resampler + the four filters).
//! * `filters_30s/opus_encoder_alone`: the Opus encoder on the same 30 s (as in
//!   `benches/pipeline.rs`), the denominator of "filter chain CPU / Opus encode CPU".
//! * `filters_30s/mp3_to_opus128k_fx`: the whole pipeline job with speed 1.25 +
//!   bass_boost + volume 1.5, 30 s of source (24 s of output).
//!
//! Time is the benchmark thread's CPU time and throughput "x realtime" per core: seconds
//! of *input* audio (30 s) per CPU second, measured as in `benches/pipeline.rs` (shared
//! code in `benches/common`).

mod common;

use std::hint::black_box;

use common::{
    CpuTime, SLICE_SECS, configure, cpu_time_criterion, encode_opus, load_input, new_chain,
    output_spec, transcoded_bytes,
};
use criterion::{Criterion, criterion_group, criterion_main};
use dsp::eq::{EqPreset, Equalizer};
use dsp::normalize::Normalizer;
use dsp::{Block, Filters, Gain, Processor, Tempo};
use rust_transcoder::encode::OutputFormat;
use rust_transcoder::pipeline::TranscodeSpec;

const RATE_HZ: u32 = common::OUTPUT_RATE_HZ;
const CHANNELS: usize = 2;
const SPEED: f64 = 1.25;
const VOLUME: f32 = 1.5;
const TARGET_LUFS: f64 = -14.0;

/// The filters of the benchmarked job: speed 1.25, bass_boost, volume 1.5, and the
/// normaliser at -14 LUFS when `normalize`.
fn job_filters(normalize: bool) -> Filters {
    Filters {
        speed: SPEED,
        eq_preset: EqPreset::BassBoost,
        volume: VOLUME,
        normalize_lufs: normalize.then_some(TARGET_LUFS),
        ..Filters::default()
    }
}

/// The audio of `blocks` in blocks of `frames` frames (the last one shorter).
fn recut(blocks: &[Block], frames: usize) -> Vec<Block> {
    let mut all = Block::new(CHANNELS);
    blocks.iter().for_each(|block| all.append(block));
    let planes = all.planes();
    (0..all.frames())
        .step_by(frames.max(1))
        .map(|start| {
            let end = (start + frames.max(1)).min(all.frames());
            Block::from_planes(planes.iter().map(|p| p[start..end].to_vec()).collect())
        })
        .collect()
}

/// Feeds every block through `processor`, then flushes it; returns the frames written.
fn run_processor(mut processor: impl Processor, blocks: &[Block]) -> usize {
    let mut output = Block::new(CHANNELS);
    let mut frames = 0;
    for block in blocks {
        processor.process(block, &mut output);
        frames += black_box(&output).frames();
    }
    processor.flush(&mut output);
    frames + black_box(&output).frames()
}

/// Feeds every block through `chain`, then flushes it; returns the frames written.
fn run_chain(mut chain: dsp::Chain, blocks: &[Block]) -> usize {
    let mut frames = 0;
    for block in blocks {
        frames += black_box(chain.process(block)).frames();
    }
    frames + black_box(chain.flush()).frames()
}

/// The whole job with speed, EQ and volume on the first `SLICE_SECS` seconds of source.
fn run_pipeline_fx(mp3: &std::sync::Arc<[u8]>) -> u64 {
    let spec = TranscodeSpec {
        output: output_spec(OutputFormat::Opus),
        filters: job_filters(false),
        // Output duration = source duration / speed.
        duration_secs: Some(f64::from(SLICE_SECS) / SPEED),
        ..TranscodeSpec::default()
    };
    transcoded_bytes(mp3, &spec)
}

fn benches(c: &mut Criterion<CpuTime>) {
    let mut input = load_input();
    if let Some(frames) = std::env::var("FILTER_BLOCK_FRAMES")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        input.resampled = recut(&input.resampled, frames);
    }
    let blocks = &input.resampled;
    let sizes: Vec<usize> = blocks.iter().map(Block::frames).collect();
    eprintln!(
        "input: {} blocks of 48 kHz stereo, {}-{} frames, {:.0} on average",
        blocks.len(),
        sizes.iter().min().unwrap_or(&0),
        sizes.iter().max().unwrap_or(&0),
        sizes.iter().sum::<usize>() as f64 / sizes.len().max(1) as f64,
    );
    // The stages under test do what the benchmark names: check once, outside timing.
    let tempo_frames = run_processor(
        Tempo::try_new(SPEED, CHANNELS, RATE_HZ).expect("tempo"),
        blocks,
    );
    assert_eq!(
        tempo_frames,
        (f64::from(SLICE_SECS * RATE_HZ) / SPEED).round() as usize
    );
    let gain = Gain::try_new(VOLUME, CHANNELS, RATE_HZ).expect("gain");
    assert!(!gain.is_unity());

    let mut group = c.benchmark_group("filters_30s");
    configure(&mut group);
    group.bench_function("tempo_1.25", |b| {
        b.iter(|| {
            let tempo = Tempo::try_new(SPEED, CHANNELS, RATE_HZ).expect("tempo");
            run_processor(tempo, blocks)
        });
    });
    group.bench_function("eq_bass_boost", |b| {
        b.iter(|| {
            let eq = Equalizer::try_new(EqPreset::BassBoost, &[], CHANNELS, RATE_HZ).expect("eq");
            run_processor(eq, blocks)
        });
    });
    group.bench_function("normalize_-14", |b| {
        b.iter(|| {
            let normalizer =
                Normalizer::try_new(TARGET_LUFS, CHANNELS, RATE_HZ).expect("normalizer");
            run_processor(normalizer, blocks)
        });
    });
    group.bench_function("gain_1.5_limiter", |b| {
        b.iter(|| {
            let gain = Gain::try_new(VOLUME, CHANNELS, RATE_HZ).expect("gain");
            run_processor(gain, blocks)
        });
    });
    group.bench_function("chain_48k_fx", |b| {
        b.iter(|| run_chain(new_chain(RATE_HZ, &input.layout, job_filters(true)), blocks));
    });
    group.bench_function("chain_48k_fx_no_normalize", |b| {
        b.iter(|| {
            run_chain(
                new_chain(RATE_HZ, &input.layout, job_filters(false)),
                blocks,
            )
        });
    });
    group.bench_function("chain_44k1_to_48k_fx", |b| {
        b.iter(|| {
            let chain = new_chain(input.rate_hz, &input.layout, job_filters(true));
            run_chain(chain, &input.decoded)
        });
    });
    group.bench_function("opus_encoder_alone", |b| {
        b.iter(|| encode_opus(blocks, input.rate_hz));
    });
    group.bench_function("mp3_to_opus128k_fx", |b| {
        b.iter(|| run_pipeline_fx(&input.mp3));
    });
    group.finish();
}

criterion_group! {
    name = filters;
    config = cpu_time_criterion();
    targets = benches
}
criterion_main!(filters);
