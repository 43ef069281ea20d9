//! The service registry and the blob store on the real binary: every host call from a Python
//! actor (the TypeScript one is in `typescript.rs`), a presigned URL an actor made used by a
//! client with no other credential; a 256 MiB blob streamed in and out while the node's peak
//! memory stays far below its size; and an upload cut off by a kill -9 that leaves the old
//! blob whole and no staging file after the restart.

use std::{
    io::{Read as _, Write as _},
    net::TcpStream,
    time::Duration,
};

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::{NodeProcess, data_dir, guests, http, wasm};

fn ask(node: &NodeProcess, actor: &str, body: &str) -> Value {
    let reply = wasm::call(node, actor, body);
    assert_eq!(reply.status, 200, "{actor} {body}: {reply:?}");
    reply.json()
}

/// The path and query of a URL the node made.
fn path_of(url: &str, node: &NodeProcess) -> String {
    let base = format!("http://{}", node.invoke);
    url.strip_prefix(&base).unwrap_or_else(|| panic!("{url} is not on {base}")).to_owned()
}

/// Checks what a fixture's `registry`, `blobs` and `read_upload` handlers answer
/// (tests/fixtures/python/registry_blob_user.py and the TypeScript `services.ts` make the
/// same calls), and that clients outside see what the actor did.
pub(crate) fn check_registry_and_blobs(node: &NodeProcess, actor: &str) {
    let me = format!("default/{actor}");
    let registry = ask(node, actor, r#"{"action":"registry"}"#);
    assert_eq!(
        registry,
        json!({
            "me": me, "kept_start": true, "metadata": {"port": 9090}, "renewed": true,
            "found": [me, "replica-2"], "listed": [{"service": "inventory", "instances": 2}],
            "gone": true, "after": [me], "missing": "not_found", "bad": "invalid_arguments",
        }),
        "{actor}"
    );
    // A client sees the actor's registration.
    let found = http::get(node.invoke, "/api/v1/registry/default/default/inventory").json();
    assert_eq!(found["instances"][0]["instance"], me, "{found}");
    assert_eq!(found["instances"][0]["metadata"], json!({"port": 9090}));

    let blobs = ask(node, actor, r#"{"action":"blobs"}"#);
    let url = blobs["url"].as_str().unwrap().to_owned();
    let put_url = blobs["put_url"].as_str().unwrap().to_owned();
    assert_eq!(
        blobs,
        json!({
            "size": 20, "content_type": "text/plain", "text": "hello from the actor",
            "raw": [0, 1, 2, 255], "listed": ["reports/q1.txt", "reports/q2.bin"],
            "page": ["reports/q2.bin"], "url": url, "put_url": put_url, "deleted": true,
            "again": false, "missing": true, "bad": "invalid_arguments", "big": "payload_too_large",
        }),
        "{actor}"
    );
    // The URLs the actor made work for a client with nothing else, for what they were made.
    let got = http::get(node.invoke, &path_of(&url, node));
    assert_eq!((got.status, got.body.as_slice()), (200, b"hello from the actor".as_slice()));
    assert_eq!(got.header("content-type"), Some("text/plain"));
    let put_path = path_of(&put_url, node);
    let uploaded = http::request(
        node.invoke,
        "PUT",
        &put_path,
        &[("Content-Type", "text/x-note")],
        b"from a client",
    );
    assert_eq!(uploaded.status, 201, "{uploaded:?}");
    let refused = http::get(node.invoke, &put_path);
    assert_eq!((refused.status, refused.code().as_str()), (403, "signature_invalid"));
    let read = ask(node, actor, r#"{"action":"read_upload"}"#);
    assert_eq!(read, json!({"text": "from a client", "content_type": "text/x-note"}));
    let listed = http::get(node.invoke, "/api/v1/blobs/default/default?prefix=reports/").json();
    assert_eq!(listed["blobs"].as_array().unwrap().len(), 1, "{listed}");
}

#[test]
fn every_registry_and_blob_call_from_python() {
    let module = guests::python_module("tests/fixtures/python/registry_blob_user.py");
    let node = wasm::start(&data_dir("registry-blobs-python"));
    wasm::deploy(&node, "regblob", &module);
    check_registry_and_blobs(&node, "regblob/r1");
}

/// The peak resident memory of process `pid`, in bytes (`VmHWM`).
fn peak_memory(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|line| line.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// A deterministic chunk of the big blob.
fn chunk(index: usize) -> Vec<u8> {
    (0..1 << 20).map(|at: usize| (at.wrapping_mul(7) ^ index) as u8).collect()
}

/// Starts a chunked PUT of `path` and writes `chunks` 1 MiB chunks, hashing them.
fn start_upload(node: &NodeProcess, path: &str, chunks: usize) -> (TcpStream, Sha256) {
    let mut stream = TcpStream::connect(node.invoke).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/x-big\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut hash = Sha256::new();
    for index in 0..chunks {
        let data = chunk(index);
        hash.update(&data);
        stream.write_all(format!("{:x}\r\n", data.len()).as_bytes()).unwrap();
        stream.write_all(&data).unwrap();
        stream.write_all(b"\r\n").unwrap();
    }
    (stream, hash)
}

#[test]
fn a_large_blob_streams_through_a_node_that_never_holds_it() {
    const CHUNKS: usize = 256; // 256 MiB
    let node = NodeProcess::start(&data_dir("blobs-large"), &[]);
    let pid = node.pid();
    let before = peak_memory(pid);
    let (mut stream, sent) =
        start_upload(&node, "/api/v1/blobs/default/default/big/one.bin", CHUNKS);
    stream.write_all(b"0\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let answer = http::parse_response(&answer).unwrap();
    assert_eq!(answer.status, 201, "{answer:?}");
    assert_eq!(answer.json()["size"], (CHUNKS << 20) as u64);

    // Read it back as it streams, hashing, without keeping it.
    let mut stream = TcpStream::connect(node.invoke).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    stream
        .write_all(b"GET /api/v1/blobs/default/default/big/one.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0_u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains(&format!("content-length: {}", CHUNKS << 20)),
        "{head}"
    );
    let mut received = Sha256::new();
    let mut total = 0_usize;
    let mut buffer = vec![0_u8; 1 << 16];
    loop {
        let read = stream.read(&mut buffer).unwrap();
        if read == 0 {
            break;
        }
        received.update(&buffer[..read]);
        total += read;
    }
    assert_eq!(total, CHUNKS << 20);
    assert_eq!(received.finalize(), sent.finalize());
    let grown = peak_memory(pid).saturating_sub(before);
    // Held whole, the blob alone would add 256 MiB; streamed, a few parts are in memory.
    assert!(grown < 64 << 20, "the node's peak memory grew by {} MiB", grown >> 20);
}

#[test]
fn an_upload_cut_by_a_kill_leaves_the_old_blob_and_no_staging_file() {
    let dir = data_dir("blobs-kill");
    let node = NodeProcess::start(&dir, &[]);
    let stored =
        http::request(node.invoke, "PUT", "/api/v1/blobs/default/default/doc.bin", &[], b"old");
    assert_eq!(stored.status, 201);
    let (_stream, _) = start_upload(&node, "/api/v1/blobs/default/default/doc.bin", 24);
    let staging = || {
        let folder = dir.join("blobs/data/default/default");
        std::fs::read_dir(&folder)
            .unwrap()
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| name.contains('#'))
            .collect::<Vec<_>>()
    };
    wasm::eventually("the upload writing its staging file", || !staging().is_empty());
    drop(node); // SIGKILL mid-upload.
    let node = NodeProcess::start(&dir, &[]);
    assert_eq!(staging(), Vec::<String>::new(), "the restart removes what the upload left");
    let got = http::get(node.invoke, "/api/v1/blobs/default/default/doc.bin");
    assert_eq!((got.status, got.body.as_slice()), (200, b"old".as_slice()));
}
