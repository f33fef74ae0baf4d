//! The service under test: the release `rust-transcoder serve` binary as a child process
//! on a loopback port, its address read from its `listening` log line, its stderr
//! drained (our own warnings and errors are passed on), killed and reaped on drop.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Log filter: the `listening` line, and warnings of our own code only (symphonia warns
/// about the MP3's leading junk on every stream).
const LOG_FILTER: &str = "error,rust_transcoder=warn,rust_transcoder::server=info";
/// How long the service may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running service process.
pub struct Service {
    child: Child,
    base_url: String,
}

impl Service {
    /// Starts `serve` allowing loopback sources, with `max_streams` slots.
    pub fn start(max_streams: usize) -> anyhow::Result<Self> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rust-transcoder"))
            .args([
                "serve",
                "--bind",
                "127.0.0.1:0",
                "--allow-nets",
                "127.0.0.0/8",
            ])
            .args(["--max-streams", &max_streams.to_string()])
            .env("RUST_LOG", LOG_FILTER)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stderr"))?;
        let (address_tx, address_rx) = mpsc::channel();
        std::thread::spawn(move || drain_log(BufReader::new(stderr), &address_tx));
        let address = address_rx.recv_timeout(START_TIMEOUT);
        let mut service = Self {
            child,
            base_url: String::new(),
        };
        let address = address.map_err(|_| anyhow::anyhow!("the service did not start"))?;
        service.base_url = format!("http://{address}");
        Ok(service)
    }

    /// The process id, for `/proc`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `active_streams` from `/health`.
    pub async fn active_streams(&self, client: &reqwest::Client) -> anyhow::Result<u64> {
        let health: serde_json::Value = client
            .get(format!("{}/health", self.base_url))
            .send()
            .await?
            .json()
            .await?;
        health["active_streams"]
            .as_u64()
            .ok_or_else(|| anyhow::anyhow!("no active_streams in /health"))
    }

    /// Waits (up to `limit`) until no stream holds a slot; returns how long it took.
    pub async fn wait_idle(&self, client: &reqwest::Client, limit: Duration) -> Option<Duration> {
        let since = Instant::now();
        while since.elapsed() < limit {
            if matches!(self.active_streams(client).await, Ok(0)) {
                return Some(since.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        None
    }

    /// The unlabelled samples of `/metrics` (counters, gauges, histogram sums), by name.
    pub async fn metrics(&self, client: &reqwest::Client) -> anyhow::Result<Metrics> {
        let text = client
            .get(format!("{}/metrics", self.base_url))
            .send()
            .await?
            .text()
            .await?;
        let values = text
            .lines()
            .filter(|line| !line.starts_with('#') && !line.contains('{'))
            .filter_map(|line| {
                let (name, value) = line.split_once(' ')?;
                Some((name.to_owned(), value.trim().parse().ok()?))
            })
            .collect();
        Ok(Metrics(values))
    }
}

/// Unlabelled samples of `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct Metrics(HashMap<String, f64>);

impl Metrics {
    /// A sample's value; zero when absent.
    pub fn get(&self, name: &str) -> f64 {
        self.0.get(name).copied().unwrap_or(0.0)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends the listening address once it is logged, then passes on everything else.
fn drain_log(stderr: impl BufRead, address: &mpsc::Sender<String>) {
    for line in stderr.lines().map_while(Result::ok) {
        match line.split_once("listening address=") {
            Some((_, rest)) => {
                let _ = address.send(rest.split_whitespace().next().unwrap_or("").to_owned());
            }
            None => eprintln!("[service] {line}"),
        }
    }
}
