//! Opening the audio track: which decoder handles it (symphonia's, or libopus for Opus),
//! the gapless trim plan, and the format name clients see.

use dsp::Speaker;
use symphonia::core::codecs::CodecParameters;
use symphonia::core::codecs::audio::well_known::{CODEC_ID_ALAC, CODEC_ID_FLAC, CODEC_ID_OPUS};
use symphonia::core::codecs::audio::{AudioCodecParameters, AudioDecoder, AudioDecoderOptions};
use symphonia::core::formats::{FormatReader, TrackType};
use symphonia::core::packet::Packet;
use symphonia::core::units::TimeBase;

use super::contain::contain;
use super::gapless::{self, Trim};
use super::{DecodeError, layout, opus, seek};

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

    /// Forgets all state carried between packets, as after a seek.
    pub(super) fn reset(&mut self) -> Result<(), DecodeError> {
        match self {
            Self::Native(decoder) => {
                decoder.reset();
                Ok(())
            }
            Self::Opus(decoder) => decoder.reset(),
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

/// Whether each packet of `params`' codec decodes on its own, bit-exactly, with no state
/// carried over from the packets before it (PCM, FLAC, ALAC).
pub(super) fn is_lossless(params: &AudioCodecParameters) -> bool {
    params.codec == CODEC_ID_FLAC
        || params.codec == CODEC_ID_ALAC
        || symphonia::default::get_codecs()
            .get_audio_decoder(params.codec)
            .is_some_and(|registered| registered.codec.info.short_name.starts_with("pcm"))
}

/// The audio track being decoded, its decoder, and what remains to be trimmed.
pub(super) struct OpenTrack {
    pub id: u32,
    pub codec: TrackDecoder,
    /// What is left of the gapless trim.
    pub trim: Trim,
    /// The gapless trim of the whole stream, from its first frame.
    pub plan: Trim,
    /// Unit of the packet timestamps.
    pub time_base: Option<TimeBase>,
    /// Timestamp of the track's first frame (negative when it starts with codec delay).
    pub start_ts: i64,
    /// Audio to decode and drop before a seek target, for the codec to settle.
    pub preroll_secs: f64,
}

/// What opening a track tells about the source before anything is decoded.
pub(super) struct TrackFacts {
    pub format_name: String,
    pub sample_rate_hz: Option<u32>,
    pub duration_frames: Option<u64>,
}

/// Selects the default audio track of `reader` and builds its decoder and trim plan.
pub(super) fn open_track(
    reader: &dyn FormatReader,
    edit_list: Option<gapless::EditList>,
) -> Result<(OpenTrack, TrackFacts), DecodeError> {
    let track = reader
        .default_track(TrackType::Audio)
        .ok_or(DecodeError::NoAudioTrack)?;
    let Some(CodecParameters::Audio(params)) = &track.codec_params else {
        return Err(DecodeError::NoAudioTrack);
    };
    let container = reader.format_info().short_name;
    let codec = contain("decoder", || TrackDecoder::try_new(params))??;
    let rate_hz = codec.output_rate_hz().or(params.sample_rate);
    let stated = track
        .num_frames
        .or_else(|| media_duration_frames(reader, rate_hz?));
    let (trim, duration_frames) = gapless_plan(edit_list, container, &codec, rate_hz, stated);
    let facts = TrackFacts {
        format_name: format_name(params, container),
        sample_rate_hz: rate_hz,
        duration_frames,
    };
    let open = OpenTrack {
        id: track.id,
        codec,
        plan: trim.clone(),
        trim,
        time_base: track.time_base,
        start_ts: track.start_ts.get(),
        preroll_secs: seek::preroll_secs(params),
    };
    Ok((open, facts))
}

/// Delay and padding that neither the demuxer nor the codec removes, and the playable
/// length that results: the MP4 edit list (symphonia reads it but does not apply it), the
/// Opus pre-skip in Ogg and Matroska (symphonia counts it as audio and only trims the
/// Ogg end), and the Matroska duration, which bounds the end because its `DiscardPadding`
/// is not applied (exact to the container's 1 ms precision).
fn gapless_plan(
    edit_list: Option<gapless::EditList>,
    container: &str,
    codec: &TrackDecoder,
    rate_hz: Option<u32>,
    stated_frames: Option<u64>,
) -> (Trim, Option<u64>) {
    let pre_skip = codec.pre_skip();
    let after = |skip: u64| stated_frames.map(|frames| frames.saturating_sub(skip));
    match (edit_list.zip(rate_hz), container) {
        (Some((edit_list, rate_hz)), _) => {
            let (priming, playable) = edit_list.in_frames(rate_hz);
            (Trim::new(priming, playable), playable.or(after(priming)))
        }
        (None, "ogg") => (Trim::new(pre_skip, None), after(pre_skip)),
        (None, "matroska") => (Trim::new(pre_skip, after(pre_skip)), after(pre_skip)),
        _ => (Trim::default(), stated_frames),
    }
}

/// The container's stated media length in frames at `rate_hz`, when it states one.
fn media_duration_frames(reader: &dyn FormatReader, rate_hz: u32) -> Option<u64> {
    let info = reader.media_info();
    let time = info.time_base?.calc_duration(info.duration?)?;
    let frames = time.as_secs_f64() * f64::from(rate_hz);
    (frames.is_finite() && frames < u64::MAX as f64).then(|| frames.round() as u64)
}

/// The range of decoded frames to keep, honouring the demuxer's trim marks when the codec
/// did not already apply them (some decoders trim, others leave it to the caller).
pub(super) fn packet_trim_range(packet: &Packet, decoded: usize) -> std::ops::Range<usize> {
    let [start, end, kept] = [packet.trim_start, packet.trim_end, packet.dur]
        .map(|frames| usize::try_from(frames.get()).unwrap_or(usize::MAX));
    let total = start
        .checked_add(end)
        .and_then(|trims| trims.checked_add(kept));
    match total {
        Some(total) if start + end > 0 && decoded >= total => start..start + kept,
        _ => 0..decoded,
    }
}

/// Timestamp of the first frame of [`packet_trim_range`]: the packet's own timestamp
/// moved past the delay it marks for trimming, whoever trims it.
pub(super) fn first_kept_ts(packet: &Packet) -> i64 {
    let trim = i64::try_from(packet.trim_start.get()).unwrap_or(i64::MAX);
    packet.pts.get().saturating_add(trim)
}
