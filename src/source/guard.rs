//! The SSRF policy: which URLs may be fetched and which addresses may be connected to.
//!
//! Only `http`/`https` URLs without credentials are fetched, and only public unicast
//! addresses are connected to, unless an operator re-allows a range (`allow_nets`).
//! Hosts are judged as the `url` crate parsed them (it normalises `2130706433`,
//! `0x7f.1`, `127.1` and `0177.0.0.1` to `127.0.0.1`), never as written.
//!
//! IPv6 addresses that embed an IPv4 address (IPv4-mapped `::ffff:a.b.c.d`,
//! IPv4-compatible `::a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are judged by
//! the embedded address. Two forms are refused outright: Teredo (`2001::/32`, inside
//! the refused IETF block `2001::/23`), because its embedded client address is
//! obfuscated and a tunnel relay can reach anything; and local-use NAT64
//! (`64:ff9b:1::/48`), which by definition translates into a private network and whose
//! embedding position depends on the operator's prefix length. Other IPv6 addresses
//! must be global unicast (`2000::/3`) outside the special-purpose blocks.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use url::{Host, Url};

use super::SourceError;

/// IPv4 ranges that are never public unicast.
const FORBIDDEN_V4: &[(Ipv4Addr, u8)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8),       // "this network", unspecified
    (Ipv4Addr::new(10, 0, 0, 0), 8),      // private
    (Ipv4Addr::new(100, 64, 0, 0), 10),   // CGNAT
    (Ipv4Addr::new(127, 0, 0, 0), 8),     // loopback
    (Ipv4Addr::new(169, 254, 0, 0), 16),  // link-local
    (Ipv4Addr::new(172, 16, 0, 0), 12),   // private
    (Ipv4Addr::new(192, 0, 0, 0), 24),    // IETF protocol assignments
    (Ipv4Addr::new(192, 0, 2, 0), 24),    // documentation TEST-NET-1
    (Ipv4Addr::new(192, 88, 99, 0), 24),  // deprecated 6to4 relay anycast
    (Ipv4Addr::new(192, 168, 0, 0), 16),  // private
    (Ipv4Addr::new(198, 18, 0, 0), 15),   // benchmarking
    (Ipv4Addr::new(198, 51, 100, 0), 24), // documentation TEST-NET-2
    (Ipv4Addr::new(203, 0, 113, 0), 24),  // documentation TEST-NET-3
    (Ipv4Addr::new(224, 0, 0, 0), 4),     // multicast
    (Ipv4Addr::new(240, 0, 0, 0), 4),     // reserved, broadcast
];

/// Special-purpose blocks inside global unicast `2000::/3` that are refused.
const FORBIDDEN_V6: &[(Ipv6Addr, u8)] = &[
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23), // IETF: Teredo, benchmarking, ORCHID
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32), // documentation
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20), // documentation (RFC 9637)
];

/// Decides whether an address may be connected to.
#[derive(Debug, Clone, Default)]
pub(crate) struct AddressPolicy {
    allow_nets: Vec<IpNet>,
}

impl AddressPolicy {
    /// A policy that re-allows the addresses inside `allow_nets`.
    pub(crate) fn new(allow_nets: Vec<IpNet>) -> Self {
        Self { allow_nets }
    }

    /// Whether `ip` may be connected to: inside an allowed net (as written, or by the
    /// IPv4 address it embeds), or a public unicast address.
    pub(crate) fn permits(&self, ip: IpAddr) -> bool {
        if self.allows(ip) {
            return true;
        }
        match ip {
            IpAddr::V4(v4) => is_public_v4(v4),
            IpAddr::V6(v6) => match embedded_v4(v6) {
                Some(v4) => self.allows(IpAddr::V4(v4)) || is_public_v4(v4),
                None => is_public_v6(v6),
            },
        }
    }

    fn allows(&self, ip: IpAddr) -> bool {
        self.allow_nets.iter().any(|net| net.contains(&ip))
    }

    /// Parses `text` and checks everything that can be checked before resolving:
    /// scheme, credentials and IP-literal hosts.
    pub(crate) fn check_url_text(&self, text: &str) -> Result<Url, SourceError> {
        let url = Url::parse(text.trim())
            .map_err(|err| SourceError::InvalidUrl(format!("{text:?}: {err}")))?;
        self.check_url(&url)?;
        Ok(url)
    }

    /// Checks scheme, credentials and, for IP literals, the address.
    pub(crate) fn check_url(&self, url: &Url) -> Result<(), SourceError> {
        if !matches!(url.scheme(), "http" | "https") {
            let scheme = url.scheme();
            return Err(SourceError::Forbidden(format!(
                "scheme {scheme:?} is not allowed (only http and https)"
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(SourceError::Forbidden(
                "credentials in the URL are not allowed".to_owned(),
            ));
        }
        let ip = match url.host() {
            None => return Err(SourceError::InvalidUrl(format!("{url} has no host"))),
            Some(Host::Domain("")) => return Err(SourceError::InvalidUrl("empty host".into())),
            Some(Host::Domain(_)) => return Ok(()),
            Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
        };
        if self.permits(ip) {
            Ok(())
        } else {
            Err(forbidden_address(&ip.to_string(), ip))
        }
    }
}

/// The error for a host that is, or resolves to, a forbidden address.
pub(crate) fn forbidden_address(host: &str, ip: IpAddr) -> SourceError {
    SourceError::Forbidden(format!(
        "{host} is (or resolves to) {ip}, which is not a public address"
    ))
}

/// Whether `v4` is a public unicast address.
fn is_public_v4(v4: Ipv4Addr) -> bool {
    !FORBIDDEN_V4.iter().any(|&(net, len)| in_v4(v4, net, len))
}

/// Whether `v6` (which embeds no IPv4 address) is a public unicast address.
fn is_public_v6(v6: Ipv6Addr) -> bool {
    let global_unicast = in_v6(v6, Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3);
    global_unicast && !FORBIDDEN_V6.iter().any(|&(net, len)| in_v6(v6, net, len))
}

/// The IPv4 address that an IPv4-mapped, IPv4-compatible, NAT64 (`64:ff9b::/96`) or
/// 6to4 address carries. `::` and `::1` are themselves, not IPv4-compatible forms.
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let octets = v6.octets();
    let last32 = Ipv4Addr::new(octets[12], octets[13], octets[14], octets[15]);
    if v6.is_unspecified() || v6.is_loopback() {
        return None;
    }
    let mapped = in_v6(v6, Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96);
    let compatible = in_v6(v6, Ipv6Addr::UNSPECIFIED, 96);
    let nat64 = in_v6(v6, Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96);
    if mapped || compatible || nat64 {
        return Some(last32);
    }
    if in_v6(v6, Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16) {
        return Some(Ipv4Addr::new(octets[2], octets[3], octets[4], octets[5]));
    }
    None
}

fn in_v4(ip: Ipv4Addr, net: Ipv4Addr, len: u8) -> bool {
    Ipv4Net::new(net, len).is_ok_and(|net| net.contains(&ip))
}

fn in_v6(ip: Ipv6Addr, net: Ipv6Addr, len: u8) -> bool {
    Ipv6Net::new(net, len).is_ok_and(|net| net.contains(&ip))
}

/// Parses a comma-separated list of CIDRs (`10.0.0.0/8, ::1/128`); a bare address
/// means just that address. Blank entries are ignored.
pub fn parse_allow_nets(text: &str) -> Result<Vec<IpNet>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.parse::<IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{item:?} is not a CIDR such as 10.0.0.0/8"))
        })
        .collect()
}

#[cfg(test)]
mod tests;
