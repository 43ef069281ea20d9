//! End to end: the real `plexspaces` binary on random loopback ports, driven over HTTP and
//! through its own CLI.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../node/tests/support/http.rs"]
mod http;

#[path = "../../../../tests/support/guests.rs"]
#[allow(dead_code)]
mod guests;

mod channels;
mod cli;
mod durable;
mod fsync;
mod node;
mod registry_blobs;
mod services;
mod typescript;
mod wasm;

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Output, Stdio},
    time::{Duration, Instant},
};

/// The binary under test.
pub(crate) fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_plexspaces")
}

/// A fresh data directory for one test.
pub(crate) fn data_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("plexspaces-e2e-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A running `plexspaces start`.
#[derive(Debug)]
pub(crate) struct NodeProcess {
    child: Option<Child>,
    pub(crate) invoke: SocketAddr,
    pub(crate) admin: SocketAddr,
    pub(crate) grpc: SocketAddr,
}

impl NodeProcess {
    /// Starts a node on free ports with `extra` flags and waits for it to report them.
    pub(crate) fn start(data_dir: &Path, extra: &[&str]) -> Self {
        Self::start_with_env(data_dir, extra, &[])
    }

    pub(crate) fn start_with_env(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start_under(&[], data_dir, extra, env)
    }

    /// [`NodeProcess::start_with_env`] with the binary run by `wrapper` (`strace ...`); the
    /// child is then the wrapper.
    pub(crate) fn start_under(
        wrapper: &[&str],
        data_dir: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let mut command = match wrapper.split_first() {
            None => Command::new(binary()),
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(binary());
                command
            }
        };
        command
            .args(start_args(data_dir, extra))
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let ports: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|error| panic!("the node reported no ports ({error}): {line:?}"));
        let address = |name: &str| ports[name].as_str().unwrap().parse().unwrap();
        Self {
            invoke: address("invoke"),
            admin: address("admin"),
            grpc: address("grpc"),
            child: Some(child),
        }
    }

    /// The process id (of the wrapper, when there is one).
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// `--grpc http://...` for the CLI.
    pub(crate) fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub(crate) fn terminate(self) -> ExitStatus {
        let pid = self.child.as_ref().unwrap().id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        self.wait()
    }

    /// Waits up to 60 s for the process (or its wrapper) to exit.
    pub(crate) fn wait(mut self) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the node did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `start` on free ports with `data_dir`, then `extra`.
pub(crate) fn start_args(data_dir: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> =
        ["start", "--invoke-port", "0", "--admin-port", "0", "--grpc-port", "0", "--data-dir"]
            .map(str::to_owned)
            .to_vec();
    args.push(data_dir.display().to_string());
    args.extend(extra.iter().map(|arg| (*arg).to_owned()));
    args
}

/// Runs `start` with these arguments, expects it to fail with status 1, and returns what it
/// said on stderr.
pub(crate) fn refused_start(args: &[String]) -> String {
    let output = Command::new(binary()).args(args).output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    stderr(&output)
}

/// Runs the CLI and returns its output.
pub(crate) fn cli(args: &[&str]) -> Output {
    Command::new(binary()).args(args).output().unwrap()
}

pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
