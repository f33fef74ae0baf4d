//! Shared integration-test harness: fixture paths, the CLI binary, independent
//! decoding of produced audio (ffmpeg, ffprobe, opusinfo) and signal measures.
#![allow(dead_code)]
#![allow(clippy::unwrap_used)] // test support: a failed unwrap is a failed test

pub mod decode;
pub mod fixtures;
pub mod opus;
pub mod origin;
pub mod run;
pub mod service;
pub mod signal;

use std::path::PathBuf;
use std::process::Command;

/// Absolute path of a file in `tests/fixtures`.
pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
        .join(name)
}

/// A `Command` for the `rust-transcoder` binary built for this test run.
pub fn cli() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rust-transcoder"))
}
