//! Cost accounting for cold storage: objects and bytes per category, kept as a running
//! tally so `Stats` never lists the bucket.
//!
//! The tally is updated where the bytes change hands: [`TallyStore`] wraps the object
//! store the [`ColdStore`](tracehound_cold::ColdStore) writes through, so every evidence
//! object put or deleted — by the evacuator, the lifecycle task, or anyone else holding
//! the store — is counted, whatever path led there. An overwrite (the key is
//! content-addressed, so a rewrite of the same evidence) is counted once. A listing at
//! start (and at each lifecycle run, when nothing is being written) sets the tally to
//! what is really stored, so drift from objects changed behind the daemon's back does not
//! last.
//! Both listings only reset the tally when no write could have slipped in (nothing
//! pending before or after, no object written in between); otherwise the running tally
//! is kept until the next quiet listing.
//!
//! Request cost: every evidence put is preceded by one HEAD (to count an overwrite once)
//! and every delete by one HEAD (to know the bytes leaving); on S3 that is one extra
//! request per write or deletion. A lifecycle deletion adds one more HEAD of its own (to
//! check the object is still the one listed). Not reduced further: skipping the HEAD
//! would double-count rewrites until the next listing.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
};
use parking_lot::Mutex;

/// Count and bytes of one category's objects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CategoryTotals {
    /// Objects.
    pub count: u64,
    /// Bytes (whole envelopes).
    pub bytes: u64,
}

/// Per-category totals of what cold storage holds.
#[derive(Debug, Default)]
pub struct ColdTally {
    by_category: Mutex<BTreeMap<String, CategoryTotals>>,
}

impl ColdTally {
    /// A copy of the totals, categories in name order (empty categories left out).
    pub fn snapshot(&self) -> BTreeMap<String, CategoryTotals> {
        self.by_category.lock().clone()
    }

    /// Everything together.
    pub fn total(&self) -> CategoryTotals {
        self.by_category
            .lock()
            .values()
            .fold(CategoryTotals::default(), |a, t| CategoryTotals {
                count: a.count + t.count,
                bytes: a.bytes + t.bytes,
            })
    }

    /// Replaces the totals with a fresh count (from a listing).
    pub fn reset(&self, totals: BTreeMap<String, CategoryTotals>) {
        *self.by_category.lock() = totals;
    }

    fn added(&self, category: &str, bytes: u64) {
        let mut map = self.by_category.lock();
        let t = map.entry(category.to_owned()).or_default();
        t.count += 1;
        t.bytes = t.bytes.saturating_add(bytes);
    }

    fn removed(&self, category: &str, bytes: u64) {
        let mut map = self.by_category.lock();
        if let Some(t) = map.get_mut(category) {
            t.count = t.count.saturating_sub(1);
            t.bytes = t.bytes.saturating_sub(bytes);
            if t.count == 0 {
                map.remove(category);
            }
        }
    }
}

/// The category of an evidence object's key, if the key follows the cold layout.
fn category_of(prefix: &Path, key: &Path) -> Option<String> {
    let signature = tracehound_cold::layout::signature_of(prefix, key)?;
    tracehound_core::types::category_of(&signature).map(str::to_owned)
}

/// An [`ObjectStore`] that forwards everything to `inner` and keeps a [`ColdTally`] of
/// the evidence objects under `prefix`.
pub struct TallyStore {
    inner: Arc<dyn ObjectStore>,
    prefix: Path,
    tally: Arc<ColdTally>,
}

impl TallyStore {
    /// Wraps `inner`; `prefix` is the cold store's key prefix.
    pub fn new(inner: Arc<dyn ObjectStore>, prefix: &str, tally: Arc<ColdTally>) -> TallyStore {
        TallyStore {
            inner,
            prefix: Path::from(prefix),
            tally,
        }
    }

    /// The size of the object at `location`, if there is one (any error counts as none:
    /// the tally is an estimate repaired by the next listing, never a reason to fail a
    /// write).
    async fn size_of(inner: &Arc<dyn ObjectStore>, location: &Path) -> Option<u64> {
        inner.head(location).await.ok().map(|m| m.size)
    }
}

impl fmt::Debug for TallyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TallyStore")
            .field("inner", &self.inner.to_string())
            .field("prefix", &self.prefix.as_ref())
            .finish_non_exhaustive()
    }
}

impl fmt::Display for TallyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tally({})", self.inner)
    }
}

#[async_trait::async_trait]
impl ObjectStore for TallyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let Some(category) = category_of(&self.prefix, location) else {
            return self.inner.put_opts(location, payload, opts).await;
        };
        let previous = TallyStore::size_of(&self.inner, location).await;
        let bytes = payload.content_length() as u64;
        let result = self.inner.put_opts(location, payload, opts).await?;
        if let Some(old) = previous {
            self.tally.removed(&category, old);
        }
        self.tally.added(&category, bytes);
        Ok(result)
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        // The cold store writes single puts; multipart objects are counted by the next
        // listing.
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        // Note each evidence object's size before it goes, then count the deletions the
        // store confirms.
        let inner = Arc::clone(&self.inner);
        let prefix = self.prefix.clone();
        let sizes: Arc<Mutex<BTreeMap<Path, (String, u64)>>> = Arc::default();
        let noted = Arc::clone(&sizes);
        let sized = locations
            .then(move |item| {
                let inner = Arc::clone(&inner);
                let prefix = prefix.clone();
                let noted = Arc::clone(&noted);
                async move {
                    if let Ok(location) = &item {
                        if let Some(category) = category_of(&prefix, location) {
                            if let Some(size) = TallyStore::size_of(&inner, location).await {
                                noted.lock().insert(location.clone(), (category, size));
                            }
                        }
                    }
                    item
                }
            })
            .boxed();
        let tally = Arc::clone(&self.tally);
        self.inner
            .delete_stream(sized)
            .inspect(move |result| {
                if let Ok(location) = result {
                    if let Some((category, size)) = sizes.lock().remove(location) {
                        tally.removed(&category, size);
                    }
                }
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        // Not used by the cold store; a copy is counted by the next listing.
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    const H: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    #[tokio::test]
    async fn puts_overwrites_and_deletes_are_counted_once() {
        let tally = Arc::new(ColdTally::default());
        let store = TallyStore::new(Arc::new(InMemory::new()), "p", Arc::clone(&tally));
        let key = Path::from(format!("p/injection/2c/{H}.thcs"));
        store
            .put(&key, PutPayload::from(vec![0u8; 10]))
            .await
            .unwrap();
        store
            .put(&key, PutPayload::from(vec![0u8; 12]))
            .await
            .unwrap();
        let foreign = Path::from("p/other/file.txt");
        store
            .put(&foreign, PutPayload::from(vec![0u8; 99]))
            .await
            .unwrap();
        let t = tally.snapshot();
        assert_eq!(t.len(), 1);
        assert_eq!(
            t["injection"],
            CategoryTotals {
                count: 1,
                bytes: 12
            }
        );
        store.delete(&key).await.unwrap();
        // Deleting a missing object changes nothing.
        let _ = store.delete(&key).await;
        assert!(tally.snapshot().is_empty());
        assert_eq!(tally.total(), CategoryTotals::default());
    }
}
