//! Demuxing and decoding: the only user of symphonia, and of libopus for decoding.
//!
//! Turns a byte source into planar f32 [`Block`]s at the source's own rate and channel
//! layout, with encoder delay and padding removed. Knows nothing of HTTP, DSP or encoders.

mod contain;
mod gapless;
mod layout;
mod opus;
mod probe;
mod seek;
mod track;

use std::io::ErrorKind;

use dsp::{Block, Speaker};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::FormatReader;
use symphonia::core::packet::Packet;

pub use probe::MAX_PROBE_BYTES;
pub use symphonia::core::io::{MediaSource, ReadOnlySource};

use contain::contain;
use probe::ProbeLimit;
use track::{OpenTrack, first_kept_ts, open_track, packet_trim_range};

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
    Io(std::io::Error),
    /// The demuxer or codec library crashed on malformed data; the stream is abandoned.
    #[error("the source is malformed: the {stage} failed on it ({detail})")]
    Crashed {
        /// `demuxer` or `decoder`.
        stage: &'static str,
        /// The library's panic message.
        detail: String,
    },
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
    /// Playable length in frames (delay and padding excluded), when the container
    /// states it.
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
    track: OpenTrack,
    info: SourceInfo,
    scratch: Vec<Vec<f32>>,
    pending: Option<Block>,
    skipped_packets: u64,
    /// Whether the source can be repositioned and has a known length (demuxers find their
    /// way by the end: FLAC and Ogg bisect up to it).
    seekable: bool,
    /// Timestamp (in the track's time base) of the first playable frame, once decoded.
    origin_ts: Option<i64>,
}

impl Decoder {
    /// Probes `source`, selects its first audio track and decodes up to the first audio,
    /// so that a source without audio fails here rather than mid-stream. Gives up with
    /// [`DecodeError::Unsupported`] once [`MAX_PROBE_BYTES`] have been searched in vain.
    pub fn try_new(
        mut source: Box<dyn MediaSource>,
        hint: &FormatHint,
    ) -> Result<Self, DecodeError> {
        let seekable = source.is_seekable() && source.byte_len().is_some();
        let edit_list = gapless::read_mp4_edit_list(source.as_mut());
        let (limit, source) = ProbeLimit::guard(source)?;
        let opened = Self::open(source, hint, edit_list, seekable);
        limit.disarm();
        opened.map_err(|err| limit.explain(err))
    }

    fn open(
        source: Box<dyn MediaSource>,
        hint: &FormatHint,
        edit_list: Option<gapless::EditList>,
        seekable: bool,
    ) -> Result<Self, DecodeError> {
        let reader = contain("demuxer", || probe::probe(source, hint))??;
        let (track, facts) = open_track(reader.as_ref(), edit_list)?;
        let mut decoder = Self {
            reader,
            track,
            info: SourceInfo {
                format_name: facts.format_name,
                sample_rate_hz: facts.sample_rate_hz.unwrap_or(0),
                layout: Vec::new(),
                duration_frames: facts.duration_frames,
            },
            scratch: Vec::new(),
            pending: None,
            skipped_packets: 0,
            seekable,
            origin_ts: None,
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
    /// Returns `false` at the end of the stream (or of its stated length).
    fn decode_next_packet(&mut self, block: &mut Block) -> Result<bool, DecodeError> {
        if self.track.trim.is_exhausted() {
            return Ok(false);
        }
        let Some((packet, rate_hz)) = self.decode_packet()? else {
            return Ok(false);
        };
        self.accept(rate_hz, &packet, block)?;
        Ok(true)
    }

    /// Reads the next packet of our track and decodes it into `scratch`, skipping packets
    /// that fail to decode. Returns the packet and its rate; `None` at the end.
    fn decode_packet(&mut self) -> Result<Option<(Packet, u32)>, DecodeError> {
        let mut consecutive_errors = 0;
        loop {
            let Some(packet) = self.next_packet(&mut consecutive_errors)? else {
                return Ok(None);
            };
            let codec = &mut self.track.codec;
            match contain("decoder", || codec.decode(&packet, &mut self.scratch))? {
                Ok(rate_hz) => return Ok(Some((packet, rate_hz))),
                Err(message) => self.count_error(&mut consecutive_errors, &message)?,
            }
        }
    }

    /// The next packet of our track; `None` at the end. A chained stream (a new Ogg link)
    /// reopens the track and goes on.
    fn next_packet(&mut self, consecutive_errors: &mut u32) -> Result<Option<Packet>, DecodeError> {
        loop {
            match contain("demuxer", || self.reader.next_packet())? {
                Ok(Some(packet)) if packet.track_id == self.track.id => return Ok(Some(packet)),
                Ok(Some(_)) => {}
                Ok(None) => return Ok(None),
                Err(SymphoniaError::IoError(err)) if err.kind() == ErrorKind::UnexpectedEof => {
                    return Ok(None);
                }
                Err(SymphoniaError::IoError(err)) => return Err(DecodeError::Io(err)),
                Err(SymphoniaError::ResetRequired) => {
                    self.track = open_track(self.reader.as_ref(), None)?.0;
                }
                Err(err) => self.count_error(consecutive_errors, &err.to_string())?,
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

    /// Checks the decoded rate and channels, trims delay/padding and appends the result
    /// to `block`.
    fn accept(
        &mut self,
        rate_hz: u32,
        packet: &Packet,
        block: &mut Block,
    ) -> Result<(), DecodeError> {
        let channels = self.scratch.len();
        if self.info.layout.is_empty() {
            self.info.sample_rate_hz = rate_hz;
            self.info.layout = self.track.codec.layout();
            block.reset_to(channels);
        } else if rate_hz != self.info.sample_rate_hz || channels != self.info.layout.len() {
            return Err(DecodeError::ParametersChanged);
        }
        let decoded = self.scratch.first().map_or(0, Vec::len);
        let kept = packet_trim_range(packet, decoded);
        let range = self.track.trim.apply(kept.clone());
        if self.origin_ts.is_none() && !range.is_empty() {
            let into_packet = i64::try_from(range.start - kept.start).unwrap_or(i64::MAX);
            self.origin_ts = Some(first_kept_ts(packet).saturating_add(into_packet));
        }
        for (plane, decoded) in block.planes_mut().iter_mut().zip(&self.scratch) {
            plane.extend(
                decoded[range.clone()]
                    .iter()
                    .map(|&sample| sanitize(sample)),
            );
        }
        Ok(())
    }
}

/// Largest sample magnitude passed on: float sources may hold anything, and the DSP
/// stages expect finite audio (a NaN would poison every filter state and FFT after it).
const MAX_SAMPLE_MAGNITUDE: f32 = 16.0;

/// A decoded sample made safe for processing: non-finite values become silence and
/// absurd magnitudes are clamped.
#[inline]
fn sanitize(sample: f32) -> f32 {
    if sample.is_finite() {
        sample.clamp(-MAX_SAMPLE_MAGNITUDE, MAX_SAMPLE_MAGNITUDE)
    } else {
        0.0
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
mod tests;
