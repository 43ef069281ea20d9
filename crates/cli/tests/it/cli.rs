//! The CLI against a running node: data on stdout (tables, or JSON with --json), errors on
//! stderr with their catalogue code and exit status 1.

use serde_json::{Value, json};

use crate::{NodeProcess, cli, data_dir, stderr, stdout};

#[test]
fn every_command_works_against_a_node() {
    let node = NodeProcess::start(&data_dir("cli"), &[]);
    let grpc = node.grpc_url();
    let run = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--grpc", grpc.as_str()]);
        let output = cli(&all);
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        assert!(stderr(&output).is_empty(), "{args:?} wrote to stderr: {}", stderr(&output));
        stdout(&output)
    };
    let json = |args: &[&str]| -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        serde_json::from_str(&run(&all)).unwrap()
    };

    let message_id = run(&["invoke", "counter/c1", r#"{"action":"increment","amount":5}"#]);
    assert!(!message_id.trim().is_empty());
    assert_eq!(json(&["call", "counter/c1", r#"{"action":"increment"}"#]), json!({"count": 6}));
    let pretty = run(&["call", "echo", r#"{"action":"hi"}"#]);
    assert!(
        pretty.contains("\n  \"action\": \"hi\""),
        "a table or pretty JSON for people: {pretty}"
    );

    let types = json(&["types"]);
    assert_eq!(
        types["types"][0],
        json!({"name": "counter", "behavior": "gen_server", "facets": ["virtual_actor"]})
    );
    let table = run(&["types"]);
    assert!(table.starts_with("TYPE "), "{table}");
    assert!(
        table.lines().any(|line| line.starts_with("echo ") && line.contains(" gen_server")),
        "{table}"
    );

    assert_eq!(json(&["actors", "counter"])["actors"][0]["actor_id"], "c1");
    assert!(run(&["actors", "counter"]).contains("c1        active"));
    assert_eq!(json(&["state", "echo"]), json!({"received": 1, "last": {"action": "hi"}}));
    assert_eq!(json(&["status"])["actors"], 2);
    assert!(run(&["status"]).contains("invoke port"));

    let duplicate = || json(&["invoke", "echo/d", r#"{"action":"x"}"#, "--idempotency-key", "k"]);
    let first = duplicate();
    let again = duplicate();
    assert_eq!(
        (first["duplicate"].clone(), again["duplicate"].clone()),
        (json!(false), json!(true))
    );
    assert_eq!(first["message_id"], again["message_id"]);

    assert_eq!(run(&["rm", "counter/c1"]).trim(), "deleted counter/c1");
    let gone = cli(&["state", "counter/c1", "--grpc", &grpc]);
    assert_eq!(gone.status.code(), Some(1));
    assert!(stdout(&gone).is_empty());
    assert!(stderr(&gone).contains("error[not_found]"), "{}", stderr(&gone));

    let unknown = cli(&["call", "counter", r#"{"action":"nope"}"#, "--grpc", &grpc]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        stderr(&unknown).contains("error[unknown_action]: unknown action \"nope\""),
        "{}",
        stderr(&unknown)
    );
    let bad_json = cli(&["call", "counter", "{nope", "--grpc", &grpc]);
    assert_eq!(bad_json.status.code(), Some(1));
    assert!(stderr(&bad_json).contains("not JSON"), "{}", stderr(&bad_json));
}

#[test]
fn an_unreachable_node_and_a_bad_command_are_clear_errors() {
    let unreachable = cli(&["status", "--grpc", "http://127.0.0.1:1"]);
    assert_eq!(unreachable.status.code(), Some(1));
    assert!(stderr(&unreachable).contains("cannot reach the node"), "{}", stderr(&unreachable));
    let usage = cli(&["frobnicate"]);
    assert_eq!(usage.status.code(), Some(2));
}
