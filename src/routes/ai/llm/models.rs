//! The model registry: which providers exist, which models they serve under which names and
//! aliases, what each model can do, and which model does which task.
//!
//! It is the built-in table below, overlaid by the operator's models file (TOML, optional),
//! loaded when the service starts: a broken file stops the start with a message naming the
//! problem. Lookups by id or alias; an unknown name gets close matches.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::env::{Config, Secret};

/// The wire format a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// OpenAI Chat Completions (and every compatible server).
    Openai,
    /// Anthropic Messages.
    Anthropic,
    /// Google Gemini `generateContent`.
    Gemini,
}

/// One provider endpoint.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub name: String,
    pub kind: Kind,
    pub base_url: String,
    /// The env var holding its key, when it needs one.
    pub key_env: Option<String>,
    pub key: Option<Secret>,
    /// OpenAI itself wants `max_completion_tokens`; compatible servers want `max_tokens`.
    pub max_tokens_field: &'static str,
    /// Ask OpenAI-compatible streams for a usage chunk (`stream_options`); a few strict
    /// servers refuse the field.
    pub stream_usage: bool,
}

impl ProviderConfig {
    /// A provider is offered when it needs no key or has one.
    pub fn available(&self) -> bool {
        self.key_env.is_none() || self.key.is_some()
    }
}

/// What a model can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(default)]
pub struct Capabilities {
    pub context_window: u64,
    pub max_output_tokens: u64,
    pub streaming: bool,
    pub system_prompt: bool,
    pub stop_sequences: bool,
    pub prefill: bool,
    pub images: bool,
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities {
            context_window: 8192,
            max_output_tokens: 4096,
            streaming: true,
            system_prompt: true,
            stop_sequences: true,
            prefill: false,
            images: false,
        }
    }
}

impl Capabilities {
    /// Whether the named capability is present (numeric ones count when non-zero).
    pub fn has(&self, name: &str) -> Option<bool> {
        Some(match name {
            "streaming" => self.streaming,
            "system_prompt" => self.system_prompt,
            "stop_sequences" => self.stop_sequences,
            "prefill" => self.prefill,
            "images" => self.images,
            _ => return None,
        })
    }
}

/// One model as the gateway names it.
#[derive(Debug, Clone)]
pub struct Model {
    /// `provider:name`, e.g. `openai:gpt-4o-mini`.
    pub id: String,
    pub provider: String,
    /// The id sent to the provider.
    pub upstream: String,
    pub aliases: Vec<String>,
    pub capabilities: Capabilities,
}

/// Providers, models and tasks.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    pub providers: BTreeMap<String, ProviderConfig>,
    pub models: Vec<Model>,
    /// task name -> model id or alias.
    pub tasks: BTreeMap<String, String>,
}

/// Why a name did not resolve.
#[derive(Debug, Clone, PartialEq)]
pub enum LookupError {
    UnknownModel {
        name: String,
        close: Vec<String>,
    },
    UnknownTask {
        name: String,
        close: Vec<String>,
    },
    /// The provider needs a key that is not set.
    NotConfigured {
        provider: String,
        env: String,
    },
}

impl std::fmt::Display for LookupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hint = |close: &[String]| {
            if close.is_empty() {
                String::new()
            } else {
                format!("; did you mean {}?", close.join(", "))
            }
        };
        match self {
            LookupError::UnknownModel { name, close } => {
                write!(
                    f,
                    "unknown model {name:?}{} (a model the registry does not list is named provider/model-id, e.g. openai/gpt-4.1-mini)",
                    hint(close)
                )
            }
            LookupError::UnknownTask { name, close } => {
                write!(f, "unknown task {name:?}{}", hint(close))
            }
            LookupError::NotConfigured { provider, env } => write!(
                f,
                "provider {provider:?} is not configured: set the {env} environment variable"
            ),
        }
    }
}

/// Capabilities shorthand for the built-in table.
const fn caps(context_window: u64, max_output_tokens: u64, prefill: bool) -> Capabilities {
    Capabilities {
        context_window,
        max_output_tokens,
        streaming: true,
        system_prompt: true,
        stop_sequences: true,
        prefill,
        images: true,
    }
}

/// Text-only variant for open-weight models on compatible servers.
const fn text_caps(context_window: u64, max_output_tokens: u64) -> Capabilities {
    Capabilities {
        images: false,
        ..caps(context_window, max_output_tokens, false)
    }
}

/// (provider, upstream id, aliases, capabilities): current well-known models.
const BUILT_IN: &[(&str, &str, &[&str], Capabilities)] = &[
    (
        "openai",
        "gpt-4o",
        &["gpt-4o"],
        caps(128_000, 16_384, false),
    ),
    (
        "openai",
        "gpt-4o-mini",
        &["gpt-4o-mini"],
        caps(128_000, 16_384, false),
    ),
    (
        "openai",
        "gpt-4.1",
        &["gpt-4.1"],
        caps(1_047_576, 32_768, false),
    ),
    (
        "openai",
        "gpt-4.1-mini",
        &["gpt-4.1-mini"],
        caps(1_047_576, 32_768, false),
    ),
    (
        "openai",
        "gpt-4.1-nano",
        &["gpt-4.1-nano"],
        caps(1_047_576, 32_768, false),
    ),
    ("openai", "o3", &["o3"], caps(200_000, 100_000, false)),
    (
        "openai",
        "o4-mini",
        &["o4-mini"],
        caps(200_000, 100_000, false),
    ),
    ("openai", "gpt-5", &["gpt-5"], caps(400_000, 128_000, false)),
    (
        "openai",
        "gpt-5-mini",
        &["gpt-5-mini"],
        caps(400_000, 128_000, false),
    ),
    (
        "openai",
        "gpt-5-nano",
        &["gpt-5-nano"],
        caps(400_000, 128_000, false),
    ),
    (
        "openai",
        "gpt-5.1",
        &["gpt-5.1"],
        caps(400_000, 128_000, false),
    ),
    (
        "openai",
        "gpt-5.2",
        &["gpt-5.2"],
        caps(400_000, 128_000, false),
    ),
    (
        "openai",
        "gpt-5.5",
        &["gpt-5.5"],
        caps(1_050_000, 128_000, false),
    ),
    (
        "anthropic",
        "claude-opus-4-1-20250805",
        &["claude-opus-4-1"],
        caps(200_000, 32_000, true),
    ),
    (
        "anthropic",
        "claude-sonnet-4-5-20250929",
        &["claude-sonnet-4-5"],
        caps(200_000, 64_000, true),
    ),
    (
        "anthropic",
        "claude-haiku-4-5-20251001",
        &["claude-haiku-4-5", "claude-haiku"],
        caps(200_000, 64_000, true),
    ),
    (
        "anthropic",
        "claude-opus-4-5-20251101",
        &["claude-opus-4-5"],
        caps(200_000, 64_000, true),
    ),
    (
        "anthropic",
        "claude-sonnet-4-6",
        &["claude-sonnet-4-6", "claude-sonnet"],
        caps(1_000_000, 64_000, false),
    ),
    (
        "anthropic",
        "claude-opus-4-7",
        &["claude-opus-4-7"],
        caps(1_000_000, 128_000, false),
    ),
    (
        "anthropic",
        "claude-opus-4-8",
        &["claude-opus-4-8", "claude-opus"],
        caps(1_000_000, 128_000, false),
    ),
    (
        "gemini",
        "gemini-2.5-pro",
        &["gemini-2.5-pro"],
        caps(1_048_576, 65_536, false),
    ),
    (
        "gemini",
        "gemini-2.5-flash",
        &["gemini-2.5-flash"],
        caps(1_048_576, 65_536, false),
    ),
    (
        "gemini",
        "gemini-2.5-flash-lite",
        &["gemini-2.5-flash-lite"],
        caps(1_048_576, 65_536, false),
    ),
    (
        "gemini",
        "gemini-3-flash-preview",
        &["gemini-3-flash"],
        caps(1_048_576, 65_536, false),
    ),
    (
        "gemini",
        "gemini-3.1-pro-preview",
        &["gemini-3.1-pro"],
        caps(1_048_576, 65_536, false),
    ),
    (
        "gemini",
        "gemini-flash-latest",
        &["gemini-flash"],
        caps(1_048_576, 65_536, false),
    ),
    (
        "groq",
        "llama-3.1-8b-instant",
        &["llama-3.1-8b"],
        text_caps(131_072, 8_192),
    ),
    (
        "groq",
        "llama-3.3-70b-versatile",
        &["llama-3.3-70b"],
        text_caps(131_072, 32_768),
    ),
    (
        "groq",
        "openai/gpt-oss-120b",
        &["gpt-oss-120b"],
        text_caps(131_072, 32_768),
    ),
    (
        "groq",
        "openai/gpt-oss-20b",
        &["gpt-oss-20b"],
        text_caps(131_072, 32_768),
    ),
    (
        "groq",
        "qwen/qwen3-32b",
        &["qwen3-32b"],
        text_caps(131_072, 40_960),
    ),
    ("cerebras", "llama-3.3-70b", &[], text_caps(128_000, 32_768)),
    ("cerebras", "gpt-oss-120b", &[], text_caps(131_072, 32_768)),
    ("cerebras", "qwen-3-32b", &[], text_caps(128_000, 32_768)),
    (
        "openrouter",
        "openai/gpt-4o-mini",
        &[],
        caps(128_000, 16_384, false),
    ),
    (
        "openrouter",
        "anthropic/claude-sonnet-4.5",
        &[],
        caps(200_000, 64_000, false),
    ),
    (
        "openrouter",
        "google/gemini-2.5-flash",
        &[],
        caps(1_048_576, 65_536, false),
    ),
];

/// The models file, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelsFile {
    #[serde(default)]
    providers: BTreeMap<String, ProviderEntry>,
    #[serde(default)]
    models: BTreeMap<String, ModelEntry>,
    #[serde(default)]
    tasks: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderEntry {
    kind: Option<Kind>,
    base_url: Option<String>,
    api_key_env: Option<String>,
    /// `max_tokens` or `max_completion_tokens` (OpenAI-compatible providers).
    max_tokens_field: Option<String>,
    /// `false` for servers that refuse `stream_options` (OpenAI-compatible providers).
    stream_usage: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelEntry {
    provider: Option<String>,
    upstream: Option<String>,
    #[serde(default)]
    aliases: Vec<String>,
    capabilities: Option<Capabilities>,
}

impl Registry {
    /// The built-in providers (keys and base URLs from the configuration) and models.
    pub fn built_in(config: &Config) -> Registry {
        let openai_compat =
            |name: &str, url: &str, env: &str, key: &Option<Secret>| ProviderConfig {
                name: name.into(),
                kind: Kind::Openai,
                base_url: url.into(),
                key_env: Some(env.into()),
                key: key.clone(),
                max_tokens_field: "max_tokens",
                stream_usage: true,
            };
        let mut providers = BTreeMap::new();
        for provider in [
            ProviderConfig {
                max_tokens_field: "max_completion_tokens",
                ..openai_compat(
                    "openai",
                    &config.openai_base_url,
                    "OPENAI_API_KEY",
                    &config.openai_api_key,
                )
            },
            ProviderConfig {
                name: "anthropic".into(),
                kind: Kind::Anthropic,
                base_url: config.anthropic_base_url.clone(),
                key_env: Some("ANTHROPIC_API_KEY".into()),
                key: config.anthropic_api_key.clone(),
                max_tokens_field: "max_tokens",
                stream_usage: true,
            },
            ProviderConfig {
                name: "gemini".into(),
                kind: Kind::Gemini,
                base_url: config.gemini_base_url.clone(),
                key_env: Some("GEMINI_API_KEY".into()),
                key: config.gemini_api_key.clone(),
                max_tokens_field: "maxOutputTokens",
                stream_usage: true,
            },
            openai_compat(
                "groq",
                "https://api.groq.com/openai/v1",
                "GROQ_API_KEY",
                &config.groq_api_key,
            ),
            openai_compat(
                "cerebras",
                "https://api.cerebras.ai/v1",
                "CEREBRAS_API_KEY",
                &config.cerebras_api_key,
            ),
            openai_compat(
                "openrouter",
                "https://openrouter.ai/api/v1",
                "OPENROUTER_API_KEY",
                &config.openrouter_api_key,
            ),
        ] {
            providers.insert(provider.name.clone(), provider);
        }
        let models = BUILT_IN
            .iter()
            .map(|(provider, upstream, aliases, capabilities)| Model {
                id: format!("{provider}:{upstream}"),
                provider: (*provider).into(),
                upstream: (*upstream).into(),
                aliases: aliases.iter().map(|a| (*a).into()).collect(),
                capabilities: *capabilities,
            })
            .collect();
        Registry {
            providers,
            models,
            tasks: BTreeMap::new(),
        }
    }

    /// The built-in registry overlaid with the models file, if it exists.
    pub fn load(config: &Config) -> Result<Registry, String> {
        let mut registry = Registry::built_in(config);
        let path = config.llm_models_file();
        match std::fs::read_to_string(&path) {
            Ok(text) => registry.overlay(&text, &path, |name| config.named_secrets.get(name))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        }
        Ok(registry)
    }

    /// Applies a models file: providers, models and tasks add to or replace the built-ins.
    fn overlay(
        &mut self,
        text: &str,
        path: &Path,
        lookup_secret: impl Fn(&str) -> Option<Secret>,
    ) -> Result<(), String> {
        let bad = |m: String| format!("models file {}: {m}", path.display());
        let file: ModelsFile = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        for (name, entry) in file.providers {
            let existing = self.providers.get(&name).cloned();
            let kind = entry
                .kind
                .or(existing.as_ref().map(|p| p.kind))
                .ok_or_else(|| bad(format!("provider {name:?} needs a kind")))?;
            let base_url = entry
                .base_url
                .map(|u| u.trim_end_matches('/').to_owned())
                .or(existing.as_ref().map(|p| p.base_url.clone()))
                .ok_or_else(|| bad(format!("provider {name:?} needs a base_url")))?;
            if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
                return Err(bad(format!("provider {name:?}: base_url must be http(s)")));
            }
            let key_env = entry
                .api_key_env
                .or(existing.as_ref().and_then(|p| p.key_env.clone()));
            let key = match (&key_env, &existing) {
                (Some(env), Some(p)) if p.key_env.as_deref() == Some(env) && p.key.is_some() => {
                    p.key.clone()
                }
                (Some(env), _) => lookup_secret(env),
                (None, _) => None,
            };
            let stream_usage = entry
                .stream_usage
                .or(existing.as_ref().map(|p| p.stream_usage))
                .unwrap_or(true);
            let max_tokens_field = match entry.max_tokens_field.as_deref() {
                Some("max_completion_tokens") => "max_completion_tokens",
                Some("max_tokens") => "max_tokens",
                Some(other) => {
                    return Err(bad(format!(
                        "provider {name:?}: max_tokens_field {other:?} is not max_tokens or max_completion_tokens"
                    )));
                }
                None => existing.map(|p| p.max_tokens_field).unwrap_or(match kind {
                    Kind::Gemini => "maxOutputTokens",
                    _ => "max_tokens",
                }),
            };
            self.providers.insert(
                name.clone(),
                ProviderConfig {
                    name,
                    kind,
                    base_url,
                    key_env,
                    key,
                    max_tokens_field,
                    stream_usage,
                },
            );
        }
        for (id, entry) in file.models {
            let existing = self.models.iter().position(|m| m.id == id);
            let provider = entry
                .provider
                .or_else(|| existing.map(|i| self.models[i].provider.clone()))
                .or_else(|| id.split_once(':').map(|(p, _)| p.to_owned()))
                .ok_or_else(|| bad(format!("model {id:?} needs a provider")))?;
            if !self.providers.contains_key(&provider) {
                return Err(bad(format!(
                    "model {id:?}: no provider {provider:?} (known: {})",
                    self.providers
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            let upstream = entry
                .upstream
                .or_else(|| existing.map(|i| self.models[i].upstream.clone()))
                .or_else(|| id.split_once(':').map(|(_, u)| u.to_owned()))
                .unwrap_or_else(|| id.clone());
            let model = Model {
                id: id.clone(),
                provider,
                upstream,
                aliases: entry.aliases,
                capabilities: entry
                    .capabilities
                    .or_else(|| existing.map(|i| self.models[i].capabilities))
                    .unwrap_or_default(),
            };
            // Aliases from the file win: remove them from the built-ins.
            for other in &mut self.models {
                other.aliases.retain(|a| !model.aliases.contains(a));
            }
            match existing {
                Some(i) => self.models[i] = model,
                None => self.models.push(model),
            }
        }
        for (task, model) in file.tasks {
            self.find(&model)
                .ok_or_else(|| bad(format!("task {task:?}: unknown model {model:?}")))?;
            self.tasks.insert(task, model);
        }
        Ok(())
    }

    /// A model by id or alias, whether or not its provider is configured.
    pub fn find(&self, name: &str) -> Option<&Model> {
        self.models.iter().find(|m| m.id == name).or_else(|| {
            self.models
                .iter()
                .find(|m| m.aliases.iter().any(|a| a == name))
        })
    }

    /// A model of `provider` by the id that provider knows, whether or not the registry
    /// lists it: sent as named, with no limits of ours (the provider keeps its own). `None`
    /// for a provider the registry does not have, or an empty id.
    pub fn upstream_model(&self, provider: &str, upstream: &str) -> Option<Model> {
        let config = self.providers.get(provider)?;
        if upstream.is_empty() {
            return None;
        }
        Some(Model {
            id: format!("{provider}:{upstream}"),
            provider: provider.to_owned(),
            upstream: upstream.to_owned(),
            aliases: Vec::new(),
            // Unknown to us: the provider judges images itself.
            capabilities: Capabilities {
                context_window: 0,
                max_output_tokens: 0,
                prefill: config.kind == Kind::Anthropic,
                images: true,
                ..Capabilities::default()
            },
        })
    }

    /// The provider of `model` (asked for as `name`), when it is configured.
    pub fn configured(&self, model: &Model, name: &str) -> Result<&ProviderConfig, LookupError> {
        let provider =
            self.providers
                .get(&model.provider)
                .ok_or_else(|| LookupError::UnknownModel {
                    name: name.to_owned(),
                    close: Vec::new(),
                })?;
        if !provider.available() {
            return Err(LookupError::NotConfigured {
                provider: provider.name.clone(),
                env: provider.key_env.clone().unwrap_or_default(),
            });
        }
        Ok(provider)
    }

    /// A model ready to call: known (or named `provider/upstream-id`), and its provider
    /// configured.
    pub fn resolve(&self, name: &str) -> Result<(Model, &ProviderConfig), LookupError> {
        let pass_through = || {
            let (provider, upstream) = name.split_once('/')?;
            self.upstream_model(provider, upstream)
        };
        let model = self.find(name).cloned().or_else(pass_through);
        let model = model.ok_or_else(|| {
            // One suggestion per model: the closest of its names.
            let names = close_matches(
                name,
                self.models
                    .iter()
                    .flat_map(|m| std::iter::once(&m.id).chain(&m.aliases)),
            );
            let mut seen = Vec::new();
            let close = names
                .into_iter()
                .filter(|n| {
                    let id = self.find(n).map(|m| m.id.clone());
                    let fresh = !seen.contains(&id);
                    seen.push(id);
                    fresh
                })
                .take(5)
                .collect();
            LookupError::UnknownModel {
                name: name.to_owned(),
                close,
            }
        })?;
        let provider = self.configured(&model, name)?;
        Ok((model, provider))
    }

    /// The model a task is done by.
    pub fn resolve_task(&self, task: &str) -> Result<(Model, &ProviderConfig), LookupError> {
        let model = self
            .tasks
            .get(task)
            .ok_or_else(|| LookupError::UnknownTask {
                name: task.to_owned(),
                close: close_matches(task, self.tasks.keys()),
            })?;
        self.resolve(model)
    }

    /// The tasks a model does.
    pub fn tasks_of(&self, model: &Model) -> Vec<String> {
        self.tasks
            .iter()
            .filter(|(_, m)| self.find(m).is_some_and(|found| found.id == model.id))
            .map(|(t, _)| t.clone())
            .collect()
    }

    /// Whether a model's provider is configured.
    pub fn available(&self, model: &Model) -> bool {
        self.providers
            .get(&model.provider)
            .is_some_and(ProviderConfig::available)
    }
}

/// Up to ten names near `name`: containing it, or within a small edit distance.
pub fn close_matches<'a>(name: &str, candidates: impl Iterator<Item = &'a String>) -> Vec<String> {
    let wanted = name.to_ascii_lowercase();
    let bare = wanted.rsplit(':').next().unwrap_or(&wanted).to_owned();
    let mut scored: Vec<(usize, &String)> = candidates
        .filter_map(|c| {
            let lower = c.to_ascii_lowercase();
            let distance = strsim::levenshtein(&wanted, &lower).min(strsim::levenshtein(
                &bare,
                lower.rsplit(':').next().unwrap_or(&lower),
            ));
            let limit = (bare.len() / 3).max(2);
            if distance <= limit {
                Some((distance, c))
            } else if bare.len() >= 3 && lower.contains(&bare) {
                Some((limit + 1, c))
            } else {
                None
            }
        })
        .collect();
    scored.sort();
    let mut out: Vec<String> = Vec::new();
    for (_, c) in scored {
        if !out.contains(c) {
            out.push(c.clone());
        }
        if out.len() == 10 {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let args = crate::env::SettingsArgs {
            openai_api_key: Some("k".into()),
            llm_models: Some("/nonexistent/models.toml".into()),
            ..Default::default()
        };
        Config::from_args(&args).expect("valid settings")
    }

    #[test]
    fn provider_slash_upstream_reaches_a_configured_provider() {
        let registry = Registry::built_in(&config());
        let (model, provider) = registry
            .resolve("openai/gpt-4.1-nano")
            .expect("pass-through");
        assert_eq!(model.id, "openai:gpt-4.1-nano");
        assert_eq!(model.upstream, "gpt-4.1-nano");
        assert_eq!(provider.name, "openai");
        assert_eq!(model.capabilities.max_output_tokens, 0, "no limit of ours");
        assert!(registry.resolve("openai/").is_err());
        assert!(matches!(
            registry.resolve("nosuch/model"),
            Err(LookupError::UnknownModel { .. })
        ));
        assert!(matches!(
            registry.resolve("anthropic/claude-x"),
            Err(LookupError::NotConfigured { .. })
        ));
    }

    #[test]
    fn ids_and_aliases_resolve_and_typos_get_close_matches() {
        let registry = Registry::built_in(&config());
        assert_eq!(
            registry.resolve("gpt-4o-mini").expect("alias").0.id,
            "openai:gpt-4o-mini"
        );
        assert_eq!(
            registry.resolve("openai:gpt-4o").expect("id").0.upstream,
            "gpt-4o"
        );
        match registry.resolve("gpt-4o-mni") {
            Err(LookupError::UnknownModel { close, .. }) => {
                assert!(close.contains(&"gpt-4o-mini".to_owned()), "{close:?}")
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            registry.resolve("claude-haiku-4-5").expect_err("no key"),
            LookupError::NotConfigured {
                provider: "anthropic".into(),
                env: "ANTHROPIC_API_KEY".into()
            }
        );
    }

    #[test]
    fn the_models_file_adds_providers_models_and_tasks() {
        let mut registry = Registry::built_in(&config());
        let text = r#"
[providers.local]
kind = "openai"
base_url = "http://127.0.0.1:8080/v1/"
api_key_env = "LOCAL_LLM_KEY"
stream_usage = false
[models."local:gemma"]
provider = "local"
upstream = "gemma-3-270m"
aliases = ["gemma", "gpt-4o"]
capabilities = { context_window = 32768, max_output_tokens = 8192, streaming = true, system_prompt = false, stop_sequences = true, prefill = false, images = false }
[tasks]
coding = "gemma"
"#;
        registry
            .overlay(text, Path::new("m.toml"), |name| {
                (name == "LOCAL_LLM_KEY")
                    .then(|| Secret::new("x"))
                    .flatten()
            })
            .expect("valid");
        let (model, provider) = registry.resolve_task("coding").expect("task");
        assert_eq!(model.upstream, "gemma-3-270m");
        assert_eq!(provider.base_url, "http://127.0.0.1:8080/v1");
        assert!(!provider.stream_usage);
        assert!(!model.capabilities.system_prompt);
        assert_eq!(
            registry.resolve("gpt-4o").expect("alias moved").0.id,
            "local:gemma"
        );
        assert!(matches!(
            registry.resolve_task("codng"),
            Err(LookupError::UnknownTask { close, .. }) if close == vec!["coding".to_owned()]
        ));
        let broken =
            registry
                .clone()
                .overlay("[models.x]\nprovider = \"nope\"\n", Path::new("m"), |_| {
                    None
                });
        assert!(broken.expect_err("bad").contains("nope"));
    }
}
