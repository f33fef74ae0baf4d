//! The source fetcher over real sockets: the SSRF matrix (every refusal checked for its
//! error variant and for zero connections to a canary), and the loopback origin's
//! faults and features (Range, resume, redirects, stalls, cancellation, the bounded
//! read-ahead, an MP4 whose `moov` is at the end).

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use rust_transcoder::source::{
    Fetcher, RemoteSource, SourceCounters, SourceError, SourceLimits, source_error,
};
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;

#[path = "source/faults.rs"]
mod faults;
#[path = "source/seek.rs"]
mod seek;
#[path = "source/ssrf.rs"]
mod ssrf;

/// Limits for tests: short enough that a hang fails quickly, long enough for slow CI.
fn test_limits() -> SourceLimits {
    SourceLimits {
        connect_timeout: Duration::from_secs(5),
        start_timeout: Duration::from_secs(10),
        read_idle_timeout: Duration::from_secs(10),
        ..SourceLimits::default()
    }
}

/// A fetcher with its own runtime (reads run on the test thread, outside it) and
/// counters.
struct Client {
    fetcher: Fetcher,
    counters: SourceCounters,
    // Dropped last: sources read through it.
    runtime: Runtime,
}

impl Client {
    /// A client that may reach `allow_nets` (e.g. `127.0.0.1/32` for the origin).
    fn new(limits: SourceLimits, allow_nets: &str) -> Self {
        let nets = rust_transcoder::source::parse_allow_nets(allow_nets).unwrap();
        let counters = SourceCounters::default();
        let fetcher = Fetcher::try_new(limits, nets)
            .unwrap()
            .with_counters(counters.clone());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        Self {
            fetcher,
            counters,
            runtime,
        }
    }

    /// A client for the loopback origin with the test limits.
    fn loopback() -> Self {
        Self::new(test_limits(), "127.0.0.1/32")
    }

    /// The same client resolving names with `names`.
    fn with_names(mut self, names: Names) -> Self {
        self.fetcher = self.fetcher.with_resolver(Arc::new(names));
        self
    }

    fn open(&self, url: &str) -> Result<RemoteSource, SourceError> {
        self.open_with(url, CancellationToken::new())
    }

    fn open_with(&self, url: &str, cancel: CancellationToken) -> Result<RemoteSource, SourceError> {
        self.runtime.block_on(self.fetcher.open(url, cancel))
    }

    /// Opens `url` and expects a refusal.
    fn refused(&self, url: &str) -> SourceError {
        match self.open(url) {
            Ok(_) => panic!("{url} was opened"),
            Err(err) => err,
        }
    }
}

/// Reads the whole source, turning a read error back into its `SourceError`.
fn read_all(source: &mut RemoteSource) -> Result<Vec<u8>, SourceError> {
    let mut bytes = Vec::new();
    source.read_to_end(&mut bytes).map_err(|err| {
        source_error(&err)
            .cloned()
            .unwrap_or_else(|| panic!("a read error without a SourceError: {err:?}"))
    })?;
    Ok(bytes)
}

/// `len` deterministic pseudo-random bytes.
fn noise(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// A test resolver: fixed answers per name, and an optional answer for every other
/// name (without one, other names fail like NXDOMAIN).
struct Names {
    answers: Vec<(&'static str, Vec<IpAddr>)>,
    otherwise: Option<IpAddr>,
}

impl Names {
    fn new(answers: &[(&'static str, &[&str])]) -> Self {
        let answers = answers
            .iter()
            .map(|(name, ips)| (*name, ips.iter().map(|ip| ip.parse().unwrap()).collect()))
            .collect();
        Self {
            answers,
            otherwise: None,
        }
    }

    fn otherwise(mut self, ip: &str) -> Self {
        self.otherwise = Some(ip.parse().unwrap());
        self
    }
}

impl Resolve for Names {
    fn resolve(&self, name: Name) -> Resolving {
        let found = self
            .answers
            .iter()
            .find(|(known, _)| *known == name.as_str())
            .map(|(_, ips)| ips.clone())
            .or_else(|| self.otherwise.map(|ip| vec![ip]));
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let ips = found.ok_or_else(|| format!("no such host: {host}"))?;
            let addrs: Vec<SocketAddr> = ips.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect();
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}
