//! The blob store on each backend through one suite (keys, content types, listing, scopes),
//! and on the local file system: uploads streamed in parts, aborted or dropped uploads that
//! leave the old blob, staging files of a crash removed at open, folders and blobs apart.

use bytes::Bytes;
use futures_util::StreamExt as _;
use plexspaces_storage::blobs::{Blobs, check_key};
use plexspaces_types::ErrorCode;
use sha2::{Digest as _, Sha256};

use crate::{SCOPE, temp_dir};

fn backends(name: &str) -> Vec<(&'static str, Blobs)> {
    let dir = temp_dir(&format!("blobs-{name}"));
    vec![("memory", Blobs::in_memory()), ("local", Blobs::open_local(&dir).unwrap())]
}

async fn bytes_of(blobs: &Blobs, scope: (&str, &str), key: &str) -> Option<Vec<u8>> {
    let (info, mut stream) = blobs.get(scope, key).await.unwrap()?;
    let mut data = Vec::new();
    while let Some(chunk) = stream.next().await {
        data.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(info.size, data.len() as u64);
    Some(data)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_get_head_delete_with_content_types_and_scopes() {
    for (name, blobs) in backends("basics") {
        assert_eq!(blobs.head(SCOPE, "a.txt").await.unwrap(), None, "{name}");
        assert!(blobs.get(SCOPE, "a.txt").await.unwrap().is_none(), "{name}");
        let first =
            blobs.put(SCOPE, "a.txt", "text/plain", Bytes::from_static(b"hello")).await.unwrap();
        assert_eq!((first.key.as_str(), first.size), ("a.txt", 5), "{name}");
        assert_eq!(first.content_type, "text/plain", "{name}");
        assert!(first.modified_at_ms > 0 && !first.etag.is_empty(), "{name}: {first:?}");
        assert!(!first.etag.contains('"'), "{name}: an etag is bare: {first:?}");
        assert_eq!(bytes_of(&blobs, SCOPE, "a.txt").await.unwrap(), b"hello", "{name}");
        let second = blobs.put(SCOPE, "a.txt", "", Bytes::from_static(b"bye!!!")).await.unwrap();
        assert_eq!(second.content_type, "application/octet-stream", "{name}");
        assert_ne!(second.etag, first.etag, "{name}: a write changes the etag");
        assert_eq!(blobs.head(SCOPE, "a.txt").await.unwrap().unwrap(), second, "{name}");
        let (info, data) = blobs.read(SCOPE, "a.txt", 6).await.unwrap().unwrap();
        assert_eq!((info.size, data.as_ref()), (6, b"bye!!!".as_slice()), "{name}");
        let over = blobs.read(SCOPE, "a.txt", 5).await.unwrap_err();
        assert_eq!(over.code, ErrorCode::PayloadTooLarge, "{name}");
        assert!(over.message.contains("presigned URL"), "{name}: {}", over.message);
        // Other namespaces and tenants see nothing of it.
        assert_eq!(blobs.head(("acme", "other"), "a.txt").await.unwrap(), None, "{name}");
        assert_eq!(blobs.head(("globex", "default"), "a.txt").await.unwrap(), None, "{name}");
        assert!(blobs.list(("globex", "default"), "", None, 0).await.unwrap().blobs.is_empty());
        assert!(blobs.delete(SCOPE, "a.txt").await.unwrap(), "{name}");
        assert!(!blobs.delete(SCOPE, "a.txt").await.unwrap(), "{name}: deleted already");
        assert_eq!(blobs.head(SCOPE, "a.txt").await.unwrap(), None, "{name}");
        // A content type does not outlive its blob.
        blobs.put(SCOPE, "a.txt", "", Bytes::from_static(b"x")).await.unwrap();
        let info = blobs.head(SCOPE, "a.txt").await.unwrap().unwrap();
        assert_eq!(info.content_type, "application/octet-stream", "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_with_any_characters_round_trip_and_list_in_order() {
    let keys = [
        "photos/2024/cat.jpg",
        "photos/2024/dog.jpg",
        "photos/2025/cat.jpg",
        "photos/20x",
        "photos/a#1",
        "photos/with space/ü%41.txt",
        "photos/~tilde",
        "photosynthesis",
        "zeta",
    ];
    for (name, blobs) in backends("list") {
        for (index, key) in keys.iter().enumerate() {
            let data = Bytes::from(format!("blob {index}"));
            blobs.put(SCOPE, key, "text/plain", data).await.unwrap();
        }
        blobs.put(("acme", "other"), "photos/elsewhere", "", Bytes::new()).await.unwrap();
        for (index, key) in keys.iter().enumerate() {
            let data = bytes_of(&blobs, SCOPE, key).await.unwrap();
            assert_eq!(data, format!("blob {index}").as_bytes(), "{name}: {key}");
        }
        let listed = |page: &plexspaces_storage::blobs::Page| -> Vec<String> {
            page.blobs.iter().map(|blob| blob.key.clone()).collect()
        };
        let all = blobs.list(SCOPE, "", None, 0).await.unwrap();
        assert_eq!(listed(&all), keys, "{name}");
        assert!(all.blobs.iter().all(|blob| blob.content_type == "text/plain"), "{name}");
        let photos = blobs.list(SCOPE, "photos/", None, 0).await.unwrap();
        assert_eq!(photos.blobs.len(), 7, "{name}");
        // A prefix need not end at a '/'.
        let twenties = blobs.list(SCOPE, "photos/20", None, 0).await.unwrap();
        let expected =
            ["photos/2024/cat.jpg", "photos/2024/dog.jpg", "photos/2025/cat.jpg", "photos/20x"];
        assert_eq!(listed(&twenties), expected, "{name}");
        let first = blobs.list(SCOPE, "photos", None, 3).await.unwrap();
        assert_eq!(listed(&first), keys[..3], "{name}");
        assert_eq!(first.next_after.as_deref(), Some(keys[2]), "{name}");
        let rest = blobs.list(SCOPE, "photos", first.next_after.as_deref(), 100).await.unwrap();
        assert_eq!(listed(&rest), keys[3..8], "{name}");
        assert_eq!(rest.next_after, None, "{name}");
        let none = blobs.list(SCOPE, "nothing/here/", None, 0).await.unwrap();
        assert!(none.blobs.is_empty(), "{name}");
        let bad = blobs.list(SCOPE, "", None, 1_001).await.unwrap_err();
        assert_eq!(bad.code, ErrorCode::InvalidArguments, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_keys_and_content_types_are_refused() {
    for (name, blobs) in backends("bad") {
        let long_segment = "k".repeat(241);
        for key in ["", "/a", "a/", "a//b", "a/../b", "..", ".", "a\u{0}b", &long_segment] {
            assert!(check_key(key).is_err(), "{key:?}");
            let refused = blobs.put(SCOPE, key, "", Bytes::new()).await.unwrap_err();
            assert_eq!(refused.code, ErrorCode::InvalidArguments, "{name}: {key:?}");
            let refused = blobs.head(SCOPE, key).await.unwrap_err();
            assert_eq!(refused.code, ErrorCode::InvalidArguments, "{name}: {key:?}");
        }
        let refused = blobs.put(SCOPE, "k", "text/\nplain", Bytes::new()).await.unwrap_err();
        assert_eq!(refused.code, ErrorCode::InvalidArguments, "{name}");
        assert!(blobs.list(SCOPE, "", None, 0).await.unwrap().blobs.is_empty(), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_is_not_a_folder_on_the_file_system() {
    let blobs = Blobs::open_local(&temp_dir("blobs-folders")).unwrap();
    blobs.put(SCOPE, "a", "", Bytes::from_static(b"file")).await.unwrap();
    let refused = blobs.put(SCOPE, "a/b", "", Bytes::from_static(b"x")).await.unwrap_err();
    assert_eq!(refused.code, ErrorCode::InvalidState, "{}", refused.message);
    assert!(refused.message.contains("\"a\" is a blob"), "{}", refused.message);
    blobs.put(SCOPE, "dir/x", "", Bytes::from_static(b"x")).await.unwrap();
    let refused = blobs.put(SCOPE, "dir", "", Bytes::from_static(b"x")).await.unwrap_err();
    assert_eq!(refused.code, ErrorCode::InvalidState, "{}", refused.message);
    assert_eq!(bytes_of(&blobs, SCOPE, "a").await.unwrap(), b"file");
    assert_eq!(bytes_of(&blobs, SCOPE, "dir/x").await.unwrap(), b"x");
}

/// A deterministic chunk of a large blob.
fn chunk(index: u64, size: usize) -> Bytes {
    let mut data = vec![0_u8; size];
    for (at, byte) in data.iter_mut().enumerate() {
        *byte = (index as usize).wrapping_mul(31).wrapping_add(at) as u8;
    }
    Bytes::from(data)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_stream_in_parts_and_only_a_finished_one_shows() {
    let dir = temp_dir("blobs-upload");
    let blobs = Blobs::open_local(&dir).unwrap();
    blobs.put(SCOPE, "big.bin", "", Bytes::from_static(b"old")).await.unwrap();
    // 40 MiB in odd-sized chunks, hashed as they go.
    let mut upload = blobs.upload(SCOPE, "big.bin", "application/x-big").await.unwrap();
    let mut sent = Sha256::new();
    for index in 0..160_u64 {
        let data = chunk(index, 262_139);
        sent.update(&data);
        upload.write(data).await.unwrap();
        if index == 80 {
            let halfway = bytes_of(&blobs, SCOPE, "big.bin").await.unwrap();
            assert_eq!(halfway, b"old", "nothing of an upload shows before it finishes");
        }
    }
    assert_eq!(upload.written(), 160 * 262_139);
    let info = upload.finish().await.unwrap();
    assert_eq!((info.size, info.content_type.as_str()), (160 * 262_139, "application/x-big"));
    let (_, mut stream) = blobs.get(SCOPE, "big.bin").await.unwrap().unwrap();
    let mut got = Sha256::new();
    let mut chunks = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        assert!(chunk.len() <= plexspaces_storage::blobs::READ_CHUNK);
        got.update(&chunk);
        chunks += 1;
    }
    assert_eq!(got.finalize(), sent.finalize());
    assert!(chunks >= 160, "read in chunks, not whole: {chunks}");

    // An aborted upload and a dropped one leave the blob as it was, and no staging file.
    let mut aborted = blobs.upload(SCOPE, "big.bin", "").await.unwrap();
    aborted.write(chunk(0, 3 << 20)).await.unwrap();
    aborted.abort().await;
    let mut dropped = blobs.upload(SCOPE, "small.bin", "").await.unwrap();
    dropped.write(chunk(1, 3 << 20)).await.unwrap();
    drop(dropped);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(blobs.head(SCOPE, "big.bin").await.unwrap().unwrap().size, info.size);
    assert_eq!(blobs.head(SCOPE, "small.bin").await.unwrap(), None);
    assert_eq!(staging_files(&dir), Vec::<String>::new());
}

fn staging_files(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut folders = vec![dir.to_owned()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
            } else if path.to_string_lossy().contains('#') {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staging_files_of_a_crash_are_removed_at_open() {
    let dir = temp_dir("blobs-staging");
    {
        let blobs = Blobs::open_local(&dir).unwrap();
        blobs.put(SCOPE, "kept/x", "", Bytes::from_static(b"x")).await.unwrap();
    }
    // What an upload in flight at a kill -9 leaves: its staging file.
    let folder = dir.join("data/acme/default/kept");
    std::fs::write(folder.join("y#3"), b"partial").unwrap();
    std::fs::write(folder.join("x%231"), b"a key with '#1' encoded: kept").unwrap();
    let blobs = Blobs::open_local(&dir).unwrap();
    assert!(!folder.join("y#3").exists());
    assert!(folder.join("x%231").exists());
    assert_eq!(bytes_of(&blobs, SCOPE, "kept/x").await.unwrap(), b"x");
    let listed: Vec<String> = blobs
        .list(SCOPE, "kept/", None, 0)
        .await
        .unwrap()
        .blobs
        .into_iter()
        .map(|b| b.key)
        .collect();
    assert_eq!(listed, ["kept/x", "kept/x#1"]);
}
