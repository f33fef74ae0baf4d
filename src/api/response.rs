//! The streamed `200` response of `/transcode`: headers from what the source turned out
//! to be, then the job's chunks. A job failure after the first byte ABORTS the body, so
//! no client can take a truncated stream for a complete one. [`StreamRecord`] stops the
//! job when the body goes (which frees the stream's slot) and writes the summary line and
//! metrics.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use futures_util::stream;
use tokio_util::sync::DropGuard;

use super::AppState;
use crate::encode::{OutputFormat, OutputSpec};
use crate::error::ServiceError;
use crate::job::{Job, JobError, JobEvent, JobReport, Started};

/// What the job produced first.
pub enum FirstOutput {
    /// An encoded chunk; more may follow.
    Chunk(Bytes),
    /// The job finished without output (an empty but valid stream).
    Finished(JobReport),
}

/// How a stream that got past its headers ended.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    /// Complete.
    Ok,
    /// Failed mid-way; the body was aborted.
    Aborted,
    /// The client left before the end.
    ClientGone,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Aborted => "aborted",
            Self::ClientGone => "client_gone",
        }
    }
}

/// One streaming response's bookkeeping: stopping the job when the body goes, counters,
/// and the summary at the end.
pub struct StreamRecord {
    state: Arc<AppState>,
    /// Stops the job (and frees its slot) when the body goes: ended or client gone.
    _stop_on_drop: DropGuard,
    format: &'static str,
    source_format: String,
    output_rate_hz: u32,
    output_bytes: u64,
    done: bool,
    /// The request's span: the body is polled outside it, so its lines enter it.
    span: tracing::Span,
}

impl StreamRecord {
    /// Starts the record of a stream that is about to send its headers.
    pub fn new(
        state: Arc<AppState>,
        stop_on_drop: DropGuard,
        output: &OutputSpec,
        started: &Started,
    ) -> Self {
        Self {
            state,
            _stop_on_drop: stop_on_drop,
            format: output.format.name(),
            source_format: started.info.format_name.clone(),
            output_rate_hz: output.stream_rate_hz(),
            output_bytes: 0,
            done: false,
            span: tracing::Span::current(),
        }
    }

    fn count_output(&mut self, chunk: &Bytes) {
        self.output_bytes += chunk.len() as u64;
        self.state
            .metrics
            .output_bytes_total
            .inc_by(chunk.len() as u64);
    }

    /// Records the end of the stream: metrics and one summary line.
    fn finish(&mut self, outcome: Outcome, report: Option<&JobReport>, error: Option<&JobError>) {
        self.done = true;
        let metrics = &self.state.metrics;
        metrics
            .requests_total
            .with_label_values(&[self.format, super::PIPELINE, outcome.label()])
            .inc();
        let audio_secs = report
            .and_then(|report| report.summary.as_ref())
            .map_or(0.0, |summary| {
                summary.output_frames as f64 / f64::from(self.output_rate_hz)
            });
        metrics.audio_seconds_total.inc_by(audio_secs);
        let cpu_secs = report.map_or(0.0, |report| report.cpu_secs);
        if cpu_secs > 0.0 && audio_secs > 0.0 {
            metrics.realtime_factor.observe(audio_secs / cpu_secs);
        }
        if let Some(error) = error {
            let code = ServiceError::from(error).code;
            metrics
                .errors_total
                .with_label_values(&[code.as_str()])
                .inc();
        }
        let _entered = self.span.enter();
        tracing::info!(
            outcome = outcome.label(),
            source_format = %self.source_format,
            pipeline = super::PIPELINE,
            output_format = self.format,
            audio_secs = format_args!("{audio_secs:.3}"),
            bytes_in = report.map_or(0, |report| report.source_bytes),
            bytes_out = self.output_bytes,
            cpu_secs = format_args!("{cpu_secs:.3}"),
            error = error.map(tracing::field::display),
            "stream summary"
        );
    }
}

impl Drop for StreamRecord {
    fn drop(&mut self) {
        if !self.done {
            self.finish(Outcome::ClientGone, None, None);
        }
    }
}

/// The `200` response: headers, the first output, then the rest of the job's events.
pub fn stream_response(
    id: uuid::Uuid,
    record: StreamRecord,
    output: &OutputSpec,
    started: &Started,
    first: FirstOutput,
    job: Job,
) -> Response {
    let mut response = Response::new(Body::from_stream(body_stream(record, first, job)));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    set("content-type", content_type(output));
    set("cache-control", "no-store".into());
    set("x-transcode-id", id.to_string());
    set("x-source-format", started.info.format_name.clone());
    set("x-pipeline", super::PIPELINE.into());
    set("x-start-offset", format_secs(started.start_offset_secs));
    if let Some(secs) = started.expected_output_secs {
        set("x-content-duration", format_secs(secs));
    }
    response
}

/// The body: the first output, then chunks until the job finishes. A failure yields an
/// error, which makes the server abort the connection instead of ending the body.
fn body_stream(
    record: StreamRecord,
    first: FirstOutput,
    job: Job,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send {
    let state = BodyState {
        record,
        first: Some(first),
        job,
    };
    stream::unfold(state, |mut state| async move {
        let item = state.next_item().await?;
        Some((item, state))
    })
}

struct BodyState {
    record: StreamRecord,
    first: Option<FirstOutput>,
    job: Job,
}

impl BodyState {
    async fn next_item(&mut self) -> Option<std::io::Result<Bytes>> {
        let event = match self.first.take() {
            Some(FirstOutput::Chunk(chunk)) => JobEvent::Chunk(chunk),
            Some(FirstOutput::Finished(report)) => JobEvent::Finished(report),
            None if self.record.done => return None,
            None => loop {
                match self.job.events.recv().await {
                    Some(JobEvent::Started(_)) => continue,
                    Some(event) => break event,
                    None => {
                        let error = JobError::Panicked("the job vanished".into());
                        break JobEvent::Failed(error, JobReport::default());
                    }
                }
            },
        };
        match event {
            JobEvent::Chunk(chunk) => {
                self.record.count_output(&chunk);
                Some(Ok(chunk))
            }
            JobEvent::Finished(report) => {
                self.record.finish(Outcome::Ok, Some(&report), None);
                None
            }
            JobEvent::Failed(error, report) => {
                self.record.span.in_scope(|| {
                    tracing::warn!(%error, "stream failed after its first byte; aborting the body");
                });
                self.record
                    .finish(Outcome::Aborted, Some(&report), Some(&error));
                Some(Err(std::io::Error::other(error.to_string())))
            }
            JobEvent::Started(_) => {
                let error = JobError::Panicked("the job started twice".into());
                self.record.finish(Outcome::Aborted, None, Some(&error));
                Some(Err(std::io::Error::other(error.to_string())))
            }
        }
    }
}

/// `Content-Type` of each output format.
fn content_type(output: &OutputSpec) -> String {
    match output.format {
        OutputFormat::Opus => "audio/ogg; codecs=opus".into(),
        OutputFormat::Pcm => format!(
            "audio/pcm;rate={};channels={};format=s16le",
            output.sample_rate_hz, output.channels
        ),
        OutputFormat::Aac => "audio/aac".into(),
    }
}

/// Seconds with microsecond precision and no trailing zeros, e.g. `12.5`.
fn format_secs(secs: f64) -> String {
    let text = format!("{secs:.6}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}
