//! The compute part of a first byte, measured in process on the file in memory: probe
//! and prime the decoder, build the transcode (chain and encoder), run until the first
//! encoded chunk exists. No network and no threads, so what the HTTP first byte adds on
//! top is I/O, scheduling and hand-offs.

use std::io::Cursor;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rust_transcoder::decode::{Decoder, FormatHint};
use rust_transcoder::encode::OutputSpec;
use rust_transcoder::pipeline::{SinkClosed, Transcode, TranscodeSpec};

/// Wall times of the three steps, one entry per repetition.
#[derive(Debug, Default)]
pub struct FirstChunkTimes {
    /// `Decoder::try_new`: probe, open the track, decode the first packet.
    pub probe: Vec<Duration>,
    /// `Transcode::try_new`: the dsp chain (resampler) and the encoder.
    pub setup: Vec<Duration>,
    /// `Transcode::run` until the first chunk reaches the sink.
    pub first_chunk: Vec<Duration>,
    /// Size of that first chunk.
    pub first_chunk_bytes: usize,
}

/// Times the steps `repeats` times (after one untimed run).
pub fn measure(
    file: &Arc<[u8]>,
    output: OutputSpec,
    repeats: usize,
) -> anyhow::Result<FirstChunkTimes> {
    let spec = TranscodeSpec {
        output,
        ..TranscodeSpec::default()
    };
    let mut times = FirstChunkTimes::default();
    for round in 0..=repeats {
        let (probe, setup, first_chunk, bytes) = once(file, &spec)?;
        if round > 0 {
            times.probe.push(probe);
            times.setup.push(setup);
            times.first_chunk.push(first_chunk);
        }
        times.first_chunk_bytes = bytes;
    }
    Ok(times)
}

fn once(
    file: &Arc<[u8]>,
    spec: &TranscodeSpec,
) -> anyhow::Result<(Duration, Duration, Duration, usize)> {
    let hint = FormatHint {
        extension: Some("mp3".into()),
        mime_type: Some("audio/mpeg".into()),
    };
    let start = Instant::now();
    let decoder = Decoder::try_new(Box::new(Cursor::new(Arc::clone(file))), &hint)?;
    let probed = Instant::now();
    let transcode = Transcode::try_new(decoder, spec)?;
    let set_up = Instant::now();
    let mut first_bytes = 0;
    // The sink refuses the first chunk, which ends the run as soon as it exists.
    let _stopped = transcode.run(
        |chunk| {
            first_bytes = chunk.len();
            Err(SinkClosed)
        },
        |_| {},
    );
    let done = Instant::now();
    Ok((probed - start, set_up - probed, done - set_up, first_bytes))
}
