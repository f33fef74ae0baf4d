//! The report's notes: what the service's own counters say (memory per stream, source
//! fetched, how far ahead it runs), errors, where one first byte goes, and the targets.

use std::fmt::Write as _;

use crate::inprocess::FirstChunkTimes;
use crate::report::{Cells, OUTPUT, median, mib, ms, ms3, percentile, seconds_ms};
use crate::scenario::{Results, Row, Series, SideResult};
use crate::{Format, Options};

/// Targets for one stream's first byte: p50 and p99, ms.
const ONE_STREAM_TTFB_MS: (f64, f64) = (10.0, 30.0);
/// Target p99 first byte with 50 streams at once, ms.
const FIFTY_STREAMS_P99_MS: f64 = 50.0;
/// The service's counter of source bytes received.
const SOURCE: &str = "source_bytes_total";
/// RSS targets: (streams, MiB).
const RSS_TARGETS: [(usize, f64); 2] = [(10, 32.0), (50, 64.0)];

/// How first bytes were sampled, the service's own numbers, errors, and this
/// program's CPU.
pub fn notes(out: &mut String, options: &Options, results: &Results) {
    let _ = writeln!(
        out,
        "- First byte: for one stream, {} requests (ffmpeg: spawns) in a row, 20 ms apart; \
         for N streams, the N opened at once. p99 is by nearest rank (with 100 samples or \
         fewer it is the largest or second largest).",
        options.sequential
    );
    for row in &results.rows {
        service_note(out, options.format, row);
    }
    for row in &results.rows {
        let mut errors: Vec<&String> = sides(row)
            .flat_map(|side| {
                let held = side.hold.streams.iter().filter_map(|s| s.error.as_ref());
                held.chain(side.series.iter().flat_map(|series| series.errors.iter()))
            })
            .collect();
        errors.sort();
        errors.dedup();
        for error in errors.iter().take(3) {
            let _ = writeln!(out, "- Error with {} streams: {error}", row.streams);
        }
    }
    let loadgen: Vec<String> = results
        .rows
        .iter()
        .flat_map(sides)
        .map(|side| {
            format!(
                "{:.0} %",
                100.0 * side.hold.loadgen_cpu_secs / side.hold.hold_secs
            )
        })
        .collect();
    let _ = writeln!(
        out,
        "- This load generator's own CPU over each hold (origin and readers, sharing the \
         cores): {}.\n",
        loadgen.join(", ")
    );
}

/// The sides measured in `row`.
fn sides(row: &Row) -> impl Iterator<Item = &SideResult> {
    std::iter::once(&row.ours).chain(row.ffmpeg.as_ref())
}

/// What the service's own numbers say at one stream count.
fn service_note(out: &mut String, format: Format, row: &Row) {
    let side = &row.ours;
    let (Some((idle, idle_threads)), Some([burst, first, start, end])) =
        (side.idle, side.hold.metrics.as_ref())
    else {
        return;
    };
    let hold = &side.hold;
    let n = row.streams as f64;
    let audio_secs = |bytes: f64| bytes / n / format.bytes_per_sec();
    let read: f64 = hold.streams.iter().map(|stream| stream.bytes as f64).sum();
    let _ = writeln!(
        out,
        "- ours, {} streams: idle {:.1} MiB RSS, {idle_threads} threads after one warm-up \
         request; per stream at the end of the hold {:+.0} KiB RSS, {:+.1} threads, {:.0} KiB \
         of source fetched. Burst: last first byte after {:.0} ms, service CPU {:.0} ms, \
         {:.1} s of audio per stream already produced. Hold: output {:.2}x real time; at its \
         end {:.1} s of audio per stream produced but not yet read; slots free {} after the \
         drop.",
        row.streams,
        mib(idle.rss_kib),
        (hold.memory_end.rss_kib as f64 - idle.rss_kib as f64) / n,
        (hold.threads as f64 - idle_threads as f64) / n,
        (end.get(SOURCE) - burst.get(SOURCE)) / n / 1024.0,
        hold.first_bytes_secs * 1e3,
        hold.cpu.burst * 1e3,
        audio_secs(first.get(OUTPUT) - burst.get(OUTPUT)),
        audio_secs(end.get(OUTPUT) - start.get(OUTPUT)) / hold.hold_secs,
        audio_secs(end.get(OUTPUT) - read),
        side.freed_after.map_or("-".into(), |freed| format!(
            "{:.0} ms",
            freed.as_secs_f64() * 1e3
        )),
    );
}

/// Where one stream's first byte goes: at the origin, in the service, in process.
pub fn first_byte(out: &mut String, results: &Results, first_chunk: &FirstChunkTimes) {
    let Some(row) = results.rows.iter().find(|row| row.streams == 1) else {
        return;
    };
    let ours = row.ours.series.as_ref();
    let ffmpeg = row.ffmpeg.as_ref().and_then(|side| side.series.as_ref());
    out.push_str("One stream's first byte, medians of the requests in a row:\n\n");
    out.push_str("| Step | ours, ms | ffmpeg, ms |\n|---|---:|---:|\n");
    let both =
        |f: &dyn Fn(&Series) -> String| (ours.map_or("-".into(), f), ffmpeg.map_or("-".into(), f));
    let (a, b) = both(&|s| ms(median(&s.to_origin)));
    let _ = writeln!(
        out,
        "| request (ffmpeg: spawn) -> the origin gets the source request | {a} | {b} |"
    );
    let (a, b) = both(&|s| ms(median(&s.origin_to_first)));
    let _ = writeln!(
        out,
        "| the origin gets the source request -> first byte | {a} | {b} |"
    );
    let (a, b) = both(&|s| ms(median(&s.ttfb)));
    let _ = writeln!(out, "| total: request -> first byte | {a} | {b} |");
    let per_request = |count: usize, s: &Series| count as f64 / s.ttfb.len().max(1) as f64;
    let (a, b) = both(&|s| {
        let (all, partial) = (
            per_request(s.origin_requests, s),
            per_request(s.partial_requests, s),
        );
        format!("{all:.2} ({partial:.2} for a part)")
    });
    let _ = writeln!(
        out,
        "| origin requests before the first byte, per stream (Range not from 0) | {a} | {b} |"
    );
    let server = ours
        .and_then(|s| s.server_latency_ms)
        .map_or("-".into(), |v| format!("{v:.1} (mean)"));
    let _ = writeln!(
        out,
        "| service's own `transcode_latency_ms` (accepted -> first chunk) | {server} | - |"
    );
    let _ = writeln!(
        out,
        "| in process, file in memory: probe + first decode / chain and encoder set-up / \
         run to the first chunk ({} B) | {} / {} / {} | - |\n",
        first_chunk.first_chunk_bytes,
        ms3(median(&first_chunk.probe)),
        ms3(median(&first_chunk.setup)),
        ms3(median(&first_chunk.first_chunk)),
    );
}

/// The targets of the issue, checked against the service's numbers.
pub fn targets(out: &mut String, options: &Options, results: &Results) {
    let _ = writeln!(out, "Targets ({} output):\n", options.format.name());
    out.push_str("| Target | Measured | Met |\n|---|---:|:---:|\n");
    let ours_at = |n: usize| {
        let row = results.rows.iter().find(|row| row.streams == n)?;
        Some(Cells::of(&row.ours, options.format))
    };
    if let Some(one) = ours_at(1) {
        let (p50, p99) = (
            seconds_ms(percentile(&one.ttfb, 0.5)),
            seconds_ms(percentile(&one.ttfb, 0.99)),
        );
        target_row(
            out,
            "first byte p50 <= 10 ms, one stream",
            p50,
            ONE_STREAM_TTFB_MS.0,
            "ms",
        );
        target_row(
            out,
            "first byte p99 <= 30 ms, one stream",
            p99,
            ONE_STREAM_TTFB_MS.1,
            "ms",
        );
    }
    if let Some(fifty) = ours_at(50) {
        let p99 = seconds_ms(percentile(&fifty.ttfb, 0.99));
        target_row(
            out,
            "first byte p99 <= 50 ms, 50 streams at once",
            p99,
            FIFTY_STREAMS_P99_MS,
            "ms",
        );
    }
    for (streams, limit) in RSS_TARGETS {
        if let Some(cells) = ours_at(streams) {
            let name = format!("service RSS <= {limit} MiB with {streams} streams (peak)");
            target_row(out, &name, Some(cells.peak_rss), limit, "MiB");
        }
    }
    out.push('\n');
}

/// One target: name, measured value, met or not.
fn target_row(out: &mut String, name: &str, measured: Option<f64>, limit: f64, unit: &str) {
    let (value, met) = match measured {
        Some(value) => (
            format!("{value:.1} {unit}"),
            if value <= limit { "yes" } else { "**no**" },
        ),
        None => ("-".into(), "-"),
    };
    let _ = writeln!(out, "| {name} | {value} | {met} |");
}
