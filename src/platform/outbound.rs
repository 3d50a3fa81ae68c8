//! The one outbound HTTP client: timeouts, size caps, and a guard against server-side
//! request forgery.
//!
//! Two clients share the settings. `guarded()` is for URLs a caller supplies (url2text and
//! any service that fetches what a user names): it refuses loopback, private, link-local,
//! unique-local, multicast, unspecified and other internal addresses — the cloud metadata
//! address 169.254.169.254 included — checked on the resolved IPs at connect time (so a
//! hostname that resolves inside is refused, and the address checked is the address used)
//! and on the URL of every redirect (IP literals never reach the resolver). `trusted()` is
//! for endpoints the operator configured (LLM providers, which may well be a llama.cpp on
//! loopback). Neither uses environment proxies, which would bypass the guard.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use bytes::Bytes;
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect::{Attempt, Policy};

/// Redirects followed at most.
pub const MAX_REDIRECTS: usize = 5;
/// How long establishing a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// What the guarded client says it is: a browser, since many sites serve others less.
pub const BROWSER_USER_AGENT: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36 Toolshed/0.1";

/// Who may be reached from the guarded client besides public addresses.
#[derive(Debug, Clone, Default)]
pub struct GuardPolicy {
    /// Lift the guard entirely (local development and tests).
    pub allow_private: bool,
    /// Hosts (lower-case names or IPs) reachable even when they resolve inside.
    pub allow_hosts: Vec<String>,
}

impl GuardPolicy {
    fn allows_host(&self, host: &str) -> bool {
        self.allow_private
            || self
                .allow_hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(host))
    }
}

/// Why an outbound request failed.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// The URL is not one we fetch (bad syntax, scheme, credentials).
    #[error("{0}")]
    BadUrl(String),
    /// The URL or an address it resolves to is internal.
    #[error("{0}")]
    Blocked(String),
    #[error("the request timed out")]
    Timeout,
    #[error("too many redirects (more than {MAX_REDIRECTS})")]
    TooManyRedirects,
    /// The answer is larger than the cap.
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
    /// Connecting or reading failed.
    #[error("{0}")]
    Transport(String),
    /// As many fetches as allowed are running and none ended in time.
    #[error("{0}")]
    Busy(String),
}

/// The header that marks a fetch of a caller-supplied URL with its own random token, so that
/// the instance recognises a fetch of itself (`Outbound::is_own_fetch`).
pub const FETCH_HEADER: &str = "x-toolshed-fetch";

/// Fetches of caller-supplied URLs in flight: how many may run at once, and their tokens.
struct Fetches {
    permits: Arc<Semaphore>,
    /// How many may run at once.
    concurrency: usize,
    tokens: Mutex<HashSet<String>>,
}

/// One fetch in flight: its slot and its token (send it as [`FETCH_HEADER`]). Dropping it
/// frees both.
pub struct Fetch {
    pub token: String,
    fetches: Arc<Fetches>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Fetch {
    fn drop(&mut self) {
        if let Ok(mut tokens) = self.fetches.tokens.lock() {
            tokens.remove(&self.token);
        }
    }
}

/// Refusal by the resolver, found again in the error chain.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct BlockedAddress(String);

/// Whether an address is internal: anything but a public unicast address.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_internal_v4(v4),
            None => is_internal_v6(v6),
        },
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_unspecified()
        || a == 0
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || (a == 100 && (b & 0xC0) == 64) // 100.64/10 shared address space
        || (a == 192 && b == 0 && c == 0) // 192.0.0/24 protocol assignments
        || (a == 198 && (b & 0xFE) == 18) // 198.18/15 benchmarking
        || a >= 240 // 240/4 reserved
}

fn is_internal_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || ip.is_unique_local()
        || ip.is_unicast_link_local()
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x0064 && s[1] == 0xff9b) // NAT64: reaches IPv4 internals
        || s[0] == 0x2002 // 6to4: embeds an IPv4 address
        || (s[0] == 0x2001 && s[1] == 0) // Teredo
        || ip.to_ipv4().is_some_and(is_internal_v4) // IPv4-compatible (deprecated)
}

/// Checks a URL before it is fetched (and each redirect target): http(s) only, no
/// credentials, and no internal IP literal or localhost name unless allowed.
pub fn check_url(url: &Url, policy: &GuardPolicy) -> Result<(), OutboundError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(OutboundError::BadUrl(format!(
            "only http and https URLs can be fetched, not {}:",
            url.scheme()
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(OutboundError::BadUrl(
            "URLs with credentials are not fetched".into(),
        ));
    }
    let host = url
        .host_str()
        .ok_or_else(|| OutboundError::BadUrl("the URL has no host".into()))?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if policy.allows_host(bare) {
        return Ok(());
    }
    if let Ok(ip) = bare.parse::<IpAddr>() {
        if is_internal(ip) {
            return Err(OutboundError::Blocked(format!(
                "{ip} is an internal address; fetching it is not allowed"
            )));
        }
    } else {
        let name = bare.trim_end_matches('.').to_ascii_lowercase();
        if name == "localhost" || name.ends_with(".localhost") {
            return Err(OutboundError::Blocked(format!(
                "{host} is this machine; fetching it is not allowed"
            )));
        }
    }
    Ok(())
}

/// Resolves names and refuses internal answers, so the address checked is the one used.
struct GuardedResolver {
    policy: Arc<GuardPolicy>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let policy = self.policy.clone();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if policy.allows_host(&host) {
                let addrs: Addrs = Box::new(found.into_iter());
                return Ok(addrs);
            }
            if let Some(bad) = found.iter().find(|a| is_internal(a.ip())) {
                return Err(Box::new(BlockedAddress(format!(
                    "{host} resolves to the internal address {}; fetching it is not allowed",
                    bad.ip()
                )))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            let addrs: Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

/// The shared outbound clients, each built on first use: a TLS client holds the parsed root
/// certificates, memory an instance that never fetches should not pay for.
#[derive(Clone)]
pub struct Outbound {
    guarded: Arc<OnceLock<reqwest::Client>>,
    webhooks: Arc<OnceLock<reqwest::Client>>,
    trusted: Arc<OnceLock<reqwest::Client>>,
    policy: Arc<GuardPolicy>,
    fetches: Arc<Fetches>,
}

/// The guarded client; `follow` says whether it follows redirects (each checked again).
fn build_guarded(
    policy: &Arc<GuardPolicy>,
    follow: bool,
) -> Result<reqwest::Client, OutboundError> {
    let redirect_policy = policy.clone();
    let redirects = if follow {
        Policy::custom(move |attempt: Attempt| {
            if attempt.previous().len() > MAX_REDIRECTS {
                return attempt.error(OutboundError::TooManyRedirects);
            }
            match check_url(attempt.url(), &redirect_policy) {
                Ok(()) => attempt.follow(),
                Err(e) => attempt.error(e),
            }
        })
    } else {
        Policy::none()
    };
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver {
            policy: policy.clone(),
        }))
        .redirect(redirects)
        .no_proxy()
        .connect_timeout(CONNECT_TIMEOUT)
        .user_agent(BROWSER_USER_AGENT)
        .build()
        .map_err(|e| OutboundError::Transport(format!("cannot build the HTTP client: {e}")))
}

fn build_trusted() -> Result<reqwest::Client, OutboundError> {
    reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(CONNECT_TIMEOUT)
        .user_agent(concat!("toolshed/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| OutboundError::Transport(format!("cannot build the HTTP client: {e}")))
}

/// The client in `cell`, built by `build` the first time.
fn get_or_build(
    cell: &OnceLock<reqwest::Client>,
    build: impl FnOnce() -> Result<reqwest::Client, OutboundError>,
) -> Result<&reqwest::Client, OutboundError> {
    if let Some(client) = cell.get() {
        return Ok(client);
    }
    let client = build()?;
    Ok(cell.get_or_init(|| client))
}

impl Outbound {
    /// The clients for `policy`, running at most `concurrency` fetches of caller-supplied
    /// URLs at once.
    pub fn new(policy: GuardPolicy, concurrency: usize) -> Outbound {
        Outbound {
            guarded: Arc::default(),
            webhooks: Arc::default(),
            trusted: Arc::default(),
            policy: Arc::new(policy),
            fetches: Arc::new(Fetches {
                permits: Arc::new(Semaphore::new(concurrency.max(1))),
                concurrency: concurrency.max(1),
                tokens: Mutex::default(),
            }),
        }
    }

    /// A slot for one fetch of a caller-supplied URL, waiting at most `wait` for one to free.
    pub async fn begin_fetch(&self, wait: Duration) -> Result<Fetch, OutboundError> {
        let permit = tokio::time::timeout(wait, self.fetches.permits.clone().acquire_owned())
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or_else(|| {
                OutboundError::Busy(format!(
                    "{} fetches are running and none ended within {} s; try again shortly",
                    self.fetches.concurrency,
                    wait.as_secs()
                ))
            })?;
        let token = uuid::Uuid::new_v4().simple().to_string();
        if let Ok(mut tokens) = self.fetches.tokens.lock() {
            tokens.insert(token.clone());
        }
        Ok(Fetch {
            token,
            fetches: self.fetches.clone(),
            _permit: permit,
        })
    }

    /// Whether a request carries the token of one of this instance's fetches in flight: the
    /// instance is fetching itself.
    pub fn is_own_fetch(&self, headers: &axum::http::HeaderMap) -> bool {
        let Some(token) = headers.get(FETCH_HEADER).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        self.fetches
            .tokens
            .lock()
            .is_ok_and(|tokens| tokens.contains(token))
    }

    /// For URLs a caller supplied: call [`Outbound::check`] first.
    pub fn guarded(&self) -> Result<&reqwest::Client, OutboundError> {
        get_or_build(&self.guarded, || build_guarded(&self.policy, true))
    }

    /// For webhooks: guarded like [`Outbound::guarded`], and following no redirect.
    pub fn webhooks(&self) -> Result<&reqwest::Client, OutboundError> {
        get_or_build(&self.webhooks, || build_guarded(&self.policy, false))
    }

    /// Whether the policy lets `host` through even when it is internal (or lifts the guard).
    pub fn allows_host(&self, host: &str) -> bool {
        self.policy
            .allows_host(host.trim_start_matches('[').trim_end_matches(']'))
    }

    /// For endpoints the operator configured.
    pub fn trusted(&self) -> Result<&reqwest::Client, OutboundError> {
        get_or_build(&self.trusted, build_trusted)
    }

    /// Checks a caller-supplied URL against the guard.
    pub fn check(&self, url: &Url) -> Result<(), OutboundError> {
        check_url(url, &self.policy)
    }
}

/// Turns a reqwest error into ours, finding the guard's refusals in the chain.
pub fn classify(error: reqwest::Error) -> OutboundError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(e) = source {
        if let Some(blocked) = e.downcast_ref::<BlockedAddress>() {
            return OutboundError::Blocked(blocked.0.clone());
        }
        if let Some(ours) = e.downcast_ref::<OutboundError>() {
            return match ours {
                OutboundError::BadUrl(m) => OutboundError::BadUrl(m.clone()),
                OutboundError::Blocked(m) => OutboundError::Blocked(m.clone()),
                OutboundError::TooManyRedirects => OutboundError::TooManyRedirects,
                other => OutboundError::Transport(other.to_string()),
            };
        }
        source = e.source();
    }
    if error.is_timeout() {
        return OutboundError::Timeout;
    }
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(e) = source {
        message = format!("{message}: {e}");
        source = e.source();
    }
    OutboundError::Transport(message)
}

/// Reads a body up to `max` bytes (after decompression, so compression bombs stop too).
pub async fn read_capped(
    mut response: reqwest::Response,
    max: usize,
) -> Result<Bytes, OutboundError> {
    if response.content_length().is_some_and(|n| n > max as u64) {
        return Err(OutboundError::TooLarge(max));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(classify)? {
        if body.len() + chunk.len() > max {
            return Err(OutboundError::TooLarge(max));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_recognised() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "ff02::1",
        ] {
            assert!(is_internal(ip.parse().expect("ip")), "{ip} is internal");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "::ffff:8.8.8.8", "2606:4700::1111"] {
            assert!(!is_internal(ip.parse().expect("ip")), "{ip} is public");
        }
    }

    #[test]
    fn urls_are_checked_for_scheme_credentials_and_internal_hosts() {
        let policy = GuardPolicy::default();
        let check = |u: &str| check_url(&Url::parse(u).expect("url"), &policy);
        assert!(check("https://example.com/a").is_ok());
        assert!(matches!(
            check("ftp://example.com/"),
            Err(OutboundError::BadUrl(_))
        ));
        assert!(matches!(
            check("file:///etc/passwd"),
            Err(OutboundError::BadUrl(_))
        ));
        assert!(matches!(
            check("https://u:p@example.com/"),
            Err(OutboundError::BadUrl(_))
        ));
        assert!(matches!(
            check("http://169.254.169.254/latest/meta-data"),
            Err(OutboundError::Blocked(_))
        ));
        assert!(matches!(
            check("http://[::1]:8080/"),
            Err(OutboundError::Blocked(_))
        ));
        assert!(
            matches!(check("http://2130706433/"), Err(OutboundError::Blocked(_))),
            "decimal 127.0.0.1"
        );
        assert!(matches!(
            check("http://localhost./"),
            Err(OutboundError::Blocked(_))
        ));
        let open = GuardPolicy {
            allow_private: true,
            allow_hosts: vec![],
        };
        assert!(check_url(&Url::parse("http://127.0.0.1/").expect("url"), &open).is_ok());
        let listed = GuardPolicy {
            allow_private: false,
            allow_hosts: vec!["127.0.0.1".into()],
        };
        assert!(check_url(&Url::parse("http://127.0.0.1/").expect("url"), &listed).is_ok());
    }
}
