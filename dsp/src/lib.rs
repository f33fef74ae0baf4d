//! Audio processing for rust-transcoder: the planar `Block` vocabulary, the `Processor`
//! contract, and the ordered `Chain` built from a `ChainSpec`.
//!
//! This crate knows nothing of HTTP, async runtimes, containers, codecs or subprocesses:
//! it turns planar f32 frames into planar f32 frames.

mod block;
pub mod chain;
pub mod channels;
pub mod eq;
mod filters;
pub mod gain;
mod limiter;
pub mod normalize;
pub mod resample;
mod retime;
mod speaker;
mod splice;
mod stage;
pub mod tempo;

pub use block::Block;
pub use chain::{Chain, ChainSpec};
pub use channels::{ChannelMapper, Speaker};
pub use eq::{EqBand, EqPreset, Equalizer, UnknownPreset};
pub use filters::{DEFAULT_TARGET_LUFS, Filters, RATIO_RANGE, TARGET_LUFS_RANGE};
pub use gain::Gain;
pub use normalize::Normalizer;
pub use resample::Resampler;
pub use tempo::Tempo;

/// Most channels any processor accepts.
pub const MAX_CHANNELS: usize = 32;

/// Lowest sample rate any processor accepts.
pub const MIN_RATE_HZ: u32 = 8_000;

/// Highest sample rate any processor accepts.
pub const MAX_RATE_HZ: u32 = 384_000;

/// Checks that `value` lies within `range`; the error names the setting.
pub(crate) fn check_range(
    name: &'static str,
    value: f64,
    range: &std::ops::RangeInclusive<f64>,
) -> Result<(), ConfigError> {
    if range.contains(&value) {
        return Ok(());
    }
    Err(ConfigError::OutOfRange {
        name,
        value,
        min: *range.start(),
        max: *range.end(),
    })
}

/// Checks that `rate_hz` lies within `MIN_RATE_HZ..=MAX_RATE_HZ`.
pub(crate) fn check_rate(rate_hz: u32) -> Result<(), ConfigError> {
    if (MIN_RATE_HZ..=MAX_RATE_HZ).contains(&rate_hz) {
        Ok(())
    } else {
        Err(ConfigError::SampleRate {
            rate_hz,
            min_hz: MIN_RATE_HZ,
            max_hz: MAX_RATE_HZ,
        })
    }
}

/// Checks that a processor's channel count lies within `1..=MAX_CHANNELS`.
pub(crate) fn check_channels(channels: usize) -> Result<(), ConfigError> {
    if (1..=MAX_CHANNELS).contains(&channels) {
        Ok(())
    } else {
        Err(ConfigError::Channels {
            input: channels,
            output: channels,
        })
    }
}

/// A chain or processor could not be built from the given settings.
///
/// Construction validates everything, so that `process` cannot fail afterwards.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// A sample rate outside what the processors accept.
    #[error("sample rate {rate_hz} Hz is outside {min_hz}..={max_hz} Hz")]
    SampleRate {
        /// The rejected rate.
        rate_hz: u32,
        /// Lowest accepted rate.
        min_hz: u32,
        /// Highest accepted rate.
        max_hz: u32,
    },
    /// A channel count or layout that cannot be mapped.
    #[error("cannot map {input} input channel(s) to {output} output channel(s)")]
    Channels {
        /// Number of input channels.
        input: usize,
        /// Number of output channels.
        output: usize,
    },
    /// A numeric parameter outside its documented range.
    #[error("{name} = {value} is outside {min}..={max}")]
    OutOfRange {
        /// Parameter name as the user knows it.
        name: &'static str,
        /// The rejected value.
        value: f64,
        /// Lowest accepted value.
        min: f64,
        /// Highest accepted value.
        max: f64,
    },
    /// A change that a running chain cannot make.
    #[error("{0} cannot be changed while the stream is running")]
    NotLive(&'static str),
    /// The resampler library refused the configuration.
    #[error("resampler: {0}")]
    Resampler(String),
}

/// One stage of audio processing with a fixed channel count and rate on each side.
///
/// Contract (checked by the shared contract suite for every implementation):
/// - feeding the same signal in chunks of 1, 100 or 1024 frames (or any other size)
///   gives the same output;
/// - after `flush`, the total output length is the input length times the stage's
///   rate ratio, rounded to the nearest frame;
/// - `reset`, and `flush`, restore the freshly built state;
/// - silence in gives silence out.
pub trait Processor: Send {
    /// Consumes all of `input` and writes the frames that are ready into `output`,
    /// replacing its previous content. May write fewer or more frames than it read.
    fn process(&mut self, input: &Block, output: &mut Block);

    /// Signals the end of input: writes every frame still held inside into `output`,
    /// replacing its previous content, so that nothing is lost at the end of a stream.
    /// Afterwards the processor is in its freshly built state, ready for another stream.
    fn flush(&mut self, output: &mut Block);

    /// Forgets all history, as if the processor had just been built.
    fn reset(&mut self);
}
