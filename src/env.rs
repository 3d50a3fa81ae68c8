//! Every setting Toolshed reads: its env var, its flag, its default and its validation.
//!
//! This is the single source of truth for configuration (the `env.ts` of the original
//! design). Each setting is declared once, in the `settings!` table below; the macro makes
//! the command-line flags (`SettingsArgs`), the validated values (`Config`) and the table
//! the README shows (`SETTINGS`, checked against README.md by a test). Settings are read
//! once at start-up, validated all together, and handed to the services inside `AppState`;
//! no other module reads the process environment.
//!
//! Flags win over env vars, env vars win over defaults (clap does the layering). Values are
//! taken as strings and validated here, so that one run reports *every* bad setting at once
//! instead of stopping at the first.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::platform::outbound::GuardPolicy;
use crate::storage::Durability;

/// One declared setting, as `--help` and the README show it.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// The field name; the flag is this with `-` for `_`.
    pub name: &'static str,
    pub env: &'static str,
    /// The default as the README shows it.
    pub default: &'static str,
    /// What values it takes (also the error message's "expected …").
    pub accepts: &'static str,
    /// What it sets.
    pub help: &'static str,
    /// Never printed (API keys).
    pub secret: bool,
}

impl Setting {
    /// `--flag-name`.
    pub fn flag(&self) -> String {
        format!("--{}", self.name.replace('_', "-"))
    }
}

/// Declares every setting once; see the module docs for what it generates.
macro_rules! settings {
    ($(
        $(#[doc = $help:literal])+
        $name:ident: $ty:ty {
            env: $env:literal,
            default: $default:literal,
            $(shown: $shown:literal,)?
            accepts: $accepts:literal,
            parse: $parse:expr
            $(, secret: $secret:literal)?
            $(,)?
        }
    )*) => {
        /// The raw settings as given on the command line or in the environment.
        #[derive(Debug, Clone, Default, clap::Args)]
        pub struct SettingsArgs {
            $(
                #[arg(long, env = $env, hide_env = true,
                      hide = settings!(@secret $($secret)?),
                      help = concat!($($help),+, " [env: ", $env, "] [default: ",
                                     settings!(@shown $default $(, $shown)?), "]"))]
                pub $name: Option<String>,
            )*
        }

        /// Every setting, in the order the README lists them.
        pub const SETTINGS: &[Setting] = &[$(
            Setting {
                name: stringify!($name),
                env: $env,
                default: settings!(@shown $default $(, $shown)?),
                accepts: $accepts,
                help: concat!($($help, "\n"),+),
                secret: settings!(@secret $($secret)?),
            },
        )*];

        /// The validated configuration, read once at start-up.
        #[derive(Debug, Clone)]
        pub struct Config {
            $(
                $(#[doc = $help])+
                pub $name: $ty,
            )*
            /// Environment variables that settings name indirectly (the models file's
            /// `api_key_env`), captured at start.
            pub named_secrets: NamedSecrets,
        }

        impl Config {
            /// Validates the raw settings, reporting every bad one at once; captures the
            /// environment for secrets named indirectly.
            pub fn from_args(args: &SettingsArgs) -> Result<Config, ConfigErrors> {
                let mut errors = Vec::new();
                $(
                    let $name: Option<$ty> = parse_setting(
                        &mut errors,
                        &SETTINGS_BY_NAME.$name,
                        args.$name.as_deref(),
                        $default,
                        $parse,
                    );
                )*
                let ($(Some($name),)*) = ($($name,)*) else {
                    return Err(ConfigErrors(errors));
                };
                if !errors.is_empty() {
                    return Err(ConfigErrors(errors));
                }
                Ok(Config {
                    $($name,)*
                    named_secrets: NamedSecrets::capture(),
                })
            }
        }

        /// Each setting's declaration by name, for the validation messages.
        struct SettingsByName {
            $($name: Setting,)*
        }

        const SETTINGS_BY_NAME: SettingsByName = {
            let mut i = 0;
            $(
                let $name = SETTINGS[i];
                i += 1;
            )*
            let _ = i;
            SettingsByName { $($name,)* }
        };
    };
    (@shown $default:literal) => { concat!("`", $default, "`") };
    (@shown $default:literal, $shown:literal) => { $shown };
    (@secret) => { false };
    (@secret $secret:literal) => { $secret };
}

/// Parses one setting (or its default when unset); on failure records
/// "NAME (--flag) = "value": expected …".
fn parse_setting<T>(
    errors: &mut Vec<String>,
    setting: &Setting,
    raw: Option<&str>,
    default: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Option<T> {
    let given = raw.unwrap_or(default);
    let parsed = parse(given.trim());
    if parsed.is_none() {
        let shown = if setting.secret { "***" } else { given };
        errors.push(format!(
            "{} ({}) = {shown:?}: expected {}",
            setting.env,
            setting.flag(),
            setting.accepts
        ));
    }
    parsed
}

settings! {
    /// Address to listen on.
    host: IpAddr {
        env: "HOST", default: "127.0.0.1",
        accepts: "an IP address such as 127.0.0.1 or 0.0.0.0, or localhost",
        parse: parse_host,
    }
    /// Port to listen on.
    port: u16 {
        env: "PORT", default: "8000",
        accepts: "a whole number from 0 to 65535 (0 picks a free port)",
        parse: |s| s.parse::<u16>().ok(),
    }
    /// Where the instance runs; changes defaults, never the behaviour of the API.
    env: RunEnv {
        env: "ENV", default: "development",
        accepts: "one of development, production, test",
        parse: parse_run_env,
    }
    /// How much is logged.
    log_level: tracing::Level {
        env: "LOG_LEVEL", default: "info",
        accepts: "one of trace, debug, info, warn, error",
        parse: parse_level,
    }
    /// How log lines are written.
    log_format: Option<LogFormat> {
        env: "LOG_FORMAT", default: "", shown: "`pretty` in development, `json` otherwise",
        accepts: "one of pretty, json",
        parse: parse_format,
    }
    /// API tokens, comma-separated (at least 16 characters each): every request but the
    /// health probes needs one as `Authorization: Bearer`.
    api_tokens: Option<Secret> {
        env: "TOOLSHED_API_TOKENS", default: "", shown: "none",
        accepts: "comma-separated tokens", parse: parse_secret, secret: true,
    }
    /// A file of API tokens, one a line (`#` comments), re-read on SIGHUP.
    api_tokens_file: Option<PathBuf> {
        env: "TOOLSHED_API_TOKENS_FILE", default: "", shown: "none",
        accepts: "a file path",
        parse: |s| Some((!s.is_empty()).then(|| PathBuf::from(s))),
    }
    /// Admin tokens, comma-separated (at least 16 characters each): `/api/admin` (backups)
    /// takes only these, and they open nothing else.
    admin_tokens: Option<Secret> {
        env: "TOOLSHED_ADMIN_TOKENS", default: "", shown: "none",
        accepts: "comma-separated tokens", parse: parse_secret, secret: true,
    }
    /// With no token configured (loopback development only), the other `Host` names the
    /// instance answers to besides `localhost`, `127.0.0.1` and `[::1]`.
    allowed_hosts: Vec<String> {
        env: "TOOLSHED_ALLOWED_HOSTS", default: "", shown: "none",
        accepts: "comma-separated host names or IP addresses",
        parse: parse_hosts,
    }
    /// Origins a web page may call the API from (CORS), comma-separated, or `*` for any;
    /// unset, no CORS headers are sent and browsers keep other origins' pages out.
    cors_origins: Vec<String> {
        env: "TOOLSHED_CORS_ORIGINS", default: "", shown: "none",
        accepts: "comma-separated origins such as https://app.example.com, or *",
        parse: parse_origins,
    }
    /// Requests each API token may make per minute (GCRA: evenly spaced, plus the burst);
    /// the health probes are not counted. 0: no limit.
    rate_limit_per_minute: u32 {
        env: "TOOLSHED_RATE_LIMIT_PER_MINUTE", default: "0", shown: "0 (no limit)",
        accepts: "a whole number from 0 to 6000000",
        parse: |s| whole(s, 0, 6_000_000).and_then(|n| u32::try_from(n).ok()),
    }
    /// Requests a token may make at once, beyond its steady rate.
    rate_limit_burst: u32 {
        env: "TOOLSHED_RATE_LIMIT_BURST", default: "20",
        accepts: "a whole number from 1 to 100000",
        parse: |s| whole(s, 1, 100_000).and_then(|n| u32::try_from(n).ok()),
    }
    /// The token `GET /metrics` takes instead of an API token (at least 16 characters), so
    /// an orchestrator can scrape without holding a user's token.
    metrics_token: Option<Secret> {
        env: "TOOLSHED_METRICS_TOKEN", default: "", shown: "none",
        accepts: "a token of at least 16 characters",
        parse: |s| match Secret::new(s) {
            None => Some(None),
            Some(token) => (token.expose().len() >= 16).then_some(Some(token)),
        },
        secret: true,
    }
    /// Serve `GET /metrics` on this address instead of the API's (only it; with
    /// `TOOLSHED_METRICS_TOKEN` set, behind that token).
    metrics_addr: Option<SocketAddr> {
        env: "TOOLSHED_METRICS_ADDR", default: "", shown: "none (on the API's listener)",
        accepts: "an address and port such as 127.0.0.1:9464",
        parse: |s| if s.is_empty() { Some(None) } else { s.parse().ok().map(Some) },
    }
    /// Refuse to start unless the running executable matches `<executable>.minisig` under
    /// this minisign public key (a `.pub` file, or the key's base64 line).
    require_signature: Option<String> {
        env: "TOOLSHED_REQUIRE_SIGNATURE", default: "", shown: "none (not checked)",
        accepts: "a minisign public key file or base64 key",
        parse: |s| Some((!s.is_empty()).then(|| s.to_owned())),
    }
    /// Where the kernel's configfs-tsm report interface is (AMD SEV-SNP and Intel TDX guests);
    /// without it, attestation answers with the instance key's signature only.
    attestation_tsm_dir: PathBuf {
        env: "TOOLSHED_ATTESTATION_TSM_DIR", default: "/sys/kernel/config/tsm/report",
        accepts: "a directory path",
        parse: |s| (!s.is_empty()).then(|| PathBuf::from(s)),
    }
    /// Directory of the embedded store (created if missing).
    data_dir: PathBuf {
        env: "TOOLSHED_DATA_DIR", default: "./data",
        accepts: "a non-empty directory path",
        parse: |s| (!s.is_empty()).then(|| PathBuf::from(s)),
    }
    /// Time in-flight requests and running tasks get to finish on shutdown.
    shutdown_grace_s: Duration {
        env: "TOOLSHED_SHUTDOWN_GRACE_S", default: "10",
        accepts: "a whole number of seconds from 0 to 3600",
        parse: seconds(0, 3600),
    }
    /// Connections served at once; past them a small reserve answers health probes and
    /// 503 for the rest, then new connections wait.
    max_connections: usize {
        env: "TOOLSHED_MAX_CONNECTIONS", default: "512",
        accepts: "a whole number from 1 to 65535",
        parse: count(1, 65_535),
    }
    /// Time a client has to send a request's headers, from when its connection opens or its
    /// previous answer ends: so also how long an idle keep-alive connection stays open.
    header_timeout_s: Duration {
        env: "TOOLSHED_HEADER_TIMEOUT_S", default: "30",
        accepts: "a whole number of seconds from 1 to 3600",
        parse: seconds(1, 3600),
    }
    /// Largest request body, for routes without a limit of their own (the KV and queue
    /// routes take a value at `TOOLSHED_KV_MAX_VALUE_BYTES` plus 64 KiB if that is more).
    body_limit_bytes: usize {
        env: "TOOLSHED_BODY_LIMIT_BYTES", default: "1048576",
        accepts: "a whole number of bytes from 1024 to 1073741824",
        parse: bytes(1024, 1 << 30),
    }
    /// Time a handler may take to start its answer before the request fails with 503
    /// (long enough for an LLM answer; streams are not cut once started).
    request_timeout_s: Duration {
        env: "TOOLSHED_REQUEST_TIMEOUT_S", default: "300",
        accepts: "a whole number of seconds from 1 to 86400",
        parse: seconds(1, 86_400),
    }
    /// When a commit reaches the disk: `normal` survives a crash of the process, `full`
    /// fsyncs every commit and survives power loss.
    sqlite_sync: Durability {
        env: "TOOLSHED_SQLITE_SYNC", default: "normal",
        accepts: "one of normal, full",
        parse: parse_durability,
    }
    /// Largest KV value and task payload.
    kv_max_value_bytes: usize {
        env: "TOOLSHED_KV_MAX_VALUE_BYTES", default: "1048576",
        accepts: "a whole number of bytes from 1024 to 16777216",
        parse: bytes(1024, 16 << 20),
    }
    /// Attempts of one task kind run at once.
    queue_concurrency: usize {
        env: "TOOLSHED_QUEUE_CONCURRENCY", default: "16",
        accepts: "a whole number from 1 to 1024",
        parse: count(1, 1024),
    }
    /// How long succeeded tasks are kept.
    task_retention_s: Duration {
        env: "TOOLSHED_TASK_RETENTION_S", default: "604800",
        accepts: "a whole number of seconds from 0 to 31536000",
        parse: seconds(0, 365 * 24 * 3600),
    }
    /// Largest blob (a generated image, a transcribed file's result) kept in the data
    /// directory.
    blob_max_bytes: usize {
        env: "TOOLSHED_BLOB_MAX_BYTES", default: "52428800",
        accepts: "a whole number of bytes from 1024 to 1073741824",
        parse: bytes(1024, 1 << 30),
    }
    /// Largest request to `/api/data`: a transaction, an imported JSON document or a stored
    /// blob (kept until deleted with the data directory, in the database).
    data_max_body_bytes: usize {
        env: "TOOLSHED_DATA_MAX_BODY_BYTES", default: "16777216",
        accepts: "a whole number of bytes from 1024 to 1073741824",
        parse: bytes(1024, 1 << 30),
    }
    /// A synopsys server to forward `/api/data` to instead of the embedded fact database
    /// (its protocol only; the JSON conveniences then answer 501).
    data_upstream: Option<String> {
        env: "TOOLSHED_DATA_UPSTREAM", default: "", shown: "unset (the embedded database)",
        accepts: "an http:// or https:// URL",
        parse: |s| match s {
            "" => Some(None),
            url => parse_base_url(url).map(Some),
        },
    }
    /// How long a blob is kept after it was last made; older ones are swept (and made
    /// again when asked for).
    blob_max_age_s: Duration {
        env: "TOOLSHED_BLOB_MAX_AGE_S", default: "2592000",
        accepts: "a whole number of seconds from 60 to 31536000",
        parse: seconds(60, 365 * 24 * 3600),
    }
    /// How many backups `<data dir>/backups/` keeps; the oldest beyond are removed.
    backup_keep: usize {
        env: "TOOLSHED_BACKUP_KEEP", default: "7",
        accepts: "a whole number from 1 to 1000",
        parse: count(1, 1000),
    }
    /// When backups are taken (a 5-field cron pattern or @hourly/@daily/…, read in
    /// `TOOLSHED_BACKUP_TIMEZONE`), as the schedule `toolshed.backup`; `off`: only on demand.
    backup_schedule: Option<String> {
        env: "TOOLSHED_BACKUP_SCHEDULE", default: "@daily",
        accepts: "a cron pattern such as `0 3 * * *`, or off",
        parse: |s| match s {
            "off" => Some(None),
            pattern => crate::storage::schedule::timing::Timing::parse(pattern, "UTC")
                .is_ok()
                .then(|| Some(pattern.to_owned())),
        },
    }
    /// The time zone `TOOLSHED_BACKUP_SCHEDULE` is read in.
    backup_timezone: String {
        env: "TOOLSHED_BACKUP_TIMEZONE", default: "UTC",
        accepts: "an IANA time zone such as Europe/Berlin",
        parse: |s| jiff::tz::TimeZone::get(s).is_ok().then(|| s.to_owned()),
    }
    /// An S3-compatible bucket each backup is also sent to, sealed on this machine with
    /// `TOOLSHED_BACKUP_KEY` (required with it: nothing is uploaded in the clear).
    backup_remote: Option<String> {
        env: "TOOLSHED_BACKUP_REMOTE", default: "", shown: "none (backups stay on this machine)",
        accepts: "s3://bucket or s3://bucket/prefix",
        parse: |s| match s {
            "" => Some(None),
            url => crate::storage::backup::remote::parse_url(url).map(|_| Some(url.to_owned())),
        },
    }
    /// The AES-256 key backups are sealed with before they leave the machine: 64 hex
    /// digits (`openssl rand -hex 32`). Keep a copy elsewhere: without it no copy opens.
    backup_key: Option<Secret> {
        env: "TOOLSHED_BACKUP_KEY", default: "", shown: "none",
        accepts: "64 hex digits",
        parse: |s| match Secret::new(s) {
            None => Some(None),
            Some(key) => crate::storage::backup::sealed::parse_key(key.expose())
                .is_some()
                .then_some(Some(key)),
        },
        secret: true,
    }
    /// The S3-compatible service of `TOOLSHED_BACKUP_REMOTE` when it is not AWS (MinIO,
    /// Cloudflare R2, Backblaze B2 …).
    backup_s3_endpoint: Option<String> {
        env: "TOOLSHED_BACKUP_S3_ENDPOINT", default: "", shown: "AWS S3",
        accepts: "an http:// or https:// URL",
        parse: |s| match s {
            "" => Some(None),
            url => parse_base_url(url).map(Some),
        },
    }
    /// The bucket's region.
    backup_s3_region: String {
        env: "TOOLSHED_BACKUP_S3_REGION", default: "us-east-1",
        accepts: "a region name",
        parse: |s| (!s.is_empty()).then(|| s.to_owned()),
    }
    /// The access key id for the bucket.
    backup_s3_access_key_id: Option<Secret> {
        env: "TOOLSHED_BACKUP_S3_ACCESS_KEY_ID", default: "", shown: "unset",
        accepts: "an access key id", parse: parse_secret, secret: true,
    }
    /// The secret access key for the bucket.
    backup_s3_secret_access_key: Option<Secret> {
        env: "TOOLSHED_BACKUP_S3_SECRET_ACCESS_KEY", default: "", shown: "unset",
        accepts: "a secret access key", parse: parse_secret, secret: true,
    }
    /// Let services that fetch caller-supplied URLs reach internal addresses (loopback,
    /// private, link-local …): for local development and tests only.
    outbound_allow_private: bool {
        env: "TOOLSHED_OUTBOUND_ALLOW_PRIVATE", default: "false",
        accepts: "true or false",
        parse: parse_bool,
    }
    /// Hosts reachable even when they are internal.
    outbound_allow_hosts: Vec<String> {
        env: "TOOLSHED_OUTBOUND_ALLOW_HOSTS", default: "", shown: "none",
        accepts: "comma-separated host names or IP addresses",
        parse: parse_hosts,
    }
    /// Fetches of caller-supplied URLs (url2text) running at once; more wait, up to the
    /// fetch's timeout.
    outbound_concurrency: usize {
        env: "TOOLSHED_OUTBOUND_CONCURRENCY", default: "16",
        accepts: "a whole number from 1 to 1024",
        parse: count(1, 1024),
    }
    /// Key of the HMAC-SHA256 signature every webhook delivery carries
    /// (`X-Toolshed-Signature-256`); unset, deliveries are not signed.
    webhook_secret: Option<Secret> {
        env: "TOOLSHED_WEBHOOK_SECRET", default: "", shown: "unset",
        accepts: "a secret", parse: parse_secret, secret: true,
    }
    /// OpenAI API key; without it OpenAI models are not offered.
    openai_api_key: Option<Secret> {
        env: "OPENAI_API_KEY", default: "", shown: "unset",
        accepts: "an API key", parse: parse_secret, secret: true,
    }
    /// OpenAI (or compatible) base URL, including `/v1`.
    openai_base_url: String {
        env: "OPENAI_BASE_URL", default: "https://api.openai.com/v1",
        accepts: "an http:// or https:// URL", parse: parse_base_url,
    }
    /// Anthropic API key.
    anthropic_api_key: Option<Secret> {
        env: "ANTHROPIC_API_KEY", default: "", shown: "unset",
        accepts: "an API key", parse: parse_secret, secret: true,
    }
    /// Anthropic base URL, without `/v1`.
    anthropic_base_url: String {
        env: "ANTHROPIC_BASE_URL", default: "https://api.anthropic.com",
        accepts: "an http:// or https:// URL", parse: parse_base_url,
    }
    /// Google Gemini API key.
    gemini_api_key: Option<Secret> {
        env: "GEMINI_API_KEY", default: "", shown: "unset",
        accepts: "an API key", parse: parse_secret, secret: true,
    }
    /// Gemini base URL, without the API version.
    gemini_base_url: String {
        env: "GEMINI_BASE_URL", default: "https://generativelanguage.googleapis.com",
        accepts: "an http:// or https:// URL", parse: parse_base_url,
    }
    /// Groq API key (OpenAI-compatible, built-in base URL).
    groq_api_key: Option<Secret> {
        env: "GROQ_API_KEY", default: "", shown: "unset",
        accepts: "an API key", parse: parse_secret, secret: true,
    }
    /// Cerebras API key (OpenAI-compatible, built-in base URL).
    cerebras_api_key: Option<Secret> {
        env: "CEREBRAS_API_KEY", default: "", shown: "unset",
        accepts: "an API key", parse: parse_secret, secret: true,
    }
    /// OpenRouter API key (OpenAI-compatible, built-in base URL).
    openrouter_api_key: Option<Secret> {
        env: "OPENROUTER_API_KEY", default: "", shown: "unset",
        accepts: "an API key", parse: parse_secret, secret: true,
    }
    /// The LLM models file (TOML, optional).
    llm_models: Option<PathBuf> {
        env: "TOOLSHED_LLM_MODELS", default: "", shown: "`<data dir>/models.toml`",
        accepts: "a file path",
        parse: |s| Some((!s.is_empty()).then(|| PathBuf::from(s))),
    }
    /// Largest request to the LLM gateway (conversations can be long).
    llm_max_request_bytes: usize {
        env: "TOOLSHED_LLM_MAX_REQUEST_BYTES", default: "8388608",
        accepts: "a whole number of bytes from 1024 to 1073741824",
        parse: bytes(1024, 1 << 30),
    }
    /// How long an LLM answer stays cached.
    llm_cache_ttl_s: Duration {
        env: "TOOLSHED_LLM_CACHE_TTL_S", default: "3600",
        accepts: "a whole number of seconds from 1 to 31536000",
        parse: seconds(1, 365 * 24 * 3600),
    }
    /// Time to the first token of an LLM stream (then retry or fallback).
    llm_ttft_timeout_s: Duration {
        env: "TOOLSHED_LLM_TTFT_TIMEOUT_S", default: "30",
        accepts: "a whole number of seconds from 1 to 3600",
        parse: seconds(1, 3600),
    }
    /// Time one LLM provider call may take in all.
    llm_timeout_s: Duration {
        env: "TOOLSHED_LLM_TIMEOUT_S", default: "300",
        accepts: "a whole number of seconds from 1 to 86400",
        parse: seconds(1, 86_400),
    }
    /// Retries per model on 408/409/429/5xx, timeouts and connection errors, before the
    /// fallbacks.
    llm_max_retries: u32 {
        env: "TOOLSHED_LLM_MAX_RETRIES", default: "2",
        accepts: "a whole number from 0 to 10",
        parse: |s| s.parse::<u32>().ok().filter(|n| *n <= 10),
    }
    /// How long url2text keeps a page's result (0: no cache).
    url2text_cache_ttl_s: Duration {
        env: "TOOLSHED_URL2TEXT_CACHE_TTL_S", default: "600",
        accepts: "a whole number of seconds from 0 to 31536000",
        parse: seconds(0, 365 * 24 * 3600),
    }
    /// fal.ai API key; without it fal models (`fal-ai/…`) are not offered.
    fal_key: Option<Secret> {
        env: "FAL_KEY", default: "", shown: "unset",
        accepts: "an API key", parse: parse_secret, secret: true,
    }
    /// fal.ai queue base URL.
    fal_queue_url: String {
        env: "FAL_QUEUE_URL", default: "https://queue.fal.run",
        accepts: "an http:// or https:// URL", parse: parse_base_url,
    }
    /// The image model used when a request names none: `fal-ai/<model>` or
    /// `openai/<model>` (e.g. `openai/gpt-image-1`).
    img_model: String {
        env: "TOOLSHED_IMG_MODEL", default: "fal-ai/flux/schnell",
        accepts: "fal-ai/<model> or openai/<model>",
        parse: |s| (s.starts_with("fal-ai/") || s.starts_with("openai/")).then(|| s.to_owned()),
    }
    /// How long one image generation may take (queueing, polling and download included).
    img_timeout_s: Duration {
        env: "TOOLSHED_IMG_TIMEOUT_S", default: "120",
        accepts: "a whole number of seconds from 1 to 3600",
        parse: seconds(1, 3600),
    }
    /// The speech model used when a request names none: `fal-ai/<model>` or
    /// `openai/<model>` (e.g. `openai/whisper-1`, or a local whisper server's model at
    /// `OPENAI_BASE_URL`).
    transcribe_model: String {
        env: "TOOLSHED_TRANSCRIBE_MODEL", default: "fal-ai/wizper",
        accepts: "fal-ai/<model> or openai/<model>",
        parse: |s| (s.starts_with("fal-ai/") || s.starts_with("openai/")).then(|| s.to_owned()),
    }
    /// Largest audio file taken for transcription.
    transcribe_max_bytes: usize {
        env: "TOOLSHED_TRANSCRIBE_MAX_BYTES", default: "26214400",
        accepts: "a whole number of bytes from 1024 to 1073741824",
        parse: bytes(1024, 1 << 30),
    }
    /// How long one transcription may take.
    transcribe_timeout_s: Duration {
        env: "TOOLSHED_TRANSCRIBE_TIMEOUT_S", default: "300",
        accepts: "a whole number of seconds from 1 to 3600",
        parse: seconds(1, 3600),
    }
    /// How long url2text waits for a page.
    url2text_timeout_s: Duration {
        env: "TOOLSHED_URL2TEXT_TIMEOUT_S", default: "15",
        accepts: "a whole number of seconds from 1 to 300",
        parse: seconds(1, 300),
    }
    /// Largest page url2text reads (counted after decompression).
    url2text_max_bytes: usize {
        env: "TOOLSHED_URL2TEXT_MAX_BYTES", default: "10485760",
        accepts: "a whole number of bytes from 1024 to 104857600",
        parse: bytes(1024, 100 << 20),
    }
    /// Page extractions url2text runs at once (each takes a core while it runs).
    url2text_concurrency: usize {
        env: "TOOLSHED_URL2TEXT_CONCURRENCY", default: "2",
        accepts: "a whole number from 1 to 64",
        parse: count(1, 64),
    }
}

impl Config {
    /// The log format: as set, else pretty in development and JSON elsewhere.
    pub fn log_format(&self) -> LogFormat {
        match (self.log_format, self.env) {
            (Some(format), _) => format,
            (None, RunEnv::Development) => LogFormat::Pretty,
            (None, RunEnv::Production | RunEnv::Test) => LogFormat::Json,
        }
    }

    /// The LLM models file: as set, else `models.toml` in the data directory.
    pub fn llm_models_file(&self) -> PathBuf {
        self.llm_models
            .clone()
            .unwrap_or_else(|| self.data_dir.join("models.toml"))
    }

    /// The bucket backups are sealed to, if one is set; an error when it is set without a
    /// key (a backup is never uploaded in the clear).
    pub fn backup_remote_options(
        &self,
    ) -> Result<Option<crate::storage::backup::remote::RemoteOptions>, String> {
        let Some(url) = &self.backup_remote else {
            return Ok(None);
        };
        let key = self
            .backup_key
            .as_ref()
            .and_then(|key| crate::storage::backup::sealed::parse_key(key.expose()))
            .ok_or_else(|| {
                "TOOLSHED_BACKUP_REMOTE is set but TOOLSHED_BACKUP_KEY is not: backups are never \
                 uploaded unencrypted; set TOOLSHED_BACKUP_KEY to 64 hex digits (openssl rand -hex 32)"
                    .to_owned()
            })?;
        Ok(Some(crate::storage::backup::remote::RemoteOptions {
            url: url.clone(),
            endpoint: self.backup_s3_endpoint.clone(),
            region: self.backup_s3_region.clone(),
            access_key_id: self
                .backup_s3_access_key_id
                .as_ref()
                .map(|s| s.expose().to_owned()),
            secret_access_key: self
                .backup_s3_secret_access_key
                .as_ref()
                .map(|s| s.expose().to_owned()),
            key,
        }))
    }

    /// Who the guarded outbound client may reach besides public addresses.
    pub fn outbound_policy(&self) -> GuardPolicy {
        GuardPolicy {
            allow_private: self.outbound_allow_private,
            allow_hosts: self.outbound_allow_hosts.clone(),
        }
    }
}

/// Where the instance runs; changes defaults, never behaviour of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnv {
    Development,
    Production,
    Test,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines, coloured on a terminal.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// A secret (an API key): usable, never printed. `Debug` shows `Secret(***)`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value; empty values are no secret at all.
    pub fn new(value: impl Into<String>) -> Option<Secret> {
        let value = value.into();
        (!value.trim().is_empty()).then(|| Secret(value.trim().to_owned()))
    }

    /// The secret itself, for the one header that carries it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The environment variables a setting may name indirectly (the models file's
/// `api_key_env = "LOCAL_LLM_KEY"`), read once at start like every other setting.
/// `Debug` shows the names only.
#[derive(Clone, Default)]
pub struct NamedSecrets(Arc<BTreeMap<String, Secret>>);

impl NamedSecrets {
    /// Reads the process environment: the one read outside clap's parsing.
    pub fn capture() -> NamedSecrets {
        NamedSecrets::from_pairs(std::env::vars())
    }

    /// The given variables (tests).
    pub fn from_pairs(
        pairs: impl IntoIterator<Item = (impl Into<String>, impl Into<String>)>,
    ) -> NamedSecrets {
        NamedSecrets(Arc::new(
            pairs
                .into_iter()
                .filter_map(|(name, value)| Some((name.into(), Secret::new(value)?)))
                .collect(),
        ))
    }

    /// The value of the variable `name`, if it is set and not empty.
    pub fn get(&self, name: &str) -> Option<Secret> {
        self.0.get(name).cloned()
    }
}

impl fmt::Debug for NamedSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// Every invalid setting found, one line each.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<String>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration:")?;
        for line in &self.0 {
            writeln!(f, "  - {line}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

fn parse_host(s: &str) -> Option<IpAddr> {
    if s.eq_ignore_ascii_case("localhost") {
        return Some(IpAddr::from([127, 0, 0, 1]));
    }
    s.parse().ok()
}

fn parse_run_env(s: &str) -> Option<RunEnv> {
    match s.to_ascii_lowercase().as_str() {
        "development" | "dev" => Some(RunEnv::Development),
        "production" | "prod" => Some(RunEnv::Production),
        "test" => Some(RunEnv::Test),
        _ => None,
    }
}

fn parse_level(s: &str) -> Option<tracing::Level> {
    match s.to_ascii_lowercase().as_str() {
        "trace" => Some(tracing::Level::TRACE),
        "debug" => Some(tracing::Level::DEBUG),
        "info" => Some(tracing::Level::INFO),
        "warn" | "warning" => Some(tracing::Level::WARN),
        "error" => Some(tracing::Level::ERROR),
        _ => None,
    }
}

/// An empty value means "the default for the environment".
fn parse_format(s: &str) -> Option<Option<LogFormat>> {
    match s.to_ascii_lowercase().as_str() {
        "" => Some(None),
        "pretty" => Some(Some(LogFormat::Pretty)),
        "json" => Some(Some(LogFormat::Json)),
        _ => None,
    }
}

fn parse_durability(s: &str) -> Option<Durability> {
    match s.to_ascii_lowercase().as_str() {
        "normal" => Some(Durability::Normal),
        "full" => Some(Durability::Full),
        _ => None,
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn parse_hosts(s: &str) -> Option<Vec<String>> {
    let hosts: Vec<String> = s
        .split(',')
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .collect();
    hosts
        .iter()
        .all(|h| {
            h.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:".contains(c))
        })
        .then_some(hosts)
}

/// `*` alone, or origins (`scheme://host[:port]`, no path).
fn parse_origins(s: &str) -> Option<Vec<String>> {
    let origins: Vec<String> = s
        .split(',')
        .map(|o| o.trim().trim_end_matches('/').to_owned())
        .filter(|o| !o.is_empty())
        .collect();
    if origins == ["*"] {
        return Some(origins);
    }
    origins
        .iter()
        .all(|o| {
            reqwest::Url::parse(o).is_ok_and(|url| {
                matches!(url.scheme(), "http" | "https") && url.origin().ascii_serialization() == *o
            })
        })
        .then_some(origins)
}

/// An empty value is no key.
fn parse_secret(s: &str) -> Option<Option<Secret>> {
    Some(Secret::new(s))
}

fn parse_base_url(s: &str) -> Option<String> {
    (s.starts_with("http://") || s.starts_with("https://"))
        .then(|| s.trim_end_matches('/').to_owned())
}

/// A whole number within `min..=max`.
fn whole(s: &str, min: u64, max: u64) -> Option<u64> {
    s.parse::<u64>().ok().filter(|n| (min..=max).contains(n))
}

fn seconds(min: u64, max: u64) -> impl Fn(&str) -> Option<Duration> {
    move |s| whole(s, min, max).map(Duration::from_secs)
}

fn bytes(min: u64, max: u64) -> impl Fn(&str) -> Option<usize> {
    move |s| whole(s, min, max).and_then(|n| usize::try_from(n).ok())
}

fn count(min: u64, max: u64) -> impl Fn(&str) -> Option<usize> {
    bytes(min, max)
}

/// The settings table as README.md shows it.
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| env var | flag | default | what it sets | accepts |\n|---|---|---|---|---|\n",
    );
    for setting in SETTINGS {
        let help = setting
            .help
            .lines()
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" ");
        out.push_str(&format!(
            "| `{}` | `{}` | {} | {} | {} |\n",
            setting.env,
            setting.flag(),
            setting.default,
            help,
            setting.accepts
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let config = Config::from_args(&SettingsArgs::default()).expect("defaults are valid");
        assert_eq!(config.port, 8000);
        assert_eq!(config.host, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(config.log_format(), LogFormat::Pretty);
        assert_eq!(config.data_dir, PathBuf::from("./data"));
        assert_eq!(config.body_limit_bytes, 1024 * 1024);
        assert_eq!(config.shutdown_grace_s, Duration::from_secs(10));
        assert_eq!(config.url2text_concurrency, 2);
    }

    #[test]
    fn llm_keys_are_never_printed() {
        let args = SettingsArgs {
            openai_api_key: Some("sk-very-secret".into()),
            ..Default::default()
        };
        let config = Config::from_args(&args).expect("valid");
        assert_eq!(
            config.openai_api_key.as_ref().map(Secret::expose),
            Some("sk-very-secret")
        );
        assert!(!format!("{config:?}").contains("sk-very-secret"));
        assert_eq!(
            config.llm_models_file(),
            PathBuf::from("./data/models.toml")
        );
        assert_eq!(config.openai_base_url, "https://api.openai.com/v1");
    }

    #[test]
    fn named_secrets_show_their_names_only() {
        let secrets = NamedSecrets::from_pairs([("LOCAL_KEY", "hush"), ("EMPTY", " ")]);
        assert_eq!(
            secrets.get("LOCAL_KEY").as_ref().map(Secret::expose),
            Some("hush")
        );
        assert!(secrets.get("EMPTY").is_none());
        let shown = format!("{secrets:?}");
        assert!(
            shown.contains("LOCAL_KEY") && !shown.contains("hush"),
            "{shown}"
        );
    }

    #[test]
    fn production_defaults_to_json_logs() {
        let args = SettingsArgs {
            env: Some("production".into()),
            ..Default::default()
        };
        let config = Config::from_args(&args).expect("valid");
        assert_eq!(config.log_format(), LogFormat::Json);
    }

    #[test]
    fn every_bad_setting_is_reported_at_once() {
        let args = SettingsArgs {
            port: Some("abc".into()),
            log_level: Some("loud".into()),
            host: Some("not-an-ip".into()),
            ..Default::default()
        };
        let errors = Config::from_args(&args).expect_err("invalid").0;
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("PORT (--port) = \"abc\""))
        );
        assert!(
            errors
                .iter()
                .any(|e| e.contains("LOG_LEVEL") && e.contains("trace"))
        );
        assert!(errors.iter().any(|e| e.starts_with("HOST")));
    }

    #[test]
    fn every_default_is_valid_and_every_flag_matches_its_field() {
        // A default that did not parse would fail every start; `from_args` above proves
        // they parse, this that the table and the flags agree.
        let command = <SettingsArgs as clap::Args>::augment_args(clap::Command::new("t"));
        for setting in SETTINGS {
            let arg = command
                .get_arguments()
                .find(|a| a.get_id() == setting.name)
                .unwrap_or_else(|| panic!("no flag for {}", setting.name));
            assert_eq!(
                format!("--{}", arg.get_long().unwrap_or_default()),
                setting.flag()
            );
            assert_eq!(arg.is_hide_set(), setting.secret, "{}", setting.name);
        }
    }

    /// The README's settings table is generated from the declarations above; after a change
    /// run `UPDATE_README=1 cargo test --lib env::` and review the diff.
    #[test]
    fn the_readme_lists_every_setting_as_declared() {
        const START: &str = "<!-- settings table: generated from src/env.rs -->\n";
        const END: &str = "<!-- end of settings table -->";
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
        let readme = std::fs::read_to_string(path).expect("README.md");
        let start = readme
            .find(START)
            .expect("the README marks the settings table")
            + START.len();
        let end = start + readme[start..].find(END).expect("the table's end marker");
        let table = markdown_table();
        if std::env::var_os("UPDATE_README").is_some() {
            let updated = format!("{}{table}{}", &readme[..start], &readme[end..]);
            std::fs::write(path, updated).expect("write README.md");
            return;
        }
        assert!(
            readme[start..end] == table,
            "the README's settings table is out of date; run UPDATE_README=1 cargo test --lib env:: \n{table}"
        );
    }
}
