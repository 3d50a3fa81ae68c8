//! One transcription for one audio file and its options: from the cache (keyed by the
//! audio's SHA-256 and the options), else made once however many ask at the same moment.

use sha2::{Digest, Sha256};

use super::audio::Audio;
use super::providers::{self, Options, TranscribeError, Transcript};
use super::state::Speech;
use crate::platform::error::AppError;
use crate::platform::hash::cache_key;
use crate::storage::cache::CacheEntry;

/// A transcription, and whether it came from the cache.
pub struct Transcribed {
    pub transcript: Transcript,
    pub cached: bool,
}

pub async fn transcribe(
    speech: &Speech,
    audio: &Audio,
    options: &Options,
) -> Result<Transcribed, AppError> {
    let digest = format!("{:x}", Sha256::digest(&audio.bytes));
    let key = format!(
        "transcribe/{}",
        cache_key(&serde_json::json!([digest, options.key_part()]).to_string())
    );
    if let Ok(Some(bytes)) = speech.app.store.cache.get(&key).await
        && let Ok(transcript) = serde_json::from_slice::<Transcript>(&bytes)
    {
        return Ok(Transcribed {
            transcript,
            cached: true,
        });
    }
    let cell = speech.join(&key);
    let made = cell
        .get_or_try_init(|| make(speech, audio, options, &key))
        .await
        .cloned();
    speech.leave(&key, &cell);
    Ok(Transcribed {
        transcript: made?,
        cached: false,
    })
}

async fn make(
    speech: &Speech,
    audio: &Audio,
    options: &Options,
    key: &str,
) -> Result<Transcript, AppError> {
    let config = &speech.app.config;
    let client = speech.app.outbound.trusted()?;
    let started = std::time::Instant::now();
    let transcript = tokio::time::timeout(
        config.transcribe_timeout_s,
        providers::transcribe(config, client, audio, options),
    )
    .await
    .map_err(|_| TranscribeError::Timeout(options.provider.name()))??;
    let entry = CacheEntry {
        key: key.to_owned(),
        value: serde_json::to_vec(&transcript).map_err(|e| AppError::internal(e.to_string()))?,
        ttl: config.blob_max_age_s,
    };
    speech.app.store.cache.put_many(vec![entry]).await?;
    tracing::info!(
        provider = options.provider.name(),
        model = %options.model,
        bytes = audio.bytes.len(),
        ms = started.elapsed().as_millis() as u64,
        "audio transcribed"
    );
    Ok(transcript)
}
