//! The node binary: the quickstart flow, restart, configuration and shutdown.

use serde_json::json;

use crate::{NodeProcess, cli, data_dir, guests, http, refused_start, start_args, stderr};

const COUNTER: &str = "/api/v1/actors/default/default/counter";

#[test]
fn the_quickstart_flow_works_and_survives_a_restart_of_the_node() {
    let dir = data_dir("quickstart");
    let node = NodeProcess::start(&dir, &[]);
    // As in examples/http/quickstart.sh: a tell, then a call.
    let told = http::post_json(node.invoke, COUNTER, r#"{"action":"increment","amount":5}"#);
    assert_eq!(told.status, 202, "{told:?}");
    let called = http::post_json(
        node.invoke,
        &format!("{COUNTER}?invocation=call"),
        r#"{"action":"increment"}"#,
    );
    assert_eq!((called.status, called.json()), (200, json!({"count": 6})));
    let listed = http::get(node.admin, COUNTER);
    assert_eq!(listed.json()["actors"][0]["actor_id"], "default");
    assert!(dir.is_dir(), "the node made its data directory");

    let status = node.terminate();
    assert!(status.success(), "SIGTERM is a clean exit: {status:?}");

    let node = NodeProcess::start(&dir, &[]);
    let called = http::post_json(
        node.invoke,
        &format!("{COUNTER}?invocation=call"),
        r#"{"action":"increment","amount":2}"#,
    );
    // Counter is a native type without the durability facet: its state starts over.
    assert_eq!((called.status, called.json()), (200, json!({"count": 2})));
    let deleted = http::request(node.admin, "DELETE", &format!("{COUNTER}/default"), &[], b"");
    assert_eq!(deleted.status, 204);
    assert_eq!(http::get(node.admin, COUNTER).json(), json!({"actors": []}));
    assert!(node.terminate().success());
}

#[test]
fn options_come_from_flags_then_environment_then_the_config_file() {
    let dir = data_dir("config");
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("node.toml");
    std::fs::write(&config, "max_body_bytes = 100\nask_timeout_ms = 5000\n").unwrap();
    let body = format!(r#"{{"action":"x","pad":"{}"}}"#, "a".repeat(150));
    let config_flag = config.to_str().unwrap();

    let from_file = NodeProcess::start(&dir, &["--config", config_flag]);
    let refused = http::post_json(from_file.invoke, "/api/v1/actors/default/default/echo", &body);
    assert_eq!((refused.status, refused.code().as_str()), (413, "payload_too_large"));
    drop(from_file);

    let from_env = NodeProcess::start_with_env(
        &dir,
        &["--config", config_flag],
        &[("PLEXSPACES_MAX_BODY_BYTES", "1000")],
    );
    assert_eq!(
        http::post_json(from_env.invoke, "/api/v1/actors/default/default/echo", &body).status,
        202
    );
    drop(from_env);

    let from_flag = NodeProcess::start_with_env(
        &dir,
        &["--config", config_flag, "--max-body-bytes", "120"],
        &[("PLEXSPACES_MAX_BODY_BYTES", "1000")],
    );
    assert_eq!(
        http::post_json(from_flag.invoke, "/api/v1/actors/default/default/echo", &body).status,
        413
    );
}

#[test]
fn a_node_refuses_to_start_exposed_without_a_token_and_says_why() {
    let dir = data_dir("exposed");
    let exposed = refused_start(&start_args(&dir, &["--host", "0.0.0.0"]));
    assert!(exposed.contains("--admin-token"), "{exposed}");

    let broken = dir.join("broken.toml");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(&broken, "invoke_prot = 1\n").unwrap();
    let config =
        refused_start(&["start".to_owned(), "--config".to_owned(), broken.display().to_string()]);
    assert!(config.contains("unknown field"), "{config}");

    let taken = NodeProcess::start(&dir, &[]);
    let port = taken.invoke.port().to_string();
    let mut args = start_args(&dir, &[]);
    args[2] = port;
    let bound = refused_start(&args);
    assert!(bound.contains("cannot bind the invoke port"), "{bound}");
}

#[test]
fn the_token_guards_every_port_of_the_binary() {
    let dir = data_dir("token");
    let node = NodeProcess::start(&dir, &["--admin-token", "s3cret"]);
    assert_eq!(http::get(node.admin, "/api/v1/types").status, 401);
    let authorized = http::request(
        node.admin,
        "GET",
        "/api/v1/types",
        &[("Authorization", "Bearer s3cret")],
        b"",
    );
    assert_eq!(authorized.status, 200);
    let refused = cli(&["status", "--grpc", &node.grpc_url()]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains("error[unauthenticated]"), "{}", stderr(&refused));
    let allowed = cli(&["status", "--grpc", &node.grpc_url(), "--token", "s3cret"]);
    assert!(allowed.status.success(), "{}", stderr(&allowed));
}

/// The Python interpreter with the test tools (`make tools` installs them).
pub(crate) fn python() -> String {
    std::env::var("PLEXSPACES_PYTHON").unwrap_or_else(|_| {
        let home = std::env::var("HOME").unwrap_or_default();
        format!("{home}/.cache/plexspaces-venv/bin/python")
    })
}

#[test]
fn a_python_client_generated_from_the_protos_calls_the_node() {
    let node = NodeProcess::start(&data_dir("python"), &[]);
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let output = std::process::Command::new(python())
        .arg(format!("{root}/tests/python/grpc_client.py"))
        .arg(format!("{root}/proto"))
        .arg(node.grpc.to_string())
        .output()
        .unwrap_or_else(|error| panic!("cannot run {} ({error}): run `make tools`", python()));
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        stderr(&output)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "ok");
}

#[test]
fn schemathesis_finds_no_failure_on_either_port() {
    // Waits (calls, and reads and takes of the tuple space) are capped at 100 ms here, and the
    // documents say so: the fuzzer's random timeouts then cost little time.
    let dir = data_dir("schemathesis");
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("plexspaces.toml");
    std::fs::write(&config, "ask_timeout_ms = 100\nmax_ask_timeout_ms = 100\n").unwrap();
    let config = config.display().to_string();
    let node = NodeProcess::start(&dir, &["--examples", "echo", "--config", &config]);
    let schemathesis = std::path::Path::new(&python()).with_file_name("schemathesis");
    for address in [node.invoke, node.admin] {
        let output = std::process::Command::new(&schemathesis)
            .arg("--config-file")
            .arg(guests::workspace().join("tests/schemathesis.toml"))
            .args(["run", &format!("http://{address}/api/v1/openapi.json")])
            .args(["--checks", "all", "--max-examples", "100", "--seed", "1"])
            .env("NO_COLOR", "1")
            .output()
            .unwrap_or_else(|error| {
                panic!("cannot run {} ({error}): run `make tools`", schemathesis.display())
            });
        assert!(
            output.status.success(),
            "schemathesis against {address}:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            stderr(&output)
        );
    }
}
