//! Destination policy: which IP addresses hookd refuses to send to (server-side request
//! forgery), and the operator's allow-list that lifts it for chosen ranges.
//!
//! The same policy answers both at create time (for literal addresses in a URL) and, in
//! the dispatcher, for every address a host name resolves to at connect time.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// Why an address is refused; shown to customers in errors and attempt records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("destination {address} is refused: it is a {class} address")]
pub struct RefusedDestination {
    pub address: IpAddr,
    pub class: &'static str,
}

/// The refused ranges minus the operator's `--allow-destination` ranges.
#[derive(Debug, Clone, Default)]
pub struct DestinationPolicy {
    allowed: Vec<IpNet>,
}

impl DestinationPolicy {
    pub fn new(allowed: Vec<IpNet>) -> Self {
        Self { allowed }
    }

    /// Checks one address. An allow-listed range wins over every refused class.
    pub fn check(&self, address: IpAddr) -> Result<(), RefusedDestination> {
        if self.allowed.iter().any(|net| net.contains(&address)) {
            return Ok(());
        }
        match classify(address) {
            Some(class) => Err(RefusedDestination { address, class }),
            None => Ok(()),
        }
    }

    /// Whether the operator allowed any loopback range, which also admits `localhost`.
    pub fn allows_loopback(&self) -> bool {
        self.check(IpAddr::V4(Ipv4Addr::LOCALHOST)).is_ok()
    }
}

/// The class of a refused address, or `None` for a public unicast address.
fn classify(address: IpAddr) -> Option<&'static str> {
    match address {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    let class = match (a, b, c) {
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_private() => "private",
        _ if ip.is_link_local() => "link-local",
        (0, _, _) => "unspecified",
        (100, 64..=127, _) => "carrier-grade NAT",
        (192, 0, 0) => "IETF protocol assignment",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (198, 18..=19, _) => "benchmarking",
        (192, 88, 99) => "6to4 relay",
        _ if ip.is_multicast() => "multicast",
        _ if ip.is_broadcast() => "broadcast",
        (240..=255, _, _) => "reserved",
        _ => return None,
    };
    Some(class)
}

fn classify_v6(ip: Ipv6Addr) -> Option<&'static str> {
    // Forms that carry an IPv4 address are judged by that address, so a blocked IPv4
    // destination cannot be reached by spelling it as IPv6.
    if let Some(embedded) = embedded_v4(ip) {
        return classify_v4(embedded);
    }
    let segments = ip.segments();
    let class = match segments[0] {
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_unspecified() => "unspecified",
        0xfc00..=0xfdff => "unique-local",
        0xfe80..=0xfebf => "link-local",
        0xfec0..=0xfeff => "site-local",
        0xff00..=0xffff => "multicast",
        0x2001 if segments[1] == 0x0db8 => "documentation",
        0x2001 if segments[1] < 0x0200 => "IETF protocol assignment",
        0x0100 if segments[1..4] == [0, 0, 0] => "discard-only",
        0x0000 => "reserved",
        _ => return None,
    };
    Some(class)
}

/// The IPv4 address inside IPv4-mapped, IPv4-compatible, NAT64 and 6to4 forms.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(low),
        [0, 0, 0, 0, 0, 0, _, _] if !ip.is_loopback() && !ip.is_unspecified() => Some(low),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] | [0x64, 0xff9b, 1, ..] => Some(low),
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(raw: &str) -> bool {
        DestinationPolicy::default().check(raw.parse().expect("ip")).is_err()
    }

    #[test]
    fn refuses_internal_and_reserved_addresses() {
        for raw in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "2001:db8::1",
        ] {
            assert!(refused(raw), "{raw} should be refused");
        }
    }

    #[test]
    fn allows_public_addresses() {
        for raw in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"] {
            assert!(!refused(raw), "{raw} should be allowed");
        }
    }

    #[test]
    fn allow_list_lifts_only_its_range() {
        let policy = DestinationPolicy::new(vec!["127.0.0.0/8".parse().expect("cidr")]);
        assert!(policy.check("127.0.0.1".parse().expect("ip")).is_ok());
        assert!(policy.allows_loopback());
        assert!(policy.check("10.0.0.1".parse().expect("ip")).is_err());
        assert!(!DestinationPolicy::default().allows_loopback());
    }

    #[test]
    fn refusal_names_the_address_and_its_class() {
        let err =
            DestinationPolicy::default().check("169.254.169.254".parse().expect("ip")).expect_err("refused");
        assert_eq!(err.to_string(), "destination 169.254.169.254 is refused: it is a link-local address");
    }
}
