//! The address classification table and URL checks.

use super::*;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn strict() -> AddressPolicy {
    AddressPolicy::default()
}

/// One address from every forbidden range (and its edges).
const FORBIDDEN: &[&str] = &[
    "0.0.0.0",
    "0.255.255.255",
    "10.0.0.1",
    "10.255.255.255",
    "100.64.0.1",
    "100.127.255.254",
    "127.0.0.1",
    "127.255.255.254",
    "169.254.169.254",
    "172.16.0.1",
    "172.31.255.255",
    "192.0.0.1",
    "192.0.2.1",
    "192.88.99.1",
    "192.168.1.1",
    "198.18.0.1",
    "198.19.255.255",
    "198.51.100.7",
    "203.0.113.9",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "::",
    "::1",
    "fe80::1",
    "febf::1",
    "fc00::1",
    "fd12:3456::1",
    "ff02::1",
    "ff0e::1",
    "2001:db8::1",
    "3fff::1",
    "::ffff:127.0.0.1",
    "::ffff:10.1.2.3",
    "::ffff:169.254.169.254",
    "::127.0.0.1",
    "::10.0.0.1",
    "64:ff9b::7f00:1",
    "64:ff9b::a00:1",
    "64:ff9b:1::808:808",
    "2002:7f00:1::",
    "2002:a00:1::1",
    "2002:c0a8:101::",
    "2001::1",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    "2001:2::1",
    "::ffff:0:808:808",
    "100::1",
    "fec0::1",
    "1::1",
    "4000::1",
];

/// Public neighbours that must stay reachable.
const PUBLIC: &[&str] = &[
    "8.8.8.8",
    "1.1.1.1",
    "9.255.255.255",
    "11.0.0.0",
    "100.63.255.255",
    "100.128.0.0",
    "126.255.255.255",
    "128.0.0.0",
    "169.253.255.255",
    "172.15.255.255",
    "172.32.0.0",
    "192.0.1.255",
    "192.0.3.0",
    "192.167.255.255",
    "192.169.0.0",
    "198.17.255.255",
    "198.20.0.0",
    "223.255.255.255",
    "2606:4700::1111",
    "2001:4860:4860::8888",
    "2a00:1450:4001::1",
    "2001:200::1",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2002:808:808::1",
];

#[test]
fn every_forbidden_range_is_refused() {
    for text in FORBIDDEN {
        assert!(!strict().permits(ip(text)), "{text} should be forbidden");
    }
}

#[test]
fn public_neighbours_pass() {
    for text in PUBLIC {
        assert!(strict().permits(ip(text)), "{text} should be public");
    }
}

#[test]
fn allow_nets_re_allow_addresses_and_their_embedded_forms() {
    let policy = AddressPolicy::new(parse_allow_nets("127.0.0.0/8, fd00::/8").unwrap());
    for text in [
        "127.0.0.1",
        "::ffff:127.0.0.1",
        "64:ff9b::7f00:1",
        "2002:7f00:1::",
        "fd00::5",
    ] {
        assert!(policy.permits(ip(text)), "{text} should be re-allowed");
    }
    for text in ["10.0.0.1", "::1", "::ffff:10.0.0.1", "fe80::1", "fc00::1"] {
        assert!(!policy.permits(ip(text)), "{text} should stay forbidden");
    }
}

#[test]
fn allow_nets_parsing() {
    assert_eq!(parse_allow_nets("").unwrap(), Vec::<IpNet>::new());
    assert_eq!(parse_allow_nets(" , ").unwrap(), Vec::<IpNet>::new());
    let nets = parse_allow_nets("10.0.0.0/8,::1,192.168.1.7").unwrap();
    let expected: Vec<IpNet> = ["10.0.0.0/8", "::1/128", "192.168.1.7/32"]
        .iter()
        .map(|net| net.parse().unwrap())
        .collect();
    assert_eq!(nets, expected);
    assert!(parse_allow_nets("10.0.0.0/33").is_err());
    assert!(parse_allow_nets("localhost").is_err());
}

#[test]
fn numeric_host_spellings_are_judged_parsed() {
    for host in [
        "2130706433",
        "0x7f000001",
        "0x7f.1",
        "0177.0.0.1",
        "127.1",
        "127.0.0.1.",
    ] {
        let url = format!("http://{host}:8000/a.mp3");
        let err = strict().check_url_text(&url).unwrap_err();
        assert!(matches!(err, SourceError::Forbidden(_)), "{url}: {err}");
    }
    for host in [
        "[::1]",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[2002:7f00:1::]",
    ] {
        let url = format!("http://{host}/");
        assert!(
            matches!(
                strict().check_url_text(&url),
                Err(SourceError::Forbidden(_))
            ),
            "{url}"
        );
    }
}

#[test]
fn scheme_and_credentials_are_forbidden() {
    for url in [
        "ftp://example.com/a.mp3",
        "file:///etc/passwd",
        "gopher://example.com/",
        "data:audio/mp3;base64,AAAA",
        "http://user:pass@example.com/",
        "http://user@example.com/",
        "https://:pass@example.com/",
    ] {
        let err = strict().check_url_text(url).unwrap_err();
        assert!(matches!(err, SourceError::Forbidden(_)), "{url}: {err}");
    }
}

#[test]
fn unparsable_urls_are_invalid() {
    for url in [
        "",
        "example.com/a.mp3",
        "http://",
        "http://exa mple.com/",
        "http://[::1/",
    ] {
        let err = strict().check_url_text(url).unwrap_err();
        assert!(matches!(err, SourceError::InvalidUrl(_)), "{url:?}: {err}");
    }
}

#[test]
fn public_urls_and_names_pass_before_resolution() {
    for url in [
        "http://example.com/a.mp3",
        "https://radio.example:8000/live",
        "http://8.8.8.8/x",
        "http://[2606:4700::1111]/x",
        "http://@example.com/",
    ] {
        assert!(strict().check_url_text(url).is_ok(), "{url}");
    }
}
