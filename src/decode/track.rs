//! Codec selection and probing: which decoder handles a track (symphonia's, or libopus
//! for Opus), how the source is probed, and the format name clients see.

use dsp::Speaker;
use std::io::ErrorKind;
use symphonia::core::codecs::audio::well_known::CODEC_ID_OPUS;
use symphonia::core::codecs::audio::{AudioCodecParameters, AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::{MediaSource, MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::packet::Packet;

use super::{DecodeError, FormatHint, layout, opus};

/// The codec behind the track: a symphonia decoder, or libopus for Opus.
pub(super) enum TrackDecoder {
    Native(Box<dyn AudioDecoder>),
    Opus(opus::OpusDecoder),
}

impl TrackDecoder {
    pub(super) fn try_new(params: &AudioCodecParameters) -> Result<Self, DecodeError> {
        if params.codec == CODEC_ID_OPUS {
            return opus::OpusDecoder::try_new(params.extra_data.as_deref()).map(Self::Opus);
        }
        let registered = symphonia::default::get_codecs()
            .get_audio_decoder(params.codec)
            .ok_or_else(|| DecodeError::Unsupported(format!("codec {:?}", params.codec)))?;
        let options = AudioDecoderOptions::default();
        let decoder = (registered.factory)(params, &options)
            .map_err(|err| DecodeError::Unsupported(err.to_string()))?;
        Ok(Self::Native(decoder))
    }

    /// The rate this decoder always produces, when the codec fixes it (Opus: 48 kHz).
    pub(super) fn output_rate_hz(&self) -> Option<u32> {
        match self {
            Self::Native(_) => None,
            Self::Opus(_) => Some(opus::OPUS_RATE_HZ),
        }
    }

    /// Frames the codec's header says to drop at the start (the Opus pre-skip).
    pub(super) fn pre_skip(&self) -> u64 {
        match self {
            Self::Native(_) => 0,
            Self::Opus(decoder) => u64::from(decoder.pre_skip()),
        }
    }

    /// The speaker of each plane of the last decoded packet.
    pub(super) fn layout(&self) -> Vec<Speaker> {
        match self {
            Self::Native(decoder) => layout::speakers(decoder.last_decoded().spec().channels()),
            Self::Opus(decoder) => Speaker::default_layout(decoder.channels()),
        }
    }

    /// Decodes `packet` into `planes` (replacing their content) and returns its sample
    /// rate.
    pub(super) fn decode(
        &mut self,
        packet: &Packet,
        planes: &mut Vec<Vec<f32>>,
    ) -> Result<u32, String> {
        match self {
            Self::Native(decoder) => {
                let buffer = decoder.decode(packet).map_err(|err| err.to_string())?;
                buffer.copy_to_vecs_planar(planes);
                Ok(buffer.spec().rate())
            }
            Self::Opus(decoder) => {
                decoder.decode(&packet.data, planes)?;
                Ok(opus::OPUS_RATE_HZ)
            }
        }
    }
}

/// Runs symphonia's probe over the source with bounded buffering.
pub(super) fn probe(
    source: Box<dyn MediaSource>,
    hint: &FormatHint,
) -> Result<Box<dyn FormatReader>, DecodeError> {
    let stream = MediaSourceStream::new(source, MediaSourceStreamOptions::default());
    let mut symphonia_hint = Hint::new();
    if let Some(extension) = &hint.extension {
        symphonia_hint.with_extension(extension);
    }
    if let Some(mime) = &hint.mime_type {
        symphonia_hint.mime_type(mime);
    }
    symphonia::default::get_probe()
        .probe(
            &symphonia_hint,
            stream,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|err| match err {
            SymphoniaError::IoError(io) if io.kind() != ErrorKind::UnexpectedEof => {
                DecodeError::Io(io)
            }
            SymphoniaError::IoError(_) => {
                DecodeError::Unsupported("no recognisable audio data".into())
            }
            other => DecodeError::Unsupported(other.to_string()),
        })
}

/// The name clients see for the source format: the codec, except for plain PCM, where
/// the container (`wav`, `aiff`, `caf`) says more.
pub(super) fn format_name(params: &AudioCodecParameters, container: &str) -> String {
    let codec = symphonia::default::get_codecs()
        .get_audio_decoder(params.codec)
        .map(|registered| registered.codec.info.short_name);
    match codec {
        _ if params.codec == CODEC_ID_OPUS => "opus".to_owned(),
        Some(name) if name.starts_with("pcm") || name.starts_with("adpcm") => {
            container_name(container)
        }
        Some(name) => name.to_owned(),
        None => container_name(container),
    }
}

fn container_name(container: &str) -> String {
    match container {
        "wave" | "riff" => "wav".to_owned(),
        other => other.to_owned(),
    }
}
