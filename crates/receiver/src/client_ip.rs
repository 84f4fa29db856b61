//! The source-address allowlist. The client address is the TCP peer, unless the peer is
//! a trusted proxy: then it is the right-most `X-Forwarded-For` entry that is not itself
//! a trusted proxy (entries to the left were written by the client and prove nothing).
//!
//! Fails closed: with an allowlist set, an unknown or unparsable address is refused.

use std::net::IpAddr;

use ipnet::IpNet;

#[derive(Debug, Clone, Default)]
pub struct IpPolicy {
    pub allowed: Vec<IpNet>,
    pub trusted_proxies: Vec<IpNet>,
}

fn contains(nets: &[IpNet], ip: IpAddr) -> bool {
    let ip = canonical(ip);
    nets.iter().any(|n| n.contains(&ip))
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) compare as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl IpPolicy {
    pub fn is_enabled(&self) -> bool {
        !self.allowed.is_empty()
    }

    /// The effective client address.
    pub fn client_ip(&self, peer: Option<IpAddr>, forwarded_for: Option<&str>) -> Option<IpAddr> {
        let peer = canonical(peer?);
        if !contains(&self.trusted_proxies, peer) {
            return Some(peer);
        }
        let Some(xff) = forwarded_for else {
            return Some(peer);
        };
        let mut last = peer;
        for entry in xff.rsplit(',') {
            let Ok(ip) = entry.trim().parse::<IpAddr>() else {
                // Garbage in the chain: stop trusting it here.
                return Some(last);
            };
            let ip = canonical(ip);
            if !contains(&self.trusted_proxies, ip) {
                return Some(ip);
            }
            last = ip;
        }
        Some(last)
    }

    /// Ok when allowed; Err with the address (or "unknown") otherwise.
    pub fn check(&self, peer: Option<IpAddr>, forwarded_for: Option<&str>) -> Result<(), String> {
        if !self.is_enabled() {
            return Ok(());
        }
        match self.client_ip(peer, forwarded_for) {
            Some(ip) if contains(&self.allowed, ip) => Ok(()),
            Some(ip) => Err(ip.to_string()),
            None => Err("unknown".to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(s: &[&str]) -> Vec<IpNet> {
        s.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn disabled_allows_all() {
        let p = IpPolicy::default();
        assert!(p.check(Some("8.8.8.8".parse().unwrap()), None).is_ok());
    }

    #[test]
    fn peer_checked_directly() {
        let p = IpPolicy {
            allowed: nets(&["10.0.0.0/8"]),
            trusted_proxies: vec![],
        };
        assert!(p.check(Some("10.1.2.3".parse().unwrap()), None).is_ok());
        assert!(p.check(Some("11.1.2.3".parse().unwrap()), None).is_err());
        // XFF from an untrusted peer is ignored.
        assert!(
            p.check(Some("11.1.2.3".parse().unwrap()), Some("10.0.0.1"))
                .is_err()
        );
        assert!(
            p.check(Some("::ffff:10.0.0.1".parse().unwrap()), None)
                .is_ok()
        );
        assert!(p.check(None, None).is_err());
    }

    #[test]
    fn trusted_proxy_chain() {
        let p = IpPolicy {
            allowed: nets(&["3.3.3.0/24"]),
            trusted_proxies: nets(&["127.0.0.1/32", "192.168.0.0/16"]),
        };
        let lb = Some("127.0.0.1".parse().unwrap());
        assert!(p.check(lb, Some("3.3.3.3")).is_ok());
        assert!(p.check(lb, Some("3.3.3.3, 192.168.1.1")).is_ok());
        // A client cannot spoof by prepending an allowed address.
        assert!(p.check(lb, Some("3.3.3.3, 9.9.9.9")).is_err());
        assert!(p.check(lb, None).is_err());
        assert!(p.check(lb, Some("garbage")).is_err());
    }
}
