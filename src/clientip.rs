//! The client's address for the access log (`ip`): the TCP peer, or — when the peer is one of
//! `[server] trusted_proxies` (the ALB in front) — the rightmost address in `X-Forwarded-For`
//! that is not itself trusted. Each proxy appends the address it received the request from, so
//! reading right to left past our own proxies reaches the first hop nobody we trust vouches for;
//! anything further left was written by the client and could be anything. Pure: CIDR parsing,
//! matching and the walk over the header, no I/O.

use std::net::IpAddr;
use std::str::FromStr;

use http::{HeaderMap, HeaderName};

pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// One network, `10.0.0.0/8` or `2001:db8::/32`; a bare address is a network of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// Why a `trusted_proxies` entry is not a network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("`{0}` is not an IP address or CIDR network (e.g. 10.0.0.0/8, 2001:db8::/32, 10.0.3.7)")]
    Syntax(String),
    #[error("`{text}`: the prefix length must be 0-{max} for an {family} network")]
    Prefix { text: String, max: u8, family: &'static str },
    #[error("`{text}` has address bits set past its /{prefix}; the network is {network}/{prefix}")]
    HostBits { text: String, network: IpAddr, prefix: u8 },
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<Cidr, CidrError> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| CidrError::Syntax(text.to_owned()))?;
        let (max, family) = match addr {
            IpAddr::V4(_) => (32, "IPv4"),
            IpAddr::V6(_) => (128, "IPv6"),
        };
        let prefix = match prefix {
            None => max,
            Some(p) if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) => {
                return Err(CidrError::Syntax(text.to_owned()))
            }
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(CidrError::Prefix { text: text.to_owned(), max, family }),
            },
        };
        let network = mask(addr, prefix);
        if network != addr {
            // Most often a typo for the address alone (/32) or for the network: refuse to guess.
            return Err(CidrError::HostBits { text: text.to_owned(), network, prefix });
        }
        Ok(Cidr { network, prefix })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl Cidr {
    /// Whether `ip` is in this network. IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`, what a
    /// dual-stack listener reports for IPv4 peers) count as their IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        matches!((self.network, ip), (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)))
            && mask(ip, self.prefix) == self.network
    }

    /// Every address of its family (`0.0.0.0/0`, `::/0`).
    pub fn is_everything(&self) -> bool {
        self.prefix == 0
    }
}

fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let m = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) };
            IpAddr::V4((bits & m).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let m = if prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix)) };
            IpAddr::V6((bits & m).into())
        }
    }
}

/// `[server] trusted_proxies`, parsed. Empty (the default) trusts nobody: `ip` is the peer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    pub fn new(networks: Vec<Cidr>) -> TrustedProxies {
        TrustedProxies(networks)
    }

    pub fn networks(&self) -> &[Cidr] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A short list (a VPC or two): a linear scan beats any structure.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    /// The client's address: `peer` unless it is trusted; then the rightmost `X-Forwarded-For`
    /// hop (over every such header, in order) that is not trusted. If every hop is trusted, the
    /// leftmost; if a hop is not an address, the walk stops at the last address reached (what
    /// lies beyond a garbled hop cannot be vouched for).
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if self.0.is_empty() || !self.contains(peer) {
            return peer;
        }
        let mut client = peer;
        for value in headers.get_all(&X_FORWARDED_FOR).iter().rev() {
            let Ok(list) = value.to_str() else { return client };
            for hop in list.rsplit(',') {
                // Empty elements (`a,,b`, a trailing comma) carry nothing; skip them.
                let hop = hop.trim();
                if hop.is_empty() {
                    continue;
                }
                match parse_hop(hop) {
                    Some(ip) if self.contains(ip) => client = ip,
                    Some(ip) => return ip,
                    None => return client,
                }
            }
        }
        client
    }
}

/// An `X-Forwarded-For` element: an address, optionally with a port (`10.0.0.1:4711`,
/// `[2001:db8::1]:443`) as some proxies write it.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Some(rest) = hop.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let port_ok = after.is_empty() || after.strip_prefix(':').is_some_and(is_port);
        return port_ok
            .then(|| inside.parse::<std::net::Ipv6Addr>().ok())
            .flatten()
            .map(|v6| IpAddr::V6(v6).to_canonical());
    }
    let (addr, port) = hop.split_once(':')?;
    if !is_port(port) {
        return None;
    }
    addr.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

fn is_port(s: &str) -> bool {
    !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests;
