//! Runs arbitrary bytes through the whole pipeline (decode, downmix, resample, limiter,
//! encoder) into every output format: it must end in output or an error, never a panic
//! or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rust_transcoder::decode::{Decoder, FormatHint};
use rust_transcoder::encode::{OutputFormat, OutputSpec};
use rust_transcoder::pipeline::{Transcode, TranscodeSpec};

fuzz_target!(
    init: {
        // Contained parser panics become errors; only what escapes is a crash here.
        std::panic::set_hook(Box::new(|_| {}));
    },
    |data: &[u8]| {
        let Some((&selector, media)) = data.split_first() else { return };
        let format = [OutputFormat::Pcm, OutputFormat::Opus, OutputFormat::Aac][usize::from(selector % 3)];
        let source = Box::new(std::io::Cursor::new(media.to_vec()));
        let Ok(decoder) = Decoder::try_new(source, &FormatHint::default()) else { return };
        let spec = TranscodeSpec {
            output: OutputSpec { format, channels: 1 + usize::from(selector & 4 != 0), ..OutputSpec::default() },
            filters: dsp::Filters {
                volume: if selector & 8 != 0 { 2.0 } else { 1.0 },
                speed: if selector & 16 != 0 { 1.25 } else { 1.0 },
                pitch: if selector & 32 != 0 { 0.8 } else { 1.0 },
                ..dsp::Filters::default()
            },
            ..TranscodeSpec::default()
        };
        if let Ok(transcode) = Transcode::try_new(decoder, &spec) {
            let _ = transcode.run(|_| Ok(()), |_| {});
        }
    }
);
