//! One transcode job: decode -> dsp -> encode over a remote source, run on its own
//! small-stack thread (compute never runs on the async executor), reporting through a
//! bounded channel of [`JobEvent`]s. A slow reader blocks the thread (and so the source
//! download) instead of growing a buffer; a panic ends this job only.

mod watch;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use cpu_time::ThreadTime;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::decode::{Decoder, FormatHint, SourceInfo};
use crate::pipeline::{FilterUpdate, PipelineError, SinkClosed, Summary, Transcode, TranscodeSpec};
use crate::source::RemoteSource;
use crate::streams::StreamSlot;
use watch::{CountingSource, Liveness};

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

/// Starts a job on its own thread, which holds `slot` (and keeps the stream reachable
/// for live changes) until it ends: when the output is complete, when the slot's token
/// is cancelled (the client left, or the server aborts), or when the client stops
/// taking output. `source` must have been opened under `source_cancel`, a child of the
/// slot's token that the stall watchdog fires.
pub fn spawn(
    source: RemoteSource,
    spec: TranscodeSpec,
    limits: JobLimits,
    slot: StreamSlot,
    source_cancel: CancellationToken,
) -> std::io::Result<Job> {
    let (events_tx, events) = mpsc::channel(OUTPUT_CHUNKS);
    let (updates, updates_rx) = std::sync::mpsc::channel();
    slot.register(spec.filters.clone(), updates.clone());
    let context = JobContext {
        events: events_tx,
        handle: Handle::current(),
        limits,
        cancel: slot.cancel.clone(),
        source_cancel,
        liveness: Arc::default(),
        stop: std::sync::Mutex::new(None),
        started_output: std::cell::Cell::new(false),
    };
    let span = tracing::Span::current();
    std::thread::Builder::new()
        .name("transcode".into())
        .stack_size(JOB_STACK_BYTES)
        .spawn(move || {
            let _entered = span.enter();
            context.run(source, spec, updates_rx);
            drop(slot);
        })?;
    Ok(Job { events, updates })
}

/// Everything the job thread shares with its sink and watchdog.
struct JobContext {
    events: mpsc::Sender<JobEvent>,
    handle: Handle,
    limits: JobLimits,
    cancel: CancellationToken,
    source_cancel: CancellationToken,
    liveness: Arc<Liveness>,
    stop: std::sync::Mutex<Option<JobError>>,
    started_output: std::cell::Cell<bool>,
}

impl JobContext {
    fn run(
        self,
        source: RemoteSource,
        spec: TranscodeSpec,
        updates: std::sync::mpsc::Receiver<FilterUpdate>,
    ) {
        let cpu = ThreadTime::now();
        let counted = CountingSource::new(source, Arc::clone(&self.liveness));
        let source_bytes = Arc::clone(&counted.bytes);
        self.liveness.mark_audio();
        self.spawn_watchdog();
        let outcome = catch_unwind(AssertUnwindSafe(|| self.transcode(counted, &spec, updates)));
        self.source_cancel.cancel();
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
        self.send_final(event);
    }

    /// Delivers the last event even when the stream is being stopped (so the response
    /// can tell why), but waits no longer than the client idle timeout: a client that
    /// takes nothing cannot keep the thread, and its slot, forever.
    fn send_final(&self, event: JobEvent) {
        if let Err(mpsc::error::TrySendError::Full(event)) = self.events.try_send(event) {
            let idle = self.limits.client_idle_timeout;
            let _ = self
                .handle
                .block_on(async { tokio::time::timeout(idle, self.events.send(event)).await });
        }
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
    /// client is gone, idle too long, or the job is cancelled. Once the first chunk is
    /// out, the thread drops to a lower priority.
    fn send(&self, event: JobEvent) -> Result<(), SinkClosed> {
        let first_chunk = matches!(event, JobEvent::Chunk(_)) && !self.started_output.get();
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
        if first_chunk {
            self.started_output.set(true);
            lower_priority_of_this_thread();
        }
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
    fn spawn_watchdog(&self) {
        let source_cancel = self.source_cancel.clone();
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

/// Niceness of a job thread once its stream has started (0 is the default, 19 lowest).
const RUNNING_NICENESS: libc::c_int = 10;

/// Lowers the calling thread's scheduling priority: when many streams start at once, the
/// first output of the new ones (decided on normal-priority threads) goes ahead of the
/// bulk work of those already playing, which have buffered audio to spare.
#[allow(unsafe_code)] // FFI: gettid(2) and setpriority(2) on the calling thread only.
fn lower_priority_of_this_thread() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: both calls take plain integers and touch no memory of ours; on failure
        // the thread simply keeps its priority.
        let thread_id = unsafe { libc::gettid() };
        let _ = unsafe {
            libc::setpriority(
                libc::PRIO_PROCESS,
                thread_id as libc::id_t,
                RUNNING_NICENESS,
            )
        };
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
