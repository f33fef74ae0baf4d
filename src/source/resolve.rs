//! A DNS resolver for reqwest that refuses a name when ANY of its answers is forbidden.
//!
//! reqwest connects only to the addresses its resolver returned, so checking them here
//! closes DNS rebinding: the address that was judged is the address connected to.
//! `localhost` and `*.localhost` are answered as loopback without asking DNS (RFC 6761).
//! A refusal travels inside the resolver's error as [`ForbiddenAddress`], which the
//! fetcher finds again to tell a forbidden host from a DNS failure.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::guard::AddressPolicy;

/// The resolver error for a name with a forbidden answer. Its text leaves the address
/// out: it reaches the client, and must not map internal DNS for it.
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves to a forbidden address")]
pub(crate) struct ForbiddenAddress {
    /// The name that was resolved.
    pub(crate) host: String,
    /// The first forbidden answer (for the log only).
    pub(crate) ip: IpAddr,
}

/// Wraps a resolver (or the system's) and checks every answer against the policy.
pub(crate) struct CheckedResolver {
    inner: Option<Arc<dyn Resolve>>,
    policy: Arc<AddressPolicy>,
}

impl CheckedResolver {
    /// Checks the answers of `inner`, or of the system resolver when `None`.
    pub(crate) fn new(inner: Option<Arc<dyn Resolve>>, policy: Arc<AddressPolicy>) -> Self {
        Self { inner, policy }
    }
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().trim_end_matches('.').to_ascii_lowercase();
        let inner = self.inner.clone();
        let policy = Arc::clone(&self.policy);
        Box::pin(async move {
            let answers: Vec<SocketAddr> = if is_localhost(&host) {
                loopback_answers()
            } else if let Some(inner) = inner {
                inner.resolve(name).await?.collect()
            } else {
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect()
            };
            if answers.is_empty() {
                return Err(format!("{host} has no addresses").into());
            }
            if let Some(bad) = answers.iter().find(|addr| !policy.permits(addr.ip())) {
                return Err(Box::new(ForbiddenAddress { host, ip: bad.ip() }) as _);
            }
            Ok(Box::new(answers.into_iter()) as Addrs)
        })
    }
}

fn is_localhost(host: &str) -> bool {
    host == "localhost" || host.ends_with(".localhost")
}

fn loopback_answers() -> Vec<SocketAddr> {
    vec![
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
        SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 0),
    ]
}

/// The [`ForbiddenAddress`] somewhere in `err`'s chain of sources, if any.
pub(crate) fn find_forbidden<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a ForbiddenAddress> {
    let mut current = Some(err);
    while let Some(err) = current {
        if let Some(found) = err.downcast_ref::<ForbiddenAddress>() {
            return Some(found);
        }
        current = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(Vec<IpAddr>);

    impl Resolve for Fixed {
        fn resolve(&self, _: Name) -> Resolving {
            let addrs: Vec<SocketAddr> = self.0.iter().map(|ip| SocketAddr::new(*ip, 0)).collect();
            Box::pin(async move { Ok(Box::new(addrs.into_iter()) as Addrs) })
        }
    }

    fn resolve(answers: &[&str], name: &str) -> Result<Vec<SocketAddr>, String> {
        let inner = Fixed(answers.iter().map(|ip| ip.parse().unwrap()).collect());
        let resolver = CheckedResolver::new(Some(Arc::new(inner)), Arc::default());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime
            .block_on(resolver.resolve(name.parse().unwrap()))
            .map(Iterator::collect)
            .map_err(|err| match find_forbidden(err.as_ref()) {
                Some(found) => format!("forbidden {}", found.ip),
                None => format!("failed {err}"),
            })
    }

    #[test]
    fn any_forbidden_answer_refuses_the_name() {
        assert_eq!(
            resolve(&["93.184.215.14", "10.0.0.1"], "a.example"),
            Err("forbidden 10.0.0.1".into())
        );
        assert_eq!(
            resolve(&["::ffff:127.0.0.1"], "a.example"),
            Err("forbidden ::ffff:127.0.0.1".into())
        );
        assert_eq!(
            resolve(&["93.184.215.14"], "a.example").map(|a| a.len()),
            Ok(1)
        );
    }

    #[test]
    fn the_error_text_does_not_name_the_address() {
        let found = ForbiddenAddress {
            host: "intranet.example".into(),
            ip: "10.9.8.7".parse().unwrap(),
        };
        assert_eq!(
            found.to_string(),
            "intranet.example resolves to a forbidden address"
        );
    }

    #[test]
    fn localhost_names_are_loopback_and_empty_answers_fail() {
        assert_eq!(
            resolve(&["93.184.215.14"], "foo.LOCALHOST."),
            Err("forbidden 127.0.0.1".into())
        );
        assert!(resolve(&[], "a.example").unwrap_err().starts_with("failed"));
    }
}
