//! Who a request comes from: the peer address of its connection, or, when that peer is a proxy
//! the operator trusts (`--trusted-proxies`), the client address it names in
//! `X-Forwarded-For`. Rate limits and the audit trail use this address.
//!
//! The rule (contract section 7): the client is the rightmost address of `X-Forwarded-For` that
//! is not itself a trusted proxy. Addresses a client wrote itself sit to the left of the one the
//! first trusted proxy appended, so a client cannot choose its own address. Without the flag
//! the header is ignored.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use warp::Filter;

/// An address block, `10.0.0.0/8` or `2001:db8::/32`; a bare address is a block of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is in this block (an IPv4-mapped IPv6 address counts as its IPv4 address).
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        let (address, prefix) = match s.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (s, None),
        };
        let network: IpAddr = address
            .parse()
            .map_err(|_| format!("`{s}` is not an IP address or CIDR block"))?;
        let network = canonical(network);
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{s}`: the prefix length must be 0 to {max}"))?,
            None => max,
        };
        Ok(Cidr { network, prefix })
    }
}

/// The proxies whose `X-Forwarded-For` is believed; empty: none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    /// The client address of a request from `peer` carrying `forwarded_for` (every
    /// `X-Forwarded-For` header, in order).
    pub fn client(&self, peer: IpAddr, forwarded_for: &[&str]) -> IpAddr {
        let peer = canonical(peer);
        if !self.contains(peer) {
            return peer;
        }
        let mut client = peer;
        for entry in forwarded_for.iter().rev().flat_map(|h| h.rsplit(',')) {
            let Some(ip) = parse_forwarded(entry) else {
                // An entry that is no address: nothing to its left can be trusted.
                return client;
            };
            client = ip;
            if !self.contains(ip) {
                return ip;
            }
        }
        client
    }
}

impl FromStr for TrustedProxies {
    type Err = String;

    fn from_str(s: &str) -> Result<TrustedProxies, String> {
        s.split(',')
            .filter(|part| !part.trim().is_empty())
            .map(Cidr::from_str)
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }
}

/// One `X-Forwarded-For` entry: an address, maybe with a port or in brackets.
fn parse_forwarded(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    entry.parse::<SocketAddr>().ok().map(|a| canonical(a.ip()))
}

/// IPv4-mapped IPv6 addresses as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The key a per-address limit counts under: the IPv4 address, or the IPv6 /64 (one
/// subscriber's usual allocation, so that rotating through it does not evade the limit).
pub(crate) fn limit_key(ip: Option<IpAddr>) -> String {
    match ip.map(canonical) {
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => {
            let block = u128::from(v6) & (u128::MAX << 64);
            format!("{}/64", Ipv6Addr::from(block))
        }
        None => String::new(),
    }
}

/// The peer of a request's connection and the proxies trusted to name the client: a request
/// extension set by the listener ([`crate::server::listen`]).
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    pub addr: SocketAddr,
    pub trusted: Arc<TrustedProxies>,
}

/// The client's address, `None` only for a request that came through no connection (tests).
pub(crate) fn client_ip()
-> impl Filter<Extract = (Option<IpAddr>,), Error = std::convert::Infallible> + Clone {
    warp::ext::optional::<Peer>()
        .and(warp::header::headers_cloned())
        .map(|peer: Option<Peer>, headers: warp::http::HeaderMap| {
            let peer = peer?;
            if peer.trusted.0.is_empty() {
                return Some(canonical(peer.addr.ip()));
            }
            let forwarded: Vec<&str> = headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            Some(peer.trusted.client(peer.addr.ip(), &forwarded))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn blocks_parse_and_match() {
        let block: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(block.contains(ip("10.1.2.3")));
        assert!(!block.contains(ip("11.0.0.1")));
        assert!(block.contains(ip("::ffff:10.0.0.1")));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:1::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        let one: Cidr = "127.0.0.1".parse().unwrap();
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        assert!("0.0.0.0/0".parse::<Cidr>().unwrap().contains(ip("8.8.8.8")));
        for bad in ["10.0.0.0/33", "x", "10.0.0.0/", "::/129"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_client_is_the_rightmost_untrusted_forwarded_address() {
        let trusted: TrustedProxies = "127.0.0.1,10.0.0.0/8".parse().unwrap();
        // Not from a trusted proxy: the header is ignored.
        assert_eq!(
            trusted.client(ip("192.0.2.9"), &["1.2.3.4"]),
            ip("192.0.2.9")
        );
        // Through two proxies; the client forged an entry to the left.
        assert_eq!(
            trusted.client(ip("127.0.0.1"), &["6.6.6.6, 203.0.113.5, 10.0.0.2"]),
            ip("203.0.113.5")
        );
        // Several headers read as one list, in order.
        assert_eq!(
            trusted.client(ip("127.0.0.1"), &["6.6.6.6", "203.0.113.5"]),
            ip("203.0.113.5")
        );
        // No header, or garbage: the proxy itself.
        assert_eq!(trusted.client(ip("127.0.0.1"), &[]), ip("127.0.0.1"));
        assert_eq!(trusted.client(ip("127.0.0.1"), &["junk"]), ip("127.0.0.1"));
        // Every entry trusted: the leftmost.
        assert_eq!(
            trusted.client(ip("127.0.0.1"), &["10.0.0.7"]),
            ip("10.0.0.7")
        );
        // A port or brackets around an entry.
        assert_eq!(
            trusted.client(ip("127.0.0.1"), &["[2001:db8::1]:443"]),
            ip("2001:db8::1")
        );
        assert_eq!(
            TrustedProxies::default().client(ip("127.0.0.1"), &["1.1.1.1"]),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn ipv6_clients_are_limited_by_their_64() {
        assert_eq!(
            limit_key(Some(ip("2001:db8:1:2:aaaa::1"))),
            limit_key(Some(ip("2001:db8:1:2:bbbb::9")))
        );
        assert_ne!(
            limit_key(Some(ip("2001:db8:1:2::1"))),
            limit_key(Some(ip("2001:db8:1:3::1")))
        );
        assert_eq!(limit_key(Some(ip("::ffff:192.0.2.1"))), "192.0.2.1");
        assert_eq!(limit_key(None), "");
    }
}
