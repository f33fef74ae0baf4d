//! rust-transcoder: fetch, decode, filter and re-encode audio as a stream.
//!
//! The crate is layered so that dependencies point one way:
//! `cli -> pipeline -> {decode, encode} -> dsp`. Only `decode` knows symphonia and
//! libopus decoding; only `encode` knows the encoders and the Ogg muxer.

pub mod cli;
pub mod decode;
pub mod encode;
pub mod pipeline;

pub use decode::{DecodeError, Decoder, SourceInfo};
pub use encode::{EncodeError, Encoder, OutputFormat, OutputSpec};
pub use pipeline::{PipelineError, Summary, TranscodeSpec};
