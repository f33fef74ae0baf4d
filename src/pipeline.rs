//! The transcoding spine: decoder -> dsp chain -> encoder -> sink, as one loop.
//!
//! Runs on the calling (blocking) thread and pushes each encoded chunk to a sink as soon
//! as it exists; stops early when the sink is gone. Knows nothing of HTTP or terminals.

use std::sync::mpsc::Receiver;

use bytes::Bytes;
use dsp::{Block, Chain, ChainSpec, Filters};

use crate::decode::{DecodeError, Decoder, SourceInfo};
use crate::encode::{self, EncodeError, Encoder, OutputSpec};

/// Everything that shapes one transcode, validated by [`Transcode::try_new`].
#[derive(Debug, Clone, PartialEq)]
pub struct TranscodeSpec {
    /// Output format, rate, channels and bitrate.
    pub output: OutputSpec,
    /// Speed, pitch, rate, EQ, normalisation and volume.
    pub filters: Filters,
    /// Source position to start at, in seconds (exact to the frame). A seekable source is
    /// sought; any other is decoded from the start and the audio before it dropped.
    pub start_secs: f64,
    /// Most output time to produce, in seconds; `None` = until the source ends.
    pub duration_secs: Option<f64>,
}

impl Default for TranscodeSpec {
    fn default() -> Self {
        Self {
            output: OutputSpec::default(),
            filters: Filters::default(),
            start_secs: 0.0,
            duration_secs: None,
        }
    }
}

impl TranscodeSpec {
    /// Checks `start_secs` and `duration_secs` on their own (no source needed), so that a
    /// caller can refuse a bad request before opening anything.
    pub fn check_times(&self) -> Result<(), PipelineError> {
        if !(self.start_secs.is_finite() && self.start_secs >= 0.0) {
            return Err(PipelineError::InvalidTime {
                field: "start_seconds",
                value: self.start_secs,
                rule: "a finite number >= 0",
            });
        }
        match self.duration_secs {
            Some(duration) if !(duration.is_finite() && duration > 0.0) => {
                Err(PipelineError::InvalidTime {
                    field: "duration_seconds",
                    value: duration,
                    rule: "a finite number > 0",
                })
            }
            _ => Ok(()),
        }
    }
}

/// Why a transcode failed.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The source could not be read or decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The encoder failed or the output spec is invalid.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// A filter setting is invalid.
    #[error("invalid filter: {0}")]
    Filter(dsp::ConfigError),
    /// `start_secs` or `duration_secs` is out of range.
    #[error("{field} = {value} must be {rule}")]
    InvalidTime {
        /// The request field.
        field: &'static str,
        /// The rejected value.
        value: f64,
        /// What the value must be.
        rule: &'static str,
    },
    /// `start_secs` lies beyond the end of a source of known length.
    #[error("start {start_secs} s is beyond the end of the source ({duration_secs:.3} s)")]
    StartBeyondEnd {
        /// The requested start.
        start_secs: f64,
        /// The source's length.
        duration_secs: f64,
    },
    /// The receiver of the output went away.
    #[error("the output receiver went away")]
    SinkClosed,
}

/// Returned by a sink whose receiver has gone away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SinkClosed;

/// What a finished transcode did.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// What the source was.
    pub source: SourceInfo,
    /// Frames of audio written to the output.
    pub output_frames: u64,
    /// Encoded bytes handed to the sink.
    pub output_bytes: u64,
    /// Source packets skipped because they could not be decoded.
    pub skipped_packets: u64,
}

/// One configured transcode, ready to run.
pub struct Transcode {
    decoder: Decoder,
    chain: Chain,
    output: Output,
    /// Source frame at which output begins.
    start_frame: u64,
    /// Decoded frames still to drop before `start_frame`.
    frames_to_skip: u64,
    /// Source position of the next decoded frame.
    source_frames: u64,
    filter_updates: Option<Receiver<FilterUpdate>>,
}

/// A filter change for a running transcode, and where to say whether it was taken.
#[derive(Debug)]
pub struct FilterUpdate {
    /// The complete new filter set.
    pub filters: Filters,
    /// Receives `Ok` once the change is in force, or why it was refused (the stream then
    /// goes on unchanged). A dropped receiver is fine.
    pub reply: tokio::sync::oneshot::Sender<Result<(), dsp::ConfigError>>,
}

impl Transcode {
    /// Validates `spec` against the source, moves to the start (seeking when the source
    /// allows it) and builds the chain and encoder.
    pub fn try_new(mut decoder: Decoder, spec: &TranscodeSpec) -> Result<Self, PipelineError> {
        spec.output.validate()?;
        validate_times(spec, decoder.info())?;
        let source_rate_hz = decoder.info().sample_rate_hz;
        let start_frame = (spec.start_secs * f64::from(source_rate_hz)).round() as u64;
        let resumed_at = match start_frame {
            0 => 0,
            frame => decoder.seek(frame)?,
        };
        let info = decoder.info();
        let stream_rate_hz = spec.output.stream_rate_hz();
        let chain = Chain::try_new(&ChainSpec {
            input_rate_hz: info.sample_rate_hz,
            input_layout: info.layout.clone(),
            output_rate_hz: stream_rate_hz,
            output_channels: spec.output.channels,
            filters: spec.filters.clone(),
        })
        .map_err(classify_chain_error)?;
        let frame_limit = spec
            .duration_secs
            .map(|secs| (secs * f64::from(stream_rate_hz)).round() as u64);
        Ok(Self {
            start_frame,
            frames_to_skip: start_frame.saturating_sub(resumed_at),
            source_frames: resumed_at,
            output: Output {
                encoder: encode::build(&spec.output, info.sample_rate_hz)?,
                buffer: Vec::new(),
                frames_written: 0,
                bytes_written: 0,
                frame_limit,
                scratch: Block::new(0),
            },
            chain,
            decoder,
            filter_updates: None,
        })
    }

    /// The source position, in seconds, where the output begins: the requested start,
    /// rounded to the source's frame.
    pub fn start_offset_secs(&self) -> f64 {
        self.start_frame as f64 / f64::from(self.decoder.info().sample_rate_hz)
    }

    /// Lets the filters change while running: each update received on `updates` is
    /// checked and applied before the next decoded block (one codec packet, 20-100 ms of
    /// source audio, later; a normaliser's look-ahead delays what is heard by 3 s more).
    pub fn with_filter_updates(mut self, updates: Receiver<FilterUpdate>) -> Self {
        self.filter_updates = Some(updates);
        self
    }

    /// Applies the filter updates waiting on the channel, in order, answering each.
    fn apply_filter_updates(&mut self) {
        let Some(updates) = &self.filter_updates else {
            return;
        };
        for update in updates.try_iter() {
            let _ = update.reply.send(self.chain.update(&update.filters));
        }
    }

    /// What the source turned out to be.
    pub fn source_info(&self) -> &SourceInfo {
        self.decoder.info()
    }

    /// Runs to the end of the source (or the duration limit), handing each encoded chunk
    /// to `sink`. `on_progress` gets the source position in frames after every block.
    pub fn run(
        mut self,
        mut sink: impl FnMut(Bytes) -> Result<(), SinkClosed>,
        mut on_progress: impl FnMut(u64),
    ) -> Result<Summary, PipelineError> {
        let mut block = Block::new(0);
        let mut limit_reached = false;
        while !limit_reached && self.decoder.next_block(&mut block)? {
            self.source_frames += block.frames() as u64;
            on_progress(self.source_frames);
            self.skip_to_start(&mut block);
            self.apply_filter_updates();
            limit_reached = self.output.write(self.chain.process(&block), &mut sink)?;
        }
        if !limit_reached {
            self.output.write(self.chain.flush(), &mut sink)?;
        }
        self.output.finish(&mut sink)?;
        Ok(Summary {
            output_frames: self.output.frames_written,
            output_bytes: self.output.bytes_written,
            skipped_packets: self.decoder.skipped_packets(),
            source: self.decoder.info().clone(),
        })
    }

    /// Drops decoded frames that lie before the requested start.
    fn skip_to_start(&mut self, block: &mut Block) {
        if self.frames_to_skip > 0 {
            let skip = self.frames_to_skip.min(block.frames() as u64);
            block.drop_front(skip as usize);
            self.frames_to_skip -= skip;
        }
    }
}

/// With the output spec already validated, a chain that cannot be built either has a bad
/// filter value or a source it cannot handle (an odd rate or channel layout).
fn classify_chain_error(error: dsp::ConfigError) -> PipelineError {
    match error {
        dsp::ConfigError::OutOfRange { .. } => PipelineError::Filter(error),
        source_problem => PipelineError::Decode(DecodeError::Unsupported(format!(
            "the source cannot be processed: {source_problem}"
        ))),
    }
}

fn validate_times(spec: &TranscodeSpec, info: &SourceInfo) -> Result<(), PipelineError> {
    spec.check_times()?;
    match info.duration_secs() {
        Some(duration_secs) if spec.start_secs > duration_secs => {
            Err(PipelineError::StartBeyondEnd {
                start_secs: spec.start_secs,
                duration_secs,
            })
        }
        _ => Ok(()),
    }
}

/// The encoder end of the pipeline: enforces the duration limit and feeds the sink.
struct Output {
    encoder: Box<dyn Encoder>,
    buffer: Vec<u8>,
    frames_written: u64,
    bytes_written: u64,
    frame_limit: Option<u64>,
    scratch: Block,
}

impl Output {
    /// Encodes `block` (cut at the duration limit) and sends the result.
    /// Returns `true` once the limit is reached.
    fn write(
        &mut self,
        block: &Block,
        sink: &mut impl FnMut(Bytes) -> Result<(), SinkClosed>,
    ) -> Result<bool, PipelineError> {
        let remaining = self.frame_limit.map(|limit| limit - self.frames_written);
        let block = match remaining {
            Some(left) if (block.frames() as u64) > left => {
                self.scratch.copy_from(block);
                self.scratch.truncate(left as usize);
                &self.scratch
            }
            _ => block,
        };
        self.frames_written += block.frames() as u64;
        self.encoder.write(block, &mut self.buffer)?;
        self.send(sink)?;
        Ok(self
            .frame_limit
            .is_some_and(|limit| self.frames_written >= limit))
    }

    fn finish(
        &mut self,
        sink: &mut impl FnMut(Bytes) -> Result<(), SinkClosed>,
    ) -> Result<(), PipelineError> {
        self.encoder.finish(&mut self.buffer)?;
        self.send(sink)
    }

    fn send(
        &mut self,
        sink: &mut impl FnMut(Bytes) -> Result<(), SinkClosed>,
    ) -> Result<(), PipelineError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        self.bytes_written += self.buffer.len() as u64;
        let chunk = Bytes::from(std::mem::take(&mut self.buffer));
        sink(chunk).map_err(|SinkClosed| PipelineError::SinkClosed)
    }
}
