//! The SSRF guard for outgoing requests (webhooks, flow `request` and `webhook` operations).
//!
//! A target URL must be `http` or `https` without credentials. Its host is checked before any
//! connection: an IP literal (in any spelling the URL standard accepts — `2130706433`,
//! `0177.0.0.1`, `0x7f.1`, `[::ffff:127.0.0.1]` — the parser normalises them) against the
//! refused ranges; a name by resolving it once, refusing it when *any* address it resolves to is
//! refused, and handing exactly the checked addresses to the connector, so the connection is
//! pinned to what was checked (no second lookup a rebinding DNS server could answer
//! differently). Redirects are never followed and proxies from the environment are not used.
//!
//! Refused: unspecified, loopback, private (RFC 1918), shared (CGNAT), link-local (which holds
//! the cloud metadata address `169.254.169.254`), IETF-reserved and documentation ranges,
//! benchmarking, multicast and reserved IPv4; IPv6 unspecified, loopback, unique-local (with
//! AWS's `fd00:ec2::254`), link-local, site-local, multicast, documentation, discard, Teredo and
//! the IETF block; and IPv4-mapped, IPv4-compatible, NAT64 and 6to4 forms are judged by the IPv4
//! address inside. Hosts the operator allow-lists ([`Allow`], `WORKEROS_WEBHOOK_ALLOW`) are
//! exempt: by name, or by address range, on every port or on the one port the entry names (a
//! name is resolved without its port, so each such port has a client of its own).

use crate::EventsError;
use reqwest::Url;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// The environment variable the example server reads its allow list from.
pub const ALLOW_ENV: &str = "WORKEROS_WEBHOOK_ALLOW";

/// Why a target was refused. Messages are lowercase and safe to show to the admin who set the
/// target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    /// The URL does not parse, is not `http(s)`, carries credentials or has no host.
    #[error("the target URL {0}")]
    BadUrl(&'static str),
    /// The host is, or resolves to, a refused address.
    #[error("the target `{host}` is refused: {reason} (allow-list it to deliver there)")]
    Refused {
        /// The host as written in the URL.
        host: String,
        /// Which range refused it.
        reason: &'static str,
    },
    /// The host name does not resolve.
    #[error("the target `{0}` does not resolve")]
    Unresolved(String),
    /// The guarded HTTP client could not be built (the TLS roots did not load): nothing is
    /// sent rather than sending without the guard.
    #[error("outgoing requests are unavailable: the HTTP client could not start (see the log)")]
    NoClient,
}

/// Hosts and address ranges exempt from the guard. The exemptions are the deployment's: they
/// apply to the requests of the deployment's own tenant ([`DEFAULT_TENANT`]), not to an
/// organization's (in org mode anyone who signs up administers one, and would otherwise reach
/// every internal host the deployment exempted for itself), unless
/// [`for_every_tenant`](Self::for_every_tenant) says otherwise.
///
/// [`DEFAULT_TENANT`]: workeros_core::DEFAULT_TENANT
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allow {
    /// Host names, each with the one port it is exempt on (`None`: every port).
    hosts: Vec<(String, Option<u16>)>,
    /// Address ranges (address, prefix length), each with its port.
    nets: Vec<(IpAddr, u8, Option<u16>)>,
    every_tenant: bool,
}

impl Allow {
    /// Nothing exempt (the default).
    pub fn none() -> Self {
        Self::default()
    }

    /// Parses a comma-separated list of host names, IP addresses and CIDR ranges, each
    /// optionally with the one port it is exempt on (`hooks.internal:8443, 127.0.0.1:9000,
    /// 10.0.0.0/8, [fd00::1]:443, fd00::/8`); an entry without a port is exempt on every port.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut allow = Self::default();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (target, port) = split_port(item)?;
            let (addr, prefix) = match target.split_once('/') {
                Some((a, p)) => (a, Some(p)),
                None => (target, None),
            };
            match (addr.parse::<IpAddr>(), prefix) {
                (Ok(ip), p) => {
                    let max = if ip.is_ipv4() { 32 } else { 128 };
                    let prefix = match p {
                        None => max,
                        Some(p) => p
                            .parse::<u8>()
                            .ok()
                            .filter(|p| *p <= max)
                            .ok_or_else(|| format!("`{item}` has a bad prefix length"))?,
                    };
                    allow.nets.push((ip, prefix, port));
                }
                (Err(_), None) if valid_host_name(target) => {
                    allow.hosts.push((target.to_ascii_lowercase(), port));
                }
                _ => {
                    return Err(format!(
                        "`{item}` is neither a host name, an IP address nor a CIDR range \
                         (each optionally with `:port`; IPv6 with a port in brackets: `[::1]:9000`)"
                    ));
                }
            }
        }
        Ok(allow)
    }

    /// The same exemptions for the requests of every tenant, organizations included: for a
    /// deployment whose tenants are all trusted.
    pub fn for_every_tenant(mut self) -> Self {
        self.every_tenant = true;
        self
    }

    /// Whether nothing is exempt.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty() && self.nets.is_empty()
    }

    /// [`Allow::parse`] of `WORKEROS_WEBHOOK_ALLOW` (nothing when unset).
    pub fn from_env() -> Result<Self, String> {
        match std::env::var(ALLOW_ENV) {
            Ok(v) => Self::parse(&v).map_err(|e| format!("{ALLOW_ENV}: {e}")),
            Err(_) => Ok(Self::none()),
        }
    }

    /// The ports some entry is restricted to, each once.
    fn ports(&self) -> Vec<u16> {
        let mut ports: Vec<u16> = (self.hosts.iter().filter_map(|h| h.1))
            .chain(self.nets.iter().filter_map(|n| n.2))
            .collect();
        ports.sort_unstable();
        ports.dedup();
        ports
    }

    /// The entries that exempt requests to `port` (`None`: only those exempt on every port).
    fn at_port(&self, port: Option<u16>) -> Self {
        let applies = |p: Option<u16>| p.is_none() || p == port;
        Self {
            hosts: (self.hosts.iter().filter(|h| applies(h.1)))
                .map(|h| (h.0.clone(), None))
                .collect(),
            nets: (self.nets.iter().filter(|n| applies(n.2)))
                .map(|n| (n.0, n.1, None))
                .collect(),
            every_tenant: self.every_tenant,
        }
    }

    /// Whether `host` is exempt (in a list [`at_port`](Self::at_port) made: ports are settled).
    fn host(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| h.0.eq_ignore_ascii_case(host))
    }

    fn addr(&self, ip: IpAddr) -> bool {
        self.nets
            .iter()
            .any(|(net, prefix, _)| in_net(ip, *net, *prefix))
    }
}

/// An allow-list entry's target and port: `host:port`, `10.0.0.1:80`, `[::1]:9000`; a bare
/// IPv6 address or range (two colons or more) has no port.
fn split_port(item: &str) -> Result<(&str, Option<u16>), String> {
    let port = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("`{item}` has a bad port (1 to 65535)"))
    };
    if let Some(rest) = item.strip_prefix('[') {
        let (inner, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("`{item}` opens `[` without closing it"))?;
        return match after.strip_prefix(':') {
            Some(p) => Ok((inner, Some(port(p)?))),
            None if after.is_empty() => Ok((inner, None)),
            None => Err(format!("`{item}` has text after `]` that is not `:port`")),
        };
    }
    match item.split_once(':') {
        Some((target, p)) if !p.contains(':') => Ok((target, Some(port(p)?))),
        _ => Ok((item, None)),
    }
}

fn valid_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn in_net(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            prefix_eq(u32::from(a).into(), u32::from(n).into(), prefix, 32)
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => prefix_eq(u128::from(a), u128::from(n), prefix, 128),
        _ => false,
    }
}

fn prefix_eq(a: u128, b: u128, prefix: u8, width: u32) -> bool {
    let shift = width.saturating_sub(u32::from(prefix));
    a.checked_shr(shift).unwrap_or(0) == b.checked_shr(shift).unwrap_or(0)
}

const V4_REFUSED: &[([u8; 4], u8, &str)] = &[
    ([0, 0, 0, 0], 8, "an unspecified (\"this network\") address"),
    ([10, 0, 0, 0], 8, "a private address"),
    ([100, 64, 0, 0], 10, "a shared (carrier-grade NAT) address"),
    ([127, 0, 0, 0], 8, "a loopback address"),
    (
        [169, 254, 0, 0],
        16,
        "a link-local or cloud metadata address",
    ),
    ([172, 16, 0, 0], 12, "a private address"),
    ([192, 0, 0, 0], 24, "an IETF protocol address"),
    ([192, 0, 2, 0], 24, "a documentation address"),
    ([192, 88, 99, 0], 24, "a 6to4 relay address"),
    ([192, 168, 0, 0], 16, "a private address"),
    ([198, 18, 0, 0], 15, "a benchmarking address"),
    ([198, 51, 100, 0], 24, "a documentation address"),
    ([203, 0, 113, 0], 24, "a documentation address"),
    ([224, 0, 0, 0], 4, "a multicast address"),
    ([240, 0, 0, 0], 4, "a reserved or broadcast address"),
];

const V6_REFUSED: &[(u128, u8, &str)] = &[
    (0, 128, "an unspecified address"),
    (1, 128, "a loopback address"),
    (0x0064_ff9b_0001_u128 << 80, 48, "a local NAT64 address"),
    (0x0100_u128 << 112, 64, "a discard address"),
    (0x2001_0db8_u128 << 96, 32, "a documentation address"),
    (0x2001_u128 << 112, 23, "an IETF protocol or Teredo address"),
    (0xfc00_u128 << 112, 7, "a unique-local (private) address"),
    (0xfe80_u128 << 112, 10, "a link-local address"),
    (0xfec0_u128 << 112, 10, "a site-local address"),
    (0xff00_u128 << 112, 8, "a multicast address"),
];

/// Why `ip` is refused as a target, or `None` when it is a public unicast address.
pub fn refused(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(v6) {
                return refused_v4(v4);
            }
            let bits = u128::from(v6);
            V6_REFUSED
                .iter()
                .find(|(net, prefix, _)| prefix_eq(bits, *net, *prefix, 128))
                .map(|(_, _, why)| *why)
        }
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let bits = u32::from(ip);
    V4_REFUSED
        .iter()
        .find(|(net, prefix, _)| {
            prefix_eq(bits.into(), u32::from_be_bytes(*net).into(), *prefix, 32)
        })
        .map(|(_, _, why)| *why)
}

/// The IPv4 address an IPv6 address stands for: IPv4-mapped (`::ffff:a.b.c.d`),
/// IPv4-compatible (`::a.b.c.d`, but not `::` and `::1`), NAT64 (`64:ff9b::a.b.c.d`) and 6to4
/// (`2002:aabb:ccdd::`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(ip);
    let low = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    if bits >> 32 == 0 && bits > 1 {
        return Some(low);
    }
    if bits >> 32 == 0x0064_ff9b_u128 << 64 {
        return Some(low);
    }
    if bits >> 112 == 0x2002 {
        return Some(Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32));
    }
    None
}

/// Resolves host names to addresses (the system resolver; tests substitute their own).
#[async_trait::async_trait]
pub trait Lookup: Send + Sync {
    /// The addresses of `host`.
    async fn lookup(&self, host: &str) -> std::io::Result<Vec<IpAddr>>;
}

/// The operating system's resolver.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemLookup;

#[async_trait::async_trait]
impl Lookup for SystemLookup {
    async fn lookup(&self, host: &str) -> std::io::Result<Vec<IpAddr>> {
        Ok(tokio::net::lookup_host((host, 0))
            .await?
            .map(|a| a.ip())
            .collect())
    }
}

struct Checker {
    allow: Allow,
    lookup: Arc<dyn Lookup>,
}

impl Checker {
    async fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, GuardError> {
        let addrs = self
            .lookup
            .lookup(host)
            .await
            .map_err(|_| GuardError::Unresolved(host.to_owned()))?;
        if addrs.is_empty() {
            return Err(GuardError::Unresolved(host.to_owned()));
        }
        if !self.allow.host(host) {
            for ip in &addrs {
                if self.allow.addr(*ip) {
                    continue;
                }
                if let Some(reason) = refused(*ip) {
                    return Err(GuardError::Refused {
                        host: host.to_owned(),
                        reason,
                    });
                }
            }
        }
        Ok(addrs)
    }
}

impl reqwest::dns::Resolve for Checker {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        let checker = Checker {
            allow: self.allow.clone(),
            lookup: self.lookup.clone(),
        };
        Box::pin(async move {
            let addrs = checker.resolve(&host).await?;
            let addrs: reqwest::dns::Addrs =
                Box::new(addrs.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// Checks targets and makes the HTTP client that connects only to checked addresses. Cheap to
/// clone (one connection pool).
#[derive(Clone)]
pub struct Guard {
    checker: Arc<Checker>,
    /// `None` when it could not be built: requests then fail closed.
    client: Option<reqwest::Client>,
    /// The same guard without exemptions, for the requests of tenants the exemptions do not
    /// cover (`None`: they cover every tenant, or there are none).
    strict: Option<Arc<Guard>>,
    /// For each port an exemption is restricted to, the guard with the exemptions of that port
    /// (this one's hold only the entries exempt on every port).
    ports: Vec<(u16, Arc<Guard>)>,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("allow", &self.checker.allow)
            .finish_non_exhaustive()
    }
}

/// Longest target URL accepted, in bytes.
pub const MAX_URL_LEN: usize = 2048;

impl Guard {
    /// A guard exempting `allow`, resolving with the system resolver; requests time out after
    /// `timeout` (connecting after at most 5 seconds of it).
    pub fn new(allow: Allow, timeout: Duration) -> Self {
        Self::with_lookup(allow, timeout, Arc::new(SystemLookup))
    }

    /// [`Guard::new`] resolving with `lookup` (tests point names wherever they like).
    pub fn with_lookup(allow: Allow, timeout: Duration, lookup: Arc<dyn Lookup>) -> Self {
        let strict = (!allow.is_empty() && !allow.every_tenant)
            .then(|| Arc::new(Self::with_lookup(Allow::none(), timeout, lookup.clone())));
        // The resolver sees a name, not a port: a port-restricted entry gets a client of its
        // own, chosen by the URL's port.
        let ports = (allow.ports().into_iter())
            .map(|p| {
                let at = Self::single(allow.at_port(Some(p)), timeout, lookup.clone(), None);
                (p, Arc::new(at))
            })
            .collect();
        let mut guard = Self::single(allow.at_port(None), timeout, lookup, strict);
        guard.ports = ports;
        guard
    }

    /// A guard with one client, exempting `allow` (whose ports are settled) on every port.
    fn single(
        allow: Allow,
        timeout: Duration,
        lookup: Arc<dyn Lookup>,
        strict: Option<Arc<Guard>>,
    ) -> Self {
        let checker = Arc::new(Checker { allow, lookup });
        let resolver = Arc::new(Checker {
            allow: checker.allow.clone(),
            lookup: checker.lookup.clone(),
        });
        let client = reqwest::Client::builder()
            .dns_resolver(resolver)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("workeros/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| tracing::error!(error = %e, "the guarded HTTP client could not be built; outgoing requests will fail"))
            .ok();
        Self {
            checker,
            client,
            strict,
            ports: Vec::new(),
        }
    }

    /// The guard for a request to `u`'s port.
    fn at(&self, u: &Url) -> &Guard {
        let port = u.port_or_known_default();
        (self.ports.iter())
            .find(|(p, _)| Some(*p) == port)
            .map_or(self, |(_, g)| g)
    }

    /// The guard for the requests made for `tenant`: this one for the deployment's own tenant
    /// (or for every tenant, see [`Allow::for_every_tenant`]), one with no exemption otherwise.
    pub fn for_tenant(&self, tenant: &str) -> &Guard {
        match &self.strict {
            Some(strict) if tenant != workeros_core::DEFAULT_TENANT => strict,
            _ => self,
        }
    }

    /// Parses `url` and checks what can be checked without resolving: the scheme, credentials,
    /// and an IP-literal host. Names are checked when resolved ([`Guard::check`]).
    pub fn parse(&self, url: &str) -> Result<Url, GuardError> {
        if url.len() > MAX_URL_LEN {
            return Err(GuardError::BadUrl("is longer than 2048 bytes"));
        }
        let u = Url::parse(url).map_err(|_| GuardError::BadUrl("does not parse"))?;
        if !matches!(u.scheme(), "http" | "https") {
            return Err(GuardError::BadUrl("is not http or https"));
        }
        if !u.username().is_empty() || u.password().is_some() {
            return Err(GuardError::BadUrl(
                "carries credentials: use headers instead",
            ));
        }
        let ip = match u.host() {
            None => return Err(GuardError::BadUrl("has no host")),
            Some(url::Host::Domain(_)) => None,
            Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
        };
        if let Some(ip) = ip {
            let host = u.host_str().unwrap_or_default();
            let allow = &self.at(&u).checker.allow;
            if !allow.addr(ip)
                && !allow.host(host)
                && let Some(reason) = refused(ip)
            {
                return Err(GuardError::Refused {
                    host: host.to_owned(),
                    reason,
                });
            }
        }
        Ok(u)
    }

    /// Checks `url` fully: [`Guard::parse`], then the addresses its host name resolves to.
    pub async fn check(&self, url: &str) -> Result<Url, GuardError> {
        let u = self.parse(url)?;
        if let Some(url::Host::Domain(name)) = u.host() {
            self.at(&u).checker.resolve(name).await?;
        }
        Ok(u)
    }

    /// A request to `url` (checked by [`Guard::parse`]) through the guarded client: its
    /// connection goes only to addresses the guard resolved and checked.
    pub fn request(
        &self,
        method: reqwest::Method,
        url: &str,
    ) -> Result<reqwest::RequestBuilder, GuardError> {
        let u = self.parse(url)?;
        let client = (self.at(&u).client.as_ref()).ok_or(GuardError::NoClient)?;
        Ok(client.request(method, u))
    }
}

/// What a failed request says, with the guard's refusal when that is the cause.
pub(crate) fn describe(e: &reqwest::Error) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(g) = s.downcast_ref::<GuardError>() {
            return g.to_string();
        }
        source = s.source();
    }
    if e.is_timeout() {
        "the request timed out".into()
    } else if e.is_connect() {
        "the connection failed".into()
    } else {
        "the request failed".into()
    }
}

/// Most custom headers per webhook.
pub const MAX_HEADERS: usize = 20;

const HEADER_DENY: [&str; 9] = [
    "content-type",
    "content-length",
    "host",
    "connection",
    "transfer-encoding",
    "te",
    "upgrade",
    "keep-alive",
    "proxy-authorization",
];

pub(crate) fn check_headers(h: &BTreeMap<String, String>) -> Result<(), EventsError> {
    if h.len() > MAX_HEADERS {
        return Err(EventsError::invalid(
            "headers",
            format!("at most {MAX_HEADERS} headers"),
        ));
    }
    for (name, value) in h {
        let lower = name.to_ascii_lowercase();
        let token = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !token || lower.starts_with("webhook-") || HEADER_DENY.contains(&lower.as_str()) {
            return Err(EventsError::invalid(
                "headers",
                format!(
                    "header `{name}` cannot be set: use a token name other than `webhook-*`, \
                     `content-type` and hop-by-hop headers"
                ),
            ));
        }
        if value.len() > 4096 || value.bytes().any(|b| b < 0x20 && b != b'\t' || b == 0x7f) {
            return Err(EventsError::invalid(
                "headers",
                format!("the value of header `{name}` has control characters or is too long"),
            ));
        }
    }
    Ok(())
}
