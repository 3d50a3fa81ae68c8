//! The off-machine copy of each backup: an S3-compatible bucket (`object_store`), holding
//! `<prefix>/<id>.tar.sealed` (the archive sealed on this machine, `sealed.rs`) and
//! `<prefix>/<id>.json` (its record: time, sizes, the plaintext archive's SHA-256). Nothing
//! leaves the machine unsealed: without a key there is no remote.

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use futures_util::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload, WriteMultipart};

use super::BackupInfo;
use super::sealed::{HEADER, Opener, Sealer};

/// Bytes read from the archive per step (and per message to the uploader).
const READ_STEP: usize = 1 << 20;
/// Size of each uploaded part (S3 takes 5 MiB at least).
const PART: usize = 8 << 20;
/// Parts in flight at once.
const PARTS_IN_FLIGHT: usize = 2;

/// Where and how to reach the bucket.
#[derive(Clone)]
pub struct RemoteOptions {
    /// `s3://bucket` or `s3://bucket/prefix`.
    pub url: String,
    /// Another S3-compatible service (MinIO, R2, a local test server); `None`: AWS.
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// AES-256 key (`TOOLSHED_BACKUP_KEY`).
    pub key: [u8; 32],
}

impl std::fmt::Debug for RemoteOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteOptions")
            .field("url", &self.url)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("{0}")]
    Settings(String),
    #[error("the bucket: {0}")]
    Store(#[from] object_store::Error),
    #[error("{0}")]
    Sealed(#[from] super::sealed::SealError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("no backup {0} in the bucket")]
    NotFound(String),
}

/// The bucket and prefix backups go to.
#[derive(Clone)]
pub struct Remote {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    key: [u8; 32],
    /// `s3://bucket/prefix`, for messages.
    url: String,
}

/// Splits `s3://bucket/prefix` into bucket and prefix.
pub fn parse_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    bucket_ok.then(|| (bucket.to_owned(), prefix.trim_matches('/').to_owned()))
}

impl Remote {
    pub fn new(options: &RemoteOptions) -> Result<Remote, RemoteError> {
        let (bucket, prefix) = parse_url(&options.url).ok_or_else(|| {
            RemoteError::Settings(format!(
                "TOOLSHED_BACKUP_REMOTE {:?} is not s3://bucket[/prefix]",
                options.url
            ))
        })?;
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region(options.region.clone());
        if let Some(endpoint) = &options.endpoint {
            builder = builder
                .with_endpoint(endpoint.clone())
                .with_allow_http(endpoint.starts_with("http://"));
        }
        if let Some(id) = &options.access_key_id {
            builder = builder.with_access_key_id(id.clone());
        }
        if let Some(secret) = &options.secret_access_key {
            builder = builder.with_secret_access_key(secret.clone());
        }
        Ok(Remote {
            store: Arc::new(builder.build()?),
            prefix,
            key: options.key,
            url: options.url.clone(),
        })
    }

    fn object(&self, name: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(name)
        } else {
            ObjectPath::from(format!("{}/{name}", self.prefix))
        }
    }

    /// Where backup `id`'s sealed archive is, for the record.
    pub fn location(&self, id: &str) -> String {
        format!("{}/{id}.tar.sealed", self.url.trim_end_matches('/'))
    }

    /// Seals `archive` on its way up, then stores its record beside it.
    pub async fn upload(&self, archive: &Path, info: &BackupInfo) -> Result<(), RemoteError> {
        let (sealer, header) = Sealer::new(&self.key, &info.id)?;
        let upload = self
            .store
            .put_multipart(&self.object(&format!("{}.tar.sealed", info.id)))
            .await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
        writer.write(&header);
        // The file is read and sealed on a blocking thread; the parts go up from here.
        let (sealed_tx, mut sealed_rx) = tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(4);
        let path = archive.to_owned();
        let reader = tokio::task::spawn_blocking(move || seal_file(&path, sealer, &sealed_tx));
        while let Some(piece) = sealed_rx.recv().await {
            let piece = match piece {
                Ok(piece) => piece,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(e.into());
                }
            };
            if let Err(e) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
                let _ = writer.abort().await;
                return Err(e.into());
            }
            writer.write(&piece);
        }
        reader
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        writer.finish().await?;
        let record = serde_json::to_vec_pretty(info).map_err(std::io::Error::other)?;
        self.store
            .put(
                &self.object(&format!("{}.json", info.id)),
                PutPayload::from(record),
            )
            .await?;
        Ok(())
    }

    /// The backups in the bucket (their records), oldest first.
    pub async fn list(&self) -> Result<Vec<BackupInfo>, RemoteError> {
        let prefix = (!self.prefix.is_empty()).then(|| ObjectPath::from(self.prefix.as_str()));
        // This folder only: a deeper prefix is another instance's.
        let listing = self.store.list_with_delimiter(prefix.as_ref()).await?;
        let mut records = Vec::new();
        for meta in listing.objects {
            let name = meta.location.filename().unwrap_or_default().to_owned();
            let Some(id) = name.strip_suffix(".json") else {
                continue;
            };
            if !super::valid_id(id) {
                continue;
            }
            let bytes = self.store.get(&meta.location).await?.bytes().await?;
            if let Ok(info) = serde_json::from_slice::<BackupInfo>(&bytes) {
                records.push(info);
            }
        }
        records.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(records)
    }

    /// Downloads backup `id` and opens it into `target`; answers its record.
    pub async fn download(&self, id: &str, target: &Path) -> Result<BackupInfo, RemoteError> {
        let record = match self.store.get(&self.object(&format!("{id}.json"))).await {
            Ok(found) => found.bytes().await?,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(RemoteError::NotFound(id.to_owned()));
            }
            Err(e) => return Err(e.into()),
        };
        let info: BackupInfo = serde_json::from_slice(&record)
            .map_err(|e| RemoteError::Settings(format!("the record of backup {id}: {e}")))?;
        let mut stream = self
            .store
            .get(&self.object(&format!("{id}.tar.sealed")))
            .await?
            .into_stream();
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(target)?;
        let mut header = Vec::with_capacity(HEADER);
        let mut opener: Option<Opener> = None;
        while let Some(bytes) = stream.next().await {
            let mut bytes: &[u8] = &bytes?;
            let opened = match &mut opener {
                Some(opener) => opener,
                None => {
                    let take = (HEADER - header.len()).min(bytes.len());
                    header.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    if header.len() < HEADER {
                        continue;
                    }
                    opener.insert(Opener::new(&self.key, &header, id)?)
                }
            };
            file.write_all(&opened.push(bytes)?)?;
        }
        let opener = opener.ok_or(super::sealed::SealError::NotSealed)?;
        file.write_all(&opener.finish()?)?;
        file.sync_all()?;
        Ok(info)
    }

    /// Removes backup `id` from the bucket.
    pub async fn delete(&self, id: &str) -> Result<(), RemoteError> {
        for name in [format!("{id}.json"), format!("{id}.tar.sealed")] {
            match self.store.delete(&self.object(&name)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// Reads and seals the file at `path`, sending the sealed pieces.
fn seal_file(
    path: &Path,
    mut sealer: Sealer,
    out: &tokio::sync::mpsc::Sender<std::io::Result<Vec<u8>>>,
) {
    let sealed = (|| -> std::io::Result<()> {
        let mut file = std::fs::File::open(path)?;
        let mut buffer = vec![0u8; READ_STEP];
        loop {
            let n = file.read(&mut buffer)?;
            if n == 0 {
                break;
            }
            let piece = sealer.push(&buffer[..n]).map_err(std::io::Error::other)?;
            if out.blocking_send(Ok(piece)).is_err() {
                return Ok(());
            }
        }
        let last = sealer.finish().map_err(std::io::Error::other)?;
        let _ = out.blocking_send(Ok(last));
        Ok(())
    })();
    if let Err(e) = sealed {
        let _ = out.blocking_send(Err(e));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remote_is_a_bucket_and_an_optional_prefix() {
        assert_eq!(
            parse_url("s3://my-backups/laptop/"),
            Some(("my-backups".into(), "laptop".into()))
        );
        assert_eq!(
            parse_url("s3://my-backups"),
            Some(("my-backups".into(), String::new()))
        );
        assert_eq!(parse_url("https://my-backups"), None);
        assert_eq!(parse_url("s3://UPPER"), None);
    }
}
