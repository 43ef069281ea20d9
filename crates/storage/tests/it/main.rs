//! The stores through their public API: blobs on each backend (`blobs`), the service registry on each backend (`registry`), channels on each backend (`channels`), locks (`locks`), KV on each backend (`kv`), the
//! tuple space's journal (`tuples`), the journal of durable actors (`journal`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod blobs;
mod channels;
mod journal;
mod kv;
mod locks;
mod registry;
mod tuples;

use std::path::PathBuf;

pub(crate) const SCOPE: (&str, &str) = ("acme", "default");

pub(crate) fn temp_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("plexspaces-storage-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the ignored test `child` of this binary as a process of its own with `env` (the round
/// added as `<prefix>_ROUND`), kills it (SIGKILL) after a time that grows with `round`, and
/// returns the lines it printed after `ACK `.
pub(crate) fn acknowledged_before_a_kill(
    child: &str,
    env: &[(&str, &std::path::Path)],
    round_var: &str,
    round: u64,
) -> Vec<String> {
    use std::io::BufRead as _;
    let mut command = std::process::Command::new(std::env::current_exe().unwrap());
    command
        .args([child, "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env(round_var, round.to_string())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut process = command.spawn().unwrap();
    let stdout = process.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .filter_map(|line| line.strip_prefix("ACK ").map(str::to_owned))
            .collect::<Vec<String>>()
    });
    // Killed at a different point of its work each round.
    std::thread::sleep(std::time::Duration::from_millis(400 + 250 * round));
    process.kill().unwrap();
    process.wait().unwrap();
    let lines = reader.join().unwrap();
    assert!(!lines.is_empty(), "round {round}: {child} acknowledged nothing");
    lines
}
