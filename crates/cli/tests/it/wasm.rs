//! WebAssembly actors end to end: Python examples built by `plexspaces-py build`, deployed over
//! HTTP (multipart, as the quickstart does) and with the CLI, invoked, broken with bad input,
//! and served again after a restart of the node.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::{NodeProcess, cli, data_dir, guests, http, stderr, stdout};

/// Where every test's node caches compiled modules: compiled once per module, not per test.
fn cache_flag() -> Vec<String> {
    let dir = guests::cache_dir().join("node-artifacts");
    vec!["--compile-cache-dir".to_owned(), dir.display().to_string()]
}

pub(crate) fn start(dir: &std::path::Path) -> NodeProcess {
    let flags = cache_flag();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    NodeProcess::start(dir, &flags)
}

/// A multipart form body with text fields and the module.
fn form(fields: &[(&str, &str)], wasm: Option<&[u8]>) -> (String, Vec<u8>) {
    let boundary = "plexspaces-test-boundary-7d1";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    if let Some(wasm) = wasm {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"wasm\"; filename=\"m.wasm\"\r\nContent-Type: application/wasm\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(wasm);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

pub(crate) fn deploy_bytes(
    node: &NodeProcess,
    fields: &[(&str, &str)],
    wasm: &[u8],
) -> http::Response {
    let (content_type, body) = form(fields, Some(wasm));
    http::request(node.admin, "POST", "/api/v1/deploy", &[("Content-Type", &content_type)], &body)
}

pub(crate) fn deploy(node: &NodeProcess, actor_type: &str, module: &PathBuf) -> Value {
    let wasm = std::fs::read(module).unwrap();
    let deployed =
        deploy_bytes(node, &[("namespace", "default"), ("actor_type", actor_type)], &wasm);
    assert_eq!(deployed.status, 201, "deploy {actor_type}: {deployed:?}");
    deployed.json()
}

pub(crate) fn call(node: &NodeProcess, actor: &str, body: &str) -> http::Response {
    http::post_json(
        node.invoke,
        &format!("/api/v1/actors/default/default/{actor}?invocation=call"),
        body,
    )
}

pub(crate) fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(Instant::now() < deadline, "{what} did not happen within 30 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn python_examples_deploy_invoke_each_other_and_come_back_after_a_restart() {
    let modules = [
        ("greeter", guests::python_module("examples/python/greeter.py")),
        ("counter", guests::python_module("examples/python/counter_actor.py")),
        ("orders", guests::python_module("examples/python/order_service.py")),
        ("inventory-actor", guests::python_module("examples/python/inventory.py")),
        ("analytics-actor", guests::python_module("examples/python/analytics.py")),
    ];
    let dir = data_dir("wasm-examples");
    let node = start(&dir);
    // `counter` is a native example of the stock binary: a deploy under its name is refused.
    let wasm = std::fs::read(&modules[1].1).unwrap();
    let taken = deploy_bytes(&node, &[("namespace", "default"), ("actor_type", "counter")], &wasm);
    assert_eq!((taken.status, taken.code().as_str()), (409, "already_exists"), "{taken:?}");
    for (name, module) in &modules {
        let name = if *name == "counter" { "py-counter" } else { name };
        let deployed = deploy(&node, name, module);
        assert_eq!(deployed["types"][0]["name"], name);
        assert_eq!(deployed["sdk"], "python 0.1.0");
    }

    // As the quickstart: greet, then a counter's tell and call.
    let greeted = call(&node, "greeter", r#"{"action":"greet","name":"PlexSpaces"}"#);
    assert_eq!(
        (greeted.status, greeted.json()),
        (200, json!({"message": "Hello, PlexSpaces!", "total": 1}))
    );
    let told = http::post_json(
        node.invoke,
        "/api/v1/actors/default/default/py-counter",
        r#"{"action":"increment","amount":5}"#,
    );
    assert_eq!(told.status, 202, "{told:?}");
    let counted = call(&node, "py-counter", r#"{"action":"get"}"#);
    assert_eq!(counted.json(), json!({"count": 5}));
    let got = http::get(
        node.invoke,
        "/api/v1/actors/default/default/py-counter/c2?action=increment&amount=3",
    );
    assert_eq!(got.json(), json!({"count": 3}), "GET values are converted by annotation");

    // order_service tells analytics and asks inventory, both deployed.
    let placed =
        call(&node, "orders", r#"{"action":"place_order","order":{"id":"o-1","sku":"sku-1"}}"#);
    assert_eq!(placed.json(), json!({"status": "confirmed", "order_id": "o-1"}), "{placed:?}");
    let out =
        call(&node, "orders", r#"{"action":"place_order","order":{"id":"o-2","sku":"sku-2"}}"#);
    assert_eq!(out.json(), json!({"status": "out_of_stock"}));
    eventually("analytics hears of both orders", || {
        call(&node, "analytics-actor", r#"{"action":"report"}"#).json()["count"] == 2
    });
    let logs = http::get(node.admin, "/api/v1/deployments/analytics-actor/logs");
    assert_eq!(logs.status, 200);
    assert!(logs.body_text().contains("order placed: o-1"), "{}", logs.body_text());

    // Admin views: types, deployments, one deployment, an actor's state.
    let types = http::get(node.admin, "/api/v1/types").json();
    assert!(types["types"].as_array().unwrap().iter().any(|ty| ty["name"] == "greeter"), "{types}");
    let listed = http::get(node.admin, "/api/v1/deployments").json();
    assert_eq!(listed["deployments"].as_array().unwrap().len(), 5, "{listed}");
    let state = http::get(node.admin, "/api/v1/actors/default/default/py-counter/default/state");
    assert_eq!(state.json(), json!({"count": 5}));
    let actors = http::get(node.admin, "/api/v1/actors/default/default/py-counter").json();
    assert_eq!(actors["actors"].as_array().unwrap().len(), 2, "{actors}");

    // After a restart the deployments serve again; plain state starts over.
    assert!(node.terminate().success());
    let node = start(&dir);
    let greeted = call(&node, "greeter", r#"{"action":"greet"}"#);
    assert_eq!(greeted.json(), json!({"message": "Hello, World!", "total": 1}));
    let placed =
        call(&node, "orders", r#"{"action":"place_order","order":{"id":"o-3","sku":"sku-1"}}"#);
    assert_eq!(placed.json()["status"], "confirmed");
    let inspected = http::get(node.admin, "/api/v1/deployments/greeter").json();
    assert_eq!(inspected["cached"], true, "a restart loads the cached artifact: {inspected}");

    // Undeploy: the type is gone.
    let undeployed =
        http::request(node.admin, "DELETE", "/api/v1/deployments/py-counter", &[], b"");
    assert_eq!(undeployed.status, 204);
    let gone = call(&node, "py-counter", r#"{"action":"get"}"#);
    assert_eq!((gone.status, gone.code().as_str()), (404, "not_found"));
    assert!(node.terminate().success());
}

#[test]
fn bad_modules_and_failing_handlers_get_clear_errors_and_lose_nothing() {
    let misbehaving = guests::python_module("examples/python/misbehaving.py");
    let unknown_facet = guests::python_module("tests/fixtures/python/unknown_facet.py");
    let two = guests::python_module("tests/fixtures/python/two_classes.py");
    let dir = data_dir("wasm-bad");
    let node = start(&dir);
    for (what, bytes, says) in [
        ("not wasm", b"hello".to_vec(), "not WebAssembly"),
        ("a core module", b"\0asm\x01\0\0\0".to_vec(), "core WebAssembly module"),
        (
            "a truncated component",
            std::fs::read(&misbehaving).unwrap()[..4096].to_vec(),
            "does not compile",
        ),
    ] {
        let refused =
            deploy_bytes(&node, &[("namespace", "default"), ("actor_type", "bad")], &bytes);
        assert_eq!(
            (refused.status, refused.code().as_str()),
            (422, "invalid_module"),
            "{what}: {refused:?}"
        );
        assert!(refused.json()["detail"].as_str().unwrap().contains(says), "{what}: {refused:?}");
    }
    let refused = deploy_bytes(
        &node,
        &[("namespace", "default"), ("actor_type", "guarded")],
        &std::fs::read(&unknown_facet).unwrap(),
    );
    assert_eq!((refused.status, refused.code().as_str()), (422, "invalid_module"), "{refused:?}");
    assert!(refused.json()["detail"].as_str().unwrap().contains("fraud_detection"), "{refused:?}");
    let (content_type, body) = form(&[("namespace", "default")], None);
    let no_wasm = http::request(
        node.admin,
        "POST",
        "/api/v1/deploy",
        &[("Content-Type", &content_type)],
        &body,
    );
    assert_eq!((no_wasm.status, no_wasm.code().as_str()), (400, "invalid_arguments"));
    let not_form = http::post_json(node.admin, "/api/v1/deploy", "{}");
    assert_eq!(not_form.status, 415);

    // A module of two classes deploys as two types that ask each other.
    let deployed = deploy(&node, "shop", &two);
    let names: Vec<&str> = deployed["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ty| ty["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["shop.order_producer", "shop.order_processor"]);
    assert_eq!(
        call(&node, "shop.order_producer", r#"{"action":"make"}"#).json(),
        json!({"made": 1, "processed": 1})
    );

    // Asynchronous deploy: 202 and a status URL that turns ready.
    let (content_type, body) = form(
        &[("namespace", "default"), ("actor_type", "bad-actor")],
        Some(&std::fs::read(&misbehaving).unwrap()),
    );
    let accepted = http::request(
        node.admin,
        "POST",
        "/api/v1/deploy?async=true",
        &[("Content-Type", &content_type)],
        &body,
    );
    assert_eq!(accepted.status, 202, "{accepted:?}");
    let status_url = accepted.json()["status_url"].as_str().unwrap().to_owned();
    eventually("the async deploy", || {
        http::get(node.admin, &status_url).json()["status"] == "ready"
    });

    assert_eq!(
        call(&node, "bad-actor", r#"{"action":"increment","amount":2}"#).json(),
        json!({"count": 2})
    );
    for (body, status, code) in [
        (r#"{"action":"fail_after_change"}"#, 500, "actor_error"),
        (r#"{"action":"bad_state"}"#, 400, "state_not_serializable"),
        (r#"{"action":"nope"}"#, 400, "unknown_action"),
        (r#"{"action":"increment","amount":"lots"}"#, 400, "invalid_arguments"),
        (r#"{"action":"spin"}"#, 500, "guest_trapped"),
    ] {
        let failed = call(&node, "bad-actor", body);
        assert_eq!((failed.status, failed.code().as_str()), (status, code), "{body}: {failed:?}");
        // The actor keeps its last committed state, and the node keeps serving.
        assert_eq!(
            call(&node, "bad-actor", r#"{"action":"increment","amount":0}"#).json(),
            json!({"count": 2}),
            "after {body}"
        );
    }
    let raised = call(&node, "bad-actor", r#"{"action":"fail_after_change"}"#).json();
    assert_eq!(raised["error_type"], "ValueError", "{raised}");
    assert!(raised["detail"].as_str().unwrap().contains("the order is not valid"), "{raised}");
    // A failed tell is in the type's log with its message id.
    let told = http::post_json(
        node.invoke,
        "/api/v1/actors/default/default/bad-actor",
        r#"{"action":"nope"}"#,
    );
    let message_id = told.json()["message_id"].as_str().unwrap().to_owned();
    eventually("the failed tell is logged", || {
        http::get(node.admin, "/api/v1/deployments/bad-actor/logs")
            .body_text()
            .contains(&format!("tell {message_id}"))
    });
    assert!(node.terminate().success());
}

#[test]
fn the_cli_deploys_lists_follows_logs_and_undeploys() {
    let analytics = guests::python_module("examples/python/analytics.py");
    let dir = data_dir("wasm-cli");
    let node = start(&dir);
    let grpc = node.grpc_url();
    let module = analytics.display().to_string();
    let deployed = cli(&["deploy", &module, "-t", "analytics", "--grpc", &grpc]);
    assert!(deployed.status.success(), "{}", stderr(&deployed));
    assert!(stdout(&deployed).contains("deployed analytics"), "{}", stdout(&deployed));
    let listed = cli(&["deployments", "--grpc", &grpc, "--json"]);
    let listed: Value = serde_json::from_str(&stdout(&listed)).unwrap();
    assert_eq!(listed["deployments"][0]["types"][0]["name"], "analytics");
    let told = cli(&[
        "invoke",
        "analytics/a1",
        r#"{"action":"order_placed","id":"o-9"}"#,
        "--grpc",
        &grpc,
    ]);
    assert!(told.status.success(), "{}", stderr(&told));
    eventually("the print reaches the log", || {
        stdout(&cli(&["logs", "analytics", "a1", "--grpc", &grpc])).contains("order placed: o-9")
    });
    // -f follows: the stream stays open and shows a line printed after it started.
    let mut follow = std::process::Command::new(crate::binary())
        .args(["logs", "analytics", "a2", "-f", "--json", "--grpc", &grpc])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let told = cli(&[
        "invoke",
        "analytics/a2",
        r#"{"action":"order_placed","id":"o-10"}"#,
        "--grpc",
        &grpc,
    ]);
    assert!(told.status.success());
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(follow.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let _ = follow.kill();
    let _ = follow.wait();
    let line: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        (line["id"].as_str(), line["message"].as_str()),
        (Some("a2"), Some("order placed: o-10"))
    );
    let undeployed = cli(&["undeploy", "analytics", "--grpc", &grpc]);
    assert!(undeployed.status.success(), "{}", stderr(&undeployed));
    let missing = cli(&["undeploy", "analytics", "--grpc", &grpc]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("error[not_found]"), "{}", stderr(&missing));
    assert!(node.terminate().success());
}

#[test]
fn a_new_version_serves_each_actor_from_its_next_message_and_keeps_its_state() {
    let counter = std::fs::read(guests::python_module("examples/python/counter_actor.py")).unwrap();
    let misbehaving =
        std::fs::read(guests::python_module("examples/python/misbehaving.py")).unwrap();
    let unknown_facet =
        std::fs::read(guests::python_module("tests/fixtures/python/unknown_facet.py")).unwrap();
    let dir = data_dir("wasm-versions");
    let node = start(&dir);
    let scope = [("namespace", "default"), ("actor_type", "swap")];
    let first = deploy_bytes(&node, &[scope[0], scope[1], ("version", "v1")], &counter);
    assert_eq!((first.status, first.json()["version"].as_str()), (201, Some("v1")));
    assert_eq!(
        call(&node, "swap", r#"{"action":"increment","amount":4}"#).json(),
        json!({"count": 4})
    );

    let second = deploy_bytes(&node, &[scope[0], scope[1], ("version", "v2")], &misbehaving);
    assert_eq!((second.status, second.json()["version"].as_str()), (201, Some("v2")), "{second:?}");
    // The next message runs on v2, from the state v1 committed; the new field has its default.
    assert_eq!(
        call(&node, "swap", r#"{"action":"increment","amount":1}"#).json(),
        json!({"count": 5})
    );
    assert_eq!(
        http::get(node.admin, "/api/v1/actors/default/default/swap/default/state").json(),
        json!({"count": 5, "blob": ""})
    );
    assert_eq!(call(&node, "swap", r#"{"action":"grow","kib":1}"#).json(), json!({"size": 1024}));
    // Another tenant neither reaches the type nor learns of it.
    let other = http::post_json(
        node.invoke,
        "/api/v1/actors/acme/default/swap?invocation=call",
        r#"{"action":"increment"}"#,
    );
    assert_eq!((other.status, other.code().as_str()), (404, "not_found"));
    assert!(
        other.json()["detail"]
            .as_str()
            .unwrap()
            .ends_with("types here: counter, echo, ledger, order_workflow"),
        "{other:?}"
    );

    // A deploy that is refused changes nothing.
    let refused = deploy_bytes(&node, &[scope[0], scope[1], ("version", "v3")], &unknown_facet);
    assert_eq!(refused.status, 422, "{refused:?}");
    assert_eq!(http::get(node.admin, "/api/v1/deployments/swap").json()["version"], "v2");
    assert_eq!(
        call(&node, "swap", r#"{"action":"increment","amount":0}"#).json(),
        json!({"count": 5})
    );

    // The version in force is the one that comes back after a restart.
    assert!(node.terminate().success());
    let node = start(&dir);
    assert_eq!(http::get(node.admin, "/api/v1/deployments/swap").json()["version"], "v2");
    assert_eq!(call(&node, "swap", r#"{"action":"grow","kib":2}"#).json(), json!({"size": 2048}));
    assert!(node.terminate().success());
}

#[test]
fn a_module_that_compiles_past_its_limit_is_refused_and_the_node_keeps_serving() {
    let counter = guests::python_module("examples/python/counter_actor.py");
    let dir = data_dir("wasm-compile-limit");
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("node.toml");
    // A Python module takes seconds to compile; 20 ms is far too little. No shared artifact
    // cache: this node must compile.
    std::fs::write(&config, "[wasm]\ncompile_timeout_ms = 20\n").unwrap();
    let node = NodeProcess::start(&dir, &["--config", config.to_str().unwrap()]);
    let started = Instant::now();
    let refused = deploy_bytes(
        &node,
        &[("namespace", "default"), ("actor_type", "counter")],
        &std::fs::read(&counter).unwrap(),
    );
    assert_eq!((refused.status, refused.code().as_str()), (422, "invalid_module"), "{refused:?}");
    assert!(
        refused.json()["detail"].as_str().unwrap().contains("did not compile within 20 ms"),
        "{refused:?}"
    );
    // Refused at its limit, not when the compile ends (5x margins: the limit is 20 ms).
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    assert_eq!(http::get(node.admin, "/healthz").status, 200);
    let listed = http::get(node.admin, "/api/v1/deployments").json();
    assert_eq!(listed["deployments"], json!([]), "{listed}");
    assert!(node.terminate().success());
}

#[test]
fn python_actors_share_the_tuple_space_of_their_namespace() {
    let orders = guests::python_module("examples/python/tuplespace_orders.py");
    let worker = guests::python_module("tests/fixtures/python/tuple_worker.py");
    let dir = data_dir("wasm-tuplespace");
    let node = start(&dir);
    let deployed = deploy(&node, "orders", &orders);
    assert_eq!(deployed["types"].as_array().unwrap().len(), 2, "{deployed}");
    deploy(&node, "worker", &worker);
    let other = deploy_bytes(
        &node,
        &[("namespace", "other"), ("actor_type", "worker")],
        &std::fs::read(&worker).unwrap(),
    );
    assert_eq!(other.status, 201, "{other:?}");

    // The example as its users run it: a producer writes, a processor takes.
    assert_eq!(
        call(&node, "orders.order_processor", r#"{"action":"process_next"}"#).json(),
        json!({"status": "no_pending_orders"})
    );
    let created = call(
        &node,
        "orders.order_producer",
        r#"{"action":"create_order","order_id":"o1","items":["book"]}"#,
    );
    assert_eq!(created.json(), json!({"status": "created", "order_id": "o1"}), "{created:?}");
    assert_eq!(
        call(&node, "orders.order_processor", r#"{"action":"process_next"}"#).json(),
        json!({"processed": "o1"})
    );
    let completed = call(
        &node,
        "worker/w0",
        r#"{"action":"look","pattern":["order",null,{"$type":"string"},null]}"#,
    )
    .json();
    assert_eq!(completed, json!({"count": 1, "tuples": [["order", "o1", "completed", ["book"]]]}));

    // A take that waits is woken by the write of another actor, and gets the tuple once.
    let waiting = {
        let invoke = node.invoke;
        std::thread::spawn(move || {
            let started = Instant::now();
            let reply = http::post_json(
                invoke,
                "/api/v1/actors/default/default/worker/w1?invocation=call",
                r#"{"action":"wait_take","pattern":["job",null],"timeout_ms":20000}"#,
            );
            (reply.json(), started.elapsed())
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    call(&node, "worker/w2", r#"{"action":"put","tuple":["job",42]}"#);
    let (taken, waited) = waiting.join().unwrap();
    assert_eq!(taken, json!({"tuple": ["job", 42]}));
    // Woken by the write, long before its 20 s timeout (5x margins on a busy machine).
    assert!(started.elapsed() < Duration::from_secs(4), "{waited:?}");
    assert_eq!(
        call(&node, "worker/w2", r#"{"action":"wait_take","pattern":["job",null]}"#).json(),
        json!({"tuple": null})
    );
    // A timeout ends in null.
    let timed_out =
        call(&node, "worker/w3", r#"{"action":"wait_read","pattern":["never"],"timeout_ms":100}"#);
    assert_eq!(timed_out.json(), json!({"tuple": null}));

    // An asynchronous take delivers the tuple later, as a message.
    call(&node, "worker/sub", r#"{"action":"subscribe","pattern":["event",null]}"#);
    call(&node, "worker/w2", r#"{"action":"put","tuple":["event","e1"]}"#);
    eventually("the asynchronous take's message", || {
        call(&node, "worker/sub", r#"{"action":"received"}"#).json()
            == json!({"got": [["event", "e1"]]})
    });

    // Another namespace has a space of its own; a lease ends a tuple.
    call(&node, "worker/w2", r#"{"action":"put","tuple":["mine",1],"lease_ms":150}"#);
    let elsewhere = http::post_json(
        node.invoke,
        "/api/v1/actors/default/other/worker/x?invocation=call",
        r#"{"action":"look","pattern":["mine",null]}"#,
    );
    assert_eq!(elsewhere.json()["count"], 0, "{elsewhere:?}");
    eventually("the lease to end", || {
        call(&node, "worker/w2", r#"{"action":"look","pattern":["mine",null]}"#).json()["count"]
            == 0
    });

    // Bad patterns are refused with a reason, and the actor carries on.
    let bad = call(&node, "worker/w2", r#"{"action":"bad","pattern":"[{\"$type\":\"date\"}]"}"#);
    assert_eq!(bad.json()["code"], "invalid_arguments", "{bad:?}");
    assert!(bad.json()["message"].as_str().unwrap().contains("unknown $type"), "{bad:?}");
    let bad = call(&node, "worker/w2", r#"{"action":"bad","pattern":"not json"}"#);
    assert!(bad.json()["message"].as_str().unwrap().contains("not JSON"), "{bad:?}");
    assert!(node.terminate().success());
}

#[test]
fn leader_election_holds_one_leader_and_fencing_tokens_grow_across_a_restart() {
    let election = guests::python_module("examples/python/leader_election.py");
    let dir = data_dir("wasm-locks");
    let node = start(&dir);
    deploy(&node, "election", &election);
    let lead = |node: &NodeProcess, key: &str, candidate: &str| {
        call(
            node,
            &format!("election/{key}"),
            &format!(r#"{{"action":"try_lead","candidate_id":"{candidate}"}}"#),
        )
        .json()
    };
    let version = |node: &NodeProcess, key: &str| -> u64 {
        let state =
            http::get(node.admin, &format!("/api/v1/actors/default/default/election/{key}/state"));
        state.json()["lock_version"].as_str().unwrap().parse().unwrap()
    };
    assert_eq!(lead(&node, "a", "alice"), json!({"leader": true, "candidate_id": "alice"}));
    assert_eq!(lead(&node, "b", "bob"), json!({"leader": false}));
    // The leader trying again renews its lease and keeps its version.
    let first = version(&node, "a");
    assert_eq!(lead(&node, "a", "alice")["leader"], true);
    assert_eq!(version(&node, "a"), first);
    assert!(node.terminate().success());

    // Locks live in memory: the restart frees the lock, and the next grant's token is still
    // larger than every grant before the restart.
    let node = start(&dir);
    assert_eq!(lead(&node, "b", "bob"), json!({"leader": true, "candidate_id": "bob"}));
    assert!(version(&node, "b") > first, "{} after {first}", version(&node, "b"));
    assert_eq!(lead(&node, "a", "alice"), json!({"leader": false}));
    assert!(node.terminate().success());
}

/// A worker pool of a deployed Python type (`examples/python/counter_actor.py`) on the real
/// binary: every key to one shard, the counts adding up, and the pool kept across a restart.
#[test]
fn a_worker_pool_of_python_actors_routes_every_key_and_survives_a_restart() {
    let module = guests::python_module("examples/python/counter_actor.py");
    let dir = data_dir("wasm-pool");
    let node = start(&dir);
    deploy(&node, "py-counter", &module);
    let create = json!({"name": "counters", "actor_type": "py-counter", "shards": 6, "strategy": "consistent_hash"});
    let created = http::post_json(node.admin, "/api/v1/pools/default/default", &create.to_string());
    assert_eq!(created.status, 201, "{created:?}");
    let messages: serde_json::Map<String, Value> = (0..600)
        .map(|i| (format!("user-{i}"), json!({"action": "increment", "amount": 2})))
        .collect();
    let body = json!({"messages": messages, "consistency": "strong"}).to_string();
    let updated =
        http::post_json(node.invoke, "/api/v1/pools/default/default/counters/update", &body);
    assert_eq!(updated.status, 200, "{updated:?}");
    assert_eq!(updated.json()["delivered"], 600);
    let per_shard = updated.json()["per_shard"].clone();
    let reduce = json!({"message": {"action": "get"}, "strategy": "sum"}).to_string();
    let reduced =
        http::post_json(node.invoke, "/api/v1/pools/default/default/counters/reduce", &reduce);
    assert_eq!(reduced.json()["result"], json!({"count": 1200}), "{reduced:?}");
    // Each shard counted the keys it was sent: one count per key, on one shard.
    let map = json!({"message": {"action": "get"}}).to_string();
    let mapped = http::post_json(node.invoke, "/api/v1/pools/default/default/counters/map", &map);
    for reply in mapped.json()["replies"].as_array().unwrap() {
        let shard = reply["shard"].as_u64().unwrap() as usize;
        assert_eq!(reply["reply"]["count"], per_shard[shard].as_u64().unwrap() * 2, "{reply}");
    }
    assert!(node.terminate().success());

    let node = start(&dir);
    let pool = http::get(node.admin, "/api/v1/pools/default/default/counters").json();
    assert_eq!(
        (pool["shards"].clone(), pool["strategy"].clone()),
        (json!(6), json!("consistent_hash")),
        "{pool}"
    );
    assert!(node.terminate().success());
}
