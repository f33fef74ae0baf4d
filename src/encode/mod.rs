//! Encoders: planar f32 [`Block`]s in, container bytes out. Ogg/Opus (libopus + ogg),
//! raw PCM s16le, and AAC-LC in ADTS (fdk-aac). Knows nothing of decoding or transport.

mod aac;
mod opus;
mod pcm;

use std::fmt;
use std::str::FromStr;

use dsp::Block;

pub use aac::AacEncoder;
pub use opus::OggOpusEncoder;
pub use pcm::PcmEncoder;

/// The three output formats clients can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// Ogg Opus (RFC 7845), always 48 kHz in the stream.
    #[default]
    Opus,
    /// Raw interleaved signed 16-bit little-endian PCM.
    Pcm,
    /// AAC-LC in ADTS frames.
    Aac,
}

impl OutputFormat {
    /// Lowercase name as used in the API and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Opus => "opus",
            Self::Pcm => "pcm",
            Self::Aac => "aac",
        }
    }

    /// Accepted output sample rates for this format.
    pub fn accepts_rate(self, rate_hz: u32) -> bool {
        match self {
            Self::Opus => true,
            Self::Pcm => (8_000..=192_000).contains(&rate_hz),
            Self::Aac => aac::SAMPLE_RATES_HZ.contains(&rate_hz),
        }
    }

    /// Accepted bitrate range in kbit/s (`None` when bitrate does not apply).
    pub fn bitrate_range_kbps(self) -> Option<std::ops::RangeInclusive<u32>> {
        match self {
            Self::Opus => Some(6..=510),
            Self::Aac => Some(8..=320),
            Self::Pcm => None,
        }
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for OutputFormat {
    type Err = EncodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "opus" => Ok(Self::Opus),
            "pcm" => Ok(Self::Pcm),
            "aac" => Ok(Self::Aac),
            other => Err(EncodeError::InvalidSpec(format!(
                "output_format {other:?} is not one of opus, pcm, aac"
            ))),
        }
    }
}

/// What the client asked the output to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputSpec {
    /// Container and codec.
    pub format: OutputFormat,
    /// Requested sample rate; Opus streams are always 48 kHz (see [`Self::stream_rate_hz`]).
    pub sample_rate_hz: u32,
    /// 1 or 2.
    pub channels: usize,
    /// Target bitrate for Opus and AAC.
    pub bitrate_kbps: u32,
}

impl Default for OutputSpec {
    fn default() -> Self {
        Self {
            format: OutputFormat::Opus,
            sample_rate_hz: 48_000,
            channels: 2,
            bitrate_kbps: 128,
        }
    }
}

impl OutputSpec {
    /// Checks every field against the limits of its format.
    pub fn validate(&self) -> Result<(), EncodeError> {
        if !(1..=2).contains(&self.channels) {
            return Err(EncodeError::InvalidSpec(format!(
                "channels = {} must be 1 or 2",
                self.channels
            )));
        }
        if !self.format.accepts_rate(self.sample_rate_hz) {
            let allowed = match self.format {
                OutputFormat::Aac => {
                    "one of 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000"
                }
                _ => "8000..=192000",
            };
            return Err(EncodeError::InvalidSpec(format!(
                "sample_rate = {} is not valid for {}: use {allowed}",
                self.sample_rate_hz, self.format
            )));
        }
        match self.format.bitrate_range_kbps() {
            Some(range) if !range.contains(&self.bitrate_kbps) => {
                Err(EncodeError::InvalidSpec(format!(
                    "bitrate_kbps = {} is outside {}..={} for {}",
                    self.bitrate_kbps,
                    range.start(),
                    range.end(),
                    self.format
                )))
            }
            _ => Ok(()),
        }
    }

    /// The sample rate of the produced stream (48 kHz for Opus, else the requested rate).
    pub fn stream_rate_hz(&self) -> u32 {
        match self.format {
            OutputFormat::Opus => opus::OPUS_RATE_HZ,
            _ => self.sample_rate_hz,
        }
    }
}

/// Why encoding failed.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The requested output cannot be produced (bad rate, channels or bitrate).
    #[error("{0}")]
    InvalidSpec(String),
    /// The codec library reported an error.
    #[error("{codec} encoder: {message}")]
    Codec {
        /// `opus` or `aac`.
        codec: &'static str,
        /// The library's message.
        message: String,
    },
}

/// Turns audio into container bytes.
///
/// `write` and `finish` append bytes to `out`; callers send what was appended and may
/// clear `out` between calls. Input blocks must have the output channel count and rate.
pub trait Encoder: Send {
    /// Encodes `block`, appending any completed output to `out`.
    fn write(&mut self, block: &Block, out: &mut Vec<u8>) -> Result<(), EncodeError>;

    /// Encodes everything still buffered and ends the stream (e.g. the Ogg EOS page).
    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), EncodeError>;
}

/// Builds the encoder for `spec`. `source_rate_hz` is recorded in Opus headers.
pub fn build(spec: &OutputSpec, source_rate_hz: u32) -> Result<Box<dyn Encoder>, EncodeError> {
    spec.validate()?;
    Ok(match spec.format {
        OutputFormat::Opus => Box::new(OggOpusEncoder::try_new(spec, source_rate_hz)?),
        OutputFormat::Pcm => Box::new(PcmEncoder),
        OutputFormat::Aac => Box::new(AacEncoder::try_new(spec)?),
    })
}

/// Appends `block` to `out` interleaved, converting each sample with `f`.
fn interleave<T>(block: &Block, out: &mut Vec<T>, f: impl Fn(f32) -> T) {
    out.reserve(block.frames() * block.channels());
    match block.planes() {
        [mono] => out.extend(mono.iter().map(|&s| f(s))),
        [left, right] => {
            for (&l, &r) in left.iter().zip(right) {
                out.push(f(l));
                out.push(f(r));
            }
        }
        planes => {
            for frame in 0..block.frames() {
                out.extend(planes.iter().map(|plane| f(plane[frame])));
            }
        }
    }
}

/// One f32 sample (full scale = 1.0) as s16: rounded to nearest (half away from zero),
/// saturated at the rails. The sample conversion shared by the PCM and AAC encoders.
#[inline]
fn to_s16(sample: f32) -> i16 {
    let scaled = sample * 32768.0;
    // Adding +-0.5 then truncating rounds like `f32::round` without a libm call, so the
    // loop vectorises; `as` saturates at the i16 bounds and maps NaN to 0.
    (scaled + 0.5f32.copysign(scaled)) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_with_rounding_and_saturation() {
        assert_eq!(to_s16(0.0), 0);
        assert_eq!(to_s16(0.5), 16384);
        assert_eq!(to_s16(1.5 / 32768.0), 2, "half rounds away from zero");
        assert_eq!(to_s16(-1.5 / 32768.0), -2);
        assert_eq!(to_s16(1.4 / 32768.0), 1);
        assert_eq!(to_s16(-1.0), -32768);
        assert_eq!(
            to_s16(1.0),
            32767,
            "full scale saturates instead of wrapping"
        );
        assert_eq!(to_s16(3.0), 32767);
        assert_eq!(to_s16(-3.0), -32768);
        assert_eq!(to_s16(f32::NAN), 0);
    }

    #[test]
    fn interleaves_any_channel_count() {
        let block = Block::from_planes(vec![vec![1.0, 4.0], vec![2.0, 5.0], vec![3.0, 6.0]]);
        let mut out = Vec::new();
        interleave(&block, &mut out, |s| s);
        assert_eq!(out, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    }
}
