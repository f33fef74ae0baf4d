//! Demuxing and decoding: the only user of symphonia, and of libopus for decoding.
//!
//! Turns a byte source into planar f32 [`Block`]s at the source's own rate and channel
//! layout, with encoder delay and padding removed. Knows nothing of HTTP, DSP or encoders.

mod gapless;
mod layout;
mod opus;
mod track;

use std::io::ErrorKind;
use std::panic::{AssertUnwindSafe, catch_unwind};

use dsp::{Block, Speaker};
use symphonia::core::codecs::CodecParameters;
use symphonia::core::codecs::audio::AudioCodecParameters;
use symphonia::core::codecs::audio::well_known::CODEC_ID_OPUS;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::{FormatReader, TrackType};
use symphonia::core::packet::Packet;

pub use symphonia::core::io::{MediaSource, ReadOnlySource};

use gapless::Trim;
use track::{DecodedSpec, TrackDecoder, format_name, probe};

/// How many undecodable packets in a row end a stream.
pub const MAX_CONSECUTIVE_ERRORS: u32 = 50;

/// Why a source could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Neither the container nor the codec could be recognised.
    #[error("unsupported or unrecognised audio format: {0}")]
    Unsupported(String),
    /// The container holds no audio track we can decode.
    #[error("the source has no decodable audio track")]
    NoAudioTrack,
    /// The source ended before any audio was decoded.
    #[error("the source contains no audio")]
    Empty,
    /// Too many packets in a row failed to decode.
    #[error("{count} consecutive undecodable packets (last error: {last})")]
    TooManyErrors {
        /// Number of failed packets in a row.
        count: u32,
        /// The last decoder error.
        last: String,
    },
    /// The stream changed its sample rate or channel count mid-way.
    #[error("the stream changed its audio parameters mid-way")]
    ParametersChanged,
    /// Reading the underlying source failed.
    #[error("reading the source failed: {0}")]
    Io(#[source] std::io::Error),
    /// The demuxer or codec library crashed on malformed data; the stream is abandoned.
    #[error("the source is malformed: the {stage} failed on it")]
    Crashed {
        /// `demuxer` or `decoder`.
        stage: &'static str,
    },
}

/// Runs a call into a third-party parser, turning a panic (an overflow or bad index on
/// malformed data) into an error so that a hostile file cannot take the process down.
fn contain<T>(stage: &'static str, call: impl FnOnce() -> T) -> Result<T, DecodeError> {
    catch_unwind(AssertUnwindSafe(call)).map_err(|_| DecodeError::Crashed { stage })
}

/// What the decoder found out about the source.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceInfo {
    /// Short codec name as reported to clients: `mp3`, `aac`, `flac`, `vorbis`, `opus`,
    /// `wav`, `aiff`, `alac`, ...
    pub format_name: String,
    /// Sample rate of the decoded audio.
    pub sample_rate_hz: u32,
    /// Speaker position of each decoded channel, in plane order.
    pub layout: Vec<Speaker>,
    /// Playable length in frames, when the container states it.
    pub duration_frames: Option<u64>,
}

impl SourceInfo {
    /// Playable length in seconds, when known.
    pub fn duration_secs(&self) -> Option<f64> {
        self.duration_frames
            .map(|frames| frames as f64 / f64::from(self.sample_rate_hz))
    }
}

/// Hints that speed up format detection; wrong hints do no harm.
#[derive(Debug, Clone, Default)]
pub struct FormatHint {
    /// File extension without the dot, e.g. `mp3`.
    pub extension: Option<String>,
    /// MIME type, e.g. from an HTTP `Content-Type`.
    pub mime_type: Option<String>,
}

/// Pulls planar f32 blocks out of a media source.
pub struct Decoder {
    reader: Box<dyn FormatReader>,
    track_id: u32,
    codec: TrackDecoder,
    info: SourceInfo,
    trim: Trim,
    scratch: Vec<Vec<f32>>,
    pending: Option<Block>,
    skipped_packets: u64,
}

impl Decoder {
    /// Probes `source`, selects its first audio track and decodes up to the first audio,
    /// so that a source without audio fails here rather than mid-stream.
    pub fn try_new(
        mut source: Box<dyn MediaSource>,
        hint: &FormatHint,
    ) -> Result<Self, DecodeError> {
        let mp4_trim = gapless::read_mp4_edit_list(source.as_mut());
        let reader = contain("demuxer", || probe(source, hint))??;
        let track = reader
            .default_track(TrackType::Audio)
            .ok_or(DecodeError::NoAudioTrack)?;
        let Some(CodecParameters::Audio(params)) = track.codec_params.clone() else {
            return Err(DecodeError::NoAudioTrack);
        };
        let track_id = track.id;
        let duration_frames = track
            .num_frames
            .or_else(|| media_duration_frames(reader.as_ref(), &params));
        let format_name = format_name(&params, reader.format_info().short_name);
        let codec = contain("decoder", || TrackDecoder::try_new(&params))??;
        let trim = initial_trim(
            mp4_trim,
            reader.format_info().short_name,
            &codec,
            duration_frames,
        );
        let mut decoder = Self {
            reader,
            track_id,
            codec,
            info: SourceInfo {
                format_name,
                sample_rate_hz: params.sample_rate.unwrap_or(0),
                layout: Vec::new(),
                duration_frames,
            },
            trim,
            scratch: Vec::new(),
            pending: None,
            skipped_packets: 0,
        };
        decoder.prime()?;
        Ok(decoder)
    }

    /// What the source turned out to be.
    pub fn info(&self) -> &SourceInfo {
        &self.info
    }

    /// Packets skipped so far because they could not be decoded.
    pub fn skipped_packets(&self) -> u64 {
        self.skipped_packets
    }

    /// Replaces `block` with the next decoded audio. Returns `false` at the end of the
    /// source (leaving `block` empty).
    pub fn next_block(&mut self, block: &mut Block) -> Result<bool, DecodeError> {
        if let Some(pending) = self.pending.take() {
            *block = pending;
            return Ok(true);
        }
        block.reset_to(self.info.layout.len());
        while block.is_empty() {
            if !self.decode_next_packet(block)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Decodes until the first audio so that rate and layout are known.
    fn prime(&mut self) -> Result<(), DecodeError> {
        let mut first = Block::new(0);
        loop {
            if !self.decode_next_packet(&mut first)? {
                return Err(DecodeError::Empty);
            }
            if !first.is_empty() {
                self.pending = Some(first);
                return Ok(());
            }
        }
    }

    /// Reads and decodes one packet of our track, appending its audio to `block`.
    /// Returns `false` at the end of the stream.
    fn decode_next_packet(&mut self, block: &mut Block) -> Result<bool, DecodeError> {
        let mut consecutive_errors = 0;
        loop {
            let packet = match contain("demuxer", || self.reader.next_packet())? {
                Ok(Some(packet)) if packet.track_id == self.track_id => packet,
                Ok(Some(_)) => continue,
                Ok(None) => return Ok(false),
                Err(SymphoniaError::IoError(err)) if err.kind() == ErrorKind::UnexpectedEof => {
                    return Ok(false);
                }
                Err(SymphoniaError::IoError(err)) => return Err(DecodeError::Io(err)),
                Err(SymphoniaError::ResetRequired) => return Err(DecodeError::ParametersChanged),
                Err(err) => {
                    self.count_error(&mut consecutive_errors, &err.to_string())?;
                    continue;
                }
            };
            let decoded = contain("decoder", || self.codec.decode(&packet, &mut self.scratch))?;
            match decoded {
                Ok(spec) => {
                    self.accept(spec, &packet, block)?;
                    return Ok(true);
                }
                Err(message) => self.count_error(&mut consecutive_errors, &message)?,
            }
        }
    }

    fn count_error(&mut self, consecutive: &mut u32, message: &str) -> Result<(), DecodeError> {
        self.skipped_packets += 1;
        *consecutive += 1;
        if *consecutive >= MAX_CONSECUTIVE_ERRORS {
            return Err(DecodeError::TooManyErrors {
                count: *consecutive,
                last: message.to_owned(),
            });
        }
        Ok(())
    }

    /// Checks the decoded spec, trims delay/padding and appends the result to `block`.
    fn accept(
        &mut self,
        spec: DecodedSpec,
        packet: &Packet,
        block: &mut Block,
    ) -> Result<(), DecodeError> {
        if self.info.layout.is_empty() {
            self.info.sample_rate_hz = spec.sample_rate_hz;
            self.info.layout = spec.layout;
            block.reset_to(self.info.layout.len());
        } else if spec.sample_rate_hz != self.info.sample_rate_hz
            || spec.layout.len() != self.info.layout.len()
        {
            return Err(DecodeError::ParametersChanged);
        }
        let decoded = self.scratch.first().map_or(0, Vec::len);
        let range = self.trim.apply(packet_trim_range(packet, decoded));
        for (plane, decoded) in block.planes_mut().iter_mut().zip(&self.scratch) {
            plane.extend_from_slice(&decoded[range.clone()]);
        }
        Ok(())
    }
}

/// Delay and padding that neither the demuxer nor the codec removes: the MP4 edit list,
/// the Opus pre-skip in Ogg and Matroska (symphonia trims only the Ogg end, and shifts
/// Matroska timestamps by a millisecond-rounded codec delay), and the Matroska duration
/// (its `DiscardPadding` is not applied, so the end is exact to the container's 1 ms).
fn initial_trim(
    mp4_edit_list: Option<gapless::EditList>,
    container: &str,
    codec: &TrackDecoder,
    duration_frames: Option<u64>,
) -> Trim {
    match (mp4_edit_list, container, codec) {
        (Some(edit_list), _, _) => Trim::from(edit_list),
        (None, "ogg", TrackDecoder::Opus(opus)) => Trim::new(u64::from(opus.pre_skip()), None),
        (None, "matroska", TrackDecoder::Opus(opus)) => {
            Trim::new(u64::from(opus.pre_skip()), duration_frames)
        }
        (None, "matroska", _) => Trim::new(0, duration_frames),
        _ => Trim::default(),
    }
}

/// The container's stated media length in frames of the track's rate, when both are known.
fn media_duration_frames(reader: &dyn FormatReader, params: &AudioCodecParameters) -> Option<u64> {
    let info = reader.media_info();
    let rate = if params.codec == CODEC_ID_OPUS {
        opus::OPUS_RATE_HZ
    } else {
        params.sample_rate?
    };
    let time = info.time_base?.calc_duration(info.duration?)?;
    Some((time.as_secs_f64() * f64::from(rate)).round() as u64)
}

/// The range of decoded frames to keep, honouring the demuxer's trim marks when the codec
/// did not already apply them (some decoders trim, others leave it to the caller).
fn packet_trim_range(packet: &Packet, decoded: usize) -> std::ops::Range<usize> {
    let start = packet.trim_start.get() as usize;
    let end = packet.trim_end.get() as usize;
    let kept = packet.dur.get() as usize;
    if start + end > 0 && decoded >= kept + start + end {
        start..start + kept
    } else {
        0..decoded
    }
}

/// Decodes an in-memory file to the end and returns the number of frames decoded.
/// Exercises the decoder on untrusted bytes (fuzzing, corpus replay).
pub fn decode_all(bytes: Vec<u8>) -> Result<u64, DecodeError> {
    let mut decoder = Decoder::try_new(
        Box::new(std::io::Cursor::new(bytes)),
        &FormatHint::default(),
    )?;
    let mut block = Block::new(0);
    let mut frames = 0;
    while decoder.next_block(&mut block)? {
        frames += block.frames() as u64;
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parser_panic_becomes_an_error() {
        let outcome: Result<(), _> = contain("demuxer", || panic!("index out of bounds"));
        assert!(matches!(
            outcome,
            Err(DecodeError::Crashed { stage: "demuxer" })
        ));
    }

    #[test]
    fn garbage_is_unsupported_and_empty_input_too() {
        assert!(matches!(
            decode_all(Vec::new()),
            Err(DecodeError::Unsupported(_))
        ));
        let noise: Vec<u8> = (0..65_536u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        assert!(matches!(
            decode_all(noise),
            Err(DecodeError::Unsupported(_))
        ));
    }
}
