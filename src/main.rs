//! The `rust-transcoder` binary: parses the command line and runs it.

use std::process::ExitCode;

fn main() -> ExitCode {
    rust_transcoder::cli::run()
}
