//! Shared by the criterion benches (`pipeline.rs`, `filters.rs`; each includes it with
//! `mod common;`): the benchmark input decoded once, the 44.1 -> 48 kHz chain, the Opus
//! encoder job, the group settings, and the CPU-time measurement that reports "x
//! realtime".
//!
//! Time is the benchmark thread's CPU time (from `/proc/thread-self/schedstat`, so a busy
//! machine does not inflate it; kernel tick granularity, about 4 ms per sample of a few
//! hundred ms). Throughput is printed as "x realtime": seconds of audio per CPU second on
//! one core.

// Each bench binary uses a different part of this module.
#![allow(dead_code)]

use std::hint::black_box;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{Criterion, SamplingMode, Throughput};
use dsp::{Block, Chain, ChainSpec, Filters};
use rust_transcoder::decode::{Decoder, FormatHint};
use rust_transcoder::encode::{self, OutputFormat, OutputSpec};
use rust_transcoder::pipeline::{Transcode, TranscodeSpec};

/// Length of the benchmarked slice.
pub const SLICE_SECS: u32 = 30;
/// The slice in milliseconds: the throughput "elements", shown as x realtime.
pub const SLICE_MS: u64 = SLICE_SECS as u64 * 1000;
/// Rate of every benchmarked output.
pub const OUTPUT_RATE_HZ: u32 = 48_000;

/// The benchmark input, decoded once.
pub struct Input {
    /// The whole MP3 file.
    pub mp3: Arc<[u8]>,
    /// Source rate (44.1 kHz).
    pub rate_hz: u32,
    /// Source speaker layout (stereo).
    pub layout: Vec<dsp::Speaker>,
    /// Decoded blocks of the first `SLICE_SECS` seconds, as the decoder returned them.
    pub decoded: Vec<Block>,
    /// `decoded` run through the 44.1k -> 48k chain (plus its flush), block for block:
    /// 48 kHz stereo in the blocks the pipeline hands to the filters and the encoder.
    pub resampled: Vec<Block>,
}

fn input_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("bench-data/music.mp3")
}

/// Reads the benchmark input, generating it first when it is missing, and decodes and
/// resamples its first `SLICE_SECS` seconds.
pub fn load_input() -> Input {
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

    let mut chain = new_chain(rate_hz, &layout, Filters::default());
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

/// A decoder reading the in-memory MP3.
pub fn open(mp3: &Arc<[u8]>) -> Decoder {
    let hint = FormatHint {
        extension: Some("mp3".to_owned()),
        mime_type: None,
    };
    Decoder::try_new(Box::new(Cursor::new(Arc::clone(mp3))), &hint).expect("opens the mp3")
}

/// The pipeline's chain from `input_rate_hz` / `input_layout` to 48 kHz stereo.
pub fn new_chain(input_rate_hz: u32, input_layout: &[dsp::Speaker], filters: Filters) -> Chain {
    Chain::try_new(&ChainSpec {
        input_rate_hz,
        input_layout: input_layout.to_vec(),
        output_rate_hz: OUTPUT_RATE_HZ,
        output_channels: 2,
        filters,
    })
    .expect("valid chain")
}

/// Runs the whole pipeline on the bench input with `spec` and returns the bytes produced.
pub fn transcoded_bytes(mp3: &Arc<[u8]>, spec: &TranscodeSpec) -> u64 {
    let transcode = Transcode::try_new(open(mp3), spec).expect("valid spec");
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

/// 48 kHz stereo at 128 kbit/s in `format`.
pub fn output_spec(format: OutputFormat) -> OutputSpec {
    OutputSpec {
        format,
        sample_rate_hz: OUTPUT_RATE_HZ,
        channels: 2,
        bitrate_kbps: 128,
    }
}

/// The Opus encoder alone: `encode::build` + `write` + `finish` on `blocks` (48 kHz
/// stereo); returns the bytes produced.
pub fn encode_opus(blocks: &[Block], source_rate_hz: u32) -> usize {
    let mut encoder =
        encode::build(&output_spec(OutputFormat::Opus), source_rate_hz).expect("builds");
    let mut out = Vec::new();
    let mut bytes = 0;
    for block in blocks {
        encoder.write(block, &mut out).expect("encodes");
        bytes += out.len();
        out.clear();
    }
    encoder.finish(&mut out).expect("finishes");
    bytes + black_box(&out).len()
}

/// 10 flat samples of about 0.4 s each; throughput in ms of audio per iteration.
pub fn configure(group: &mut criterion::BenchmarkGroup<'_, CpuTime>) {
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Elements(SLICE_MS));
}

/// A criterion instance measuring the benchmark thread's CPU time.
pub fn cpu_time_criterion() -> Criterion<CpuTime> {
    Criterion::default().with_measurement(CpuTime)
}

/// CPU time of the calling thread, in nanoseconds, from the scheduler's accounting.
pub struct CpuTime;

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
