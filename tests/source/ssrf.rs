//! SPEC §5: forbidden URLs are refused with the right error and without a connection.

use std::time::Duration;

use rust_transcoder::source::SourceError;

use super::common::origin::{Behaviour, Canary, Origin};
use super::{Client, Names, test_limits};

/// Gives a connection that slipped through time to reach the canary's counter.
fn settle() {
    std::thread::sleep(Duration::from_millis(200));
}

/// Expects `url` to be refused as forbidden; returns the message.
fn assert_forbidden(client: &Client, url: &str) -> String {
    match client.refused(url) {
        SourceError::Forbidden(message) => message,
        other => panic!("{url}: expected Forbidden, got {other:?}"),
    }
}

#[test]
fn loopback_spellings_schemes_and_credentials_are_refused_without_connecting() {
    let canary = Canary::start();
    let p = canary.port();
    let client = Client::new(test_limits(), "");
    let urls = [
        format!("http://127.0.0.1:{p}/"),
        format!("http://2130706433:{p}/"),
        format!("http://0x7f000001:{p}/"),
        format!("http://0x7f.1:{p}/"),
        format!("http://0177.0.0.1:{p}/"),
        format!("http://127.1:{p}/"),
        format!("http://[::1]:{p}/"),
        format!("http://[::ffff:127.0.0.1]:{p}/"),
        format!("http://[::ffff:7f00:1]:{p}/"),
        format!("http://[64:ff9b::7f00:1]:{p}/"),
        format!("http://[2002:7f00:1::]:{p}/"),
        format!("http://localhost:{p}/"),
        format!("http://LOCALHOST.:{p}/"),
        format!("http://foo.localhost:{p}/"),
        format!("ftp://127.0.0.1:{p}/a.mp3"),
        "file:///etc/passwd".to_owned(),
        format!("gopher://127.0.0.1:{p}/"),
        format!("http://user:pass@127.0.0.1:{p}/"),
        "http://user@example.com/".to_owned(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
    ];
    for url in &urls {
        assert_forbidden(&client, url);
    }
    settle();
    assert_eq!(canary.connections(), 0);
}

#[test]
fn names_with_any_forbidden_answer_are_refused_without_connecting() {
    let canary = Canary::start();
    let p = canary.port();
    let names = Names::new(&[
        ("private.test", &["10.1.2.3"]),
        ("loopback.test", &["127.0.0.1"]),
        ("mapped.test", &["::ffff:127.0.0.1"]),
        ("mixed.test", &["93.184.215.14", "127.0.0.1"]),
        ("mixed-v6.test", &["2606:4700::1111", "fd00::1"]),
    ])
    .otherwise("127.0.0.1");
    let client = Client::new(test_limits(), "").with_names(names);
    for (name, address) in [
        ("private.test", "10.1.2.3"),
        ("loopback.test", "127.0.0.1"),
        ("mapped.test", "127.0.0.1"),
        ("mixed.test", "127.0.0.1"),
        ("mixed-v6.test", "fd00::1"),
        ("foo.localhost", "127.0.0.1"),
        ("anything.example", "127.0.0.1"),
    ] {
        let message = assert_forbidden(&client, &format!("http://{name}:{p}/a.mp3"));
        // The client learns the name is refused, not where internal DNS points.
        assert!(message.contains(name), "{message}");
        assert!(!message.contains(address), "{name}: {message}");
    }
    settle();
    assert_eq!(canary.connections(), 0);
}

#[test]
fn a_dns_failure_is_unreachable_not_forbidden() {
    let client = Client::new(test_limits(), "").with_names(Names::new(&[]));
    match client.refused("http://nowhere.test/a.mp3") {
        SourceError::Unreachable(message) => assert!(message.contains("no such host"), "{message}"),
        other => panic!("expected Unreachable, got {other:?}"),
    }
}

#[test]
fn allow_nets_re_allow_a_private_origin() {
    let origin = Origin::start();
    let url = origin.url("flac_s16.flac", Behaviour::Plain);
    assert_forbidden(&Client::new(test_limits(), ""), &url);
    assert!(Client::loopback().open(&url).is_ok());
    let named = Client::loopback().with_names(Names::new(&[("media.internal", &["127.0.0.1"])]));
    let port = origin.addr().port();
    assert!(
        named
            .open(&format!("http://media.internal:{port}/r0/flac_s16.flac"))
            .is_ok()
    );
}

#[test]
fn every_redirect_hop_is_checked() {
    let origin = Origin::start();
    let canary = Canary::start();
    let c = canary.port();
    let canary6 = Canary::bind("[::1]:0").ok();
    let c6 = canary6.as_ref().map_or(c, Canary::port);
    let names = Names::new(&[("rebind.test", &["127.0.0.1", "10.0.0.1"])]);
    let client = Client::loopback().with_names(names);
    for target in [
        format!("http://localhost:{c}/"),
        format!("http://rebind.test:{c}/"),
        format!("http://[::1]:{c6}/"),
        format!("http://[::ffff:10.0.0.1]:{c}/"),
        format!("ftp://127.0.0.1:{c}/"),
        format!("http://user:pw@127.0.0.1:{c}/"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
    ] {
        assert_forbidden(&client, &origin.url("a.mp3", Behaviour::RedirectTo(target)));
    }
    settle();
    assert_eq!(canary.connections(), 0);
    assert_eq!(canary6.as_ref().map_or(0, Canary::connections), 0);

    // Control: an allowed hop does reach the canary (which hangs up at once).
    let allowed = origin.url(
        "a.mp3",
        Behaviour::RedirectTo(format!("http://127.0.0.1:{c}/")),
    );
    assert!(matches!(
        client.refused(&allowed),
        SourceError::Unreachable(_)
    ));
    assert!(canary.connections() >= 1);
}

#[test]
fn unparsable_urls_are_invalid() {
    let client = Client::new(test_limits(), "");
    for url in ["", "not a url", "http://", "http://[::1/"] {
        let err = client.refused(url);
        assert!(
            matches!(err, SourceError::InvalidUrl(_)),
            "{url:?}: {err:?}"
        );
    }
}
