//! The journal under strace, on the real binary: every acknowledgement of a durable tell comes
//! after an fsync of the journal that followed its request, and a journal whose fsync fails
//! (injected EIO) acknowledges nothing more, while everything acknowledged before is there
//! after a restart. Needs strace (`make tools` installs it).

use std::{collections::BTreeMap, path::Path, process::Command};

use serde_json::Value;

use crate::{NodeProcess, data_dir, http, wasm};

/// Stops the node on `dir` with SIGTERM (not strace around it, which then ends with it and
/// writes out its whole trace).
fn stop_traced(node: NodeProcess, dir: &Path) {
    let pattern = format!("^[^ ]*plexspaces start .*{}", dir.display());
    let status = Command::new("pkill").args(["-TERM", "-f", &pattern]).status();
    assert!(status.is_ok_and(|status| status.success()), "no node on {}", dir.display());
    let _status = node.wait();
}

/// Kills every process whose command line names `dir` (the node and strace around it).
fn kill_all(dir: &Path) {
    let status = Command::new("pkill").args(["-KILL", "-f", &dir.display().to_string()]).status();
    assert!(status.is_ok_and(|status| status.success()), "no process of {}", dir.display());
    std::thread::sleep(std::time::Duration::from_millis(200));
}

fn deposit(node: &NodeProcess, account: usize, key: &str) -> http::Response {
    let body = br#"{"action":"deposit","amount":1}"#;
    let headers = [("Content-Type", "application/json"), ("Idempotency-Key", key)];
    let path = format!("/api/v1/actors/default/default/ledger/acct-{account}");
    http::request(node.invoke, "POST", &path, &headers, body)
}

/// What the trace says: (acknowledgements, acknowledgements with no journal fsync completed
/// between their request and them).
fn acks_after_fsync(trace: &str) -> (usize, usize) {
    enum Event {
        Sync,
        Request(String),
        Ack(String),
    }
    let socket = |rest: &str| {
        let start = rest.find("socket:[")? + "socket:[".len();
        Some(rest[start..].split(']').next()?.to_owned())
    };
    let journal_sync = |call: &str| {
        (call.starts_with("fsync(") || call.starts_with("fdatasync("))
            && call.contains("journal.sqlite-wal")
    };
    // A call another thread's line interrupted is split in two: its start (with its
    // arguments) and its end (with what it read, and its result).
    let mut unfinished: BTreeMap<String, (f64, String)> = BTreeMap::new();
    let mut events: Vec<(f64, Event)> = Vec::new();
    for line in trace.lines() {
        let mut fields = line.split_whitespace();
        let (Some(pid), Some(time)) = (fields.next(), fields.next()) else { continue };
        let Ok(time) = time.parse::<f64>() else { continue };
        let rest = fields.collect::<Vec<_>>().join(" ");
        if let Some(call) = rest.strip_suffix("<unfinished ...>") {
            unfinished.insert(pid.to_owned(), (time, call.to_owned()));
            continue;
        }
        let (started, call) = if rest.starts_with("<...") {
            let Some((started, call)) = unfinished.remove(pid) else { continue };
            let resumed = rest.split_once("resumed>").map_or("", |(_, after)| after);
            (started, format!("{call}{resumed}"))
        } else {
            (time, rest)
        };
        let succeeded = call.trim_end().ends_with("= 0");
        if journal_sync(&call) && succeeded {
            // Durable once the call returned.
            events.push((time, Event::Sync));
        } else if (call.starts_with("read(") || call.starts_with("recvfrom("))
            && call.contains("\"POST ")
            && let Some(socket) = socket(&call)
        {
            // Read once the call returned.
            events.push((time, Event::Request(socket)));
        } else if call.contains("HTTP/1.1 202")
            && let Some(socket) = socket(&call)
        {
            // Acknowledged from the moment the write began.
            events.push((started, Event::Ack(socket)));
        }
    }
    events.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut last_sync, mut requested) = (f64::NEG_INFINITY, BTreeMap::new());
    let (mut acks, mut early) = (0, 0);
    for (time, event) in events {
        match event {
            Event::Sync => last_sync = time,
            Event::Request(socket) => {
                requested.insert(socket, time);
            }
            Event::Ack(socket) => {
                acks += 1;
                if requested.get(&socket).is_none_or(|asked| last_sync < *asked) {
                    early += 1;
                }
            }
        }
    }
    (acks, early)
}

#[test]
fn every_durable_acknowledgement_follows_a_journal_fsync() {
    const TELLS: usize = 1000;
    let dir = data_dir("fsync-order");
    let trace = dir.with_extension("trace");
    std::fs::create_dir_all(&dir).unwrap();
    let trace_arg = trace.display().to_string();
    let strace = [
        "strace",
        "-f",
        "-y",
        "-ttt",
        "-s",
        "64",
        "-o",
        &trace_arg,
        "-e",
        "trace=fsync,fdatasync,read,recvfrom,write,writev,sendto,sendmsg",
    ];
    let node = NodeProcess::start_under(&strace, &dir, &[], &[]);
    for n in 0..TELLS {
        let told = deposit(&node, n % 8, &format!("k-{n}"));
        assert_eq!(told.status, 202, "{told:?}");
    }
    // A control: tells to a type that is not durable are acknowledged with no fsync at all.
    for n in 0..20 {
        let told = http::post_json(
            node.invoke,
            &format!("/api/v1/actors/default/default/echo/e-{n}"),
            r#"{"action":"hi"}"#,
        );
        assert_eq!(told.status, 202, "{told:?}");
    }
    stop_traced(node, &dir);
    let (acks, early) = acks_after_fsync(&std::fs::read_to_string(&trace).unwrap());
    assert_eq!(acks, TELLS + 20, "the trace holds every acknowledgement");
    // The 20 control acknowledgements came after no journal fsync: the check can fail.
    assert_eq!(early, 20, "{early} acknowledgements came before the journal's fsync");
}

#[test]
fn a_failed_fsync_acknowledges_nothing_more_and_loses_nothing() {
    let dir = data_dir("fsync-eio");
    let strace = [
        "strace",
        "-f",
        "-o",
        "/dev/null",
        "-e",
        "trace=fsync,fdatasync",
        "-e",
        "inject=fsync,fdatasync:error=EIO:when=40+",
    ];
    // A first start makes the data directory's files (its fsyncs would count against the
    // injection); the traced start then fsyncs a couple of times before it serves.
    NodeProcess::start(&dir, &[]).terminate();
    let node = NodeProcess::start_under(&strace, &dir, &[], &[]);
    let mut acked: BTreeMap<usize, u64> = BTreeMap::new();
    let mut refused = 0;
    for n in 0..2000 {
        let account = n % 4;
        let told = deposit(&node, account, &format!("k-{n}"));
        if told.status == 202 {
            assert_eq!(refused, 0, "a tell was acknowledged after the journal failed: {told:?}");
            *acked.entry(account).or_default() += 1;
        } else {
            refused += 1;
            if refused == 20 {
                break;
            }
        }
    }
    assert!(refused == 20, "the injected EIO never reached the journal");
    assert!(!acked.is_empty(), "nothing was acknowledged before the failure");
    kill_all(&dir);
    drop(node);

    // Without the fault: every acknowledged deposit is there; a refused one may be too (its
    // write reached the file before the fsync failed), never more than were sent.
    let node = wasm::start(&dir);
    for (account, count) in &acked {
        let path = format!("/api/v1/actors/default/default/ledger/acct-{account}?invocation=call");
        let balance: Value = http::post_json(node.invoke, &path, r#"{"action":"balance"}"#).json();
        let deposits = balance["deposits"].as_u64().unwrap();
        assert!(deposits >= *count, "acct-{account}: {deposits} deposits, {count} acknowledged");
        assert!(deposits <= count + 20, "acct-{account}: {deposits} deposits, more than sent");
    }
    assert!(node.terminate().success());
}
