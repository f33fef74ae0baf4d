//! Ogg Opus (RFC 7845) through libopus and the `ogg` page writer.
//!
//! Rate control is constrained VBR (libopus' own default, and what keeps the requested
//! bitrate honoured on music); complexity 10; 20 ms frames. The OpusHead pre-skip is the
//! encoder's lookahead and the last page's granule position trims the final frame's
//! padding, so a decoder returns exactly as many samples as were written.

use audiopus::coder::Encoder as LibopusEncoder;
use audiopus::{Application, Bitrate, Channels, SampleRate};
use dsp::Block;
use ogg::writing::{PacketWriteEndInfo, PacketWriter};

use super::{EncodeError, Encoder, OutputSpec, interleave};

/// Opus streams are always 48 kHz.
pub(super) const OPUS_RATE_HZ: u32 = 48_000;
/// 20 ms at 48 kHz.
const FRAME_LEN: usize = 960;
/// Largest packet libopus may produce for one frame (RFC 6716 recommends 1275 x 3 + 7).
const MAX_PACKET_BYTES: usize = 4_000;
/// Audio packets per Ogg page: 100 ms, a balance of latency and page overhead.
const PACKETS_PER_PAGE: u32 = 5;
/// libopus' highest quality setting, also its default.
const COMPLEXITY: u8 = 10;

/// Encodes 48 kHz audio into an Ogg Opus stream.
pub struct OggOpusEncoder {
    encoder: LibopusEncoder,
    channels: usize,
    pre_skip: u64,
    writer: PacketWriter<'static, Vec<u8>>,
    serial: u32,
    /// Interleaved samples waiting for a full frame.
    fifo: Vec<f32>,
    /// Scratch space for one encoded packet.
    packet: Vec<u8>,
    /// The newest packet, held back so the last one can carry the end-of-stream marks.
    held_packet: Option<Vec<u8>>,
    input_frames: u64,
    encoded_frames: u64,
    packets_in_page: u32,
}

impl OggOpusEncoder {
    /// Builds the encoder and writes the OpusHead and OpusTags header pages.
    ///
    /// Fails with `InvalidSpec` unless `spec` is valid and mono or stereo.
    pub fn try_new(spec: &OutputSpec, source_rate_hz: u32) -> Result<Self, EncodeError> {
        spec.validate()?;
        let channels = match spec.channels {
            1 => Channels::Mono,
            2 => Channels::Stereo,
            n => {
                return Err(EncodeError::InvalidSpec(format!(
                    "opus: channels = {n} must be 1 or 2"
                )));
            }
        };
        let encoder = libopus_encoder(channels, spec.bitrate_kbps)?;
        let pre_skip = u64::from(encoder.lookahead().map_err(codec_error)?);
        let mut this = Self {
            encoder,
            channels: spec.channels,
            pre_skip,
            writer: PacketWriter::new(Vec::new()),
            serial: rand::random(),
            fifo: Vec::new(),
            packet: vec![0; MAX_PACKET_BYTES],
            held_packet: None,
            input_frames: 0,
            encoded_frames: 0,
            packets_in_page: 0,
        };
        this.write_headers(source_rate_hz)?;
        Ok(this)
    }

    fn write_headers(&mut self, source_rate_hz: u32) -> Result<(), EncodeError> {
        let head = opus_head(self.channels, self.pre_skip, source_rate_hz);
        self.write_page_packet(head, PacketWriteEndInfo::EndPage, 0)?;
        self.write_page_packet(opus_tags(), PacketWriteEndInfo::EndPage, 0)
    }

    fn write_page_packet(
        &mut self,
        data: Vec<u8>,
        end: PacketWriteEndInfo,
        granule: u64,
    ) -> Result<(), EncodeError> {
        self.writer
            .write_packet(data, self.serial, end, granule)
            .map_err(|err| codec_error(err.to_string()))
    }

    /// Encodes every full frame waiting in the FIFO.
    fn encode_full_frames(&mut self) -> Result<(), EncodeError> {
        let frame_samples = FRAME_LEN * self.channels;
        let mut consumed = 0;
        while self.fifo.len() - consumed >= frame_samples {
            let len = self
                .encoder
                .encode_float(
                    &self.fifo[consumed..consumed + frame_samples],
                    &mut self.packet,
                )
                .map_err(codec_error)?;
            consumed += frame_samples;
            self.encoded_frames += FRAME_LEN as u64;
            self.push_packet(self.packet[..len].to_vec())?;
        }
        self.fifo.drain(..consumed);
        Ok(())
    }

    /// Writes the previously held packet and holds `packet` back.
    fn push_packet(&mut self, packet: Vec<u8>) -> Result<(), EncodeError> {
        if let Some(previous) = self.held_packet.replace(packet) {
            self.packets_in_page += 1;
            let end = if self.packets_in_page >= PACKETS_PER_PAGE {
                self.packets_in_page = 0;
                PacketWriteEndInfo::EndPage
            } else {
                PacketWriteEndInfo::NormalPacket
            };
            // The held packet ends one frame before everything encoded so far.
            let granule = self.encoded_frames - FRAME_LEN as u64;
            self.write_page_packet(previous, end, granule)?;
        }
        Ok(())
    }

    fn take_output(&mut self, out: &mut Vec<u8>) {
        out.append(self.writer.inner_mut());
    }
}

impl Encoder for OggOpusEncoder {
    fn write(&mut self, block: &Block, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.input_frames += block.frames() as u64;
        interleave(block, &mut self.fifo, |s| s);
        self.encode_full_frames()?;
        self.take_output(out);
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        // Feed silence until the encoder's lookahead has pushed every real sample out.
        let needed = self.input_frames + self.pre_skip;
        let fifo_frames = self.fifo.len() / self.channels;
        let to_encode = (needed.saturating_sub(self.encoded_frames) as usize).max(fifo_frames);
        let pad_frames = to_encode.div_ceil(FRAME_LEN) * FRAME_LEN - fifo_frames;
        self.fifo
            .resize(self.fifo.len() + pad_frames * self.channels, 0.0);
        self.encode_full_frames()?;
        // The padding encodes at least the pre-skip (> 0 frames), so a packet is held;
        // an empty one would be invalid (RFC 6716 section 3.4), so never write one.
        let last = self
            .held_packet
            .take()
            .ok_or_else(|| codec_error("no packet to end the stream with"))?;
        self.write_page_packet(last, PacketWriteEndInfo::EndStream, needed)?;
        self.take_output(out);
        Ok(())
    }
}

/// A libopus encoder at `bitrate_kbps`: constrained VBR, complexity `COMPLEXITY`.
fn libopus_encoder(channels: Channels, bitrate_kbps: u32) -> Result<LibopusEncoder, EncodeError> {
    let mut encoder = LibopusEncoder::new(SampleRate::Hz48000, channels, Application::Audio)
        .map_err(codec_error)?;
    let bitrate = i32::try_from(bitrate_kbps.saturating_mul(1000)).map_err(codec_error)?;
    encoder
        .set_bitrate(Bitrate::BitsPerSecond(bitrate))
        .map_err(codec_error)?;
    encoder.set_vbr(true).map_err(codec_error)?;
    encoder.set_vbr_constraint(true).map_err(codec_error)?;
    encoder.set_complexity(COMPLEXITY).map_err(codec_error)?;
    Ok(encoder)
}

/// The identification header (RFC 7845 section 5.1), channel mapping family 0.
fn opus_head(channels: usize, pre_skip: u64, input_rate_hz: u32) -> Vec<u8> {
    let mut head = b"OpusHead".to_vec();
    head.push(1);
    head.push(channels as u8);
    head.extend_from_slice(&(pre_skip as u16).to_le_bytes());
    head.extend_from_slice(&input_rate_hz.to_le_bytes());
    head.extend_from_slice(&0i16.to_le_bytes());
    head.push(0);
    head
}

/// The comment header (RFC 7845 section 5.2) with our vendor string and no tags.
fn opus_tags() -> Vec<u8> {
    let vendor = concat!("rust-transcoder ", env!("CARGO_PKG_VERSION")).as_bytes();
    let mut tags = b"OpusTags".to_vec();
    tags.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
    tags.extend_from_slice(vendor);
    tags.extend_from_slice(&0u32.to_le_bytes());
    tags
}

fn codec_error(err: impl ToString) -> EncodeError {
    EncodeError::Codec {
        codec: "opus",
        message: err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::OutputFormat;
    use ogg::PacketReader;

    fn spec(channels: usize) -> OutputSpec {
        OutputSpec {
            format: OutputFormat::Opus,
            channels,
            ..OutputSpec::default()
        }
    }

    #[test]
    fn rejects_more_than_two_channels() {
        for channels in [0, 3, 6] {
            let err = OggOpusEncoder::try_new(&spec(channels), 48_000).err();
            assert!(
                matches!(err, Some(EncodeError::InvalidSpec(_))),
                "{channels}: {err:?}"
            );
        }
    }

    #[test]
    fn an_empty_input_gives_a_valid_stream() {
        let mut encoder = OggOpusEncoder::try_new(&spec(2), 44_100).unwrap();
        let pre_skip = encoder.pre_skip;
        let mut out = Vec::new();
        encoder.finish(&mut out).unwrap();
        let mut reader = PacketReader::new(std::io::Cursor::new(out));
        let mut packets = Vec::new();
        while let Some(packet) = reader.read_packet().unwrap() {
            packets.push(packet);
        }
        assert_eq!(packets.len(), 3);
        assert!(packets[0].data.starts_with(b"OpusHead") && packets[0].last_in_page());
        assert!(packets[1].data.starts_with(b"OpusTags") && packets[1].last_in_page());
        let audio = &packets[2];
        assert!(
            !audio.data.is_empty(),
            "an Opus packet has at least a TOC byte"
        );
        assert!(audio.first_in_page() && audio.last_in_stream());
        assert!(pre_skip > 0);
        assert_eq!(audio.absgp_page(), pre_skip);
    }

    #[test]
    fn opus_head_layout_follows_rfc_7845() {
        let head = opus_head(2, 312, 44_100);
        assert_eq!(head.len(), 19);
        assert_eq!(&head[..8], b"OpusHead");
        assert_eq!(head[9], 2);
        assert_eq!(u16::from_le_bytes([head[10], head[11]]), 312);
        assert_eq!(
            u32::from_le_bytes([head[12], head[13], head[14], head[15]]),
            44_100
        );
    }
}
