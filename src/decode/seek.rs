//! Sample-accurate seeking: the demuxer is asked for a packet at or before the target,
//! minus the codec's pre-roll; the codec is reset; and the timestamp of the first packet
//! that decodes to audio says where decoding resumed, so the caller can drop exactly the
//! frames before the target.
//!
//! Positions are measured against the timestamp of the first playable frame, learned when
//! the stream was opened, so whatever a container counts in its timestamps (MP4 priming,
//! the Ogg Opus pre-skip, MP3 decoder delay) cancels out, and the gapless trim of the
//! whole stream is resumed at the landing point (priming is not dropped twice, the end
//! trim still holds). Only streams whose timestamps count frames are sought; others
//! (Matroska's millisecond timestamps) are decoded from the start as before.

use std::io::ErrorKind;

use dsp::Block;
use symphonia::core::codecs::audio::AudioCodecParameters;
use symphonia::core::codecs::audio::well_known::CODEC_ID_OPUS;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::{SeekMode, SeekTo};
use symphonia::core::units::Timestamp;

use super::contain::contain;
use super::gapless::Trim;
use super::track::{self, first_kept_ts, packet_trim_range};
use super::{DecodeError, Decoder};

/// Audio decoded and dropped before the target by codecs that carry state from packet to
/// packet (overlap-add windows, the MP3 bit reservoir and synthesis filter bank): enough
/// for their output to equal an uninterrupted decode. MP3, MP2, AAC and Vorbis need a
/// packet or two; measured bit-exact from 80 ms on.
const LOSSY_PREROLL_SECS: f64 = 0.2;

/// Pre-roll for Opus, whose decoder state (CELT band energy prediction, SILK filters)
/// converges geometrically: on a sine, 80 ms (the RFC 7845 minimum) leaves errors of
/// 5e-2, 200 ms 8e-4, 300 ms 6e-5, 500 ms none at 16 bits.
const OPUS_PREROLL_SECS: f64 = 0.5;

/// How much audio before the target the codec of `params` must decode to produce exact
/// output from the target on.
pub(super) fn preroll_secs(params: &AudioCodecParameters) -> f64 {
    if params.codec == CODEC_ID_OPUS {
        OPUS_PREROLL_SECS
    } else if track::is_lossless(params) {
        0.0
    } else {
        LOSSY_PREROLL_SECS
    }
}

/// How one attempt at seeking went.
enum Attempt {
    /// Decoding resumes at this playable frame, at or before the target.
    Landed(u64),
    /// Decoding would resume after the target: more pre-roll is needed.
    Late,
    /// The demuxer refused; its position is unknown.
    Refused(String),
}

impl Decoder {
    /// Moves the decoder towards playable frame `frame` (at the source rate, counted from
    /// the first playable frame) and returns the frame its next block starts at: never
    /// after `frame`, so the caller drops the difference to start exactly there. Returns
    /// 0 without moving when the source cannot seek or its timestamps do not count
    /// frames; the caller then decodes and discards from the start.
    pub fn seek(&mut self, frame: u64) -> Result<u64, DecodeError> {
        let Some((first_ts, target_ts)) = self.seek_range(frame) else {
            return Ok(0);
        };
        let rate = f64::from(self.info.sample_rate_hz);
        let mut preroll = (self.track.preroll_secs * rate).round() as i64;
        let mut at = target_ts.saturating_sub(preroll).max(first_ts);
        if at == first_ts {
            return Ok(0);
        }
        loop {
            match self.seek_once(at, target_ts)? {
                Attempt::Landed(landed) => return Ok(landed),
                Attempt::Late if at > first_ts => {
                    preroll = preroll.saturating_mul(4).max(rate as i64);
                    at = target_ts.saturating_sub(preroll).max(first_ts);
                }
                Attempt::Refused(_) if at > first_ts => at = first_ts,
                Attempt::Late => return Err(seek_failed("its first packet lies after the target")),
                Attempt::Refused(reason) => return Err(seek_failed(&reason)),
            }
        }
    }

    /// The timestamps of the stream's start and of `frame`, when this stream can seek.
    fn seek_range(&self, frame: u64) -> Option<(i64, i64)> {
        let counts_frames = self.track.time_base.is_some_and(|base| {
            base.numer.get() == 1 && base.denom.get() == self.info.sample_rate_hz
        });
        let origin = self.origin_ts.filter(|_| self.seekable && counts_frames)?;
        let target = origin.checked_add(i64::try_from(frame).ok()?)?;
        Some((self.track.start_ts.min(origin), target))
    }

    /// Seeks the demuxer to timestamp `at`, resets the codec and decodes up to the first
    /// audio, which becomes the next block.
    fn seek_once(&mut self, at: i64, target_ts: i64) -> Result<Attempt, DecodeError> {
        self.pending = None;
        let to = SeekTo::Timestamp {
            ts: Timestamp::new(at),
            track_id: self.track.id,
        };
        match contain("demuxer", || self.reader.seek(SeekMode::Accurate, to))? {
            Ok(seeked) if seeked.actual_ts.get() > target_ts => return Ok(Attempt::Late),
            Ok(_) => {}
            Err(SymphoniaError::IoError(err)) if err.kind() == ErrorKind::UnexpectedEof => {
                return Ok(self.ended_before(target_ts));
            }
            Err(SymphoniaError::IoError(err)) => return Err(DecodeError::Io(err)),
            Err(err) => return Ok(Attempt::Refused(err.to_string())),
        }
        self.track.codec.reset()?;
        let skipped_before = self.skipped_packets;
        let attempt = self.resume(target_ts);
        self.skipped_packets = skipped_before;
        attempt
    }

    /// Decodes after a seek until a packet yields audio, and resumes the gapless trim at
    /// its timestamp. Packets that fail to decode for want of the data before the seek
    /// point are not counted as skipped.
    fn resume(&mut self, target_ts: i64) -> Result<Attempt, DecodeError> {
        let origin = self.origin_ts.unwrap_or(0);
        loop {
            let Some((packet, rate_hz)) = self.decode_packet()? else {
                return Ok(self.ended_before(target_ts));
            };
            let decoded = self.scratch.first().map_or(0, Vec::len);
            if packet_trim_range(&packet, decoded).is_empty() {
                continue;
            }
            let first_ts = first_kept_ts(&packet);
            if first_ts > target_ts {
                return Ok(Attempt::Late);
            }
            let resumed_at = first_ts.saturating_sub(origin);
            self.track.trim = self.track.plan.resumed_at(resumed_at);
            let mut block = Block::new(self.info.layout.len());
            self.accept(rate_hz, &packet, &mut block)?;
            self.pending = (!block.is_empty()).then_some(block);
            return Ok(Attempt::Landed(resumed_at.max(0).unsigned_abs()));
        }
    }

    /// The stream ends before `target_ts`: nothing is left to play.
    fn ended_before(&mut self, target_ts: i64) -> Attempt {
        self.track.trim = Trim::new(0, Some(0));
        let origin = self.origin_ts.unwrap_or(0);
        Attempt::Landed(target_ts.saturating_sub(origin).max(0).unsigned_abs())
    }
}

/// Even a seek back to the stream start failed: the demuxer's position is unknown.
fn seek_failed(reason: &str) -> DecodeError {
    DecodeError::Io(std::io::Error::other(format!(
        "seeking back to the stream start failed: {reason}"
    )))
}
