//! Every setting Toolshed reads: its env var, its flag, its default and its validation.
//!
//! This is the single source of truth for configuration (the `env.ts` of the original
//! design). Settings are read once at start-up, validated all together, and handed to the
//! services inside `AppState`; no other module reads the process environment.
//!
//! Flags win over env vars, env vars win over defaults (clap does the layering). Values are
//! taken as strings and validated here, so that one run reports *every* bad setting at once
//! instead of stopping at the first.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::platform::outbound::GuardPolicy;
use crate::storage::Durability;

/// The raw settings as given on the command line or in the environment.
#[derive(Debug, Clone, Default, Args)]
pub struct SettingsArgs {
    /// Address to listen on (an IP address, or `localhost`). [env: HOST] [default: 127.0.0.1]
    #[arg(long, env = "HOST", global = true, hide_env = true)]
    pub host: Option<String>,
    /// Port to listen on; 0 picks a free one. [env: PORT] [default: 8000]
    #[arg(long, env = "PORT", global = true, hide_env = true)]
    pub port: Option<String>,
    /// development | production | test. [env: ENV] [default: development]
    #[arg(long = "env", env = "ENV", global = true, hide_env = true)]
    pub run_env: Option<String>,
    /// trace | debug | info | warn | error. [env: LOG_LEVEL] [default: info]
    #[arg(long, env = "LOG_LEVEL", global = true, hide_env = true)]
    pub log_level: Option<String>,
    /// pretty | json. [env: LOG_FORMAT] [default: pretty in development, json otherwise]
    #[arg(long, env = "LOG_FORMAT", global = true, hide_env = true)]
    pub log_format: Option<String>,
    /// Directory of the embedded store. [env: TOOLSHED_DATA_DIR] [default: ./data]
    #[arg(long, env = "TOOLSHED_DATA_DIR", global = true, hide_env = true)]
    pub data_dir: Option<String>,
    /// Seconds in-flight requests and running tasks get to finish on shutdown.
    /// [env: TOOLSHED_SHUTDOWN_GRACE_S] [default: 10]
    #[arg(
        long,
        env = "TOOLSHED_SHUTDOWN_GRACE_S",
        global = true,
        hide_env = true
    )]
    pub shutdown_grace_s: Option<String>,
    /// Default request body limit in bytes. [env: TOOLSHED_BODY_LIMIT_BYTES] [default: 1048576]
    #[arg(
        long,
        env = "TOOLSHED_BODY_LIMIT_BYTES",
        global = true,
        hide_env = true
    )]
    pub body_limit_bytes: Option<String>,
    /// Seconds a handler may take to start its answer before the request fails with 503
    /// (long enough for an LLM answer). [env: TOOLSHED_REQUEST_TIMEOUT_S] [default: 300]
    #[arg(
        long,
        env = "TOOLSHED_REQUEST_TIMEOUT_S",
        global = true,
        hide_env = true
    )]
    pub request_timeout_s: Option<String>,
    /// normal (survives a crash of the process) | full (fsync every commit; survives power
    /// loss). [env: TOOLSHED_SQLITE_SYNC] [default: normal]
    #[arg(long, env = "TOOLSHED_SQLITE_SYNC", global = true, hide_env = true)]
    pub sqlite_sync: Option<String>,
    /// Largest KV value and task payload in bytes. [env: TOOLSHED_KV_MAX_VALUE_BYTES] [default: 1048576]
    #[arg(
        long,
        env = "TOOLSHED_KV_MAX_VALUE_BYTES",
        global = true,
        hide_env = true
    )]
    pub kv_max_value_bytes: Option<String>,
    /// Attempts of one task kind run at once. [env: TOOLSHED_QUEUE_CONCURRENCY] [default: 16]
    #[arg(
        long,
        env = "TOOLSHED_QUEUE_CONCURRENCY",
        global = true,
        hide_env = true
    )]
    pub queue_concurrency: Option<String>,
    /// Seconds succeeded tasks are kept. [env: TOOLSHED_TASK_RETENTION_S] [default: 604800]
    #[arg(
        long,
        env = "TOOLSHED_TASK_RETENTION_S",
        global = true,
        hide_env = true
    )]
    pub task_retention_s: Option<String>,
    /// Let services that fetch caller-supplied URLs reach internal addresses (loopback,
    /// private, link-local …): true | false. For local development and tests only.
    /// [env: TOOLSHED_OUTBOUND_ALLOW_PRIVATE] [default: false]
    #[arg(
        long,
        env = "TOOLSHED_OUTBOUND_ALLOW_PRIVATE",
        global = true,
        hide_env = true
    )]
    pub outbound_allow_private: Option<String>,
    /// Comma-separated hosts reachable even when internal.
    /// [env: TOOLSHED_OUTBOUND_ALLOW_HOSTS] [default: none]
    #[arg(
        long,
        env = "TOOLSHED_OUTBOUND_ALLOW_HOSTS",
        global = true,
        hide_env = true
    )]
    pub outbound_allow_hosts: Option<String>,
    /// OpenAI API key; without it OpenAI models are not offered. [env: OPENAI_API_KEY]
    #[arg(
        long,
        env = "OPENAI_API_KEY",
        global = true,
        hide_env = true,
        hide = true
    )]
    pub openai_api_key: Option<String>,
    /// OpenAI (or compatible) base URL, including `/v1`.
    /// [env: OPENAI_BASE_URL] [default: https://api.openai.com/v1]
    #[arg(long, env = "OPENAI_BASE_URL", global = true, hide_env = true)]
    pub openai_base_url: Option<String>,
    /// Anthropic API key. [env: ANTHROPIC_API_KEY]
    #[arg(
        long,
        env = "ANTHROPIC_API_KEY",
        global = true,
        hide_env = true,
        hide = true
    )]
    pub anthropic_api_key: Option<String>,
    /// Anthropic base URL, without `/v1`. [env: ANTHROPIC_BASE_URL] [default: https://api.anthropic.com]
    #[arg(long, env = "ANTHROPIC_BASE_URL", global = true, hide_env = true)]
    pub anthropic_base_url: Option<String>,
    /// Google Gemini API key. [env: GEMINI_API_KEY]
    #[arg(
        long,
        env = "GEMINI_API_KEY",
        global = true,
        hide_env = true,
        hide = true
    )]
    pub gemini_api_key: Option<String>,
    /// Gemini base URL, without the API version.
    /// [env: GEMINI_BASE_URL] [default: https://generativelanguage.googleapis.com]
    #[arg(long, env = "GEMINI_BASE_URL", global = true, hide_env = true)]
    pub gemini_base_url: Option<String>,
    /// Groq API key. [env: GROQ_API_KEY]
    #[arg(
        long,
        env = "GROQ_API_KEY",
        global = true,
        hide_env = true,
        hide = true
    )]
    pub groq_api_key: Option<String>,
    /// Cerebras API key. [env: CEREBRAS_API_KEY]
    #[arg(
        long,
        env = "CEREBRAS_API_KEY",
        global = true,
        hide_env = true,
        hide = true
    )]
    pub cerebras_api_key: Option<String>,
    /// OpenRouter API key. [env: OPENROUTER_API_KEY]
    #[arg(
        long,
        env = "OPENROUTER_API_KEY",
        global = true,
        hide_env = true,
        hide = true
    )]
    pub openrouter_api_key: Option<String>,
    /// The LLM models file (TOML, optional). [env: TOOLSHED_LLM_MODELS]
    /// [default: <data dir>/models.toml]
    #[arg(long, env = "TOOLSHED_LLM_MODELS", global = true, hide_env = true)]
    pub llm_models: Option<String>,
    /// Seconds an LLM answer stays cached. [env: TOOLSHED_LLM_CACHE_TTL_S] [default: 3600]
    #[arg(long, env = "TOOLSHED_LLM_CACHE_TTL_S", global = true, hide_env = true)]
    pub llm_cache_ttl_s: Option<String>,
    /// Seconds to wait for an LLM's first token. [env: TOOLSHED_LLM_TTFT_TIMEOUT_S] [default: 30]
    #[arg(
        long,
        env = "TOOLSHED_LLM_TTFT_TIMEOUT_S",
        global = true,
        hide_env = true
    )]
    pub llm_ttft_timeout_s: Option<String>,
    /// Seconds one LLM call may take in all. [env: TOOLSHED_LLM_TIMEOUT_S] [default: 300]
    #[arg(long, env = "TOOLSHED_LLM_TIMEOUT_S", global = true, hide_env = true)]
    pub llm_timeout_s: Option<String>,
    /// Retries of a failed LLM call (429, 5xx, timeouts, connection errors) before the
    /// fallbacks. [env: TOOLSHED_LLM_MAX_RETRIES] [default: 2]
    #[arg(long, env = "TOOLSHED_LLM_MAX_RETRIES", global = true, hide_env = true)]
    pub llm_max_retries: Option<String>,
    /// Seconds url2text keeps a page's result. [env: TOOLSHED_URL2TEXT_CACHE_TTL_S] [default: 600]
    #[arg(
        long,
        env = "TOOLSHED_URL2TEXT_CACHE_TTL_S",
        global = true,
        hide_env = true
    )]
    pub url2text_cache_ttl_s: Option<String>,
    /// Seconds url2text waits for a page. [env: TOOLSHED_URL2TEXT_TIMEOUT_S] [default: 15]
    #[arg(
        long,
        env = "TOOLSHED_URL2TEXT_TIMEOUT_S",
        global = true,
        hide_env = true
    )]
    pub url2text_timeout_s: Option<String>,
    /// Largest page url2text reads, in bytes. [env: TOOLSHED_URL2TEXT_MAX_BYTES] [default: 10485760]
    #[arg(
        long,
        env = "TOOLSHED_URL2TEXT_MAX_BYTES",
        global = true,
        hide_env = true
    )]
    pub url2text_max_bytes: Option<String>,
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

/// The validated configuration, read once at start-up.
#[derive(Debug, Clone)]
pub struct Config {
    pub host: IpAddr,
    pub port: u16,
    pub run_env: RunEnv,
    pub log_level: tracing::Level,
    pub log_format: LogFormat,
    pub data_dir: PathBuf,
    pub shutdown_grace: Duration,
    pub body_limit_bytes: usize,
    pub request_timeout: Duration,
    pub durability: Durability,
    pub kv_max_value_bytes: usize,
    pub queue_concurrency: usize,
    pub task_retention: Duration,
    pub outbound: GuardPolicy,
    pub url2text_cache_ttl: Duration,
    pub url2text_timeout: Duration,
    pub url2text_max_bytes: usize,
    pub llm: LlmConfig,
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

/// Reads a secret named by configuration (the models file's `api_key_env`): the only read
/// of the process environment outside clap's parsing.
pub fn secret(name: &str) -> Option<Secret> {
    std::env::var(name).ok().and_then(Secret::new)
}

/// Settings of the LLM gateway (`/api/ai/llm`).
#[derive(Debug, Clone)]
pub struct LlmConfig {
    pub openai_api_key: Option<Secret>,
    pub openai_base_url: String,
    pub anthropic_api_key: Option<Secret>,
    pub anthropic_base_url: String,
    pub gemini_api_key: Option<Secret>,
    pub gemini_base_url: String,
    pub groq_api_key: Option<Secret>,
    pub cerebras_api_key: Option<Secret>,
    pub openrouter_api_key: Option<Secret>,
    /// The models file; it may be absent.
    pub models_file: PathBuf,
    pub cache_ttl: Duration,
    pub ttft_timeout: Duration,
    pub timeout: Duration,
    pub max_retries: u32,
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

/// Collects parse failures so that all of them are reported together.
struct Validator {
    errors: Vec<String>,
}

impl Validator {
    /// Parses one setting; on failure records "NAME (--flag) = "value": accepts …".
    fn take<T>(
        &mut self,
        names: (&str, &str),
        raw: Option<&str>,
        default: T,
        accepts: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> T {
        let Some(raw) = raw else { return default };
        match parse(raw.trim()) {
            Some(value) => value,
            None => {
                let (env, flag) = names;
                self.errors
                    .push(format!("{env} (--{flag}) = {raw:?}: expected {accepts}"));
                default
            }
        }
    }
}

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

fn parse_format(s: &str) -> Option<LogFormat> {
    match s.to_ascii_lowercase().as_str() {
        "pretty" => Some(LogFormat::Pretty),
        "json" => Some(LogFormat::Json),
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

/// A whole number within `min..=max`.
fn parse_bounded(s: &str, min: u64, max: u64) -> Option<u64> {
    s.parse::<u64>().ok().filter(|n| (min..=max).contains(n))
}

impl Config {
    /// Validates the raw settings, reporting every bad one at once.
    pub fn from_args(args: &SettingsArgs) -> Result<Config, ConfigErrors> {
        let mut v = Validator { errors: Vec::new() };
        let host = v.take(
            ("HOST", "host"),
            args.host.as_deref(),
            IpAddr::from([127, 0, 0, 1]),
            "an IP address such as 127.0.0.1 or 0.0.0.0, or localhost",
            parse_host,
        );
        let port = v.take(
            ("PORT", "port"),
            args.port.as_deref(),
            8000,
            "a whole number from 0 to 65535",
            |s| s.parse::<u16>().ok(),
        );
        let run_env = v.take(
            ("ENV", "env"),
            args.run_env.as_deref(),
            RunEnv::Development,
            "one of development, production, test",
            parse_run_env,
        );
        let log_level = v.take(
            ("LOG_LEVEL", "log-level"),
            args.log_level.as_deref(),
            tracing::Level::INFO,
            "one of trace, debug, info, warn, error",
            parse_level,
        );
        let default_format = match run_env {
            RunEnv::Development => LogFormat::Pretty,
            RunEnv::Production | RunEnv::Test => LogFormat::Json,
        };
        let log_format = v.take(
            ("LOG_FORMAT", "log-format"),
            args.log_format.as_deref(),
            default_format,
            "one of pretty, json",
            parse_format,
        );
        let data_dir = v.take(
            ("TOOLSHED_DATA_DIR", "data-dir"),
            args.data_dir.as_deref(),
            PathBuf::from("./data"),
            "a non-empty directory path",
            |s| (!s.is_empty()).then(|| PathBuf::from(s)),
        );
        let shutdown_grace_s = v.take(
            ("TOOLSHED_SHUTDOWN_GRACE_S", "shutdown-grace-s"),
            args.shutdown_grace_s.as_deref(),
            10,
            "a whole number of seconds from 0 to 3600",
            |s| parse_bounded(s, 0, 3600),
        );
        let body_limit_bytes = v.take(
            ("TOOLSHED_BODY_LIMIT_BYTES", "body-limit-bytes"),
            args.body_limit_bytes.as_deref(),
            1024 * 1024,
            "a whole number of bytes from 1024 to 1073741824",
            |s| parse_bounded(s, 1024, 1 << 30),
        );
        let request_timeout_s = v.take(
            ("TOOLSHED_REQUEST_TIMEOUT_S", "request-timeout-s"),
            args.request_timeout_s.as_deref(),
            300,
            "a whole number of seconds from 1 to 86400",
            |s| parse_bounded(s, 1, 86_400),
        );
        let durability = v.take(
            ("TOOLSHED_SQLITE_SYNC", "sqlite-sync"),
            args.sqlite_sync.as_deref(),
            Durability::Normal,
            "one of normal, full",
            |s| match s.to_ascii_lowercase().as_str() {
                "normal" => Some(Durability::Normal),
                "full" => Some(Durability::Full),
                _ => None,
            },
        );
        let kv_max_value_bytes = v.take(
            ("TOOLSHED_KV_MAX_VALUE_BYTES", "kv-max-value-bytes"),
            args.kv_max_value_bytes.as_deref(),
            1024 * 1024,
            "a whole number of bytes from 1024 to 16777216",
            |s| parse_bounded(s, 1024, 16 * 1024 * 1024),
        );
        let queue_concurrency = v.take(
            ("TOOLSHED_QUEUE_CONCURRENCY", "queue-concurrency"),
            args.queue_concurrency.as_deref(),
            16,
            "a whole number from 1 to 1024",
            |s| parse_bounded(s, 1, 1024),
        );
        let task_retention_s = v.take(
            ("TOOLSHED_TASK_RETENTION_S", "task-retention-s"),
            args.task_retention_s.as_deref(),
            7 * 24 * 3600,
            "a whole number of seconds from 0 to 31536000",
            |s| parse_bounded(s, 0, 365 * 24 * 3600),
        );
        let allow_private = v.take(
            ("TOOLSHED_OUTBOUND_ALLOW_PRIVATE", "outbound-allow-private"),
            args.outbound_allow_private.as_deref(),
            false,
            "true or false",
            parse_bool,
        );
        let allow_hosts = v.take(
            ("TOOLSHED_OUTBOUND_ALLOW_HOSTS", "outbound-allow-hosts"),
            args.outbound_allow_hosts.as_deref(),
            Vec::new(),
            "comma-separated host names or IP addresses",
            |s| {
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
            },
        );
        let base_url =
            |v: &mut Validator, names: (&str, &str), raw: Option<&str>, default: &str| {
                v.take(
                    names,
                    raw,
                    default.to_owned(),
                    "an http:// or https:// URL",
                    |s| {
                        (s.starts_with("http://") || s.starts_with("https://"))
                            .then(|| s.trim_end_matches('/').to_owned())
                    },
                )
            };
        let openai_base_url = base_url(
            &mut v,
            ("OPENAI_BASE_URL", "openai-base-url"),
            args.openai_base_url.as_deref(),
            "https://api.openai.com/v1",
        );
        let anthropic_base_url = base_url(
            &mut v,
            ("ANTHROPIC_BASE_URL", "anthropic-base-url"),
            args.anthropic_base_url.as_deref(),
            "https://api.anthropic.com",
        );
        let gemini_base_url = base_url(
            &mut v,
            ("GEMINI_BASE_URL", "gemini-base-url"),
            args.gemini_base_url.as_deref(),
            "https://generativelanguage.googleapis.com",
        );
        let models_file = v.take(
            ("TOOLSHED_LLM_MODELS", "llm-models"),
            args.llm_models.as_deref(),
            data_dir.join("models.toml"),
            "a file path",
            |s| (!s.is_empty()).then(|| PathBuf::from(s)),
        );
        let llm_cache_ttl_s = v.take(
            ("TOOLSHED_LLM_CACHE_TTL_S", "llm-cache-ttl-s"),
            args.llm_cache_ttl_s.as_deref(),
            3600,
            "a whole number of seconds from 1 to 31536000",
            |s| parse_bounded(s, 1, 365 * 24 * 3600),
        );
        let llm_ttft_timeout_s = v.take(
            ("TOOLSHED_LLM_TTFT_TIMEOUT_S", "llm-ttft-timeout-s"),
            args.llm_ttft_timeout_s.as_deref(),
            30,
            "a whole number of seconds from 1 to 3600",
            |s| parse_bounded(s, 1, 3600),
        );
        let llm_timeout_s = v.take(
            ("TOOLSHED_LLM_TIMEOUT_S", "llm-timeout-s"),
            args.llm_timeout_s.as_deref(),
            300,
            "a whole number of seconds from 1 to 86400",
            |s| parse_bounded(s, 1, 86_400),
        );
        let llm_max_retries = v.take(
            ("TOOLSHED_LLM_MAX_RETRIES", "llm-max-retries"),
            args.llm_max_retries.as_deref(),
            2,
            "a whole number from 0 to 10",
            |s| parse_bounded(s, 0, 10),
        );
        let key = |raw: &Option<String>| raw.clone().and_then(Secret::new);
        let llm = LlmConfig {
            openai_api_key: key(&args.openai_api_key),
            openai_base_url,
            anthropic_api_key: key(&args.anthropic_api_key),
            anthropic_base_url,
            gemini_api_key: key(&args.gemini_api_key),
            gemini_base_url,
            groq_api_key: key(&args.groq_api_key),
            cerebras_api_key: key(&args.cerebras_api_key),
            openrouter_api_key: key(&args.openrouter_api_key),
            models_file,
            cache_ttl: Duration::from_secs(llm_cache_ttl_s),
            ttft_timeout: Duration::from_secs(llm_ttft_timeout_s),
            timeout: Duration::from_secs(llm_timeout_s),
            max_retries: u32::try_from(llm_max_retries).unwrap_or(2),
        };
        let url2text_cache_ttl_s = v.take(
            ("TOOLSHED_URL2TEXT_CACHE_TTL_S", "url2text-cache-ttl-s"),
            args.url2text_cache_ttl_s.as_deref(),
            600,
            "a whole number of seconds from 0 (no cache) to 31536000",
            |s| parse_bounded(s, 0, 365 * 24 * 3600),
        );
        let url2text_timeout_s = v.take(
            ("TOOLSHED_URL2TEXT_TIMEOUT_S", "url2text-timeout-s"),
            args.url2text_timeout_s.as_deref(),
            15,
            "a whole number of seconds from 1 to 300",
            |s| parse_bounded(s, 1, 300),
        );
        let url2text_max_bytes = v.take(
            ("TOOLSHED_URL2TEXT_MAX_BYTES", "url2text-max-bytes"),
            args.url2text_max_bytes.as_deref(),
            10 * 1024 * 1024,
            "a whole number of bytes from 1024 to 104857600",
            |s| parse_bounded(s, 1024, 100 * 1024 * 1024),
        );
        if !v.errors.is_empty() {
            return Err(ConfigErrors(v.errors));
        }
        Ok(Config {
            host,
            port,
            run_env,
            log_level,
            log_format,
            data_dir,
            shutdown_grace: Duration::from_secs(shutdown_grace_s),
            body_limit_bytes: usize::try_from(body_limit_bytes).unwrap_or(usize::MAX),
            request_timeout: Duration::from_secs(request_timeout_s),
            durability,
            kv_max_value_bytes: usize::try_from(kv_max_value_bytes).unwrap_or(usize::MAX),
            queue_concurrency: usize::try_from(queue_concurrency).unwrap_or(16),
            task_retention: Duration::from_secs(task_retention_s),
            outbound: GuardPolicy {
                allow_private,
                allow_hosts,
            },
            llm,
            url2text_cache_ttl: Duration::from_secs(url2text_cache_ttl_s),
            url2text_timeout: Duration::from_secs(url2text_timeout_s),
            url2text_max_bytes: usize::try_from(url2text_max_bytes).unwrap_or(usize::MAX),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let config = Config::from_args(&SettingsArgs::default()).expect("defaults are valid");
        assert_eq!(config.port, 8000);
        assert_eq!(config.host, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(config.log_format, LogFormat::Pretty);
        assert_eq!(config.data_dir, PathBuf::from("./data"));
        assert_eq!(config.body_limit_bytes, 1024 * 1024);
    }

    #[test]
    fn llm_keys_are_never_printed() {
        let args = SettingsArgs {
            openai_api_key: Some("sk-very-secret".into()),
            ..Default::default()
        };
        let config = Config::from_args(&args).expect("valid");
        assert_eq!(
            config.llm.openai_api_key.as_ref().map(Secret::expose),
            Some("sk-very-secret")
        );
        assert!(!format!("{config:?}").contains("sk-very-secret"));
        assert_eq!(config.llm.models_file, PathBuf::from("./data/models.toml"));
        assert_eq!(config.llm.openai_base_url, "https://api.openai.com/v1");
    }

    #[test]
    fn production_defaults_to_json_logs() {
        let args = SettingsArgs {
            run_env: Some("production".into()),
            ..Default::default()
        };
        let config = Config::from_args(&args).expect("valid");
        assert_eq!(config.log_format, LogFormat::Json);
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
}
