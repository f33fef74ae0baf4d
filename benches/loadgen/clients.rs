//! The two ways a client gets a stream: a request to the service, or one ffmpeg process
//! per request reading the origin itself. Either is read the same way: first byte, then
//! at real-time pace (a player with no buffer of its own) until told to stop.

use std::io;
use std::os::fd::OwnedFd;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::net::unix::pipe;
use tokio::sync::{Barrier, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Bytes read from ffmpeg's stdout at a time.
const PIPE_READ_BYTES: usize = 16 * 1024;

/// Where streams come from.
pub enum Target {
    /// `POST {url}` with this JSON body.
    Service {
        /// The HTTP client (no connection reuse: every request opens its own).
        client: reqwest::Client,
        /// `http://127.0.0.1:PORT/transcode`.
        url: String,
        /// The request body.
        body: serde_json::Value,
    },
    /// `ffmpeg ARGS`, output on stdout.
    Ffmpeg {
        /// Arguments after `ffmpeg`.
        args: Vec<String>,
        /// Pids of the processes running now, for `/proc` sampling.
        pids: Arc<Mutex<Vec<u32>>>,
    },
}

/// How one held stream went.
#[derive(Debug, Clone, Default)]
pub struct StreamReport {
    /// Time from the request (or the process spawn) to the first body byte.
    pub ttfb: Option<Duration>,
    /// Body bytes read.
    pub bytes: u64,
    /// Longest wait for data once it was due: how long a player without a buffer would
    /// have gone silent.
    pub worst_wait: Duration,
    /// Why the stream failed, if it did (non-200, a broken or short body).
    pub error: Option<String>,
}

/// An open stream.
pub enum Opened {
    /// A `200` response being read.
    Http(reqwest::Response),
    /// A running ffmpeg process being read.
    Ffmpeg(FfmpegStream),
}

impl Target {
    /// Sends the request (or spawns the process) and waits for its first body bytes.
    pub async fn first_chunk(&self) -> Result<(Opened, usize), String> {
        let mut opened = self.open().await?;
        loop {
            match opened.next_chunk().await? {
                Some(0) => {}
                Some(len) => return Ok((opened, len)),
                None => return Err(opened.ended_early("before its first byte").await),
            }
        }
    }

    async fn open(&self) -> Result<Opened, String> {
        match self {
            Self::Service { client, url, body } => {
                let response = client.post(url).json(body).send().await;
                let response = response.map_err(|error| describe(&error))?;
                if response.status() != reqwest::StatusCode::OK {
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    return Err(format!("{status}: {}", text.trim()));
                }
                Ok(Opened::Http(response))
            }
            Self::Ffmpeg { args, pids } => {
                let args = args.clone();
                let spawned = tokio::task::spawn_blocking(move || FfmpegStream::spawn(&args));
                let stream = spawned.await.map_err(|error| error.to_string())?;
                let mut stream = stream.map_err(|error| format!("spawning ffmpeg: {error}"))?;
                lock(pids).push(stream.pid());
                stream.registered = Some(Arc::clone(pids));
                Ok(Opened::Ffmpeg(stream))
            }
        }
    }
}

impl Opened {
    /// The next chunk's length; `None` at the end of the body.
    async fn next_chunk(&mut self) -> Result<Option<usize>, String> {
        match self {
            Self::Http(response) => match response.chunk().await {
                Ok(chunk) => Ok(chunk.map(|chunk| chunk.len())),
                Err(error) => Err(describe(&error)),
            },
            Self::Ffmpeg(stream) => stream.read().await.map_err(|error| error.to_string()),
        }
    }

    /// Why a body ended `when` it should not have.
    async fn ended_early(self, when: &str) -> String {
        match self {
            Self::Http(_) => format!("the body ended {when}"),
            Self::Ffmpeg(stream) => format!("ffmpeg ended {when}: {}", stream.finish()),
        }
    }
}

/// Streams opened together: each task waits for the release, then opens its stream and
/// reads it at real-time pace until stopped.
pub struct Burst {
    release: Arc<Barrier>,
    first_bytes: mpsc::UnboundedReceiver<()>,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<StreamReport>>,
}

impl Burst {
    /// Spawns `count` stream tasks on `target`, held back until [`Self::release`].
    pub fn spawn(target: Arc<Target>, count: usize, pace: f64) -> Self {
        let (first_byte, first_bytes) = mpsc::unbounded_channel();
        let release = Arc::new(Barrier::new(count + 1));
        let stop = CancellationToken::new();
        let tasks = (0..count)
            .map(|_| {
                let (target, first_byte) = (Arc::clone(&target), first_byte.clone());
                let (release, stop) = (Arc::clone(&release), stop.clone());
                tokio::spawn(async move {
                    release.wait().await;
                    hold_stream(&target, pace, first_byte, stop).await
                })
            })
            .collect();
        Self {
            release,
            first_bytes,
            stop,
            tasks,
        }
    }

    /// Lets every stream go at once; returns when.
    pub async fn release(&self) -> Instant {
        self.release.wait().await;
        Instant::now()
    }

    /// Waits until every stream has its first byte or has failed (at most `limit` each).
    pub async fn wait_first_bytes(&mut self, limit: Duration) {
        for _ in 0..self.tasks.len() {
            let _ = tokio::time::timeout(limit, self.first_bytes.recv()).await;
        }
    }

    /// Drops every stream; returns how each went.
    pub async fn stop(self) -> Vec<StreamReport> {
        self.stop.cancel();
        let mut reports = Vec::with_capacity(self.tasks.len());
        for task in self.tasks {
            reports.push(task.await.unwrap_or_else(|error| StreamReport {
                error: Some(format!("the stream task failed: {error}")),
                ..StreamReport::default()
            }));
        }
        reports
    }
}

/// Opens a stream, reports its first byte on `first_byte`, then reads it at `pace`
/// bytes per second until `stop` fires.
async fn hold_stream(
    target: &Target,
    pace: f64,
    first_byte: mpsc::UnboundedSender<()>,
    stop: CancellationToken,
) -> StreamReport {
    let sent = Instant::now();
    let first = target.first_chunk().await;
    let ttfb = sent.elapsed();
    let _ = first_byte.send(());
    match first {
        Ok((opened, first_len)) => read_paced(opened, first_len, pace, &stop, ttfb).await,
        Err(error) => StreamReport {
            error: Some(error),
            ..StreamReport::default()
        },
    }
}

/// Reads `opened` as a real-time player would: the byte at offset `k` is wanted
/// `k / pace` seconds after the first one arrived, and not earlier.
async fn read_paced(
    mut opened: Opened,
    first_len: usize,
    pace: f64,
    stop: &CancellationToken,
    ttfb: Duration,
) -> StreamReport {
    let playing_since = Instant::now();
    let mut report = StreamReport {
        ttfb: Some(ttfb),
        bytes: first_len as u64,
        ..StreamReport::default()
    };
    loop {
        let due = playing_since + Duration::from_secs_f64(report.bytes as f64 / pace);
        tokio::select! {
            () = stop.cancelled() => return report,
            () = tokio::time::sleep_until(due.into()) => {}
        }
        let asked = Instant::now();
        let chunk = tokio::select! {
            () = stop.cancelled() => return report,
            chunk = opened.next_chunk() => chunk,
        };
        report.worst_wait = report.worst_wait.max(asked.elapsed());
        match chunk {
            Ok(Some(len)) => report.bytes += len as u64,
            Ok(None) => {
                report.error = Some(opened.ended_early("before the hold was over").await);
                return report;
            }
            Err(error) => {
                report.error = Some(error);
                return report;
            }
        }
    }
}

/// One ffmpeg process with its stdout as an async pipe; killed and reaped on drop.
pub struct FfmpegStream {
    child: Child,
    stdout: pipe::Receiver,
    buffer: Vec<u8>,
    /// The pid list this process is on, to be taken off when it ends.
    registered: Option<Arc<Mutex<Vec<u32>>>>,
}

impl FfmpegStream {
    fn spawn(args: &[String]) -> io::Result<Self> {
        let mut child = Command::new("ffmpeg")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("no stdout"))?;
        Ok(Self {
            stdout: pipe::Receiver::from_owned_fd(OwnedFd::from(stdout))?,
            child,
            buffer: vec![0; PIPE_READ_BYTES],
            registered: None,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Bytes read from stdout; `None` at its end.
    async fn read(&mut self) -> io::Result<Option<usize>> {
        loop {
            self.stdout.readable().await?;
            match self.stdout.try_read(&mut self.buffer) {
                Ok(0) => return Ok(None),
                Ok(len) => return Ok(Some(len)),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error) => return Err(error),
            }
        }
    }

    /// The exit status and what ffmpeg said on stderr.
    fn finish(mut self) -> String {
        let status = self.child.wait();
        let mut said = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            let _ = io::Read::read_to_string(&mut stderr, &mut said);
        }
        let status = status.map_or_else(|error| error.to_string(), |status| status.to_string());
        format!("{status}: {}", said.trim())
    }
}

impl Drop for FfmpegStream {
    fn drop(&mut self) {
        if let Some(pids) = &self.registered {
            let pid = self.child.id();
            lock(pids).retain(|other| *other != pid);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An error and its causes, joined with `: `.
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
