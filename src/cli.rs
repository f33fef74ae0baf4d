//! The command line: `rust-transcoder transcode INPUT -o OUTPUT ...` runs the same
//! pipeline as the service on a local file, with a progress bar on a terminal.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use dsp::Filters;
use dsp::eq::{EqBand, EqPreset};
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::Config;
use crate::decode::{Decoder, FormatHint, ReadOnlySource};
use crate::encode::{OutputFormat, OutputSpec};
use crate::pipeline::{SinkClosed, Summary, Transcode, TranscodeSpec};

/// Streaming audio transcoder.
#[derive(Debug, Parser)]
#[command(name = "rust-transcoder", version, about)]
pub struct Cli {
    /// What to do; without one, the service runs with its defaults and environment
    /// (as `serve` without flags).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The service settings from defaults and `TRANSCODER_*` variables alone, for a bare
/// `rust-transcoder` (service variables do not concern the other subcommands).
#[derive(Debug, Parser)]
struct ServeDefaults {
    #[command(flatten)]
    config: Config,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service (the default).
    Serve(Config),
    /// Transcode a local file, a URL or `-` (stdin) into OUTPUT (or `-` for stdout).
    Transcode(TranscodeArgs),
}

/// Arguments of `transcode`.
#[derive(Debug, Args)]
pub struct TranscodeArgs {
    /// Input: an audio file, an http(s) URL, or `-` for standard input.
    pub input: PathBuf,
    /// Output file, or `-` for standard output.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Output format: opus (Ogg Opus), pcm (raw s16le) or aac (AAC-LC in ADTS).
    #[arg(short, long, default_value = "opus")]
    pub format: OutputFormat,
    /// Output sample rate in Hz (Opus streams are always 48000).
    #[arg(long, default_value_t = 48_000)]
    pub sample_rate: u32,
    /// Output channels: 1 or 2.
    #[arg(long, default_value_t = 2)]
    pub channels: usize,
    /// Target bitrate in kbit/s for opus (6..=510) and aac (8..=320).
    #[arg(long, default_value_t = 128)]
    pub bitrate: u32,
    /// Tempo 0.5..=2.0 keeping pitch (output duration = input / speed).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Pitch ratio 0.5..=2.0 keeping tempo (2.0 = one octave up).
    #[arg(long, default_value_t = 1.0)]
    pub pitch: f64,
    /// Varispeed 0.5..=2.0: tempo and pitch together.
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    /// Linear volume 0.0..=2.0; above 1.0 a limiter keeps peaks under -1 dBFS.
    #[arg(long, default_value_t = 1.0)]
    pub volume: f32,
    /// Equaliser preset: flat, bass_boost, voice or treble.
    #[arg(long, default_value = "flat")]
    pub eq: String,
    /// Extra peaking band FREQ_HZ:GAIN_DB:Q (repeatable, at most 16).
    #[arg(long = "eq-band")]
    pub eq_bands: Vec<String>,
    /// Normalise loudness to LUFS (-70..=-5); without a value, -14.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "-14")]
    pub normalize: Option<f64>,
    /// Start this many seconds into the source.
    #[arg(long, default_value_t = 0.0)]
    pub start: f64,
    /// Stop after this many seconds of output.
    #[arg(long)]
    pub duration: Option<f64>,
}

impl TranscodeArgs {
    /// The transcode these arguments ask for; filter values are checked by the pipeline,
    /// the EQ syntax here, so that every bad filter fails the same way.
    fn spec(&self) -> anyhow::Result<TranscodeSpec> {
        let eq_preset: EqPreset = self
            .eq
            .parse()
            .map_err(|err| anyhow::anyhow!("invalid filter: {err}"))?;
        let eq_bands = self
            .eq_bands
            .iter()
            .map(|band| parse_eq_band(band))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| anyhow::anyhow!("invalid filter: eq_band {err}"))?;
        Ok(TranscodeSpec {
            output: OutputSpec {
                format: self.format,
                sample_rate_hz: self.sample_rate,
                channels: self.channels,
                bitrate_kbps: self.bitrate,
            },
            filters: Filters {
                speed: self.speed,
                pitch: self.pitch,
                rate: self.rate,
                volume: self.volume,
                eq_preset,
                eq_bands,
                normalize_lufs: self.normalize,
            },
            start_secs: self.start,
            duration_secs: self.duration,
        })
    }
}

/// Parses the command line, runs it, and turns failures into a one-line message.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Transcode(args)) => transcode(&args),
        Some(Command::Serve(config)) => crate::server::run(config),
        None => crate::server::run(ServeDefaults::parse_from(["rust-transcoder"]).config),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("rust-transcoder: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn transcode(args: &TranscodeArgs) -> anyhow::Result<()> {
    let spec = args.spec()?;
    let decoder = open_input(&args.input)?;
    let transcode = Transcode::try_new(decoder, &spec)?;
    let rate = u64::from(transcode.source_info().sample_rate_hz.max(1));
    let progress = progress_bar(
        transcode
            .source_info()
            .duration_frames
            .map(|f| f.saturating_mul(1000) / rate),
    );
    let result = write_output(&args.output, |writer| {
        transcode.run(
            |chunk| writer.write_all(&chunk).map_err(|_| SinkClosed),
            |frames| progress.set_position(frames.saturating_mul(1000) / rate),
        )
    });
    progress.finish_and_clear();
    let summary = result?;
    if summary.skipped_packets > 0 {
        eprintln!(
            "rust-transcoder: warning: skipped {} undecodable packets",
            summary.skipped_packets
        );
    }
    Ok(())
}

fn open_input(path: &Path) -> anyhow::Result<Decoder> {
    /// Fetches `url` through the service's source module (same SSRF guard and limits;
    /// `TRANSCODER_ALLOW_NETS` re-allows ranges). The runtime lives for the process:
    /// the transcode reads the body on this thread, outside the runtime.
    fn open_url(url: &str) -> anyhow::Result<Decoder> {
        use crate::source::{Fetcher, SourceLimits, parse_allow_nets};
        static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
        let allow_nets = std::env::var("TRANSCODER_ALLOW_NETS").unwrap_or_default();
        let allow_nets = parse_allow_nets(&allow_nets)
            .map_err(|err| anyhow::anyhow!("TRANSCODER_ALLOW_NETS: {err}"))?;
        let runtime = match RUNTIME.get() {
            Some(runtime) => runtime,
            None => {
                let built = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()?;
                RUNTIME.get_or_init(|| built)
            }
        };
        let fetcher = Fetcher::try_new(SourceLimits::default(), allow_nets)?;
        let cancel = tokio_util::sync::CancellationToken::new();
        let remote = runtime
            .block_on(fetcher.open(url, cancel))
            .map_err(|err| anyhow::anyhow!("{url}: {err}"))?;
        let hint = FormatHint {
            extension: remote.meta().extension(),
            mime_type: remote.meta().content_type.clone(),
        };
        Decoder::try_new(Box::new(remote), &hint).map_err(|err| anyhow::anyhow!("{url}: {err}"))
    }
    if let Some(url) = path
        .to_str()
        .filter(|text| text.starts_with("http://") || text.starts_with("https://"))
    {
        return open_url(url);
    }
    let hint = FormatHint {
        extension: path.extension().and_then(|e| e.to_str()).map(str::to_owned),
        mime_type: None,
    };
    let decoder = if path.as_os_str() == "-" {
        Decoder::try_new(Box::new(ReadOnlySource::new(std::io::stdin())), &hint)
    } else {
        let file = File::open(path)
            .map_err(|err| anyhow::anyhow!("cannot open {}: {err}", path.display()))?;
        Decoder::try_new(Box::new(file), &hint)
    };
    decoder.map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))
}

/// Runs `produce` against the output; a failed run removes a partly written file so that
/// nothing truncated is left looking complete.
fn write_output(
    path: &Path,
    produce: impl FnOnce(&mut dyn Write) -> Result<Summary, crate::PipelineError>,
) -> anyhow::Result<Summary> {
    if path.as_os_str() == "-" {
        let mut stdout = BufWriter::new(std::io::stdout().lock());
        let summary = produce(&mut stdout)?;
        stdout.flush()?;
        return Ok(summary);
    }
    let file = File::create(path)
        .map_err(|err| anyhow::anyhow!("cannot create {}: {err}", path.display()))?;
    let mut writer = BufWriter::new(file);
    let result = produce(&mut writer)
        .map_err(anyhow::Error::from)
        .and_then(|summary| {
            writer.flush()?;
            Ok(summary)
        });
    if result.is_err() {
        drop(writer);
        let _ = std::fs::remove_file(path);
    }
    result
}

/// Parses `FREQ_HZ:GAIN_DB:Q`, e.g. `1000:6:1.0`.
fn parse_eq_band(text: &str) -> Result<EqBand, String> {
    let numbers: Vec<f64> = text
        .split(':')
        .map(|part| {
            part.trim()
                .parse::<f64>()
                .map_err(|err| format!("{part:?}: {err}"))
        })
        .collect::<Result<_, _>>()?;
    match numbers[..] {
        [freq_hz, gain_db, q] => Ok(EqBand {
            freq_hz,
            gain_db,
            q,
        }),
        _ => Err(format!("{text:?} is not FREQ_HZ:GAIN_DB:Q")),
    }
}

/// A progress bar in source milliseconds, shown only when stderr is a terminal.
fn progress_bar(duration_ms: Option<u64>) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(duration_ms.unwrap_or(0));
    if duration_ms.is_some() {
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {percent:>3}% {elapsed} / eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
