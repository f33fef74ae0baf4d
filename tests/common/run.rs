//! Running a child process with a deadline, capturing its output.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// What a finished child process produced.
#[derive(Debug)]
pub struct RunOutput {
    /// Exit status.
    pub status: ExitStatus,
    /// Everything written to stdout.
    pub stdout: Vec<u8>,
    /// Everything written to stderr, lossily decoded.
    pub stderr: String,
    /// Wall-clock time from spawn to exit.
    pub elapsed: Duration,
}

/// Spawns `cmd` with stdin closed and stdout/stderr captured in temporary
/// files (so a chatty child never blocks on a full pipe), and waits for it.
/// Kills the child and panics if it runs longer than `limit`.
pub fn run_with_timeout(cmd: &mut Command, limit: Duration) -> RunOutput {
    run(cmd, None, limit)
}

/// Like [`run_with_timeout`], but writes `input` to the child's stdin through
/// a pipe (not seekable, as for a real stream) and then closes it. A child
/// that stops reading early is fine: the rest of the input is dropped.
pub fn run_with_stdin(cmd: &mut Command, input: Vec<u8>, limit: Duration) -> RunOutput {
    run(cmd, Some(input), limit)
}

/// Spawns `cmd`, feeds it `input` through a pipe (or gives it no stdin) and
/// waits at most `limit` for it.
fn run(cmd: &mut Command, input: Option<Vec<u8>>, limit: Duration) -> RunOutput {
    let mut stdout = tempfile::tempfile().unwrap();
    let mut stderr = tempfile::tempfile().unwrap();
    let start = Instant::now();
    let stdin = if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    };
    let mut child = cmd
        .stdin(stdin)
        .stdout(stdout.try_clone().unwrap())
        .stderr(stderr.try_clone().unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let writer = input.map(|bytes| {
        let mut pipe = child.stdin.take().unwrap();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&bytes); // a child that exits early closes the pipe
        })
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!(
                "{cmd:?} did not finish within {limit:?}; stderr so far: {}",
                String::from_utf8_lossy(&read_all(&mut stderr))
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    if let Some(writer) = writer {
        writer.join().unwrap();
    }
    RunOutput {
        status,
        stdout: read_all(&mut stdout),
        stderr: String::from_utf8_lossy(&read_all(&mut stderr)).into_owned(),
        elapsed: start.elapsed(),
    }
}

fn read_all(file: &mut File) -> Vec<u8> {
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(0)).unwrap();
    file.read_to_end(&mut bytes).unwrap();
    bytes
}
