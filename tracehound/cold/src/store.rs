//! [`ColdStore`]: evidence envelopes on any [`ObjectStore`], keyed by signature (see
//! [`crate::layout`]) and verified on every read.

use std::sync::Arc;

use futures_util::stream::{BoxStream, StreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use secrecy::ExposeSecret;
use tracehound_core::codec::GzipCodec;
use tracehound_core::evidence::Evidence;

use crate::config::{ColdConfig, S3Config};
use crate::envelope::{open, seal, ColdEvidence, SealedEvidence};
use crate::layout::{object_path, signature_of};
use crate::ColdError;

/// What a successful write stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutReceipt {
    /// The object key.
    pub key: String,
    /// Bytes written (the envelope).
    pub bytes: u64,
}

/// One object found by [`ColdStore::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColdObject {
    /// The evidence signature the key stands for.
    pub signature: String,
    /// The object key.
    pub key: String,
    /// Object size in bytes.
    pub size: u64,
    /// When the store last wrote it (ms since the Unix epoch).
    pub last_modified_ms: i64,
}

/// Evidence in an object store. Cheap to clone (shared store and codec).
#[derive(Debug, Clone)]
pub struct ColdStore {
    inner: Arc<dyn ObjectStore>,
    prefix: Path,
    codec: Arc<GzipCodec>,
    max_object_bytes: u64,
    description: Arc<str>,
    /// Set once (shared by clones): objects are then sealed encrypted (`THCE`).
    sealer: Arc<std::sync::OnceLock<Arc<dyn crate::EvidenceSealer>>>,
    /// Set once (shared by clones): signatures the evacuator must not write (erasure).
    write_filter: Arc<std::sync::OnceLock<Arc<dyn crate::WriteFilter>>>,
}

impl ColdStore {
    /// A cold store over any object store, under `prefix`. `description` names it in
    /// audit records and logs (e.g. `s3://bucket/prefix`); it must not contain secrets.
    pub fn new(inner: Arc<dyn ObjectStore>, prefix: &str, description: &str) -> ColdStore {
        ColdStore {
            inner,
            prefix: Path::from(prefix),
            codec: Arc::new(GzipCodec::new()),
            max_object_bytes: tracehound_core::codec::DEFAULT_MAX_DECODED_SIZE
                + tracehound_core::codec::HEADER_SIZE as u64,
            description: Arc::from(description),
            sealer: Arc::default(),
            write_filter: Arc::default(),
        }
    }

    /// Makes the evacuator check `filter` just before every write (shared by clones; set
    /// once). Returns `false` if one was already set.
    pub fn set_write_filter(&self, filter: Arc<dyn crate::WriteFilter>) -> bool {
        self.write_filter.set(filter).is_ok()
    }

    /// Whether the write filter refuses `signature` (no filter: never).
    pub fn refuses_write(&self, signature: &str) -> bool {
        self.write_filter
            .get()
            .is_some_and(|f| f.refuses(signature))
    }

    /// Discards `signature`'s data key, if a sealer is set (an object that was never
    /// written must not leave an orphan key). Blocking: run it off the async workers.
    pub fn discard_key(&self, signature: &str) -> Result<(), crate::SealerError> {
        match self.sealer.get() {
            Some(sealer) => sealer.discard(signature),
            None => Ok(()),
        }
    }

    /// Seals every later write with `sealer` (encrypted `THCE` envelopes, one data key per
    /// evidence) and lets reads open them. Shared by every clone of this store (the
    /// evacuator's included); can be set once. Returns `false` if one was already set.
    pub fn set_sealer(&self, sealer: Arc<dyn crate::EvidenceSealer>) -> bool {
        self.sealer.set(sealer).is_ok()
    }

    /// Whether writes are sealed encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.sealer.get().is_some()
    }

    /// The embedded default: a directory on the local filesystem (created if missing).
    /// Writes go to a staging file renamed into place, so a crash never leaves a partial
    /// object under a real key.
    pub fn local(dir: impl AsRef<std::path::Path>, prefix: &str) -> Result<ColdStore, ColdError> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| ColdError::Config {
            reason: format!("cannot create {}: {e}", dir.display()),
        })?;
        let fs = LocalFileSystem::new_with_prefix(dir)?.with_automatic_cleanup(true);
        let description = format!("file://{}/{prefix}", dir.display());
        Ok(ColdStore::new(Arc::new(fs), prefix, &description))
    }

    /// An S3-compatible bucket (AWS S3, Cloudflare R2, GCS's S3 interoperability API,
    /// MinIO...). Unset fields come from the `AWS_*` environment variables.
    pub fn s3(config: &S3Config, prefix: &str) -> Result<ColdStore, ColdError> {
        if config.bucket.is_empty() {
            return Err(ColdError::Config {
                reason: "s3: bucket is required".into(),
            });
        }
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&config.bucket)
            .with_virtual_hosted_style_request(config.virtual_hosted_style);
        if let Some(region) = &config.region {
            builder = builder.with_region(region);
        }
        if let Some(endpoint) = &config.endpoint {
            if endpoint.starts_with("http://") && !config.allow_http {
                return Err(ColdError::Config {
                    reason: "s3: plain http endpoint needs allow_http = true".into(),
                });
            }
            builder = builder.with_endpoint(endpoint);
        }
        builder = builder.with_allow_http(config.allow_http);
        if let Some(id) = &config.access_key_id {
            builder = builder.with_access_key_id(id);
        }
        if let Some(secret) = &config.secret_access_key {
            builder = builder.with_secret_access_key(secret.expose_secret());
        }
        if let Some(token) = &config.session_token {
            builder = builder.with_token(token.expose_secret());
        }
        let s3 = builder.build()?;
        let description = format!("s3://{}/{prefix}", config.bucket);
        Ok(ColdStore::new(Arc::new(s3), prefix, &description))
    }

    /// The store a `[cold]` configuration names (exactly one backend).
    pub fn from_config(config: &ColdConfig) -> Result<ColdStore, ColdError> {
        let store = match (&config.local, &config.s3) {
            (Some(local), None) => ColdStore::local(&local.path, &config.prefix)?,
            (None, Some(s3)) => ColdStore::s3(s3, &config.prefix)?,
            _ => {
                return Err(ColdError::Config {
                    reason: "set exactly one of [cold.local] or [cold.s3]".into(),
                })
            }
        };
        Ok(store.with_max_object_bytes(config.max_object_bytes))
    }

    /// Caps the object size [`get`](Self::get) reads (larger objects are `Corrupt`).
    pub fn with_max_object_bytes(mut self, max: u64) -> ColdStore {
        self.max_object_bytes = max;
        self
    }

    /// The underlying object store (for lifecycle and erasure work that needs more than
    /// evidence objects, and for tests that damage objects on purpose).
    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.inner
    }

    /// Where this store writes (no secrets): `file://dir/prefix` or `s3://bucket/prefix`.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The object key `signature` is stored under.
    pub fn key_for(&self, signature: &str) -> Result<String, ColdError> {
        Ok(object_path(&self.prefix, signature)?.to_string())
    }

    /// Seals evidence into its envelope without writing it (CPU work: compression and
    /// hashing; run it off the async workers for large payloads).
    pub fn seal(
        &self,
        signature: &str,
        bytes: &[u8],
        compressed: bool,
    ) -> Result<SealedEvidence, ColdError> {
        if let Some(sealer) = self.sealer.get() {
            return crate::sealed::seal_encrypted(
                &self.codec,
                sealer.as_ref(),
                signature,
                bytes,
                compressed,
            );
        }
        seal(&self.codec, signature, bytes, compressed)
    }

    /// Writes a sealed envelope under its signature's key (overwriting: the key is
    /// content-addressed, so a rewrite stores the same bytes and repairs a damaged copy).
    pub async fn put_sealed(&self, sealed: &SealedEvidence) -> Result<PutReceipt, ColdError> {
        let path = object_path(&self.prefix, &sealed.signature)?;
        let bytes = sealed.envelope.len() as u64;
        self.inner
            .put(&path, PutPayload::from(sealed.envelope.clone()))
            .await?;
        Ok(PutReceipt {
            key: path.to_string(),
            bytes,
        })
    }

    /// Seals and writes `evidence`.
    pub async fn put(&self, evidence: &Evidence) -> Result<PutReceipt, ColdError> {
        let sealed = self.seal(
            evidence.signature(),
            evidence.bytes(),
            evidence.compressed(),
        )?;
        self.put_sealed(&sealed).await
    }

    /// Reads the object for `signature` and verifies it (envelope, hash, size, and that
    /// the payload hashes to the signature). Damaged objects are `Corrupt`, never returned.
    pub async fn get(&self, signature: &str) -> Result<ColdEvidence, ColdError> {
        let path = object_path(&self.prefix, signature)?;
        let object = self.read_object(signature, &path).await?;
        if crate::sealed::is_encrypted(&object) {
            let sealer = self.sealer.get().map(|s| s.as_ref());
            return crate::sealed::open_encrypted(&self.codec, sealer, signature, &object);
        }
        open(&self.codec, signature, &object)
    }

    /// The stored object's raw bytes, unverified (for inspection and tests).
    pub async fn get_raw(&self, signature: &str) -> Result<Vec<u8>, ColdError> {
        let path = object_path(&self.prefix, signature)?;
        self.read_object(signature, &path).await
    }

    /// Whether an object exists for `signature` (not verified).
    pub async fn contains(&self, signature: &str) -> Result<bool, ColdError> {
        let path = object_path(&self.prefix, signature)?;
        match self.inner.head(&path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes the object for `signature`; deleting a missing object succeeds (erasure
    /// must be idempotent). With a sealer, the object's key is discarded too.
    pub async fn delete(&self, signature: &str) -> Result<(), ColdError> {
        let path = object_path(&self.prefix, signature)?;
        match self.inner.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        // With a sealer, the object's key goes too (key files block on fsync).
        if let Some(sealer) = self.sealer.get() {
            let (sealer, sig) = (Arc::clone(sealer), signature.to_owned());
            tokio::task::spawn_blocking(move || sealer.discard(&sig))
                .await
                .map_err(|e| ColdError::Task {
                    reason: e.to_string(),
                })?
                .map_err(|e| ColdError::Sealer {
                    signature: signature.to_owned(),
                    reason: e.to_string(),
                })?;
        }
        Ok(())
    }

    /// Every evidence object under the prefix (optionally one category), in no particular
    /// order. Keys that do not follow the layout (staging files, foreign objects) are
    /// skipped.
    pub fn list(
        &self,
        category: Option<&str>,
    ) -> Result<BoxStream<'static, Result<ColdObject, ColdError>>, ColdError> {
        let scope = match category {
            Some(c) => {
                crate::layout::parse_signature(&format!("{c}:{}", "0".repeat(64)))?;
                self.prefix.clone().join(c)
            }
            None => self.prefix.clone(),
        };
        let prefix = self.prefix.clone();
        let stream = self.inner.list(Some(&scope)).filter_map(move |item| {
            let out = match item {
                Ok(meta) => signature_of(&prefix, &meta.location).map(|signature| {
                    Ok(ColdObject {
                        signature,
                        key: meta.location.to_string(),
                        size: meta.size,
                        last_modified_ms: meta.last_modified.timestamp_millis(),
                    })
                }),
                Err(e) => Some(Err(ColdError::from(e))),
            };
            std::future::ready(out)
        });
        Ok(stream.boxed())
    }

    async fn read_object(&self, signature: &str, path: &Path) -> Result<Vec<u8>, ColdError> {
        let result = match self.inner.get(path).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(ColdError::NotFound {
                    signature: signature.to_owned(),
                })
            }
            Err(e) => return Err(e.into()),
        };
        if result.meta.size > self.max_object_bytes {
            return Err(ColdError::Corrupt {
                signature: signature.to_owned(),
                reason: format!(
                    "object is {} bytes, above the {}-byte limit",
                    result.meta.size, self.max_object_bytes
                ),
            });
        }
        Ok(result.bytes().await?.to_vec())
    }
}
