//! Who may call this instance: bearer tokens.
//!
//! Every request needs `Authorization: Bearer <token>` (or `x-api-key: <token>`, as the
//! Anthropic SDKs send it) except `GET /api/health` and
//! `GET /api/health/ready` (an orchestrator's probes); `/openapi.json`, `/reference` and
//! unknown paths follow the same rule as `/api`, so nothing can be probed without a token.
//! Tokens come from `TOOLSHED_API_TOKENS` (comma-separated) and `TOOLSHED_API_TOKENS_FILE`
//! (one a line, `#` comments), the file re-read on SIGHUP. Only their SHA-256 hashes are
//! kept, and a presented token is compared with every hash in constant time.
//!
//! **Tasks run with their caller's rights**: an enqueued task records the fingerprint of
//! the token that enqueued it; its in-process requests carry [`OnBehalfOf`] (a request
//! extension, which no network request can set) and pass only while that token is still in
//! force. A task enqueued without a token (before tokens were configured) cannot run once
//! there are tokens.
//!
//! **Never open by accident**: with no token at all, an instance serves only when it listens
//! on loopback in `development` or `test` (so `cargo run` just works), and then only to
//! requests whose `Host` names this machine (`localhost`, `127.0.0.1`, `[::1]`, or
//! `TOOLSHED_ALLOWED_HOSTS`): a web page the user visits cannot rebind a name of its own to
//! 127.0.0.1 and drive the instance. Anywhere else it refuses to start.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use axum::http::{HeaderMap, header};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::env::{Config, RunEnv, Secret};

/// A short name for a token, safe to log: the first four bytes of its hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 4]);

impl Fingerprint {
    /// `tok_` and eight hex digits, written into `buffer` (no allocation: the request log
    /// writes one per request).
    pub fn text<'b>(&self, buffer: &'b mut [u8; 12]) -> &'b str {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        buffer[..4].copy_from_slice(b"tok_");
        for (i, byte) in self.0.iter().enumerate() {
            buffer[4 + 2 * i] = HEX[usize::from(byte >> 4)];
            buffer[5 + 2 * i] = HEX[usize::from(byte & 0xf)];
        }
        std::str::from_utf8(buffer).unwrap_or("tok_?")
    }
}

impl Fingerprint {
    /// The fingerprint `tok_` + eight hex digits names.
    pub fn parse(text: &str) -> Option<Fingerprint> {
        let hex = text.strip_prefix("tok_")?;
        if hex.len() != 8 {
            return None;
        }
        let mut bytes = [0u8; 4];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Fingerprint(bytes))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text(&mut [0; 12]))
    }
}

/// The hashes of the tokens in force.
#[derive(Debug, Default)]
pub struct TokenSet {
    hashes: Vec<[u8; 32]>,
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl TokenSet {
    /// The tokens of `inline` (comma-separated) and of the lines of `file` (blank lines and
    /// `#` comments skipped).
    pub fn read(inline: Option<&Secret>, file: Option<&Path>) -> Result<TokenSet, String> {
        let mut tokens: Vec<String> = inline
            .map(|s| {
                s.expose()
                    .split(',')
                    .map(str::trim)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read the tokens file {}: {e}", path.display()))?;
            tokens.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|line| !line.is_empty() && !line.starts_with('#'))
                    .map(str::to_owned),
            );
        }
        tokens.retain(|t| !t.is_empty());
        if let Some(bad) = tokens
            .iter()
            .find(|t| t.len() < 16 || t.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            return Err(format!(
                "a token must be at least 16 characters without spaces; one ({} characters) is not",
                bad.len()
            ));
        }
        Ok(TokenSet {
            hashes: tokens.iter().map(|t| hash(t)).collect(),
        })
    }

    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// Whether a token in force has this fingerprint.
    fn has(&self, fingerprint: Fingerprint) -> bool {
        self.hashes.iter().any(|h| h[..4] == fingerprint.0)
    }

    /// The fingerprint of `presented` if it is one of the tokens. Compares with every hash,
    /// each in constant time, whether or not one matched.
    pub fn find(&self, presented: &str) -> Option<Fingerprint> {
        let presented = hash(presented);
        let mut found = None;
        for known in &self.hashes {
            if bool::from(known.ct_eq(&presented)) {
                found = Some(Fingerprint([known[0], known[1], known[2], known[3]]));
            }
        }
        found
    }
}

/// The token of an `Authorization: Bearer <token>` header, else of an `x-api-key` header
/// (where the Anthropic SDKs send their key).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return headers
            .get("x-api-key")?
            .to_str()
            .ok()
            .map(str::trim)
            .filter(|t| !t.is_empty());
    };
    let (scheme, token) = value.to_str().ok()?.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The answer to "may this request go on?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A known token: who it was.
    Token(Fingerprint),
    /// No token is configured (a loopback development instance) and the `Host` is ours.
    Open,
    /// No or a wrong token.
    Unauthorized,
    /// No token is configured and the `Host` names someone else (DNS rebinding).
    ForeignHost,
    /// An admin route on an instance with API tokens but no admin token.
    NoAdminTokens,
}

/// On an in-process request (a task's): the caller the task acts for, as recorded when it
/// was enqueued (`None`: enqueued on an instance without tokens).
#[derive(Debug, Clone, Copy)]
pub struct OnBehalfOf(pub Option<Fingerprint>);

/// The access rules of a running instance; the token set is swapped whole on reload.
#[derive(Clone)]
pub struct Access {
    tokens: Arc<RwLock<Arc<TokenSet>>>,
    inline: Option<Secret>,
    file: Option<PathBuf>,
    /// Whether an empty token set may serve (loopback, development or test).
    may_be_open: bool,
    /// Host names an open instance answers to.
    own_hosts: Arc<Vec<String>>,
    /// The token of `GET /metrics`, when set (it opens nothing else).
    metrics: Arc<TokenSet>,
    /// The tokens of `/api/admin` (they open nothing else).
    admin: Arc<TokenSet>,
}

/// Loopback, in development or test: the one place an instance may serve without tokens.
fn may_be_open(config: &Config) -> bool {
    config.host.is_loopback() && matches!(config.env, RunEnv::Development | RunEnv::Test)
}

impl Access {
    /// Reads the tokens; refuses to go on with none where that would expose the instance.
    pub fn load(config: &Config) -> Result<Access, String> {
        let inline = config.api_tokens.clone();
        let file = config.api_tokens_file.clone();
        let tokens = TokenSet::read(inline.as_ref(), file.as_deref())?;
        let may_be_open = may_be_open(config);
        if tokens.is_empty() && !may_be_open {
            return Err(format!(
                "no API token is configured, and this instance would be open to anyone (it \
                 listens on {} in {:?}): set TOOLSHED_API_TOKENS or TOOLSHED_API_TOKENS_FILE",
                config.host, config.env
            ));
        }
        let mut own_hosts: Vec<String> = ["localhost", "127.0.0.1", "[::1]"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        own_hosts.extend(config.allowed_hosts.iter().cloned());
        let metrics = TokenSet::read(config.metrics_token.as_ref(), None)
            .map_err(|e| format!("TOOLSHED_METRICS_TOKEN: {e}"))?;
        let admin = TokenSet::read(config.admin_tokens.as_ref(), None)
            .map_err(|e| format!("TOOLSHED_ADMIN_TOKENS: {e}"))?;
        Ok(Access {
            metrics: Arc::new(metrics),
            admin: Arc::new(admin),
            tokens: Arc::new(RwLock::new(Arc::new(tokens))),
            inline,
            file,
            may_be_open,
            own_hosts: Arc::new(own_hosts),
        })
    }

    /// How many tokens are in force.
    pub fn token_count(&self) -> usize {
        self.current().len()
    }

    fn current(&self) -> Arc<TokenSet> {
        match self.tokens.read() {
            Ok(tokens) => tokens.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reads the tokens again (on SIGHUP). A file that cannot be read, holds a bad token, or
    /// would leave an instance that must not be open without tokens keeps the old set.
    pub fn reload(&self) -> Result<usize, String> {
        let tokens = TokenSet::read(self.inline.as_ref(), self.file.as_deref())?;
        if tokens.is_empty() && !self.may_be_open {
            return Err("the new token set is empty; keeping the old one".into());
        }
        let count = tokens.len();
        match self.tokens.write() {
            Ok(mut current) => *current = Arc::new(tokens),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(tokens),
        }
        Ok(count)
    }

    /// Judges a request by its headers.
    pub fn verdict(&self, headers: &HeaderMap) -> Verdict {
        let tokens = self.current();
        if tokens.is_empty() {
            return if self.host_is_own(headers) {
                Verdict::Open
            } else {
                Verdict::ForeignHost
            };
        }
        match bearer(headers).and_then(|token| tokens.find(token)) {
            Some(fingerprint) => Verdict::Token(fingerprint),
            None => Verdict::Unauthorized,
        }
    }

    /// Judges a scrape of `/metrics`: by the metrics token when one is set (`None` when
    /// not: the scrape then follows the API's rule).
    pub fn metrics_verdict(&self, headers: &HeaderMap) -> Option<Verdict> {
        if self.metrics.is_empty() {
            return None;
        }
        Some(
            match bearer(headers).and_then(|token| self.metrics.find(token)) {
                Some(fingerprint) => Verdict::Token(fingerprint),
                None => Verdict::Unauthorized,
            },
        )
    }

    /// Judges a request to `/api/admin`: by the admin tokens only. Without any, an instance
    /// open to its own machine (no API token either) is open here too; one with API tokens
    /// keeps its admin routes shut.
    pub fn admin_verdict(&self, headers: &HeaderMap) -> Verdict {
        if self.admin.is_empty() {
            return if self.current().is_empty() {
                self.verdict(headers)
            } else {
                Verdict::NoAdminTokens
            };
        }
        match bearer(headers).and_then(|token| self.admin.find(token)) {
            Some(fingerprint) => Verdict::Token(fingerprint),
            None => Verdict::Unauthorized,
        }
    }

    /// Judges an in-process request made for `caller`: it passes while the caller's token
    /// is in force (or while the instance has no tokens at all).
    pub fn verdict_for(&self, caller: Option<Fingerprint>) -> Verdict {
        let tokens = self.current();
        if tokens.is_empty() {
            return Verdict::Open;
        }
        match caller {
            Some(fingerprint) if tokens.has(fingerprint) => Verdict::Token(fingerprint),
            _ => Verdict::Unauthorized,
        }
    }

    /// Who made a request that was let in: the task's caller for an in-process request,
    /// else the token it presented (`None` on an instance without tokens).
    pub fn caller(&self, parts: &axum::http::request::Parts) -> Option<Fingerprint> {
        if let Some(OnBehalfOf(caller)) = parts.extensions.get::<OnBehalfOf>() {
            return *caller;
        }
        match self.verdict(&parts.headers) {
            Verdict::Token(fingerprint) => Some(fingerprint),
            _ => None,
        }
    }

    /// Whether the `Host` header names this machine (any port). A request without one
    /// (HTTP/1.0) is not a browser's.
    fn host_is_own(&self, headers: &HeaderMap) -> bool {
        let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
            return true;
        };
        let host = host.trim().to_ascii_lowercase();
        let name = match host.rsplit_once(':') {
            // `[::1]:8000`, `localhost:8000`; a bare `[::1]` has its colons inside brackets.
            Some((name, port))
                if !port.contains(']') && port.bytes().all(|b| b.is_ascii_digit()) =>
            {
                name
            }
            _ => host.as_str(),
        };
        self.own_hosts.iter().any(|own| own == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::SettingsArgs;
    use axum::http::HeaderValue;

    fn config(args: SettingsArgs) -> Config {
        Config::from_args(&args).expect("valid settings")
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).expect("value"));
        }
        map
    }

    #[test]
    fn tokens_are_matched_by_hash_and_named_by_fingerprint() {
        let set = TokenSet::read(
            Secret::new("first-token-0123456, second-token-0123456").as_ref(),
            None,
        )
        .expect("tokens");
        assert_eq!(set.len(), 2);
        let fingerprint = set.find("second-token-0123456").expect("known");
        assert_eq!(fingerprint.to_string().len(), 12);
        assert!(!fingerprint.to_string().contains("second"));
        assert_eq!(set.find("second-token-012345"), None);
        assert!(TokenSet::read(Secret::new("short").as_ref(), None).is_err());
    }

    #[test]
    fn a_fingerprint_reads_back_from_its_text_and_names_its_token() {
        let set = TokenSet::read(
            Secret::new("first-token-0123456,second-token-0123456").as_ref(),
            None,
        )
        .expect("tokens");
        let fingerprint = set.find("second-token-0123456").expect("known");
        let parsed = Fingerprint::parse(&fingerprint.to_string()).expect("parses");
        assert_eq!(parsed, fingerprint);
        assert!(set.has(parsed));
        for bad in [
            "tok_",
            "tok_1234567",
            "tok_123456789",
            "tok_zz345678",
            "abc_12345678",
            "tok_é234567",
        ] {
            assert_eq!(Fingerprint::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_file_takes_one_token_a_line_with_comments() {
        let dir = tempfile::TempDir::new().expect("dir");
        let path = dir.path().join("tokens");
        std::fs::write(
            &path,
            "# the laptop\nlaptop-token-0123456789\n\n  phone-token-0123456789  \n",
        )
        .expect("write");
        let set = TokenSet::read(None, Some(&path)).expect("tokens");
        assert_eq!(set.len(), 2);
        assert!(set.find("phone-token-0123456789").is_some());
        assert!(TokenSet::read(None, Some(&dir.path().join("missing"))).is_err());
    }

    #[test]
    fn without_tokens_only_a_loopback_development_instance_starts() {
        assert!(Access::load(&config(SettingsArgs::default())).is_ok());
        let exposed = SettingsArgs {
            host: Some("0.0.0.0".into()),
            ..Default::default()
        };
        let refused = Access::load(&config(exposed)).err().expect("refused");
        assert!(refused.contains("TOOLSHED_API_TOKENS"), "{refused}");
        let production = SettingsArgs {
            env: Some("production".into()),
            ..Default::default()
        };
        assert!(Access::load(&config(production)).is_err());
        let with_token = SettingsArgs {
            host: Some("0.0.0.0".into()),
            api_tokens: Some("a-long-enough-token-123".into()),
            ..Default::default()
        };
        assert!(Access::load(&config(with_token)).is_ok());
    }

    #[test]
    fn verdicts_follow_the_token_and_the_host() {
        let open = Access::load(&config(SettingsArgs::default())).expect("open");
        assert_eq!(
            open.verdict(&headers(&[("host", "localhost:8000")])),
            Verdict::Open
        );
        assert_eq!(
            open.verdict(&headers(&[("host", "[::1]:8000")])),
            Verdict::Open
        );
        assert_eq!(
            open.verdict(&headers(&[("host", "127.0.0.1")])),
            Verdict::Open
        );
        assert_eq!(
            open.verdict(&headers(&[("host", "evil.example:8000")])),
            Verdict::ForeignHost
        );
        let guarded = Access::load(&config(SettingsArgs {
            api_tokens: Some("a-long-enough-token-123".into()),
            ..Default::default()
        }))
        .expect("guarded");
        assert!(matches!(
            guarded.verdict(&headers(&[(
                "authorization",
                "Bearer a-long-enough-token-123"
            )])),
            Verdict::Token(_)
        ));
        assert!(matches!(
            guarded.verdict(&headers(&[(
                "authorization",
                "bearer  a-long-enough-token-123 "
            )])),
            Verdict::Token(_)
        ));
        assert_eq!(
            guarded.verdict(&headers(&[("authorization", "Bearer wrong-token-1234567")])),
            Verdict::Unauthorized
        );
        assert_eq!(guarded.verdict(&headers(&[])), Verdict::Unauthorized);
        assert!(matches!(
            guarded.verdict(&headers(&[("x-api-key", "a-long-enough-token-123")])),
            Verdict::Token(_)
        ));
        assert_eq!(
            guarded.verdict(&headers(&[
                ("authorization", "Bearer wrong-token-1234567"),
                ("x-api-key", "a-long-enough-token-123")
            ])),
            Verdict::Unauthorized,
            "a wrong Authorization is not rescued by another header"
        );
    }
}
