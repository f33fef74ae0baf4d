//! Replays the fuzz corpus on stable Rust, through the decoder alone and through the
//! whole pipeline into PCM: every input must end in audio or an error, never a panic,
//! and promptly.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use rust_transcoder::decode::{Decoder, FormatHint};
use rust_transcoder::encode::{OutputFormat, OutputSpec};
use rust_transcoder::pipeline::{Transcode, TranscodeSpec};

/// Longest a single corpus input may take to decode in a test build.
const PER_INPUT_TIMEOUT: Duration = Duration::from_secs(20);

fn corpus_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/decode_any");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("reading {}: {err}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// Decodes and transcodes `bytes` to 48 kHz stereo PCM with the volume boosted (so
/// the resampler, downmix and limiter all run), discarding the output.
fn transcode_all(bytes: Vec<u8>) {
    let source = Box::new(std::io::Cursor::new(bytes));
    let Ok(decoder) = Decoder::try_new(source, &FormatHint::default()) else {
        return;
    };
    let spec = TranscodeSpec {
        output: OutputSpec {
            format: OutputFormat::Pcm,
            ..OutputSpec::default()
        },
        filters: dsp::Filters {
            volume: 1.5,
            ..dsp::Filters::default()
        },
        ..TranscodeSpec::default()
    };
    if let Ok(transcode) = Transcode::try_new(decoder, &spec) {
        let _ = transcode.run(|_| Ok(()), |_| {});
    }
}

/// Runs `work` on every corpus input in a thread and fails on a panic or a time-out.
fn replay(work: fn(Vec<u8>)) {
    let files = corpus_files();
    assert!(files.len() >= 10, "the corpus should hold the seed inputs");
    for path in files {
        let bytes = std::fs::read(&path).expect("read corpus input");
        let (done, finished) = mpsc::channel();
        std::thread::spawn(move || {
            let outcome = std::panic::catch_unwind(|| work(bytes));
            let _ = done.send(outcome.is_ok());
        });
        let no_panic = finished
            .recv_timeout(PER_INPUT_TIMEOUT)
            .unwrap_or_else(|_| {
                panic!(
                    "{} did not finish within {PER_INPUT_TIMEOUT:?}",
                    path.display()
                )
            });
        assert!(no_panic, "{} caused a panic", path.display());
    }
}

#[test]
fn every_corpus_input_decodes_or_fails_cleanly() {
    replay(|bytes| {
        let _ = rust_transcoder::decode::decode_all(bytes);
    });
}

#[test]
fn every_corpus_input_transcodes_or_fails_cleanly() {
    replay(transcode_all);
}
