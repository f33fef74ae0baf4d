//! Criterion benchmarks of the transcoding pipeline on a 30 s slice of the benchmark
//! input (`bench-data/music.mp3`, made by `benches/make_bench_input.sh`: 44.1 kHz stereo
//! music-like MP3 at 192 kbit/s).
//!
//! * `pipeline_30s/*`: the whole job (probe, decode, channel map, resample, encode, sink)
//!   from an in-memory MP3 to PCM s16le 48 kHz, Ogg Opus 128 kbit/s and AAC-LC 128 kbit/s.
//! * `opus_encoder_alone_30s`: `encode::build` + `write` + `finish` on the same audio,
//!   decoded and resampled to 48 kHz beforehand, fed in the blocks the chain produced.
//! * `stages_30s/*`: the decoder alone (MP3 -> planar blocks) and the dsp chain alone
//!   (44.1 kHz -> 48 kHz, stereo).
//!
//! Time is the benchmark thread's CPU time (from `/proc/thread-self/schedstat`, so a busy
//! machine does not inflate it; kernel tick granularity, about 4 ms per sample of a few
//! hundred ms). Throughput is printed as "x realtime": seconds of audio per CPU second on
//! one core. The input, the measurement and the encoder job live in `benches/common`,
//! shared with `benches/filters.rs`.

mod common;

use std::hint::black_box;
use std::sync::Arc;

use common::{
    CpuTime, SLICE_SECS, configure, cpu_time_criterion, encode_opus, load_input, new_chain, open,
    output_spec, transcoded_bytes,
};
use criterion::{Criterion, criterion_group, criterion_main};
use dsp::{Block, Filters};
use rust_transcoder::encode::OutputFormat;
use rust_transcoder::pipeline::TranscodeSpec;

/// The whole job on the first `SLICE_SECS` seconds; returns the bytes produced.
fn run_pipeline(mp3: &Arc<[u8]>, format: OutputFormat) -> u64 {
    let spec = TranscodeSpec {
        output: output_spec(format),
        duration_secs: Some(f64::from(SLICE_SECS)),
        ..TranscodeSpec::default()
    };
    transcoded_bytes(mp3, &spec)
}

fn benches(c: &mut Criterion<CpuTime>) {
    let input = load_input();

    let mut group = c.benchmark_group("pipeline_30s");
    configure(&mut group);
    for (name, format) in [
        ("mp3_to_pcm48k", OutputFormat::Pcm),
        ("mp3_to_opus128k", OutputFormat::Opus),
        ("mp3_to_aac128k", OutputFormat::Aac),
    ] {
        group.bench_function(name, |b| b.iter(|| run_pipeline(&input.mp3, format)));
    }
    group.finish();

    let mut group = c.benchmark_group("opus_encoder_alone_30s");
    configure(&mut group);
    group.bench_function("48k_stereo_128k", |b| {
        b.iter(|| encode_opus(&input.resampled, input.rate_hz));
    });
    group.finish();

    let mut group = c.benchmark_group("stages_30s");
    configure(&mut group);
    let slice_frames = (SLICE_SECS * input.rate_hz) as usize;
    group.bench_function("decode_mp3", |b| {
        b.iter(|| {
            let mut decoder = open(&input.mp3);
            let mut block = Block::new(0);
            let mut frames = 0;
            while frames < slice_frames && decoder.next_block(&mut block).expect("decodes") {
                frames += black_box(&block).frames();
            }
            frames
        });
    });
    group.bench_function("dsp_44k1_to_48k_stereo", |b| {
        b.iter(|| {
            let mut chain = new_chain(input.rate_hz, &input.layout, Filters::default());
            let mut frames = 0;
            for block in &input.decoded {
                frames += black_box(chain.process(block)).frames();
            }
            frames + chain.flush().frames()
        });
    });
    group.finish();
}

criterion_group! {
    name = pipeline;
    config = cpu_time_criterion();
    targets = benches
}
criterion_main!(pipeline);
