//! The blob store per tenant and namespace: objects of bytes by key, each with a content type,
//! through the `object_store` crate (its local file system backend here; S3, GCS and Azure
//! are the same trait).
//!
//! [`Blobs`] checks every request on its face and maps a key to the object
//! `data/<tenant>/<namespace>/<key>`, each segment percent-encoded by `object_store`, so no
//! key reaches outside its scope. The local backend keeps no attributes, so a blob's content
//! type lives beside it as the small JSON object `meta/<tenant>/<namespace>/<key>`.
//!
//! Large blobs stream both ways: an [`Upload`] takes chunks as they arrive and writes them in
//! parts of [`PART_BYTES`] with at most [`PARTS_IN_FLIGHT`] in flight (so it holds a few MiB
//! whatever the blob's size), and becomes visible at once when it finishes (the local backend
//! writes a staging file and renames it); [`Blobs::get`] returns a stream of chunks read from
//! the file as the caller takes them. On the local backend a write is durable when it returns:
//! `object_store` fsyncs the staging file before it renames it, then the folder.

use std::{
    path::{Path as FsPath, PathBuf},
    sync::Arc,
};

use bytes::Bytes;
use futures_util::{StreamExt as _, TryStreamExt as _, stream::BoxStream};
use object_store::{
    GetResultPayload, ObjectMeta, ObjectStore, ObjectStoreExt as _, PutPayload, WriteMultipart,
    local::LocalFileSystem, path::Path,
};
use plexspaces_types::ErrorCode;

use crate::{Error, Result};

/// The longest key, in bytes of UTF-8.
pub const MAX_KEY: usize = 1024;

/// The longest key segment once percent-encoded for storage (a file name: most file systems
/// take 255 bytes, and an upload's staging file adds a suffix).
pub const MAX_SEGMENT: usize = 240;

/// The longest content type, in bytes.
pub const MAX_CONTENT_TYPE: usize = 256;

/// The content type of a blob stored without one.
pub const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// How many blobs a listing without a limit returns.
pub const DEFAULT_LIST: u32 = 100;

/// The most blobs one listing returns.
pub const MAX_LIST: u32 = 1_000;

/// The size of the parts an upload writes.
pub const PART_BYTES: usize = 1 << 20;

/// How many parts of one upload are written at once.
pub const PARTS_IN_FLIGHT: usize = 4;

/// The size of the chunks a download reads.
pub const READ_CHUNK: usize = 256 * 1024;

/// Whose blobs: tenant and namespace.
pub type Scope<'a> = (&'a str, &'a str);

/// A stream of a blob's bytes.
pub type ByteStream = BoxStream<'static, Result<Bytes>>;

/// What a blob is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    /// The key.
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its content type.
    pub content_type: String,
    /// When it was last written, in ms since the Unix epoch.
    pub modified_at_ms: u64,
    /// Changes whenever the blob is written.
    pub etag: String,
}

/// One page of a listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    /// Blobs whose keys start with the prefix, in key order.
    pub blobs: Vec<BlobInfo>,
    /// Set when more follow: pass it as `after` for the next page.
    pub next_after: Option<String>,
}

/// The sidecar of a blob.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Meta {
    content_type: String,
}

/// The blob store: cheap to clone.
#[derive(Debug, Clone)]
pub struct Blobs {
    store: Arc<dyn ObjectStore>,
    /// The local backend (it fsyncs each file and its folder before a write returns), to
    /// explain a write it refused.
    local_root: Option<Arc<LocalFileSystem>>,
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidArguments, message)
}

/// Checks a key: 1 to [`MAX_KEY`] bytes, segments separated by `/`, none empty, `.` or `..`,
/// no control characters.
pub fn check_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > MAX_KEY {
        return Err(invalid(format!("a blob key is 1 to {MAX_KEY} bytes, not {}", key.len())));
    }
    if key.chars().any(char::is_control) {
        return Err(invalid(format!("a blob key has no control characters: {key:?}")));
    }
    if key.split('/').any(|segment| segment.is_empty() || segment == "." || segment == "..") {
        return Err(invalid(format!(
            "a blob key is segments separated by '/', none empty, '.' or '..': {key:?}"
        )));
    }
    for segment in key.split('/') {
        let stored = object_store::path::PathPart::from(segment).as_ref().len();
        if stored > MAX_SEGMENT {
            return Err(invalid(format!(
                "a segment of a blob key is at most {MAX_SEGMENT} bytes once stored (letters, \
                 digits and most punctuation take 1, other characters 3 per byte of UTF-8), not \
                 {stored}: {segment:?}"
            )));
        }
    }
    Ok(())
}

/// The content type to store: the default for an empty one.
pub fn content_type(content_type: &str) -> Result<String> {
    let content_type = content_type.trim();
    if content_type.is_empty() {
        return Ok(DEFAULT_CONTENT_TYPE.to_owned());
    }
    if content_type.len() > MAX_CONTENT_TYPE || content_type.chars().any(char::is_control) {
        return Err(invalid(format!(
            "a content type is at most {MAX_CONTENT_TYPE} bytes with no control characters"
        )));
    }
    Ok(content_type.to_owned())
}

fn object(tree: &str, scope: Scope<'_>, key: &str) -> Path {
    [tree, scope.0, scope.1].into_iter().chain(key.split('/')).collect()
}

fn internal(what: impl std::fmt::Display, error: impl std::fmt::Display) -> Error {
    Error::new(ErrorCode::Internal, format!("{what}: {error}"))
}

fn millis(meta: &ObjectMeta) -> u64 {
    u64::try_from(meta.last_modified.timestamp_millis()).unwrap_or(0)
}

/// What a blob is, from its object's metadata and its content type.
fn info_of(key: &str, meta: &ObjectMeta, content_type: String) -> BlobInfo {
    BlobInfo {
        key: key.to_owned(),
        size: meta.size,
        content_type,
        modified_at_ms: millis(meta),
        // Bare: HTTP quotes it in its `ETag` header.
        etag: meta.e_tag.as_deref().unwrap_or_default().trim_matches('"').to_owned(),
    }
}

/// The key of a listed object of `scope`, its segments decoded.
fn key_of(location: &Path) -> String {
    let segments: Vec<String> = location
        .parts()
        .skip(3)
        .map(|part| {
            percent_encoding::percent_decode_str(part.as_ref()).decode_utf8_lossy().into_owned()
        })
        .collect();
    segments.join("/")
}

impl Blobs {
    /// The blobs in the folder `root` (created when missing), through `object_store`'s local
    /// file system backend. Staging files of uploads a crash interrupted are removed.
    pub fn open_local(root: &FsPath) -> Result<Self> {
        std::fs::create_dir_all(root)
            .map_err(|error| internal(format_args!("cannot create {}", root.display()), error))?;
        remove_staging_files(&root.join("data"));
        let local = LocalFileSystem::new_with_prefix(root)
            .map_err(|error| internal(format_args!("cannot open {}", root.display()), error))?
            .with_automatic_cleanup(true)
            .with_fsync(true);
        let local = Arc::new(local);
        Ok(Self { store: Arc::clone(&local) as Arc<dyn ObjectStore>, local_root: Some(local) })
    }

    /// Blobs that live as long as the process (`object_store`'s in-memory backend).
    pub fn in_memory() -> Self {
        Self::with_store(Arc::new(object_store::memory::InMemory::new()))
    }

    /// The blobs in another `object_store` backend.
    pub fn with_store(store: Arc<dyn ObjectStore>) -> Self {
        Self { store, local_root: None }
    }

    /// Stores `data` under `key` (replacing what was there); durable when it returns.
    pub async fn put(
        &self,
        scope: Scope<'_>,
        key: &str,
        content_type_in: &str,
        data: Bytes,
    ) -> Result<BlobInfo> {
        check_key(key)?;
        let content_type = content_type(content_type_in)?;
        let location = object("data", scope, key);
        let written = self.store.put(&location, PutPayload::from_bytes(data)).await;
        if let Err(error) = written {
            return Err(self.write_failed(scope, key, error).await);
        }
        self.finish_write(scope, key, &location, content_type).await
    }

    /// An upload of `key`, written as its chunks come; nothing is visible until
    /// [`Upload::finish`], and [`Upload::abort`] (or dropping it) leaves what was there.
    pub async fn upload(
        &self,
        scope: Scope<'_>,
        key: &str,
        content_type_in: &str,
    ) -> Result<Upload> {
        check_key(key)?;
        let content_type = content_type(content_type_in)?;
        let location = object("data", scope, key);
        let upload = match self.store.put_multipart(&location).await {
            Ok(upload) => upload,
            Err(error) => return Err(self.write_failed(scope, key, error).await),
        };
        Ok(Upload {
            blobs: self.clone(),
            scope: (scope.0.to_owned(), scope.1.to_owned()),
            key: key.to_owned(),
            content_type,
            location,
            writer: Some(WriteMultipart::new_with_chunk_size(upload, PART_BYTES)),
            written: 0,
        })
    }

    /// The blob's info and a stream of its bytes, or `None`.
    pub async fn get(&self, scope: Scope<'_>, key: &str) -> Result<Option<(BlobInfo, ByteStream)>> {
        check_key(key)?;
        let location = object("data", scope, key);
        let got = match self.store.get(&location).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(error) => return Err(internal(format_args!("cannot read blob {key:?}"), error)),
        };
        let info = self.info(scope, key, &got.meta).await?;
        let stream: ByteStream = match got.payload {
            GetResultPayload::File(file, path) => read_file(file, path),
            GetResultPayload::Stream(stream) => {
                stream.map_err(move |error| internal("cannot read a blob", error)).boxed()
            }
        };
        Ok(Some((info, stream)))
    }

    /// The blob's info and its bytes, or `None`; `payload_too_large` when it is larger than
    /// `max` bytes.
    pub async fn read(
        &self,
        scope: Scope<'_>,
        key: &str,
        max: u64,
    ) -> Result<Option<(BlobInfo, Bytes)>> {
        let Some((info, mut stream)) = self.get(scope, key).await? else { return Ok(None) };
        if info.size > max {
            return Err(Error::new(
                ErrorCode::PayloadTooLarge,
                format!(
                    "blob {key:?} is {} bytes; this call moves at most {max}: use a presigned URL",
                    info.size
                ),
            ));
        }
        let mut data = Vec::with_capacity(usize::try_from(info.size).unwrap_or(0));
        while let Some(chunk) = stream.next().await {
            data.extend_from_slice(&chunk?);
            if data.len() as u64 > max {
                return Err(Error::new(
                    ErrorCode::PayloadTooLarge,
                    format!("blob {key:?} grew past {max} bytes while it was read"),
                ));
            }
        }
        Ok(Some((info, Bytes::from(data))))
    }

    /// The blob's info, or `None`.
    pub async fn head(&self, scope: Scope<'_>, key: &str) -> Result<Option<BlobInfo>> {
        check_key(key)?;
        match self.store.head(&object("data", scope, key)).await {
            Ok(meta) => Ok(Some(self.info(scope, key, &meta).await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(internal(format_args!("cannot read blob {key:?}"), error)),
        }
    }

    /// Removes the blob; true when it was there.
    pub async fn delete(&self, scope: Scope<'_>, key: &str) -> Result<bool> {
        // Stores that delete idempotently (S3, memory) say nothing of what was there.
        match self.store.head(&object("data", scope, key)).await {
            Ok(_) => {}
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(error) => return Err(internal(format_args!("cannot read blob {key:?}"), error)),
        }
        match self.store.delete(&object("data", scope, key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(error) => return Err(internal(format_args!("cannot delete blob {key:?}"), error)),
        }
        match self.store.delete(&object("meta", scope, key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(error) => {
                tracing::warn!(key, %error, "the content type of a deleted blob stays behind");
            }
        }
        Ok(true)
    }

    /// Up to `limit` (0: [`DEFAULT_LIST`]) blobs whose keys start with `prefix` and sort after
    /// `after`, in key order.
    pub async fn list(
        &self,
        scope: Scope<'_>,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page> {
        let limit = if limit == 0 { DEFAULT_LIST } else { limit };
        if limit > MAX_LIST {
            return Err(invalid(format!("a listing holds 1 to {MAX_LIST} blobs, not {limit}")));
        }
        if prefix.len() > MAX_KEY || prefix.chars().any(char::is_control) {
            return Err(invalid(format!(
                "a prefix is at most {MAX_KEY} bytes with no control characters"
            )));
        }
        // The store lists whole segments: list the folder the prefix is in, then filter.
        let folder = match prefix.rfind('/') {
            Some(end) => {
                let folder = &prefix[..end];
                if folder
                    .split('/')
                    .any(|segment| segment.is_empty() || segment == "." || segment == "..")
                {
                    return Ok(Page::default());
                }
                Some(folder)
            }
            None => None,
        };
        let mut under = vec!["data", scope.0, scope.1];
        under.extend(folder.iter().flat_map(|folder| folder.split('/')));
        let under: Path = under.into_iter().collect();
        let mut found: Vec<(String, ObjectMeta)> = Vec::new();
        let mut listing = self.store.list(Some(&under));
        while let Some(meta) = listing.next().await {
            let meta = match meta {
                Ok(meta) => meta,
                Err(object_store::Error::NotFound { .. }) => break,
                Err(error) => return Err(internal("cannot list blobs", error)),
            };
            let key = key_of(&meta.location);
            if key.starts_with(prefix) && after.is_none_or(|after| key.as_str() > after) {
                found.push((key, meta));
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        let more = found.len() > limit as usize;
        found.truncate(limit as usize);
        let infos = futures_util::stream::iter(found)
            .map(|(key, meta)| async move { self.info(scope, &key, &meta).await })
            .buffered(16)
            .try_collect::<Vec<_>>()
            .await?;
        let next_after = if more { infos.last().map(|info| info.key.clone()) } else { None };
        Ok(Page { blobs: infos, next_after })
    }

    async fn info(&self, scope: Scope<'_>, key: &str, meta: &ObjectMeta) -> Result<BlobInfo> {
        let content_type = self.content_type_of(scope, key).await?;
        Ok(info_of(key, meta, content_type))
    }

    /// The content type stored beside the blob `key` (the default when there is none).
    async fn content_type_of(&self, scope: Scope<'_>, key: &str) -> Result<String> {
        let Ok(got) = self.store.get(&object("meta", scope, key)).await else {
            return Ok(DEFAULT_CONTENT_TYPE.to_owned());
        };
        let bytes = got
            .bytes()
            .await
            .map_err(|error| internal("cannot read a blob's content type", error))?;
        Ok(serde_json::from_slice::<Meta>(&bytes)
            .map_or_else(|_| DEFAULT_CONTENT_TYPE.to_owned(), |meta| meta.content_type))
    }

    /// After the data of `key` is in place: its content type beside it, both durable.
    async fn finish_write(
        &self,
        scope: Scope<'_>,
        key: &str,
        location: &Path,
        content_type: String,
    ) -> Result<BlobInfo> {
        let meta_location = object("meta", scope, key);
        let sidecar = serde_json::to_vec(&Meta { content_type: content_type.clone() })
            .map_err(|error| internal("cannot encode a content type", error))?;
        if let Err(error) = self.store.put(&meta_location, PutPayload::from(sidecar)).await {
            return Err(internal(format_args!("cannot store the content type of {key:?}"), error));
        }
        let meta = self
            .store
            .head(location)
            .await
            .map_err(|error| internal(format_args!("cannot read blob {key:?}"), error))?;
        Ok(info_of(key, &meta, content_type))
    }

    /// Why a write of `key` failed: a key that needs a blob as its folder, or a folder as a
    /// blob, is the caller's mistake; anything else the store's.
    async fn write_failed(&self, scope: Scope<'_>, key: &str, error: object_store::Error) -> Error {
        let segments: Vec<&str> = key.split('/').collect();
        for end in 1..segments.len() {
            let folder = segments[..end].join("/");
            if let Ok(Some(_)) = self.head(scope, &folder).await {
                return Error::new(
                    ErrorCode::InvalidState,
                    format!("blob {key:?} cannot be stored: {folder:?} is a blob, not a folder"),
                );
            }
        }
        if let Some(local) = &self.local_root
            && let Ok(path) = local.path_to_filesystem(&object("data", scope, key))
            && tokio::task::spawn_blocking(move || path.is_dir()).await.unwrap_or(false)
        {
            return Error::new(
                ErrorCode::InvalidState,
                format!("blob {key:?} cannot be stored: it is the folder of other blobs"),
            );
        }
        internal(format_args!("cannot store blob {key:?}"), error)
    }
}

/// A blob being written: [`Upload::write`] each chunk, then [`Upload::finish`].
#[derive(Debug)]
pub struct Upload {
    blobs: Blobs,
    scope: (String, String),
    key: String,
    content_type: String,
    location: Path,
    writer: Option<WriteMultipart>,
    written: u64,
}

impl Upload {
    /// Takes the next chunk; waits while [`PARTS_IN_FLIGHT`] parts are being written.
    pub async fn write(&mut self, chunk: Bytes) -> Result<()> {
        let Some(writer) = self.writer.as_mut() else {
            return Err(Error::new(ErrorCode::InvalidState, "the upload has ended"));
        };
        if let Err(error) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
            return Err(internal(format_args!("cannot store blob {:?}", self.key), error));
        }
        self.written += chunk.len() as u64;
        writer.put(chunk);
        Ok(())
    }

    /// How many bytes it took so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Makes the blob visible and durable; returns its info.
    pub async fn finish(mut self) -> Result<BlobInfo> {
        let Some(writer) = self.writer.take() else {
            return Err(Error::new(ErrorCode::InvalidState, "the upload has ended"));
        };
        let scope = (self.scope.0.as_str(), self.scope.1.as_str());
        if let Err(error) = writer.finish().await {
            return Err(self.blobs.write_failed(scope, &self.key, error).await);
        }
        let content_type = std::mem::take(&mut self.content_type);
        self.blobs.finish_write(scope, &self.key, &self.location, content_type).await
    }

    /// Drops what was written; the blob stays as it was.
    pub async fn abort(mut self) {
        if let Some(writer) = self.writer.take()
            && let Err(error) = writer.abort().await
        {
            tracing::warn!(key = self.key, %error, "an aborted upload left its staging file");
        }
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        // An upload dropped mid-way (its client went away) removes its staging file.
        if let Some(writer) = self.writer.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                let _ = writer.abort().await;
            });
        }
    }
}

/// Reads `file` in chunks of [`READ_CHUNK`] on a blocking thread, a few chunks ahead of the
/// stream's reader (each chunk read into fresh memory, not zeroed first).
fn read_file(file: std::fs::File, path: PathBuf) -> ByteStream {
    use std::io::Read as _;
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        let mut file = file;
        loop {
            let mut chunk = Vec::with_capacity(READ_CHUNK);
            match (&mut file).take(READ_CHUNK as u64).read_to_end(&mut chunk) {
                Ok(0) => return,
                Ok(_) => {}
                Err(error) => {
                    let _ = sender.blocking_send(Err(internal(
                        format_args!("cannot read {}", path.display()),
                        error,
                    )));
                    return;
                }
            }
            if sender.blocking_send(Ok(Bytes::from(chunk))).is_err() {
                return; // The reader went away.
            }
        }
    });
    futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    })
    .boxed()
}

/// Removes the staging files (`name#N`) interrupted uploads left under `root`.
fn remove_staging_files(root: &FsPath) {
    let mut folders = vec![root.to_owned()];
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => folders.push(path),
                Ok(_) if is_staging(&path) => {
                    if let Err(error) = std::fs::remove_file(&path) {
                        tracing::warn!(path = %path.display(), %error, "cannot remove a staging file");
                    }
                }
                _ => {}
            }
        }
    }
}

fn is_staging(path: &FsPath) -> bool {
    let name = path.file_name().and_then(|name| name.to_str()).unwrap_or("");
    name.rsplit_once('#').is_some_and(|(_, suffix)| {
        !suffix.is_empty() && suffix.bytes().all(|byte| byte.is_ascii_digit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked() {
        for (key, ok) in [
            ("a", true),
            ("photos/2026/cat.jpg", true),
            ("with space/#hash%/ü", true),
            ("", false),
            ("/a", false),
            ("a/", false),
            ("a//b", false),
            ("a/../b", false),
            ("..", false),
            ("./a", false),
            ("tab\tkey", false),
            (&vec!["k".repeat(MAX_SEGMENT); 4].join("/"), true),
            (&"k".repeat(MAX_SEGMENT + 1), false),
            (&"é".repeat(MAX_SEGMENT / 6), true),
            (&"é".repeat(MAX_SEGMENT / 6 + 1), false),
            (&"#".repeat(MAX_SEGMENT / 3 + 1), false),
            (&vec!["k".repeat(MAX_SEGMENT); 5].join("/"), false),
        ] {
            assert_eq!(check_key(key).is_ok(), ok, "{key:?}");
        }
    }

    #[test]
    fn staging_files_are_named_with_a_number() {
        assert!(is_staging(FsPath::new("/x/a#1")));
        assert!(is_staging(FsPath::new("/x/a%23b#12")));
        assert!(!is_staging(FsPath::new("/x/a#b")));
        assert!(!is_staging(FsPath::new("/x/a#")));
        assert!(!is_staging(FsPath::new("/x/a")));
    }
}
