//! Load generator: the HTTP service against one ffmpeg process per request, in the same
//! run, on the same origin and the same pace.
//!
//! ```sh
//! cargo bench --bench loadgen -- [--streams 1,10,50] [--format pcm|opus] [--hold-secs 10]
//! ```
//!
//! It serves `bench-data/music.mp3` (made by `benches/make_bench_input.sh` when missing)
//! from a loopback origin in this process, and for each stream count N:
//!
//! 1. **ours**: starts the release `rust-transcoder serve` binary (a fresh process per N),
//!    warms it up with one request, notes its idle memory, then opens N streams at once
//!    (`POST /transcode`, PCM 48 kHz stereo or Ogg Opus 128k) and times each from
//!    sending the request to its first body byte. Every stream is then read at
//!    real-time pace (192 000 B/s for PCM, the nominal bitrate for Opus), as a voice-chat
//!    streamer consumes it. After a settle period (the service first fills the socket
//!    buffers ahead of the reader), CPU time is taken over the hold from
//!    `/proc/PID/task/*/schedstat` and memory sampled from `/proc/PID/status` (RSS) and
//!    `/proc/PID/smaps_rollup` (PSS). Then the streams are dropped.
//! 2. **ffmpeg**: the same with N processes `ffmpeg -nostdin -v error -i ORIGIN_URL ...
//!    pipe:1`, first byte = first stdout byte after the spawn, memory = the sums of
//!    their RSS and PSS (PSS counts shared pages once), CPU = the sum of theirs.
//!
//! For one stream, first-byte time is also taken over `--sequential` requests in a row
//! (one sample is not a p99), split at the origin (when the request reached it), and
//! set against the compute part measured in process (probe, set-up, first chunk).
//! Errors are non-200 answers and bodies that break or end early. The output is
//! markdown: the command, the machine, a table with ours/ffmpeg ratios, notes, and the
//! targets checked.

#[path = "loadgen/clients.rs"]
mod clients;
#[path = "loadgen/inprocess.rs"]
mod inprocess;
#[path = "loadgen/notes.rs"]
mod notes;
#[path = "loadgen/origin.rs"]
mod origin;
#[path = "loadgen/procfs.rs"]
mod procfs;
#[path = "loadgen/report.rs"]
mod report;
#[path = "loadgen/scenario.rs"]
mod scenario;
#[path = "loadgen/service.rs"]
mod service;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use clap::{Parser, ValueEnum};
use rust_transcoder::encode::{OutputFormat, OutputSpec};

/// Options; `cargo bench` adds `--bench`, which is accepted and ignored.
#[derive(Debug, Clone, Parser)]
#[command(about = "Load generator: the service against ffmpeg per request")]
pub struct Options {
    /// Stream counts, one scenario each.
    #[arg(long, value_delimiter = ',', default_value = "1,10,50")]
    pub streams: Vec<usize>,
    /// Output format of every stream.
    #[arg(long, value_enum, default_value_t = Format::Pcm)]
    pub format: Format,
    /// Seconds the streams are held (and measured) after settling.
    #[arg(long, default_value_t = 10.0)]
    pub hold_secs: f64,
    /// Seconds between the last first byte and the start of the measurement.
    #[arg(long, default_value_t = 3.0)]
    pub settle_secs: f64,
    /// First-byte samples for one stream: requests in a row.
    #[arg(long, default_value_t = 100)]
    pub sequential: usize,
    /// Milliseconds between memory samples.
    #[arg(long, default_value_t = 250)]
    pub sample_ms: u64,
    /// Limit the origin to this many KiB/s per response (0: as fast as loopback TCP).
    #[arg(long, default_value_t = 0.0)]
    pub origin_kib_per_sec: f64,
    /// Skip the ffmpeg side.
    #[arg(long)]
    pub no_ffmpeg: bool,
    #[arg(long, hide = true)]
    bench: bool,
}

/// Output format of the streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Raw s16le, 48 kHz stereo.
    Pcm,
    /// Ogg Opus, 128 kbit/s constrained VBR, stereo.
    Opus,
}

impl Format {
    /// Real-time reading pace in bytes per second (Opus: its nominal bitrate).
    pub fn bytes_per_sec(self) -> f64 {
        match self {
            Self::Pcm => 48_000.0 * 2.0 * 2.0,
            Self::Opus => 128_000.0 / 8.0,
        }
    }

    /// The `POST /transcode` body for `source_url`.
    pub fn request(self, source_url: &str) -> serde_json::Value {
        match self {
            Self::Pcm => serde_json::json!({
                "source_url": source_url, "output_format": "pcm",
                "sample_rate": 48_000, "channels": 2,
            }),
            Self::Opus => serde_json::json!({
                "source_url": source_url, "output_format": "opus",
                "channels": 2, "bitrate_kbps": 128,
            }),
        }
    }

    /// ffmpeg's arguments for the same job, output on stdout.
    pub fn ffmpeg_args(self, source_url: &str) -> Vec<String> {
        let output: &[&str] = match self {
            Self::Pcm => &["-f", "s16le", "-ar", "48000", "-ac", "2"],
            Self::Opus => &[
                "-c:a",
                "libopus",
                "-b:a",
                "128k",
                "-vbr",
                "constrained",
                "-compression_level",
                "10",
                "-ar",
                "48000",
                "-ac",
                "2",
                "-f",
                "ogg",
            ],
        };
        let mut args: Vec<String> = ["-nostdin", "-v", "error", "-i", source_url]
            .iter()
            .chain(output)
            .map(|arg| (*arg).to_owned())
            .collect();
        args.push("pipe:1".into());
        args
    }

    /// The library's output spec for the in-process measurement.
    fn output_spec(self) -> OutputSpec {
        OutputSpec {
            format: match self {
                Self::Pcm => OutputFormat::Pcm,
                Self::Opus => OutputFormat::Opus,
            },
            ..OutputSpec::default()
        }
    }

    /// `pcm` or `opus`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pcm => "pcm",
            Self::Opus => "opus",
        }
    }
}

fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    anyhow::ensure!(
        options.settle_secs + options.hold_secs < 150.0,
        "settle + hold must stay well inside the 180 s input"
    );
    let file: Arc<[u8]> = std::fs::read(input_path()?)?.into();
    eprintln!("timing the first chunk in process...");
    let first_chunk = inprocess::measure(&file, options.format.output_spec(), 50)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let results = runtime.block_on(scenario::run_all(&options, file))?;
    print!("{}", report::markdown(&options, &results, &first_chunk));
    Ok(())
}

/// `bench-data/music.mp3`, generated first when missing.
fn input_path() -> anyhow::Result<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = root.join("bench-data/music.mp3");
    if !path.exists() {
        eprintln!("{} is missing; generating it", path.display());
        let status = Command::new("bash")
            .arg(root.join("benches/make_bench_input.sh"))
            .status()?;
        anyhow::ensure!(
            status.success(),
            "benches/make_bench_input.sh failed (needs ffmpeg)"
        );
    }
    Ok(path)
}
