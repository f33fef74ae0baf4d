//! The markdown report: the command and machine, one table with both sides and their
//! ratios, then the notes (`notes.rs`), and the number formats they share.

use std::fmt::Write as _;
use std::time::Duration;

use crate::inprocess::FirstChunkTimes;
use crate::notes::{first_byte, notes, targets};
use crate::scenario::{Hold, Results, Row, SideResult};
use crate::{Format, Options};

/// The service's counter of encoded bytes handed to responses.
pub const OUTPUT: &str = "output_bytes_total";

/// The whole report.
pub fn markdown(options: &Options, results: &Results, first_chunk: &FirstChunkTimes) -> String {
    let mut out = String::new();
    header(&mut out, options, results);
    table(&mut out, options, results);
    notes(&mut out, options, results);
    first_byte(&mut out, results, first_chunk);
    targets(&mut out, options, results);
    out
}

fn header(out: &mut String, options: &Options, results: &Results) {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let ffmpeg = ffmpeg_version();
    let command = match args.is_empty() {
        true => "cargo bench --bench loadgen".to_owned(),
        false => format!("cargo bench --bench loadgen -- {}", args.join(" ")),
    };
    let _ = writeln!(out, "`{command}`\n");
    let _ = writeln!(
        out,
        "{} output, {} s hold after {} s settle, read at {} B/s per stream; {} cores, 1-min \
         load average {} before, {} after; {ffmpeg}.\n",
        options.format.name(),
        options.hold_secs,
        options.settle_secs,
        options.format.bytes_per_sec(),
        results.cores,
        results.load_average.0,
        results.load_average.1,
    );
}

fn table(out: &mut String, options: &Options, results: &Results) {
    out.push_str(
        "| Streams | Side | first byte p50 / p99 / max, ms | errors | peak RSS, MiB | RSS at \
         end of hold, MiB | peak PSS, MiB | CPU over the hold, % of one core | CPU per second \
         of audio, % of one core | longest wait for due data, ms |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for row in &results.rows {
        let ours = Cells::of(&row.ours, options.format);
        ours.write(out, row.streams, "ours");
        if let Some(ffmpeg) = &row.ffmpeg {
            let ffmpeg = Cells::of(ffmpeg, options.format);
            ffmpeg.write(out, row.streams, "ffmpeg");
            ratio_row(out, row, &ours, &ffmpeg);
        }
    }
    out.push('\n');
}

/// The numbers of one table row.
pub struct Cells {
    pub ttfb: Vec<Duration>,
    errors: usize,
    pub peak_rss: f64,
    end_rss: f64,
    peak_pss: f64,
    hold_cpu_percent: f64,
    audio_cpu_percent: Option<f64>,
    worst_wait: Duration,
}

impl Cells {
    /// One stream: first bytes from the series; N streams: from the burst.
    pub fn of(side: &SideResult, format: Format) -> Self {
        let hold = &side.hold;
        let mut ttfb: Vec<Duration> = match &side.series {
            Some(series) => series.ttfb.clone(),
            None => hold
                .streams
                .iter()
                .filter_map(|stream| stream.ttfb)
                .collect(),
        };
        ttfb.sort();
        let series_errors = side.series.as_ref().map_or(0, |series| series.errors.len());
        let audio_secs = audio_produced_bytes(hold) / format.bytes_per_sec();
        Self {
            ttfb,
            errors: hold.streams.iter().filter(|s| s.error.is_some()).count() + series_errors,
            peak_rss: mib(hold.memory_peak.rss_kib),
            end_rss: mib(hold.memory_end.rss_kib),
            peak_pss: mib(hold.memory_peak.pss_kib),
            hold_cpu_percent: 100.0 * hold.cpu.hold / hold.hold_secs,
            audio_cpu_percent: (audio_secs > 0.0).then(|| 100.0 * hold.cpu.total / audio_secs),
            worst_wait: hold
                .streams
                .iter()
                .map(|s| s.worst_wait)
                .max()
                .unwrap_or_default(),
        }
    }

    fn write(&self, out: &mut String, streams: usize, side: &str) {
        let label = if streams == 1 {
            "1 (first byte: requests in a row)".into()
        } else {
            streams.to_string()
        };
        let _ = writeln!(
            out,
            "| {label} | {side} | {} / {} / {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {:.0} |",
            ms(percentile(&self.ttfb, 0.5)),
            ms(percentile(&self.ttfb, 0.99)),
            ms(self.ttfb.last().copied()),
            self.errors,
            self.peak_rss,
            self.end_rss,
            self.peak_pss,
            self.hold_cpu_percent,
            self.audio_cpu_percent
                .map_or("-".into(), |percent| format!("{percent:.2}")),
            self.worst_wait.as_secs_f64() * 1000.0,
        );
    }
}

/// Output bytes produced from the burst to the end of the hold: the service's own count,
/// or for ffmpeg what was read from the pipes (ffmpeg can only be 64 KiB ahead).
fn audio_produced_bytes(hold: &Hold) -> f64 {
    match &hold.metrics {
        Some([burst, _, _, end]) => end.get(OUTPUT) - burst.get(OUTPUT),
        None => hold.streams.iter().map(|stream| stream.bytes as f64).sum(),
    }
}

fn ratio_row(out: &mut String, row: &Row, ours: &Cells, ffmpeg: &Cells) {
    let ttfb = |p| {
        let (a, b) = (percentile(&ours.ttfb, p), percentile(&ffmpeg.ttfb, p));
        ratio(a.map(|a| a.as_secs_f64()), b.map(|b| b.as_secs_f64()))
    };
    let _ = writeln!(
        out,
        "| {} | **ours / ffmpeg** | {} / {} / - | | {} | {} | {} | {} | {} | |",
        row.streams,
        ttfb(0.5),
        ttfb(0.99),
        ratio(Some(ours.peak_rss), Some(ffmpeg.peak_rss)),
        ratio(Some(ours.end_rss), Some(ffmpeg.end_rss)),
        ratio(Some(ours.peak_pss), Some(ffmpeg.peak_pss)),
        ratio(Some(ours.hold_cpu_percent), Some(ffmpeg.hold_cpu_percent)),
        ratio(ours.audio_cpu_percent, ffmpeg.audio_cpu_percent),
    );
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.max(1) - 1).copied()
}

/// Median (nearest rank) of unsorted values.
pub fn median(values: &[Duration]) -> Option<Duration> {
    let mut sorted = values.to_vec();
    sorted.sort();
    percentile(&sorted, 0.5)
}

/// A duration in milliseconds.
pub fn seconds_ms(value: Option<Duration>) -> Option<f64> {
    value.map(|value| value.as_secs_f64() * 1000.0)
}

/// Milliseconds with one decimal, `-` for none.
pub fn ms(value: Option<Duration>) -> String {
    seconds_ms(value).map_or("-".into(), |ms| format!("{ms:.1}"))
}

/// Milliseconds with three decimals, `-` for none.
pub fn ms3(value: Option<Duration>) -> String {
    seconds_ms(value).map_or("-".into(), |ms| format!("{ms:.3}"))
}

/// `ours / theirs` as `0.12x`.
fn ratio(ours: Option<f64>, theirs: Option<f64>) -> String {
    match (ours, theirs) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "-".into(),
    }
}

/// KiB to MiB.
pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// `ffmpeg 5.1.x` from `ffmpeg -version`.
fn ffmpeg_version() -> String {
    std::process::Command::new("ffmpeg")
        .arg("-version")
        .output()
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| {
            text.split_whitespace()
                .nth(2)
                .map(|v| format!("ffmpeg {v}"))
        })
        .unwrap_or_else(|| "ffmpeg ?".into())
}
