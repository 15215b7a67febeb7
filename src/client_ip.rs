//! Learning the client's address behind trusted reverse proxies.
//!
//! Behind a load balancer the peer address is the proxy's. [`forwarded_for`] reads
//! `X-Forwarded-For` only when the peer is a trusted proxy, and walks it from the right,
//! skipping trusted hops, so a client cannot pick its own address by sending the header.
//!
//! ```
//! use std::net::{IpAddr, SocketAddr};
//! use tower_csp_reports::client_ip::forwarded_for;
//!
//! let client_ip = forwarded_for(["10.0.0.0/8", "::1"]).unwrap();
//! let mut request = http::Request::new(());
//! request.headers_mut().insert("x-forwarded-for", "198.51.100.7, 203.0.113.9, 10.1.2.3".parse().unwrap());
//! request.extensions_mut().insert(SocketAddr::from(([10, 0, 0, 1], 443)));
//! let (parts, ()) = request.into_parts();
//! assert_eq!(client_ip(&parts), Some("203.0.113.9".parse::<IpAddr>().unwrap()));
//! ```

use std::net::{IpAddr, SocketAddr};

use crate::error::ConfigError;

/// An address range in CIDR form (`10.0.0.0/8`, `fd00::/8`) or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    network: IpAddr,
    prefix: u8,
}

impl IpRange {
    /// Parses `addr` or `addr/prefix`.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let invalid = || ConfigError::Invalid {
            setting: "trusted proxy",
            reason: format!("{text:?} is not an IP address or CIDR range"),
        };
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = addr.trim().parse().map_err(|_| invalid())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(invalid)?,
            None => max,
        };
        Ok(Self { network, prefix })
    }

    /// Whether the range holds an address (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let (net, ip, bits) = match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => {
                (u128::from(n.to_bits()), u128::from(i.to_bits()), 32)
            }
            (IpAddr::V6(n), IpAddr::V6(i)) => (n.to_bits(), i.to_bits(), 128),
            _ => return false,
        };
        let shift = bits - u32::from(self.prefix);
        shift >= bits || (net >> shift) == (ip >> shift)
    }
}

/// A [`client_ip`](crate::CspReportLayerBuilder::client_ip) function for servers behind trusted
/// proxies. The peer address comes from a [`SocketAddr`] request extension (give axum's
/// `ConnectInfo` to [`forwarded_for_with`] instead).
pub fn forwarded_for<I, S>(
    trusted: I,
) -> Result<impl Fn(&http::request::Parts) -> Option<IpAddr> + Send + Sync + 'static, ConfigError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    forwarded_for_with(trusted, |parts| {
        parts.extensions.get::<SocketAddr>().map(SocketAddr::ip)
    })
}

/// Like [`forwarded_for`], with the peer address read by `peer`.
pub fn forwarded_for_with<I, S, P>(
    trusted: I,
    peer: P,
) -> Result<impl Fn(&http::request::Parts) -> Option<IpAddr> + Send + Sync + 'static, ConfigError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
    P: Fn(&http::request::Parts) -> Option<IpAddr> + Send + Sync + 'static,
{
    let trusted = trusted
        .into_iter()
        .map(|range| IpRange::parse(range.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(move |parts: &http::request::Parts| {
        let peer = peer(parts)?;
        let is_trusted = |ip: IpAddr| trusted.iter().any(|range| range.contains(ip));
        if !is_trusted(peer) {
            return Some(peer);
        }
        let mut client = peer;
        for value in parts.headers.get_all("x-forwarded-for").iter().rev() {
            let Ok(value) = value.to_str() else {
                return Some(client);
            };
            for hop in value.rsplit(',') {
                match hop.trim().parse::<IpAddr>() {
                    Ok(ip) if is_trusted(ip) => client = ip,
                    Ok(ip) => return Some(ip),
                    // A hop we cannot read: stop at the last one we trust.
                    Err(_) => return Some(client),
                }
            }
        }
        Some(client)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let cases = [
            ("10.0.0.0/8", "10.255.1.2", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("192.168.1.7", "192.168.1.7", true),
            ("192.168.1.7", "192.168.1.8", false),
            ("0.0.0.0/0", "8.8.8.8", true),
            ("fd00::/8", "fd12::1", true),
            ("fd00::/8", "fe80::1", false),
            ("10.0.0.0/8", "::ffff:10.0.0.1", true),
            ("::1", "127.0.0.1", false),
        ];
        for (range, ip, want) in cases {
            let range = IpRange::parse(range).unwrap();
            assert_eq!(range.contains(ip.parse().unwrap()), want, "{range:?} {ip}");
        }
        for bad in ["10.0.0.0/33", "nonsense", "::/129", "10.0.0.0/x"] {
            assert!(IpRange::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_chain() {
        let f = forwarded_for(["10.0.0.0/8"]).unwrap();
        let parts = |peer: [u8; 4], xff: Option<&str>| {
            let mut request = http::Request::new(());
            if let Some(xff) = xff {
                request
                    .headers_mut()
                    .insert("x-forwarded-for", xff.parse().unwrap());
            }
            request.extensions_mut().insert(SocketAddr::from((peer, 1)));
            request.into_parts().0
        };
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        // An untrusted peer's header is ignored: it could say anything.
        assert_eq!(
            f(&parts([203, 0, 113, 1], Some("1.2.3.4"))),
            ip("203.0.113.1")
        );
        assert_eq!(f(&parts([10, 0, 0, 1], Some("1.2.3.4"))), ip("1.2.3.4"));
        assert_eq!(
            f(&parts([10, 0, 0, 1], Some("6.6.6.6, 1.2.3.4, 10.9.9.9"))),
            ip("1.2.3.4")
        );
        assert_eq!(
            f(&parts([10, 0, 0, 1], Some("garbage, 10.2.2.2"))),
            ip("10.2.2.2")
        );
        assert_eq!(f(&parts([10, 0, 0, 1], None)), ip("10.0.0.1"));
    }
}
