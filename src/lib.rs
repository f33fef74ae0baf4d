//! rust-transcoder: fetch, decode, filter and re-encode audio as a stream.
//!
//! The crate is layered so that dependencies point one way:
//! `server -> api -> job -> pipeline -> {source, decode, encode} -> dsp`, and
//! `cli -> pipeline`; `config`, `error` and `metrics` are leaves the upper layers share.
//! Only `decode` knows symphonia and libopus decoding; only `encode` knows the encoders
//! and the Ogg muxer; only `source` knows reqwest; only `api` and `error` (the mapping to HTTP) know axum.

pub mod api;
pub mod cli;
pub mod config;
pub mod decode;
pub mod encode;
pub mod error;
pub mod job;
pub mod metrics;
pub mod pipeline;
pub mod server;
pub mod source;
pub mod streams;

pub use decode::{DecodeError, Decoder, SourceInfo};
pub use encode::{EncodeError, Encoder, OutputFormat, OutputSpec};
pub use pipeline::{PipelineError, Summary, TranscodeSpec};
