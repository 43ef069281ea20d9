//! Figures for BENCHMARKS.md: blob put and get throughput (MB/s) beside a plain file copy on
//! the same disk in the same run. The blob store is `object_store`'s local file system
//! backend under the node's `Blobs` (parts of 1 MiB, 4 in flight; reads of 256 KiB chunks);
//! the HTTP rows go through a node in this process over loopback, the body streamed both ways.
//!
//! Each row is the median of `RUNS` runs of a `SIZE_MIB` MiB file. "put" rows end with the
//! blob fsynced (the store's promise), so the copy is measured with and without an fsync.
//! Reads come from the page cache (the file was just written), as the plain read's do.
//!
//! `cargo run --release -p plexspaces-node --example blobs`

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    time::Instant,
};

use bytes::Bytes;
use futures_util::StreamExt as _;
use plexspaces_node::{Node, Options};
use plexspaces_storage::blobs::Blobs;

const SIZE_MIB: usize = 256;
const RUNS: usize = 5;
const SCOPE: (&str, &str) = ("acme", "bench");
const CHUNK: usize = 1 << 20;

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// MB/s (10^6 bytes per second) of `runs` timings of `SIZE_MIB` MiB.
fn rate(seconds: Vec<f64>) -> f64 {
    let megabytes = (SIZE_MIB << 20) as f64 / 1e6;
    median(seconds.into_iter().map(|seconds| megabytes / seconds).collect())
}

fn timed(mut run: impl FnMut()) -> f64 {
    let started = Instant::now();
    run();
    started.elapsed().as_secs_f64()
}

fn write_source(path: &Path) {
    let mut file = std::fs::File::create(path).unwrap();
    for index in 0..SIZE_MIB {
        let chunk: Vec<u8> = (0..CHUNK).map(|at| (at.wrapping_mul(31) ^ index) as u8).collect();
        file.write_all(&chunk).unwrap();
    }
    file.sync_all().unwrap();
}

fn read_all(path: &Path) -> usize {
    let mut file = std::fs::File::open(path).unwrap();
    let mut buffer = vec![0_u8; CHUNK];
    let mut total = 0;
    loop {
        let read = file.read(&mut buffer).unwrap();
        if read == 0 {
            return total;
        }
        total += read;
    }
}

/// A copy through a 1 MiB buffer, as a stream of chunks arriving from a socket must be written.
fn copy_through(source: &Path, target: &Path) {
    let mut from = std::fs::File::open(source).unwrap();
    let mut to = std::fs::File::create(target).unwrap();
    let mut buffer = vec![0_u8; CHUNK];
    loop {
        let read = from.read(&mut buffer).unwrap();
        if read == 0 {
            break;
        }
        to.write_all(&buffer[..read]).unwrap();
    }
    to.sync_all().unwrap();
    std::fs::File::open(target.parent().unwrap()).unwrap().sync_all().unwrap();
}

/// The file's bytes through a loopback TCP connection (1 MiB writes, 1 MiB reads): the limit
/// of the HTTP rows.
fn loopback(source: &Path) -> usize {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let source = source.to_owned();
    let sender = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(address).unwrap();
        let mut file = std::fs::File::open(source).unwrap();
        let mut buffer = vec![0_u8; CHUNK];
        loop {
            let read = file.read(&mut buffer).unwrap();
            if read == 0 {
                return;
            }
            stream.write_all(&buffer[..read]).unwrap();
        }
    });
    let (mut stream, _) = listener.accept().unwrap();
    let mut buffer = vec![0_u8; CHUNK];
    let mut total = 0;
    loop {
        let read = stream.read(&mut buffer).unwrap();
        if read == 0 {
            break;
        }
        total += read;
    }
    sender.join().unwrap();
    total
}

fn copy(source: &Path, target: &Path, sync: bool) {
    std::fs::copy(source, target).unwrap();
    if sync {
        std::fs::File::open(target).unwrap().sync_all().unwrap();
        std::fs::File::open(target.parent().unwrap()).unwrap().sync_all().unwrap();
    }
}

/// Streams `source` into the blob store in 1 MiB chunks, as an upload does.
async fn put(blobs: &Blobs, source: &Path, key: &str) {
    let mut upload = blobs.upload(SCOPE, key, "application/octet-stream").await.unwrap();
    let (sender, mut chunks) = tokio::sync::mpsc::channel::<Bytes>(4);
    let source = source.to_owned();
    let reader = tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(source).unwrap();
        loop {
            let mut chunk = vec![0_u8; CHUNK];
            let read = file.read(&mut chunk).unwrap();
            if read == 0 {
                return;
            }
            chunk.truncate(read);
            sender.blocking_send(Bytes::from(chunk)).unwrap();
        }
    });
    while let Some(chunk) = chunks.recv().await {
        upload.write(chunk).await.unwrap();
    }
    reader.await.unwrap();
    upload.finish().await.unwrap();
}

async fn get(blobs: &Blobs, key: &str) -> usize {
    let (_, mut stream) = blobs.get(SCOPE, key).await.unwrap().unwrap();
    let mut total = 0;
    while let Some(chunk) = stream.next().await {
        total += chunk.unwrap().len();
    }
    total
}

/// A chunked HTTP PUT of `source`, read in 1 MiB chunks; returns the status line.
fn http_put(address: SocketAddr, source: &Path, key: &str) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    let head = format!(
        "PUT /api/v1/blobs/{}/{}/{key} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n",
        SCOPE.0, SCOPE.1
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut file = std::fs::File::open(source).unwrap();
    let mut buffer = vec![0_u8; CHUNK];
    loop {
        let read = file.read(&mut buffer).unwrap();
        if read == 0 {
            break;
        }
        stream.write_all(format!("{read:x}\r\n").as_bytes()).unwrap();
        stream.write_all(&buffer[..read]).unwrap();
        stream.write_all(b"\r\n").unwrap();
    }
    stream.write_all(b"0\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer.lines().next().unwrap_or_default().to_owned()
}

/// An HTTP GET of a blob; the body's length.
fn http_get(address: SocketAddr, key: &str) -> usize {
    let mut stream = TcpStream::connect(address).unwrap();
    let head = format!(
        "GET /api/v1/blobs/{}/{}/{key} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        SCOPE.0, SCOPE.1
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut buffer = vec![0_u8; CHUNK];
    let mut total = 0;
    let mut header_end = None;
    let mut head_bytes = Vec::new();
    loop {
        let read = stream.read(&mut buffer).unwrap();
        if read == 0 {
            break;
        }
        if header_end.is_none() {
            head_bytes.extend_from_slice(&buffer[..read]);
            if let Some(end) = head_bytes.windows(4).position(|window| window == b"\r\n\r\n") {
                header_end = Some(end);
                total += head_bytes.len() - end - 4;
            }
        } else {
            total += read;
        }
    }
    total
}

fn main() {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("plexspaces-bench-blobs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let source = dir.join("source.bin");
    write_source(&source);
    let size = SIZE_MIB << 20;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let blobs = Blobs::open_local(&dir.join("store")).unwrap();
    println!(
        "{SIZE_MIB} MiB, median of {RUNS} runs, MB/s (10^6 bytes/s); 2 cores, tokio multi-thread (2 workers)"
    );

    // Each row: its name, its rate, and the rate of the plain row it is compared with.
    let mut rows: Vec<(&str, f64, f64)> = Vec::new();
    let copy_rate = rate(
        (0..RUNS)
            .map(|run| timed(|| copy(&source, &dir.join(format!("copy-{run}")), false)))
            .collect(),
    );
    let copy_sync = rate(
        (0..RUNS)
            .map(|run| timed(|| copy(&source, &dir.join(format!("copy-sync-{run}")), true)))
            .collect(),
    );
    let through = rate(
        (0..RUNS)
            .map(|run| timed(|| copy_through(&source, &dir.join(format!("through-{run}")))))
            .collect(),
    );
    let put_rate = rate(
        (0..RUNS)
            .map(|run| timed(|| runtime.block_on(put(&blobs, &source, &format!("put-{run}")))))
            .collect(),
    );
    let read_rate =
        rate((0..RUNS).map(|_| timed(|| assert_eq!(read_all(&source), size))).collect());
    let get_rate = rate(
        (0..RUNS)
            .map(|run| {
                timed(|| assert_eq!(runtime.block_on(get(&blobs, &format!("put-{run}"))), size))
            })
            .collect(),
    );
    let tcp_rate = rate((0..RUNS).map(|_| timed(|| assert_eq!(loopback(&source), size))).collect());
    rows.push(("file copy (copy_file_range)", copy_rate, copy_rate));
    rows.push(("file copy (copy_file_range) + fsync", copy_sync, copy_sync));
    rows.push(("file copy, 1 MiB read/write + fsync", through, through));
    rows.push(("blob put, streamed (fsynced)", put_rate, through));
    rows.push(("file read, 1 MiB reads", read_rate, read_rate));
    rows.push(("blob get, streamed", get_rate, read_rate));
    rows.push(("loopback TCP, 1 MiB writes", tcp_rate, tcp_rate));

    // Through the node's HTTP front door, in this process, over loopback.
    let node = runtime.block_on(
        Node::builder()
            .options(Options {
                invoke_port: 0,
                admin_port: 0,
                grpc_port: 0,
                data_dir: dir.join("node"),
                ..Options::default()
            })
            .start(),
    );
    let node = node.unwrap();
    let address = node.invoke_addr();
    let http_put_rate = rate(
        (0..RUNS)
            .map(|run| {
                timed(|| {
                    let status = http_put(address, &source, &format!("http-{run}"));
                    assert!(status.contains("201"), "{status}");
                })
            })
            .collect(),
    );
    rows.push(("HTTP PUT, chunked (fsynced)", http_put_rate, through));
    let http_get_rate = rate(
        (0..RUNS)
            .map(|run| timed(|| assert_eq!(http_get(address, &format!("http-{run}")), size)))
            .collect(),
    );
    rows.push(("HTTP GET", http_get_rate, tcp_rate));
    runtime.block_on(node.shutdown());

    for (name, rate, against) in &rows {
        println!("{name:38} {rate:9.0} MB/s   {:5.2}x its plain row", rate / against);
    }
    println!(
        "(put and HTTP PUT against the 1 MiB read/write copy with fsync, get against the file \
         read, HTTP GET against loopback TCP)"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
