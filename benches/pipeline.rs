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
//! one core.

use std::hint::black_box;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use dsp::{Block, Chain, ChainSpec};
use rust_transcoder::decode::{Decoder, FormatHint};
use rust_transcoder::encode::{self, OutputFormat, OutputSpec};
use rust_transcoder::pipeline::{Transcode, TranscodeSpec};

/// Length of the benchmarked slice.
const SLICE_SECS: u32 = 30;
/// The slice in milliseconds: the throughput "elements", shown as x realtime.
const SLICE_MS: u64 = SLICE_SECS as u64 * 1000;
/// Rate of every benchmarked output.
const OUTPUT_RATE_HZ: u32 = 48_000;

/// The benchmark input, decoded once.
struct Input {
    /// The whole MP3 file.
    mp3: Arc<[u8]>,
    /// Source rate (44.1 kHz).
    rate_hz: u32,
    /// Source speaker layout (stereo).
    layout: Vec<dsp::Speaker>,
    /// Decoded blocks of the first `SLICE_SECS` seconds, as the decoder returned them.
    decoded: Vec<Block>,
    /// `decoded` run through the 44.1k -> 48k chain (plus its flush), block for block.
    resampled: Vec<Block>,
}

fn input_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("bench-data/music.mp3")
}

/// Reads the benchmark input, generating it first when it is missing.
fn load_input() -> Input {
    let path = input_path();
    if !path.exists() {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/make_bench_input.sh");
        eprintln!(
            "{} is missing; running {}",
            path.display(),
            script.display()
        );
        let status = Command::new("bash").arg(&script).status();
        assert!(
            matches!(status, Ok(s) if s.success()),
            "could not generate {}: run `bash benches/make_bench_input.sh` (needs ffmpeg)",
            path.display()
        );
    }
    let mp3: Arc<[u8]> = std::fs::read(&path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()))
        .into();

    let mut decoder = open(&mp3);
    let rate_hz = decoder.info().sample_rate_hz;
    let layout = decoder.info().layout.clone();
    let slice_frames = (SLICE_SECS * rate_hz) as usize;
    let mut decoded = Vec::new();
    let mut frames = 0;
    let mut block = Block::new(0);
    while frames < slice_frames && decoder.next_block(&mut block).expect("decodes") {
        block.truncate(slice_frames - frames);
        frames += block.frames();
        decoded.push(block.clone());
    }
    assert_eq!(
        frames, slice_frames,
        "the benchmark input is shorter than the slice"
    );

    let mut chain = new_chain(rate_hz, &layout);
    let mut resampled: Vec<Block> = decoded
        .iter()
        .map(|block| chain.process(block).clone())
        .collect();
    resampled.push(chain.flush().clone());
    resampled.retain(|block| !block.is_empty());
    let out_frames: usize = resampled.iter().map(Block::frames).sum();
    assert_eq!(out_frames, (SLICE_SECS * OUTPUT_RATE_HZ) as usize);

    Input {
        mp3,
        rate_hz,
        layout,
        decoded,
        resampled,
    }
}

fn open(mp3: &Arc<[u8]>) -> Decoder {
    let hint = FormatHint {
        extension: Some("mp3".to_owned()),
        mime_type: None,
    };
    Decoder::try_new(Box::new(Cursor::new(Arc::clone(mp3))), &hint).expect("opens the mp3")
}

fn new_chain(input_rate_hz: u32, input_layout: &[dsp::Speaker]) -> Chain {
    Chain::try_new(&ChainSpec {
        input_rate_hz,
        input_layout: input_layout.to_vec(),
        output_rate_hz: OUTPUT_RATE_HZ,
        output_channels: 2,
        filters: dsp::Filters::default(),
    })
    .expect("valid chain")
}

fn output_spec(format: OutputFormat) -> OutputSpec {
    OutputSpec {
        format,
        sample_rate_hz: OUTPUT_RATE_HZ,
        channels: 2,
        bitrate_kbps: 128,
    }
}

/// The whole job on the first `SLICE_SECS` seconds; returns the bytes produced.
fn run_pipeline(mp3: &Arc<[u8]>, format: OutputFormat) -> u64 {
    let spec = TranscodeSpec {
        output: output_spec(format),
        duration_secs: Some(f64::from(SLICE_SECS)),
        ..TranscodeSpec::default()
    };
    let transcode = Transcode::try_new(open(mp3), &spec).expect("valid spec");
    let mut bytes = 0u64;
    transcode
        .run(
            |chunk| {
                bytes += black_box(chunk).len() as u64;
                Ok(())
            },
            |_| {},
        )
        .expect("transcodes");
    bytes
}

fn configure(group: &mut criterion::BenchmarkGroup<'_, CpuTime>) {
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(SLICE_MS));
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
        b.iter(|| {
            let mut encoder =
                encode::build(&output_spec(OutputFormat::Opus), input.rate_hz).expect("builds");
            let mut out = Vec::new();
            let mut bytes = 0;
            for block in &input.resampled {
                encoder.write(block, &mut out).expect("encodes");
                bytes += out.len();
                out.clear();
            }
            encoder.finish(&mut out).expect("finishes");
            bytes + black_box(&out).len()
        });
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
            let mut chain = new_chain(input.rate_hz, &input.layout);
            let mut frames = 0;
            for block in &input.decoded {
                frames += black_box(chain.process(block)).frames();
            }
            frames + chain.flush().frames()
        });
    });
    group.finish();
}

/// CPU time of the calling thread, in nanoseconds, from the scheduler's accounting.
struct CpuTime;

fn thread_cpu_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat")
        .expect("/proc/thread-self/schedstat is readable (Linux)");
    stat.split_whitespace()
        .next()
        .and_then(|field| field.parse().ok())
        .expect("schedstat starts with the run time in ns")
}

impl Measurement for CpuTime {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, start: u64) -> u64 {
        thread_cpu_ns().saturating_sub(start)
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, value: &u64) -> f64 {
        *value as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &CpuTimeFormatter
    }
}

/// Formats CPU nanoseconds like wall time, and throughput in milliseconds of audio as
/// "x realtime" (audio seconds per CPU second).
struct CpuTimeFormatter;

impl ValueFormatter for CpuTimeFormatter {
    fn scale_values(&self, ns: f64, values: &mut [f64]) -> &'static str {
        let (factor, unit) = match ns {
            ns if ns < 1e3 => (1.0, "ns (cpu)"),
            ns if ns < 1e6 => (1e-3, "µs (cpu)"),
            ns if ns < 1e9 => (1e-6, "ms (cpu)"),
            _ => (1e-9, "s (cpu)"),
        };
        values.iter_mut().for_each(|v| *v *= factor);
        unit
    }

    fn scale_throughputs(
        &self,
        _typical: f64,
        throughput: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        let (per_iteration, unit) = match *throughput {
            // Elements are milliseconds of audio: ms per CPU ns x 1e6 = x realtime.
            Throughput::Elements(ms) | Throughput::ElementsAndBytes { elements: ms, .. } => {
                (ms as f64 * 1e6, "x realtime")
            }
            Throughput::Bytes(n) | Throughput::BytesDecimal(n) => (n as f64 * 1e9, "B/s"),
            Throughput::Bits(n) => (n as f64 * 1e9, "b/s"),
        };
        values.iter_mut().for_each(|v| *v = per_iteration / *v);
        unit
    }

    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

fn cpu_time_criterion() -> Criterion<CpuTime> {
    Criterion::default().with_measurement(CpuTime)
}

criterion_group! {
    name = pipeline;
    config = cpu_time_criterion();
    targets = benches
}
criterion_main!(pipeline);
