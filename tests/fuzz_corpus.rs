//! Replays the fuzz corpus through the decoder on stable Rust: every input must end in
//! audio or an error, never a panic, and promptly.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

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

#[test]
fn every_corpus_input_decodes_or_fails_cleanly() {
    let files = corpus_files();
    assert!(files.len() >= 10, "the corpus should hold the seed inputs");
    for path in files {
        let bytes = std::fs::read(&path).expect("read corpus input");
        let (done, finished) = mpsc::channel();
        std::thread::spawn(move || {
            let outcome = std::panic::catch_unwind(|| rust_transcoder::decode::decode_all(bytes));
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
        assert!(no_panic, "{} made the decoder panic", path.display());
    }
}
