//! Opus decoding through libopus (symphonia demuxes Opus but has no decoder for it).

use audiopus::coder::Decoder as LibopusDecoder;
use audiopus::packet::Packet as OpusPacket;
use audiopus::{Channels, MutSignals, SampleRate};

use super::DecodeError;

/// Opus always decodes at 48 kHz here: it is the codec's native rate.
pub(super) const OPUS_RATE_HZ: u32 = 48_000;

/// Longest Opus packet: 120 ms at 48 kHz.
const MAX_FRAMES_PER_PACKET: usize = 5_760;

/// The fields of an `OpusHead` identification header (RFC 7845 section 5.1) we use.
#[derive(Debug, Clone, Copy, PartialEq)]
struct OpusHead {
    channels: u8,
    pre_skip: u16,
    output_gain_q8_db: i16,
    mapping_family: u8,
}

impl OpusHead {
    fn parse(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < 19 || &bytes[..8] != b"OpusHead" {
            return None;
        }
        Some(Self {
            channels: bytes[9],
            pre_skip: u16::from_le_bytes([bytes[10], bytes[11]]),
            output_gain_q8_db: i16::from_le_bytes([bytes[16], bytes[17]]),
            mapping_family: bytes[18],
        })
    }
}

/// A mono or stereo Opus stream decoder (channel mapping family 0 or 1 with <= 2 channels).
pub(super) struct OpusDecoder {
    decoder: LibopusDecoder,
    layout: Channels,
    channels: usize,
    pre_skip: u16,
    output_gain: f32,
    interleaved: Vec<f32>,
}

impl OpusDecoder {
    /// Builds a decoder from the track's `OpusHead`.
    pub(super) fn try_new(extra_data: Option<&[u8]>) -> Result<Self, DecodeError> {
        let head = extra_data.and_then(OpusHead::parse).ok_or_else(|| {
            DecodeError::Unsupported("opus track without a valid OpusHead".into())
        })?;
        let channels = match (head.channels, head.mapping_family) {
            (1, 0 | 1) => Channels::Mono,
            (2, 0 | 1) => Channels::Stereo,
            (count, family) => {
                return Err(DecodeError::Unsupported(format!(
                    "multichannel opus ({count} channels, mapping family {family})"
                )));
            }
        };
        Ok(Self {
            decoder: new_libopus(channels)?,
            layout: channels,
            channels: usize::from(head.channels),
            pre_skip: head.pre_skip,
            output_gain: 10f32.powf(f32::from(head.output_gain_q8_db) / (20.0 * 256.0)),
            interleaved: vec![0.0; MAX_FRAMES_PER_PACKET * usize::from(head.channels)],
        })
    }

    /// Number of decoded channels.
    pub(super) fn channels(&self) -> usize {
        self.channels
    }

    /// Frames to drop at the start of the stream (OpusHead pre-skip).
    pub(super) fn pre_skip(&self) -> u16 {
        self.pre_skip
    }

    /// Forgets the decoder state, as after a seek (libopus has no reset in these bindings).
    pub(super) fn reset(&mut self) -> Result<(), DecodeError> {
        self.decoder = new_libopus(self.layout)?;
        Ok(())
    }

    /// Decodes one packet into `planes` (replacing their content).
    pub(super) fn decode(&mut self, data: &[u8], planes: &mut Vec<Vec<f32>>) -> Result<(), String> {
        let packet = OpusPacket::try_from(data).map_err(|err| err.to_string())?;
        let signals =
            MutSignals::try_from(&mut self.interleaved[..]).map_err(|err| err.to_string())?;
        let frames = self
            .decoder
            .decode_float(Some(packet), signals, false)
            .map_err(|err| err.to_string())?;
        planes.resize_with(self.channels, Vec::new);
        for (channel, plane) in planes.iter_mut().enumerate() {
            plane.clear();
            let samples = self.interleaved[..frames * self.channels]
                .iter()
                .skip(channel);
            plane.extend(samples.step_by(self.channels).map(|s| s * self.output_gain));
        }
        Ok(())
    }
}

fn new_libopus(channels: Channels) -> Result<LibopusDecoder, DecodeError> {
    LibopusDecoder::new(SampleRate::Hz48000, channels)
        .map_err(|err| DecodeError::Unsupported(format!("opus decoder: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_stereo_opus_head() {
        let mut head = b"OpusHead".to_vec();
        head.extend([1, 2, 0x38, 0x01, 0x44, 0xAC, 0, 0, 0x00, 0x01, 0]);
        let parsed = OpusHead::parse(&head).unwrap();
        assert_eq!(parsed.channels, 2);
        assert_eq!(parsed.pre_skip, 312);
        assert_eq!(parsed.output_gain_q8_db, 256);
        assert_eq!(parsed.mapping_family, 0);
        assert!(OpusHead::parse(b"OpusHea").is_none());
    }

    #[test]
    fn garbage_packets_are_errors_not_panics() {
        let head = [
            b"OpusHead".as_slice(),
            &[1, 1, 0, 0, 0x80, 0xBB, 0, 0, 0, 0, 0],
        ]
        .concat();
        let mut decoder = OpusDecoder::try_new(Some(&head)).unwrap();
        let mut planes = Vec::new();
        for packet in [&[][..], &[0xFF; 3][..], &[0x0B; 2000][..]] {
            let _ = decoder.decode(packet, &mut planes);
        }
    }
}
