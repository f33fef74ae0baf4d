//! Every setting and limit of the service, each a command-line flag and a
//! `TRANSCODER_*` environment variable (the flag wins). No logic beyond conversions.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use ipnet::IpNet;

use crate::source::{SourceLimits, parse_allow_nets};

/// Service configuration; the defaults are what `cargo run --release` uses.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address and port to listen on.
    #[arg(long, env = "TRANSCODER_BIND", default_value = "0.0.0.0:8090")]
    pub bind: SocketAddr,
    /// Most streams running at once; more get 503 CAPACITY_EXCEEDED at once.
    #[arg(long, env = "TRANSCODER_MAX_STREAMS", default_value_t = 50)]
    pub max_streams: usize,
    /// Bearer token required on /transcode when set (/health and /metrics stay open).
    #[arg(long, env = "TRANSCODER_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
    /// Comma-separated CIDRs that sources may use although they are not public
    /// (e.g. `127.0.0.0/8` for local tests, or an internal media host); a bare address
    /// means just itself, blanks are ignored, an empty list allows nothing extra.
    // `::std::vec::Vec` makes clap take the whole list as one value for the parser.
    #[arg(
        long,
        env = "TRANSCODER_ALLOW_NETS",
        value_parser = parse_allow_nets,
        default_value = "",
        hide_default_value = true,
        overrides_with = "allow_nets"
    )]
    pub allow_nets: ::std::vec::Vec<IpNet>,
    /// Seconds to wait for a TCP (and TLS) connection to a source.
    #[arg(long, env = "TRANSCODER_CONNECT_TIMEOUT_SECS", default_value_t = 5.0)]
    pub connect_timeout_secs: f64,
    /// Seconds a request may take from arrival to its first output byte.
    #[arg(long, env = "TRANSCODER_START_TIMEOUT_SECS", default_value_t = 10.0)]
    pub start_timeout_secs: f64,
    /// Seconds without a byte from a source before it counts as dead.
    #[arg(
        long,
        env = "TRANSCODER_READ_IDLE_TIMEOUT_SECS",
        default_value_t = 30.0
    )]
    pub read_idle_timeout_secs: f64,
    /// Seconds a source may deliver bytes without any decodable audio.
    #[arg(long, env = "TRANSCODER_STALL_TIMEOUT_SECS", default_value_t = 15.0)]
    pub stall_timeout_secs: f64,
    /// Largest source accepted, in bytes (sources without a length are live streams,
    /// bounded by `max_duration_secs` instead).
    #[arg(long, env = "TRANSCODER_MAX_SOURCE_BYTES", default_value_t = 512 * 1024 * 1024)]
    pub max_source_bytes: u64,
    /// Most output audio one stream may produce, in seconds (4 h).
    #[arg(long, env = "TRANSCODER_MAX_DURATION_SECS", default_value_t = 14_400.0)]
    pub max_duration_secs: f64,
    /// Redirects followed per source request.
    #[arg(long, env = "TRANSCODER_MAX_REDIRECTS", default_value_t = 5)]
    pub max_redirects: usize,
    /// Times a dropped source is resumed before the stream fails.
    #[arg(long, env = "TRANSCODER_MAX_RESUMES", default_value_t = 3)]
    pub max_resumes: u32,
    /// Seconds a client may stop reading before its stream is dropped.
    #[arg(
        long,
        env = "TRANSCODER_CLIENT_IDLE_TIMEOUT_SECS",
        default_value_t = 60.0
    )]
    pub client_idle_timeout_secs: f64,
    /// Kernel send buffer of each client connection, in bytes (0 = the system's
    /// autotuning). Small keeps a pipeline close to its client's pace.
    #[arg(long, env = "TRANSCODER_SEND_BUFFER_BYTES", default_value_t = 64 * 1024)]
    pub send_buffer_bytes: usize,
    /// Seconds running streams may go on after SIGTERM before they are aborted.
    #[arg(long, env = "TRANSCODER_DRAIN_TIMEOUT_SECS", default_value_t = 30.0)]
    pub drain_timeout_secs: f64,
}

impl Config {
    /// The source fetcher's limits.
    pub fn source_limits(&self) -> SourceLimits {
        SourceLimits {
            connect_timeout: secs(self.connect_timeout_secs),
            start_timeout: secs(self.start_timeout_secs),
            read_idle_timeout: secs(self.read_idle_timeout_secs),
            max_source_bytes: self.max_source_bytes,
            max_redirects: self.max_redirects,
            max_resumes: self.max_resumes,
        }
    }

    /// Arrival to first output byte.
    pub fn start_timeout(&self) -> Duration {
        secs(self.start_timeout_secs)
    }

    /// Source bytes without audio.
    pub fn stall_timeout(&self) -> Duration {
        secs(self.stall_timeout_secs)
    }

    /// A client not reading.
    pub fn client_idle_timeout(&self) -> Duration {
        secs(self.client_idle_timeout_secs)
    }

    /// Grace period after SIGTERM.
    pub fn drain_timeout(&self) -> Duration {
        secs(self.drain_timeout_secs)
    }
}

/// Longest setting honoured: a year is "never" for a stream, and keeps every
/// `Instant + setting` far from overflowing.
const LONGEST: Duration = Duration::from_secs(365 * 24 * 3600);

/// A number of seconds as a `Duration`, within zero (negative or NaN) and [`LONGEST`].
fn secs(value: f64) -> Duration {
    Duration::try_from_secs_f64(value.max(0.0)).map_or(LONGEST, |duration| duration.min(LONGEST))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        config: Config,
    }

    fn allow_nets(args: &[&str]) -> Vec<String> {
        let args = std::iter::once("serve").chain(args.iter().copied());
        let config = Flags::try_parse_from(args).unwrap().config;
        config.allow_nets.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn allow_nets_take_lists_bare_addresses_and_nothing() {
        assert_eq!(allow_nets(&[]), Vec::<String>::new());
        assert_eq!(allow_nets(&["--allow-nets", ""]), Vec::<String>::new());
        assert_eq!(
            allow_nets(&["--allow-nets", "10.0.0.0/8, 192.168.1.5,"]),
            ["10.0.0.0/8", "192.168.1.5/32"]
        );
        assert_eq!(
            allow_nets(&["--allow-nets", "127.0.0.0/8", "--allow-nets", "::1"]),
            ["::1/128"],
            "the last flag wins"
        );
        assert!(Flags::try_parse_from(["serve", "--allow-nets", "bogus"]).is_err());
    }
}
