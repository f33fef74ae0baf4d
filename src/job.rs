//! One transcode job: decode -> dsp -> encode over a remote source, run on its own
//! small-stack thread (compute never runs on the async executor), reporting through a
//! bounded channel of [`JobEvent`]s. A slow reader blocks the thread (and so the source
//! download) instead of growing a buffer; a panic ends this job only.

use std::io::{Read, Seek, SeekFrom};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cpu_time::ThreadTime;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::decode::{Decoder, FormatHint, MediaSource, SourceInfo};
use crate::pipeline::{FilterUpdate, PipelineError, SinkClosed, Summary, Transcode, TranscodeSpec};
use crate::source::RemoteSource;

/// Stack of a job thread: enough for the codecs, small enough for hundreds of streams.
const JOB_STACK_BYTES: usize = 1024 * 1024;
/// Encoded chunks buffered between a job and its response body.
const OUTPUT_CHUNKS: usize = 4;
/// How often the stall watchdog looks.
const WATCHDOG_PERIOD: Duration = Duration::from_millis(250);

/// Limits a job enforces on itself.
#[derive(Debug, Clone, Copy)]
pub struct JobLimits {
    /// A client that takes nothing for this long is dropped.
    pub client_idle_timeout: Duration,
    /// A source that gives no audio for this long (while bytes may still arrive) is
    /// treated as stalled.
    pub stall_timeout: Duration,
    /// Most output audio, in seconds.
    pub max_output_secs: f64,
}

/// What a job reports, in order: `Started`, `Chunk`s, then `Finished` or `Failed`.
#[derive(Debug)]
pub enum JobEvent {
    /// The source is open and decodable; output follows.
    Started(Started),
    /// Encoded output.
    Chunk(Bytes),
    /// The output is complete.
    Finished(JobReport),
    /// The job failed; no more output follows.
    Failed(JobError, JobReport),
}

/// What is known once the source decodes.
#[derive(Debug, Clone)]
pub struct Started {
    /// What the source is.
    pub info: SourceInfo,
    /// Source position where the output begins, in seconds.
    pub start_offset_secs: f64,
    /// Expected output length, when the source's length is known.
    pub expected_output_secs: Option<f64>,
}

/// What a job did, for the summary log line and metrics.
#[derive(Debug, Clone, Default)]
pub struct JobReport {
    /// The pipeline's summary, when it got that far.
    pub summary: Option<Summary>,
    /// Source bytes the decoder read.
    pub source_bytes: u64,
    /// CPU time of the job thread.
    pub cpu_secs: f64,
}

/// Why a job failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Decoding, filtering or encoding failed.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// The source gave no audio for too long.
    #[error("the source produced no audio for {0:?}")]
    Stalled(Duration),
    /// The client stopped reading.
    #[error("the client read nothing for {0:?}")]
    ClientIdle(Duration),
    /// The client went away (or the server stopped the stream).
    #[error("the stream was stopped")]
    Stopped,
    /// The output reached the service's length limit before the source ended.
    #[error("the stream reached the {0} s output limit")]
    DurationLimit(f64),
    /// The job thread panicked.
    #[error("the pipeline crashed: {0}")]
    Panicked(String),
}

/// A running job: its events and its live filter channel.
pub struct Job {
    /// Events in order; closed when the job thread ends.
    pub events: mpsc::Receiver<JobEvent>,
    /// Live filter changes.
    pub updates: std::sync::mpsc::Sender<FilterUpdate>,
}

/// Starts a job on its own thread. `cancel` stops it (the client left, or the server
/// aborts); the source is read under `source_cancel`, a child the stall watchdog fires.
pub fn spawn(
    source: RemoteSource,
    spec: TranscodeSpec,
    limits: JobLimits,
    cancel: CancellationToken,
) -> std::io::Result<Job> {
    let (events_tx, events) = mpsc::channel(OUTPUT_CHUNKS);
    let (updates, updates_rx) = std::sync::mpsc::channel();
    let context = JobContext {
        events: events_tx,
        handle: Handle::current(),
        limits,
        cancel,
        liveness: Arc::default(),
        stop: std::sync::Mutex::new(None),
    };
    let span = tracing::Span::current();
    std::thread::Builder::new()
        .name("transcode".into())
        .stack_size(JOB_STACK_BYTES)
        .spawn(move || {
            let _entered = span.enter();
            context.run(source, spec, updates_rx);
        })?;
    Ok(Job { events, updates })
}

/// Everything the job thread shares with its sink and watchdog.
struct JobContext {
    events: mpsc::Sender<JobEvent>,
    handle: Handle,
    limits: JobLimits,
    cancel: CancellationToken,
    liveness: Arc<Liveness>,
    stop: std::sync::Mutex<Option<JobError>>,
}

/// When the job last decoded audio, and whether it is waiting on its client.
#[derive(Default)]
struct Liveness {
    started: std::sync::OnceLock<Instant>,
    last_audio_ms: AtomicU64,
    in_sink: AtomicBool,
    stalled: AtomicBool,
}

impl Liveness {
    fn now_ms(&self) -> u64 {
        self.started.get_or_init(Instant::now).elapsed().as_millis() as u64
    }

    fn mark_audio(&self) {
        self.last_audio_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// True when neither audio nor the client has moved for `limit`.
    fn is_stalled(&self, limit: Duration) -> bool {
        !self.in_sink.load(Ordering::Relaxed)
            && self.now_ms() - self.last_audio_ms.load(Ordering::Relaxed) > limit.as_millis() as u64
    }
}

impl JobContext {
    fn run(
        self,
        source: RemoteSource,
        spec: TranscodeSpec,
        updates: std::sync::mpsc::Receiver<FilterUpdate>,
    ) {
        let cpu = ThreadTime::now();
        let counted = CountingSource::new(source);
        let source_bytes = Arc::clone(&counted.bytes);
        let source_cancel = self.cancel.child_token();
        self.liveness.mark_audio();
        self.spawn_watchdog(source_cancel.clone());
        let outcome = catch_unwind(AssertUnwindSafe(|| self.transcode(counted, &spec, updates)));
        source_cancel.cancel();
        let mut report = JobReport {
            source_bytes: source_bytes.load(Ordering::Relaxed),
            cpu_secs: cpu.elapsed().as_secs_f64(),
            summary: None,
        };
        let event = match outcome {
            Ok(Ok(summary)) => {
                let limit_error = self.length_limit_error(&summary, &spec);
                report.summary = Some(summary);
                match limit_error {
                    Some(error) => JobEvent::Failed(error, report),
                    None => JobEvent::Finished(report),
                }
            }
            Ok(Err(error)) => JobEvent::Failed(self.explain(error), report),
            Err(panic) => JobEvent::Failed(JobError::Panicked(panic_message(&panic)), report),
        };
        let _ = self.events.blocking_send(event);
    }

    fn transcode(
        &self,
        source: CountingSource,
        spec: &TranscodeSpec,
        updates: std::sync::mpsc::Receiver<FilterUpdate>,
    ) -> Result<Summary, PipelineError> {
        let hint = FormatHint {
            extension: source.inner.meta().extension(),
            mime_type: source.inner.meta().content_type.clone(),
        };
        let decoder = Decoder::try_new(Box::new(source), &hint)?;
        let mut spec = spec.clone();
        spec.duration_secs = Some(
            spec.duration_secs
                .map_or(self.limits.max_output_secs, |secs| {
                    secs.min(self.limits.max_output_secs)
                }),
        );
        let transcode = Transcode::try_new(decoder, &spec)?.with_filter_updates(updates);
        let started = Started {
            expected_output_secs: expected_output_secs(transcode.source_info(), &spec),
            start_offset_secs: transcode.start_offset_secs(),
            info: transcode.source_info().clone(),
        };
        self.send(JobEvent::Started(started))
            .map_err(|SinkClosed| PipelineError::SinkClosed)?;
        transcode.run(
            |chunk| self.send(JobEvent::Chunk(chunk)),
            |_| self.liveness.mark_audio(),
        )
    }

    /// Hands `event` to the response, waiting while the client is slow; gives up when the
    /// client is gone, idle too long, or the job is cancelled.
    fn send(&self, event: JobEvent) -> Result<(), SinkClosed> {
        self.liveness.in_sink.store(true, Ordering::Relaxed);
        let idle = self.limits.client_idle_timeout;
        let outcome = self.handle.block_on(async {
            tokio::select! {
                biased;
                () = self.cancel.cancelled() => Err(JobError::Stopped),
                sent = tokio::time::timeout(idle, self.events.send(event)) => match sent {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(_)) => Err(JobError::Stopped),
                    Err(_) => Err(JobError::ClientIdle(idle)),
                },
            }
        });
        self.liveness.in_sink.store(false, Ordering::Relaxed);
        self.liveness.mark_audio();
        outcome.map_err(|error| {
            self.remember_stop(error);
            SinkClosed
        })
    }

    fn remember_stop(&self, error: JobError) {
        if let Ok(mut stop) = self.stop.lock() {
            stop.get_or_insert(error);
        }
    }

    /// The real reason behind a pipeline error: a closed sink or a cancelled source
    /// read means the job was stopped, idled out or stalled.
    fn explain(&self, error: PipelineError) -> JobError {
        if self.liveness.stalled.load(Ordering::Relaxed) {
            return JobError::Stalled(self.limits.stall_timeout);
        }
        let stop = self.stop.lock().ok().and_then(|mut stop| stop.take());
        match (error, stop) {
            (_, Some(stop)) => stop,
            (PipelineError::SinkClosed, None) => JobError::Stopped,
            (error, None) if self.cancel.is_cancelled() => {
                tracing::debug!(%error, "stopped");
                JobError::Stopped
            }
            (error, None) => JobError::Pipeline(error),
        }
    }

    /// A stream cut by the service's output limit (rather than by the request's own
    /// duration or the source's end) did not complete.
    fn length_limit_error(&self, summary: &Summary, spec: &TranscodeSpec) -> Option<JobError> {
        let limit = self.limits.max_output_secs;
        if spec.duration_secs.is_some_and(|secs| secs <= limit) {
            return None;
        }
        let cap_frames = (limit * f64::from(spec.output.stream_rate_hz())).round() as u64;
        (summary.output_frames >= cap_frames).then_some(JobError::DurationLimit(limit))
    }

    /// Fires `source_cancel` when the source gives bytes but no audio for too long.
    fn spawn_watchdog(&self, source_cancel: CancellationToken) {
        let liveness = Arc::clone(&self.liveness);
        let limit = self.limits.stall_timeout;
        self.handle.spawn(async move {
            loop {
                tokio::select! {
                    () = source_cancel.cancelled() => return,
                    () = tokio::time::sleep(WATCHDOG_PERIOD) => {}
                }
                if liveness.is_stalled(limit) {
                    liveness.stalled.store(true, Ordering::Relaxed);
                    source_cancel.cancel();
                    return;
                }
            }
        });
    }
}

/// Output seconds to expect: the rest of the source after the start, sped up, capped by
/// the requested duration.
fn expected_output_secs(info: &SourceInfo, spec: &TranscodeSpec) -> Option<f64> {
    let remaining = (info.duration_secs()? - spec.start_secs).max(0.0);
    let expected = remaining / spec.filters.tempo_factor();
    Some(
        spec.duration_secs
            .map_or(expected, |limit| expected.min(limit)),
    )
}

fn panic_message(payload: &Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

/// A remote source that counts the bytes the decoder reads.
struct CountingSource {
    inner: RemoteSource,
    bytes: Arc<AtomicU64>,
}

impl CountingSource {
    fn new(inner: RemoteSource) -> Self {
        Self {
            inner,
            bytes: Arc::default(),
        }
    }
}

impl Read for CountingSource {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.bytes.fetch_add(read as u64, Ordering::Relaxed);
        Ok(read)
    }
}

impl Seek for CountingSource {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(pos)
    }
}

impl MediaSource for CountingSource {
    fn is_seekable(&self) -> bool {
        self.inner.is_seekable()
    }

    fn byte_len(&self) -> Option<u64> {
        self.inner.byte_len()
    }
}
