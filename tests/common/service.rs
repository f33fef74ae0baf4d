//! The service under test on a real loopback socket: in-process (its own runtime thread,
//! settings from command-line style flags, an optional injected resolver) or as the
//! release binary in a child process (for RSS and signal tests).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use rust_transcoder::api::AppState;
use rust_transcoder::config::Config;
use rust_transcoder::source::Fetcher;
use tokio::runtime::Runtime;

/// Parses service flags the way the binary does.
#[derive(Parser)]
struct Flags {
    #[command(flatten)]
    config: Config,
}

/// A configuration from flags (e.g. `["--max-streams", "2"]`), sources on loopback
/// allowed unless the flags say otherwise.
pub fn config(flags: &[&str]) -> Config {
    let mut args = vec!["rust-transcoder"];
    if !flags.contains(&"--allow-nets") {
        args.extend(["--allow-nets", "127.0.0.0/8"]);
    }
    args.extend(flags);
    Flags::parse_from(args).config
}

/// An in-process service on `127.0.0.1:0`; stopped when dropped.
pub struct Service {
    addr: SocketAddr,
    state: Arc<AppState>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    runtime: Option<Runtime>,
}

impl Service {
    /// Starts a service with `flags` (see [`config`]).
    pub fn start(flags: &[&str]) -> Self {
        let config = config(flags);
        let fetcher = Fetcher::try_new(config.source_limits(), config.allow_nets.clone()).unwrap();
        Self::with_fetcher(config, fetcher)
    }

    /// Starts a service with `config` and a prepared fetcher.
    pub fn with_fetcher(config: Config, fetcher: Fetcher) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (shutdown, signal) = tokio::sync::oneshot::channel::<()>();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = AppState::with_fetcher(config, fetcher).unwrap();
        let served = Arc::clone(&state);
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let signal = async {
                let _ = signal.await;
            };
            rust_transcoder::server::serve(listener, served, signal)
                .await
                .unwrap();
        });
        Self {
            addr,
            state,
            shutdown: Some(shutdown),
            runtime: Some(runtime),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The service's shared state (metrics, stream registry).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Starts the drain, as SIGTERM does.
    pub fn begin_shutdown(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.state.streams.abort_all();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The release binary serving on a free port, its stderr drained in the background.
pub struct ServiceProcess {
    /// The child process.
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    log: Arc<std::sync::Mutex<Vec<String>>>,
}

impl ServiceProcess {
    /// Starts `rust-transcoder serve` with `flags`, waiting until it listens.
    pub fn start(flags: &[&str]) -> Self {
        let mut command = super::cli();
        command
            .args([
                "serve",
                "--bind",
                "127.0.0.1:0",
                "--allow-nets",
                "127.0.0.0/8",
            ])
            .args(flags);
        Self::spawn(command)
    }

    /// Starts `command` (the binary with its arguments and environment), waiting until
    /// it listens.
    pub fn spawn(mut command: std::process::Command) -> Self {
        // The test's own reqwest clients need a TLS provider; an in-process service
        // installs it (`Fetcher::try_new`), a child process does not.
        let _already_installed = rustls::crypto::ring::default_provider().install_default();
        let mut child = command
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (address_tx, address_rx) = std::sync::mpsc::channel();
        let lines = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if let Some(address) = listening_address(&line) {
                    let _ = address_tx.send(address);
                }
                lines.lock().unwrap().push(line);
            }
        });
        let address = address_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the service did not report its address");
        Self {
            child,
            base_url: format!("http://{address}"),
            log,
        }
    }

    /// The process's log so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Resident set size in KiB, from /proc.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .unwrap()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits up to `limit` for the process to exit; its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address in the service's `listening address=...` log line.
fn listening_address(line: &str) -> Option<String> {
    let rest = line.split("listening").nth(1)?;
    let address = rest.split("address=").nth(1)?;
    Some(address.split_whitespace().next()?.to_owned())
}
