//! `/transcode` handlers: start a stream (POST JSON or GET query) and change a running
//! one's filters (PATCH). The status line goes out only with the first encoded chunk, so
//! every failure before audio is a JSON error.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;
use tokio::time::timeout_at;
use tracing::Instrument;
use uuid::Uuid;

use super::AppState;
use super::request::{FiltersPatch, TranscodeRequest};
use super::response::{FirstOutput, StreamRecord, stream_response};
use crate::error::{ErrorCode, ServiceError};
use crate::job::{self, Job, JobEvent, JobLimits};
use crate::pipeline::FilterUpdate;
use crate::streams::StreamSlot;

/// How long a PATCH waits for the pipeline to confirm a change. A pipeline blocked by a
/// slow client confirms late; the change is then still applied before its next block.
const PATCH_CONFIRM_WAIT: Duration = Duration::from_secs(1);

/// `POST /transcode` with a JSON body.
pub async fn post(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ServiceError> {
    let accepted = Instant::now();
    let id = Uuid::new_v4();
    let request =
        read_json_body(&headers, body).and_then(|body| TranscodeRequest::from_json(&body));
    start(state, id, accepted, request).await
}

/// `GET /transcode?source_url=...` (flat filter names), for plain HTTP audio players.
pub async fn get(
    State(state): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
) -> Result<Response, ServiceError> {
    let accepted = Instant::now();
    let id = Uuid::new_v4();
    let request = TranscodeRequest::from_query(query.as_deref().unwrap_or(""));
    start(state, id, accepted, request).await
}

/// `PATCH /transcode/{transcode_id}` with `{"filters": {...}}`: only the keys given change.
pub async fn patch(
    State(state): State<Arc<AppState>>,
    transcode_id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ServiceError> {
    // An undecodable id (e.g. `%FF`) names no running stream either.
    let transcode_id = transcode_id.map_or_else(|_| String::new(), |Path(id)| id);
    let not_found = || {
        ServiceError::new(
            ErrorCode::NotFound,
            format!("no running stream with id {transcode_id}"),
        )
    };
    let result = async {
        let id = Uuid::parse_str(&transcode_id).map_err(|_| not_found())?;
        let current = state.streams.filters(id).ok_or_else(not_found)?;
        let patch = read_json_body(&headers, body).and_then(|body| parse_patch(&body))?;
        let filters = patch.apply_to(&current).map_err(|err| err.with_id(id))?;
        let (reply, confirmation) = tokio::sync::oneshot::channel();
        let update = FilterUpdate {
            filters: filters.clone(),
            reply,
        };
        if !state.streams.send_update(id, update) {
            return Err(not_found());
        }
        let confirmed = {
            let state = Arc::clone(&state);
            async move {
                let answer = confirmation.await;
                if let Ok(Ok(())) = answer {
                    state.streams.set_filters(id, filters);
                }
                answer
            }
        };
        // A pipeline blocked by a slow client confirms late: the change is still
        // recorded (and applied before its next block) by the task left behind.
        let confirmed = tokio::spawn(confirmed);
        match tokio::time::timeout(PATCH_CONFIRM_WAIT, confirmed).await {
            Ok(Ok(Ok(Err(refused)))) => {
                Err(ServiceError::new(ErrorCode::FilterInvalid, refused.to_string()).with_id(id))
            }
            Ok(Ok(Err(_stream_ended))) => Err(not_found()),
            Ok(Ok(Ok(Ok(())))) | Err(_) => Ok(StatusCode::NO_CONTENT),
            Ok(Err(join_error)) => Err(ServiceError::internal(join_error)),
        }
    }
    .await;
    result.inspect_err(|error| state.count_error(error))
}

/// The PATCH body: exactly one key, `filters`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    filters: Value,
}

fn parse_patch(body: &[u8]) -> Result<FiltersPatch, ServiceError> {
    let body: PatchBody = serde_json::from_slice(body).map_err(|err| {
        ServiceError::new(
            ErrorCode::InvalidRequest,
            format!("the body must be {{\"filters\": {{...}}}}: {err}"),
        )
    })?;
    FiltersPatch::parse(body.filters)
}

/// The body of a JSON request, or INVALID_REQUEST (413 when over the size limit).
fn read_json_body(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, ServiceError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("application/json");
    if !content_type.trim_start().starts_with("application/json") {
        return Err(ServiceError::new(
            ErrorCode::InvalidRequest,
            format!("Content-Type must be application/json, not {content_type:?}"),
        ));
    }
    body.map_err(|rejection| {
        let mut error = ServiceError::new(ErrorCode::InvalidRequest, rejection.body_text());
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            error.message = format!("the body is over {} bytes", super::MAX_BODY_BYTES);
            error.status_override = Some(StatusCode::PAYLOAD_TOO_LARGE);
        }
        error
    })
}

/// Runs one transcode request under its own span, counting and logging a refusal.
async fn start(
    state: Arc<AppState>,
    id: Uuid,
    accepted: Instant,
    request: Result<TranscodeRequest, ServiceError>,
) -> Result<Response, ServiceError> {
    let span = tracing::info_span!("transcode", id = %id);
    let format = request
        .as_ref()
        .map_or("unknown", |request| request.spec.output.format.name());
    let result = async {
        let request = request?;
        let slot = admit(&state, id)?;
        launch(&state, id, accepted, request, slot).await
    }
    .instrument(span.clone())
    .await;
    result.map_err(|error| {
        let error = error.with_id(id);
        span.in_scope(|| tracing::info!(code = error.code.as_str(), %error.message, "refused"));
        state.count_error(&error);
        state
            .metrics
            .requests_total
            .with_label_values(&[format, super::PIPELINE, "error"])
            .inc();
        error
    })
}

/// A stream slot for request `id`, unless the server is draining or full.
fn admit(state: &AppState, id: Uuid) -> Result<StreamSlot, ServiceError> {
    if state.is_draining() {
        return Err(ServiceError::new(
            ErrorCode::ShuttingDown,
            "the server is shutting down",
        ));
    }
    state.streams.try_acquire(id).ok_or_else(|| {
        let mut error = ServiceError::new(ErrorCode::CapacityExceeded, "all stream slots are busy");
        error.retry_after_secs = Some(1);
        error
    })
}

/// Opens the source, hands it and the slot to a job, and answers once the first chunk
/// exists (all within the start timeout).
async fn launch(
    state: &Arc<AppState>,
    id: Uuid,
    accepted: Instant,
    request: TranscodeRequest,
    slot: StreamSlot,
) -> Result<Response, ServiceError> {
    let deadline = tokio::time::Instant::from_std(accepted + state.config.start_timeout());
    let source_cancel = slot.cancel.child_token();
    let source = timeout_at(
        deadline,
        state
            .fetcher
            .open(&request.source_url, source_cancel.clone()),
    )
    .await
    .map_err(|_| start_timeout(state))??;
    let limits = JobLimits {
        client_idle_timeout: state.config.client_idle_timeout(),
        stall_timeout: state.config.stall_timeout(),
        max_output_secs: state.config.max_duration_secs,
    };
    // From here the body (or this function's early return) stops the job when dropped.
    let stop_on_drop = slot.cancel.clone().drop_guard();
    let spec = request.spec;
    let mut job = job::spawn(source, spec.clone(), limits, slot, source_cancel)
        .map_err(ServiceError::internal)?;
    let (started, first) = first_output(state, &mut job, deadline).await?;
    state
        .metrics
        .latency_ms
        .observe(accepted.elapsed().as_secs_f64() * 1000.0);
    let record = StreamRecord::new(Arc::clone(state), stop_on_drop, &spec.output, &started);
    Ok(stream_response(
        id,
        record,
        &spec.output,
        &started,
        first,
        job,
    ))
}

/// Waits for the job's `Started` event and its first chunk (or its end).
async fn first_output(
    state: &AppState,
    job: &mut Job,
    deadline: tokio::time::Instant,
) -> Result<(job::Started, FirstOutput), ServiceError> {
    let mut started = None;
    loop {
        let event = timeout_at(deadline, job.events.recv())
            .await
            .map_err(|_| start_timeout(state))?;
        match (event, started.take()) {
            (Some(JobEvent::Started(info)), _) => started = Some(info),
            (Some(JobEvent::Chunk(chunk)), Some(info)) => {
                return Ok((info, FirstOutput::Chunk(chunk)));
            }
            (Some(JobEvent::Finished(report)), Some(info)) => {
                return Ok((info, FirstOutput::Finished(report)));
            }
            (Some(JobEvent::Failed(error, _)), _) => return Err(ServiceError::from(error)),
            (_, _) => return Err(ServiceError::internal("the job ended without a result")),
        }
    }
}

fn start_timeout(state: &AppState) -> ServiceError {
    ServiceError::new(
        ErrorCode::Timeout,
        format!(
            "the source did not deliver audio within {} s",
            state.config.start_timeout_secs
        ),
    )
}
