//! SPEC §5 through the service: every forbidden spelling of a source URL, every name
//! with a forbidden answer and every redirect to a forbidden place is answered 403
//! URL_FORBIDDEN, and not one connection reaches the canary listening behind it.
//! (`tests/source.rs` covers the same guard at the module level.)

use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use rust_transcoder::source::Fetcher;
use serde_json::json;

use super::common::origin::{Behaviour, Canary, Origin};
use super::common::service::{Service, config};
use super::{assert_error, post, wait_for};

/// A resolver with fixed answers; other names fail like NXDOMAIN.
struct Names(Vec<(&'static str, Vec<IpAddr>)>);

impl Names {
    fn new(answers: &[(&'static str, &[&str])]) -> Self {
        let parse = |ips: &[&str]| ips.iter().map(|ip| ip.parse().unwrap()).collect();
        Self(
            answers
                .iter()
                .map(|(name, ips)| (*name, parse(ips)))
                .collect(),
        )
    }
}

impl Resolve for Names {
    fn resolve(&self, name: Name) -> Resolving {
        let found = self
            .0
            .iter()
            .find(|(known, _)| *known == name.as_str())
            .map(|(_, ips)| ips.clone());
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let ips = found.ok_or_else(|| format!("no such host: {host}"))?;
            let addrs: Vec<SocketAddr> = ips.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect();
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// A service that may reach only `allow_nets` (none when empty), resolving with `names`.
fn service(allow_nets: &str, names: Names) -> Service {
    let config = config(&["--allow-nets", allow_nets]);
    let fetcher = Fetcher::try_new(config.source_limits(), config.allow_nets.clone())
        .unwrap()
        .with_resolver(Arc::new(names));
    Service::with_fetcher(config, fetcher)
}

async fn assert_all_forbidden(service: &Service, urls: &[String]) {
    for url in urls {
        let answer = post(service, json!({"source_url": url})).await;
        assert_eq!(answer.status, 403, "{url}: {}", answer.json());
        assert_error(&answer, 403, "URL_FORBIDDEN");
    }
}

/// Asserts that nothing but our own probe connected to `canary` at `host`: the probe is
/// accepted after every earlier connection, so once it is counted all of them are.
async fn assert_untouched(canary: &Canary, host: &str) {
    let addr: SocketAddr = format!("{host}:{}", canary.port()).parse().unwrap();
    let _probe = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    wait_for(
        "the canary counts the probe",
        Duration::from_secs(5),
        async || canary.connections() >= 1,
    )
    .await;
    assert_eq!(canary.connections(), 1, "a forbidden URL reached {host}");
}

#[tokio::test(flavor = "multi_thread")]
async fn forbidden_hosts_schemes_and_credentials_are_403_without_a_connection() {
    let canary = Canary::start();
    let canary6 = Canary::bind("[::1]:0").ok();
    let p = canary.port();
    let p6 = canary6.as_ref().map_or(p, Canary::port);
    let names = Names::new(&[
        ("private.test", &["10.1.2.3"]),
        ("loopback.test", &["127.0.0.1"]),
        ("mapped.test", &["::ffff:127.0.0.1"]),
        ("v6-loopback.test", &["::1"]),
        ("mixed.test", &["93.184.215.14", "127.0.0.1"]),
    ]);
    let service = service("", names);
    let mut urls: Vec<String> = [
        // IPv4 literals in every spelling the `url` crate folds into 127.0.0.1.
        "127.0.0.1",
        "2130706433",
        "0x7f000001",
        "0x7f.1",
        "0x7F.0.0.1",
        "0177.0.0.1",
        "017700000001",
        "127.1",
        "127.0.1",
        "0.0.0.0",
        "0",
        // IPv6 forms of loopback and of embedded IPv4 loopback.
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[0:0:0:0:0:ffff:127.0.0.1]",
        "[::127.0.0.1]",
        "[64:ff9b::7f00:1]",
        "[64:ff9b::127.0.0.1]",
        "[2002:7f00:1::]",
        "[::]",
        // localhost names (answered as loopback without DNS).
        "localhost",
        "LOCALHOST.",
        "foo.localhost",
        // Names whose answers include a forbidden address.
        "private.test",
        "loopback.test",
        "mapped.test",
        "v6-loopback.test",
        "mixed.test",
    ]
    .iter()
    .map(|host| format!("http://{host}:{p}/a.mp3"))
    .collect();
    urls.extend([
        format!("http://[::1]:{p6}/a.mp3"),
        format!("https://127.0.0.1:{p}/a.mp3"),
        format!("ftp://127.0.0.1:{p}/a.mp3"),
        format!("gopher://127.0.0.1:{p}/"),
        format!("ws://127.0.0.1:{p}/"),
        "file:///etc/passwd".to_owned(),
        "data:audio/mpeg;base64,AAAA".to_owned(),
        format!("http://user:pass@127.0.0.1:{p}/a.mp3"),
        "http://user@93.184.215.14/a.mp3".to_owned(),
        "http://:secret@93.184.215.14/a.mp3".to_owned(),
        // Never-public ranges (these would hang on connect if let through).
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://10.0.0.1/a.mp3".to_owned(),
        "http://172.16.5.5/a.mp3".to_owned(),
        "http://192.168.1.1/a.mp3".to_owned(),
        "http://100.64.0.1/a.mp3".to_owned(),
        "http://[fc00::1]/a.mp3".to_owned(),
        "http://[fe80::1]/a.mp3".to_owned(),
        "http://[2001:db8::1]/a.mp3".to_owned(),
        "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/a.mp3".to_owned(),
        "http://224.0.0.1/a.mp3".to_owned(),
        "http://255.255.255.255/a.mp3".to_owned(),
    ]);
    assert_all_forbidden(&service, &urls).await;
    assert_untouched(&canary, "127.0.0.1").await;
    if let Some(canary6) = &canary6 {
        assert_untouched(canary6, "[::1]").await;
    }

    // Control: a name that does not resolve is unreachable, not forbidden.
    let unknown = json!({"source_url": format!("http://nowhere.test:{p}/a.mp3")});
    assert_error(&post(&service, unknown).await, 502, "SOURCE_UNREACHABLE");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_from_an_allowed_origin_to_a_forbidden_place_is_403() {
    let origin = Origin::start();
    // Only the origin's own address is allowed; the canaries sit next to it.
    let canary = Canary::start();
    let canary2 = Canary::bind("127.0.0.2:0").unwrap();
    let canary6 = Canary::bind("[::1]:0").ok();
    let (c, c2) = (canary.port(), canary2.port());
    let c6 = canary6.as_ref().map_or(c2, Canary::port);
    let names = Names::new(&[
        ("rebind.test", &["127.0.0.1", "10.0.0.1"]),
        ("other.test", &["127.0.0.2"]),
    ]);
    let service = service("127.0.0.1/32", names);
    let via = |target: String| origin.url("a.mp3", Behaviour::RedirectTo(target));
    let mut urls: Vec<String> = [
        format!("http://127.0.0.2:{c2}/a.mp3"),
        format!("http://2130706434:{c2}/a.mp3"),
        format!("http://[::ffff:127.0.0.2]:{c2}/a.mp3"),
        format!("http://[::1]:{c6}/a.mp3"),
        format!("http://localhost:{c}/a.mp3"),
        format!("http://rebind.test:{c}/a.mp3"),
        format!("http://other.test:{c2}/a.mp3"),
        format!("ftp://127.0.0.1:{c}/a.mp3"),
        format!("http://user:pw@127.0.0.1:{c}/a.mp3"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
    ]
    .into_iter()
    .map(via)
    .collect();
    // The second hop of a chain is checked too.
    urls.push(via(via(format!("http://127.0.0.2:{c2}/a.mp3"))));
    assert_all_forbidden(&service, &urls).await;
    assert_untouched(&canary, "127.0.0.1").await;
    assert_untouched(&canary2, "127.0.0.2").await;
    if let Some(canary6) = &canary6 {
        assert_untouched(canary6, "[::1]").await;
    }

    // Control: a redirect that stays on the allowed origin is followed.
    let allowed = via(origin.url("flac_s16.flac", Behaviour::Ranges));
    let answer = post(
        &service,
        json!({"source_url": allowed, "output_format": "pcm"}),
    )
    .await;
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
}
