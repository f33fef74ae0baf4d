//! The scenarios: for each stream count, the service and then ffmpeg per request, each
//! opening its streams at once, holding them at real-time pace and being measured from
//! `/proc` while held; for one stream, also first bytes of requests in a row.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::Options;
use crate::clients::{Burst, StreamReport, Target};
use crate::origin::Origin;
use crate::procfs::{self, CpuSnapshot, Memory, Pids, Sampler, cpu_between};
use crate::service::{Metrics, Service};

/// Longest wait for the first bytes of a burst.
const FIRST_BYTE_LIMIT: Duration = Duration::from_secs(15);
/// Pause between requests in a row, so that each starts on a quiet server.
const SERIES_PAUSE: Duration = Duration::from_millis(20);
/// Time for the warm-up's job thread to end before the idle state is read.
const SETTLE_AFTER_WARM_UP: Duration = Duration::from_millis(200);
/// Slots beyond the stream count, so no stream is refused for capacity.
const SPARE_SLOTS: usize = 10;

/// Everything one run measured.
pub struct Results {
    /// One row per stream count.
    pub rows: Vec<Row>,
    /// `nproc`.
    pub cores: usize,
    /// 1-minute load average before and after.
    pub load_average: (String, String),
}

/// Both sides at one stream count.
pub struct Row {
    /// Streams held at once.
    pub streams: usize,
    /// The service.
    pub ours: SideResult,
    /// ffmpeg per request, unless skipped.
    pub ffmpeg: Option<SideResult>,
}

/// One side at one stream count.
pub struct SideResult {
    /// The held streams.
    pub hold: Hold,
    /// First bytes of requests in a row (one-stream scenario only).
    pub series: Option<Series>,
    /// The service's memory and threads after its warm-up request, before the burst.
    pub idle: Option<(Memory, usize)>,
    /// Time from dropping the streams until the service reported no active stream.
    pub freed_after: Option<Duration>,
}

/// N streams opened at once and held.
pub struct Hold {
    /// Each stream's outcome.
    pub streams: Vec<StreamReport>,
    /// Largest sums of RSS and of PSS seen (sampled separately), from the burst on.
    pub memory_peak: Memory,
    /// The last sample of the hold.
    pub memory_end: Memory,
    /// Seconds from opening the streams to the last first byte.
    pub first_bytes_secs: f64,
    /// Length of the hold, seconds.
    pub hold_secs: f64,
    /// CPU seconds of the measured processes, by phase.
    pub cpu: CpuSecs,
    /// This load generator's CPU seconds over the hold.
    pub loadgen_cpu_secs: f64,
    /// Threads of the measured processes at the end of the hold.
    pub threads: usize,
    /// Service only: its `/metrics` at the burst, the last first byte, the start and
    /// the end of the hold.
    pub metrics: Option<[Metrics; 4]>,
}

/// CPU seconds of the measured processes.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuSecs {
    /// From opening the streams to the last first byte.
    pub burst: f64,
    /// Over the hold.
    pub hold: f64,
    /// From opening the streams to the end of the hold.
    pub total: f64,
}

/// First bytes of requests made one after the other.
#[derive(Default)]
pub struct Series {
    /// Request (or spawn) to first body byte.
    pub ttfb: Vec<Duration>,
    /// Request (or spawn) to the origin receiving the source request.
    pub to_origin: Vec<Duration>,
    /// The origin receiving the source request to the first body byte.
    pub origin_to_first: Vec<Duration>,
    /// Origin requests made before the first byte, all requests together.
    pub origin_requests: usize,
    /// How many of those asked for a range other than the whole file.
    pub partial_requests: usize,
    /// Failed requests.
    pub errors: Vec<String>,
    /// Service only: its own mean of request accepted -> first chunk (`/metrics`).
    pub server_latency_ms: Option<f64>,
}

/// Runs every scenario of `options` on an origin serving `file`.
pub async fn run_all(options: &Options, file: Arc<[u8]>) -> anyhow::Result<Results> {
    let load_before = procfs::load_average();
    let rate = (options.origin_kib_per_sec > 0.0).then_some(options.origin_kib_per_sec * 1024.0);
    let origin = Origin::start("music.mp3", Bytes::from(file.to_vec()), rate).await?;
    // reqwest is built without a TLS provider of its own; loopback needs none, but the
    // client refuses to build without one.
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()?;
    let mut rows = Vec::new();
    for &streams in &options.streams {
        eprintln!("{streams} stream(s): the service...");
        let ours = run_ours(streams, options, &origin, &client).await?;
        let ffmpeg = if options.no_ffmpeg {
            None
        } else {
            eprintln!("{streams} stream(s): ffmpeg per request...");
            Some(run_ffmpeg(streams, options, &origin).await)
        };
        rows.push(Row {
            streams,
            ours,
            ffmpeg,
        });
    }
    Ok(Results {
        rows,
        cores: std::thread::available_parallelism().map_or(0, usize::from),
        load_average: (load_before, procfs::load_average()),
    })
}

/// The service side: a fresh process, one warm-up request, the hold, then (one stream)
/// the requests in a row.
async fn run_ours(
    streams: usize,
    options: &Options,
    origin: &Origin,
    client: &reqwest::Client,
) -> anyhow::Result<SideResult> {
    let service = Service::start(streams + SPARE_SLOTS)?;
    let target = Arc::new(Target::Service {
        client: client.clone(),
        url: format!("{}/transcode", service.base_url()),
        body: options.format.request(&origin.url()),
    });
    let warm_up = target.first_chunk().await;
    drop(warm_up.map_err(|error| anyhow::anyhow!("warm-up request failed: {error}"))?);
    service.wait_idle(client, Duration::from_secs(5)).await;
    tokio::time::sleep(SETTLE_AFTER_WARM_UP).await;
    let pid = service.pid();
    let idle = (Memory::read(pid, true), CpuSnapshot::take(pid).threads());
    let pids = Pids::One(pid);
    let measured = Some((&service, client));
    let hold = hold(Arc::clone(&target), streams, &pids, options, measured).await;
    let freed_after = service.wait_idle(client, Duration::from_secs(10)).await;
    let series = if streams == 1 {
        Some(series(&target, options.sequential, origin, measured).await)
    } else {
        None
    };
    Ok(SideResult {
        hold,
        series,
        idle: Some(idle),
        freed_after,
    })
}

/// The ffmpeg side: the hold, then (one stream) the spawns in a row.
async fn run_ffmpeg(streams: usize, options: &Options, origin: &Origin) -> SideResult {
    let running = Arc::new(Mutex::new(Vec::new()));
    let target = Arc::new(Target::Ffmpeg {
        args: options.format.ffmpeg_args(&origin.url()),
        pids: Arc::clone(&running),
    });
    let hold = hold(
        Arc::clone(&target),
        streams,
        &Pids::Running(running),
        options,
        None,
    )
    .await;
    let series = if streams == 1 {
        Some(series(&target, options.sequential, origin, None).await)
    } else {
        None
    };
    SideResult {
        hold,
        series,
        idle: None,
        freed_after: None,
    }
}

/// Opens `count` streams at once, waits for their first bytes and the settle time,
/// measures the hold, then drops them.
async fn hold(
    target: Arc<Target>,
    count: usize,
    pids: &Pids,
    options: &Options,
    service: Option<(&Service, &reqwest::Client)>,
) -> Hold {
    let mut burst = Burst::spawn(target, count, options.format.bytes_per_sec());
    let at_burst = Checkpoint::take(pids, service).await;
    let opened = burst.release().await;
    let sampler = Sampler::start(pids.clone(), Duration::from_millis(options.sample_ms));
    burst.wait_first_bytes(FIRST_BYTE_LIMIT).await;
    let first_bytes_secs = opened.elapsed().as_secs_f64();
    let at_first_bytes = Checkpoint::take(pids, service).await;
    tokio::time::sleep(Duration::from_secs_f64(options.settle_secs)).await;
    let loadgen_before = CpuSnapshot::take(std::process::id());
    let at_hold = Checkpoint::take(pids, service).await;
    tokio::time::sleep(Duration::from_secs_f64(options.hold_secs)).await;
    let at_end = Checkpoint::take(pids, service).await;
    let loadgen_cpu_secs = CpuSnapshot::take(std::process::id()).secs_since(&loadgen_before);
    let (memory_peak, memory_end) = sampler.finish().await;
    Hold {
        cpu: CpuSecs {
            burst: cpu_between(&at_burst.cpu, &at_first_bytes.cpu),
            hold: cpu_between(&at_hold.cpu, &at_end.cpu),
            total: cpu_between(&at_burst.cpu, &at_end.cpu),
        },
        hold_secs: (at_end.at - at_hold.at).as_secs_f64(),
        threads: at_end.cpu.values().map(CpuSnapshot::threads).sum(),
        streams: burst.stop().await,
        metrics: service.map(|_| {
            [at_burst, at_first_bytes, at_hold, at_end].map(|checkpoint| checkpoint.metrics)
        }),
        memory_peak,
        memory_end,
        first_bytes_secs,
        loadgen_cpu_secs,
    }
}

/// The measured processes' CPU times and the service's counters at one moment.
struct Checkpoint {
    at: Instant,
    cpu: HashMap<u32, CpuSnapshot>,
    metrics: Metrics,
}

impl Checkpoint {
    async fn take(pids: &Pids, service: Option<(&Service, &reqwest::Client)>) -> Self {
        let at = Instant::now();
        let cpu = pids.cpu();
        let metrics = match service {
            Some((service, client)) => service.metrics(client).await.unwrap_or_default(),
            None => Metrics::default(),
        };
        Self { at, cpu, metrics }
    }
}

/// `repeats` first bytes one after the other, each split at the origin.
async fn series(
    target: &Target,
    repeats: usize,
    origin: &Origin,
    service: Option<(&Service, &reqwest::Client)>,
) -> Series {
    let latency_before = server_latency(service).await;
    let mut series = Series::default();
    for _ in 0..repeats {
        origin.take_hits();
        let sent = Instant::now();
        let first = target.first_chunk().await;
        let first_at = Instant::now();
        match first {
            Ok((opened, _)) => {
                series.ttfb.push(first_at - sent);
                drop(opened);
            }
            Err(error) => series.errors.push(error),
        }
        let hits = origin.take_hits();
        let before_first: Vec<_> = hits.iter().filter(|hit| hit.at <= first_at).collect();
        if let Some(hit) = before_first.first() {
            series
                .to_origin
                .push(hit.at.saturating_duration_since(sent));
            series
                .origin_to_first
                .push(first_at.saturating_duration_since(hit.at));
        }
        series.origin_requests += before_first.len();
        series.partial_requests += before_first
            .iter()
            .filter(|hit| {
                hit.range
                    .as_deref()
                    .is_some_and(|range| range != "bytes=0-")
            })
            .count();
        tokio::time::sleep(SERIES_PAUSE).await;
    }
    let latency_after = server_latency(service).await;
    series.server_latency_ms =
        latency_before
            .zip(latency_after)
            .and_then(|((sum0, count0), (sum1, count1))| {
                (count1 > count0).then(|| (sum1 - sum0) / (count1 - count0))
            });
    series
}

/// (sum, count) of the service's `transcode_latency_ms` histogram.
async fn server_latency(service: Option<(&Service, &reqwest::Client)>) -> Option<(f64, f64)> {
    let (service, client) = service?;
    let metrics = service.metrics(client).await.ok()?;
    let latency = |part| metrics.get(&format!("transcode_latency_ms_{part}"));
    Some((latency("sum"), latency("count")))
}
