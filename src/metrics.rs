//! Prometheus metrics of the service (SPEC section 2, `/metrics`): definitions and the
//! text rendering. Label values come from small fixed sets only (formats, pipelines,
//! outcomes, error codes), never from URLs or ids.

use prometheus::{
    Counter, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

use crate::source::SourceCounters;

/// Every metric the service exports, registered in one registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Finished streams by output format, pipeline and outcome.
    pub requests_total: IntCounterVec,
    /// Streams holding a slot right now.
    pub active_streams: IntGauge,
    /// Request accepted -> first output byte, in milliseconds.
    pub latency_ms: Histogram,
    /// Errors by code, before or after the first byte.
    pub errors_total: IntCounterVec,
    /// Source body bytes received.
    pub source_bytes_total: IntCounter,
    /// Encoded bytes handed to clients.
    pub output_bytes_total: IntCounter,
    /// Seconds of output audio produced.
    pub audio_seconds_total: Counter,
    /// Dropped sources resumed or reconnected.
    pub upstream_resumes_total: IntCounter,
    /// Audio seconds produced per CPU second, per stream.
    pub realtime_factor: Histogram,
}

impl Metrics {
    /// Creates and registers every metric, including the process RSS/CPU collector.
    pub fn try_new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let metrics = Self {
            requests_total: IntCounterVec::new(
                Opts::new("transcode_requests_total", "Finished transcode streams."),
                &["format", "pipeline", "outcome"],
            )?,
            active_streams: IntGauge::new("active_streams", "Streams holding a slot.")?,
            latency_ms: Histogram::with_opts(
                HistogramOpts::new(
                    "transcode_latency_ms",
                    "Request accepted to first output byte, in milliseconds.",
                )
                .buckets(vec![
                    1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0,
                    5000.0, 10_000.0,
                ]),
            )?,
            errors_total: IntCounterVec::new(
                Opts::new("transcode_errors_total", "Errors by code."),
                &["code"],
            )?,
            source_bytes_total: IntCounter::new("source_bytes_total", "Source bytes received.")?,
            output_bytes_total: IntCounter::new("output_bytes_total", "Encoded bytes sent.")?,
            audio_seconds_total: Counter::new("audio_seconds_total", "Output audio seconds.")?,
            upstream_resumes_total: IntCounter::new(
                "upstream_resumes_total",
                "Dropped sources resumed or reconnected.",
            )?,
            realtime_factor: Histogram::with_opts(
                HistogramOpts::new(
                    "decode_realtime_factor",
                    "Audio seconds produced per CPU second, per stream.",
                )
                .buckets(prometheus::exponential_buckets(1.0, 2.0, 14)?),
            )?,
            registry,
        };
        metrics.register_all()?;
        Ok(metrics)
    }

    fn register_all(&self) -> prometheus::Result<()> {
        let registry = &self.registry;
        registry.register(Box::new(self.requests_total.clone()))?;
        registry.register(Box::new(self.active_streams.clone()))?;
        registry.register(Box::new(self.latency_ms.clone()))?;
        registry.register(Box::new(self.errors_total.clone()))?;
        registry.register(Box::new(self.source_bytes_total.clone()))?;
        registry.register(Box::new(self.output_bytes_total.clone()))?;
        registry.register(Box::new(self.audio_seconds_total.clone()))?;
        registry.register(Box::new(self.upstream_resumes_total.clone()))?;
        registry.register(Box::new(self.realtime_factor.clone()))?;
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))
    }

    /// The counters the source fetcher updates.
    pub fn source_counters(&self) -> SourceCounters {
        SourceCounters {
            bytes: self.source_bytes_total.clone(),
            resumes: self.upstream_resumes_total.clone(),
        }
    }

    /// Everything in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        if let Err(error) = TextEncoder::new().encode_utf8(&self.registry.gather(), &mut text) {
            tracing::error!(%error, "rendering metrics failed");
        }
        text
    }
}
