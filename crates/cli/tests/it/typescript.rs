//! TypeScript actors end to end: modules built by `plexspaces-ts build` with each engine
//! (QuickJS, the default, and SpiderMonkey), deployed over HTTP, invoked, broken with bad input,
//! and calling every host service.

use serde_json::{Value, json};

use crate::{
    data_dir,
    guests::{self, Engine},
    http,
    wasm::{call, deploy, eventually, start},
};

const ENGINES: [Engine; 2] = [Engine::QuickJs, Engine::SpiderMonkey];

/// The module built from `source` with each engine.
fn on_both_engines(source: &str) -> Vec<(Engine, std::path::PathBuf)> {
    ENGINES.iter().map(|&engine| (engine, guests::typescript_module(source, engine))).collect()
}

#[test]
fn the_typescript_counter_runs_as_written_on_both_engines() {
    let modules = on_both_engines("examples/typescript/counter.ts");
    let dir = data_dir("ts-counter");
    let node = start(&dir);
    for (engine, module) in &modules {
        let name = format!("ts-counter-{}", engine.name());
        let deployed = deploy(&node, &name, module);
        assert_eq!(deployed["sdk"], "typescript 0.1.0", "{deployed}");
        assert_eq!(deployed["types"][0]["name"], name.as_str());
        let told = http::post_json(
            node.invoke,
            &format!("/api/v1/actors/default/default/{name}"),
            r#"{"action":"increment","amount":5}"#,
        );
        assert_eq!(told.status, 202, "{told:?}");
        let counted = call(&node, &name, r#"{"action":"get"}"#);
        assert_eq!((counted.status, counted.json()), (200, json!({"count": 5})), "{engine:?}");
        let got = http::get(
            node.invoke,
            &format!("/api/v1/actors/default/default/{name}/c2?action=increment&amount=3"),
        );
        assert_eq!(got.json(), json!({"count": 3}), "{engine:?}: GET values arrive as JSON");
        let state =
            http::get(node.admin, &format!("/api/v1/actors/default/default/{name}/default/state"));
        assert_eq!(state.json(), json!({"count": 5}), "{engine:?}");
    }
    // After a restart the deployments serve again (from the cached artifact).
    assert!(node.terminate().success());
    let node = start(&dir);
    for (engine, _) in &modules {
        let name = format!("ts-counter-{}", engine.name());
        let counted = call(&node, &name, r#"{"action":"increment"}"#);
        assert_eq!(counted.json(), json!({"count": 1}), "{engine:?}: plain state starts over");
    }
    assert!(node.terminate().success());
}

#[test]
fn typescript_handlers_that_fail_loop_hog_or_recurse_lose_nothing() {
    let modules = on_both_engines("examples/typescript/misbehaving.ts");
    let dir = data_dir("ts-bad");
    let node = start(&dir);
    for (engine, module) in &modules {
        let name = format!("ts-bad-{}", engine.name());
        deploy(&node, &name, module);
        assert_eq!(
            call(&node, &name, r#"{"action":"increment","amount":2}"#).json(),
            json!({"count": 2})
        );
        for (body, status, codes) in [
            (r#"{"action":"fail_after_change"}"#, 500, &["actor_error"][..]),
            (r#"{"action":"bad_state"}"#, 400, &["state_not_serializable"][..]),
            (r#"{"action":"cyclic_state"}"#, 400, &["state_not_serializable"][..]),
            (r#"{"action":"bad_reply"}"#, 500, &["actor_error"][..]),
            (r#"{"action":"nope"}"#, 400, &["unknown_action"][..]),
            (r#"{"action":"increment","amount":"lots"}"#, 500, &["actor_error"][..]),
            (r#"{"action":"spin"}"#, 500, &["guest_trapped"][..]),
            // An engine may stop these itself (an exception) or be stopped by the node's
            // limits (a trap); either way the call fails and the state is kept.
            (r#"{"action":"hog"}"#, 500, &["guest_trapped", "actor_error"][..]),
            (r#"{"action":"recurse"}"#, 500, &["guest_trapped", "actor_error"][..]),
        ] {
            let failed = call(&node, &name, body);
            assert_eq!(failed.status, status, "{engine:?} {body}: {failed:?}");
            assert!(
                codes.contains(&failed.code().as_str()),
                "{engine:?} {body}: {failed:?} (expected one of {codes:?})"
            );
            // The actor keeps its last committed state, and the node keeps serving.
            assert_eq!(
                call(&node, &name, r#"{"action":"increment","amount":0}"#).json(),
                json!({"count": 2}),
                "{engine:?} after {body}"
            );
        }
        let raised = call(&node, &name, r#"{"action":"fail_after_change"}"#).json();
        assert_eq!(raised["error_type"], "RangeError", "{engine:?}: {raised}");
        assert!(raised["detail"].as_str().unwrap().contains("the order is not valid"), "{raised}");
        let invalid = call(&node, &name, "{not json");
        assert_eq!(invalid.status, 400, "{engine:?}: {invalid:?}");

        // console output lands in the type's log; clocks and randomness come from the host.
        let noisy = call(&node, &name, r#"{"action":"noisy"}"#);
        assert_eq!(noisy.json(), json!({"now": true, "random": true}), "{engine:?}: {noisy:?}");
        eventually("console output is logged", || {
            let logs = http::get(node.admin, &format!("/api/v1/deployments/{name}/logs"));
            logs.body_text().contains("to stdout 2") && logs.body_text().contains("to stderr")
        });
    }
    assert!(node.terminate().success());
}

#[test]
fn typescript_actors_call_the_host_services() {
    let services =
        guests::typescript_module("tests/fixtures/typescript/services.ts", Engine::QuickJs);
    let counter = guests::typescript_module("examples/typescript/counter.ts", Engine::SpiderMonkey);
    let dir = data_dir("ts-services");
    let node = start(&dir);
    deploy(&node, "services", &services);
    deploy(&node, "ts-count", &counter);

    let who = call(&node, "services/s1", r#"{"action":"whoami"}"#).json();
    assert_eq!(who, json!({"id": "default/services/s1", "now": true, "random": true}));
    // A tell, then an ask, to the stock binary's native Rust counter and to a TypeScript one
    // built with the other engine.
    for target in ["counter/from-ts", "ts-count/from-ts"] {
        let body = json!({"action": "counter", "target": target}).to_string();
        let counted = call(&node, "services/s1", &body);
        assert_eq!((counted.status, counted.json()), (200, json!({"count": 3})), "{target}");
    }
    let missing = call(&node, "services/s1", r#"{"action":"missing"}"#).json();
    assert_eq!(missing, json!({"code": "not_found", "isHostError": true}));
    crate::registry_blobs::check_registry_and_blobs(&node, "services/s1");

    let kv = call(&node, "services/s1", r#"{"action":"kv"}"#).json();
    assert_eq!(
        kv,
        json!({"list": [["ts:a", "uno"]], "get": "uno", "missing": null, "swapped": true,
               "refused": false, "deleted": true})
    );
    let tuples = call(&node, "services/s1", r#"{"action":"tuples"}"#).json();
    assert_eq!(
        tuples,
        json!({"count": 2, "read": "[\"job\",1,\"new\"]", "taken": "[\"job\",1,\"new\"]",
               "none": null, "scan": ["[\"job\",2,\"new\"]"]})
    );
    let locks = call(&node, "services/s1", r#"{"action":"locks"}"#).json();
    let version = locks["version"].as_str().unwrap().to_owned();
    assert!(version.parse::<u64>().is_ok(), "{locks}");
    assert_eq!(locks["grant"], version.as_str(), "acquiring again renews: {locks}");
    assert_eq!(locks["holder"], "default/services/s1");
    assert!(locks["other"].as_str().unwrap().starts_with("ERROR:timeout:"), "{locks}");
    assert_eq!(
        (locks["renewed"].clone(), locks["released"].clone()),
        (json!(version), json!(true))
    );
    assert_eq!(locks["again"], false);

    let groups = call(&node, "services/s1", r#"{"action":"groups"}"#).json();
    assert_eq!(groups, json!({"joined": true, "members": ["default/services/s1"], "sent": 1}));
    let timer = call(&node, "services/s1", r#"{"action":"timer"}"#).json();
    assert!(timer["id"].is_string(), "{timer}");
    eventually("the publish and the timer arrive", || {
        let seen: Value = call(&node, "services/s1", r#"{"action":"seen"}"#).json();
        seen == json!({"messages": [{"hello": "from ts"}], "ticks": 1})
    });
    let got = || {
        let seen: Value = call(&node, "services/s1", r#"{"action":"seen"}"#).json();
        seen["messages"].as_array().unwrap()[1..].to_vec()
    };
    crate::channels::check_every_channel_call(&node, "services/s1", &got);
    assert!(node.terminate().success());
}

fn status_of(node: &crate::NodeProcess, actor: &str) -> Value {
    call(node, actor, r#"{"action":"status"}"#).json()
}

fn post(node: &crate::NodeProcess, actor: &str, body: &str) -> http::Response {
    http::post_json(node.invoke, &format!("/api/v1/actors/default/default/{actor}"), body)
}

/// `examples/typescript/order_workflow.ts` on both engines, and its Rust twin
/// (`OrderFulfillment` of `crates/wasm/guests/rust-sdk-actors`), under kill -9.
#[test]
fn durable_typescript_and_rust_workflows_call_python_actors_and_survive_a_kill() {
    let python = [
        ("payments", guests::python_module("tests/fixtures/python/payments.py")),
        ("shipping", guests::python_module("tests/fixtures/python/shipping.py")),
    ];
    let mut modules: Vec<_> = on_both_engines("examples/typescript/order_workflow.ts")
        .into_iter()
        .map(|(engine, module)| (format!("ts-fulfillment-{}", engine.name()), module))
        .collect();
    let mut workflows: Vec<String> = modules.iter().map(|(name, _)| name.clone()).collect();
    // The Rust SDK's module deploys as `rs`: its workflow class is `rs.order_fulfillment`.
    modules.push(("rs".to_owned(), guests::rust_module("crates/wasm/guests/rust-sdk-actors")));
    workflows.push("rs.order_fulfillment".to_owned());
    let dir = data_dir("ts-workflow");
    let node = start(&dir);
    for (name, module) in python.iter().map(|(name, module)| (*name, module)) {
        deploy(&node, name, module);
    }
    for (name, module) in &modules {
        deploy(&node, name, module);
    }
    // Each engine's workflow: charged (a step asking the Python payments actor), then a durable
    // sleep of 2 s, then a wait for approval; killed -9 in the sleep.
    for (at, name) in workflows.iter().enumerate() {
        let order = format!("t-{at}");
        let started = post(
            &node,
            &format!("{name}/{order}"),
            &json!({"action": "run", "order_id": order, "amount": 30}).to_string(),
        );
        assert_eq!(started.status, 202, "{name}: {started:?}");
        eventually("the charge step", || {
            status_of(&node, &format!("{name}/{order}"))["status"] == "charged"
        });
        let again = call(&node, &format!("{name}/{order}"), r#"{"action":"run","order_id":"x"}"#);
        assert_eq!((again.status, again.code().as_str()), (409, "workflow_running"), "{again:?}");
    }
    drop(node); // SIGKILL, in the middle of the sleeps.

    let node = start(&dir);
    for (at, name) in workflows.iter().enumerate() {
        let actor = format!("{name}/t-{at}");
        // Recovered from the journal: the committed state answers queries at once.
        let status = status_of(&node, &actor);
        assert_eq!(
            (status["status"].as_str(), status["steps"].clone()),
            (Some("charged"), json!(["payment"])),
            "{actor}"
        );
        let approved = post(&node, &actor, r#"{"action":"approve","by":"ops"}"#);
        assert_eq!(approved.status, 202, "{approved:?}");
    }
    for (at, name) in workflows.iter().enumerate() {
        let actor = format!("{name}/t-{at}");
        eventually("the run to complete", || status_of(&node, &actor)["status"] == "completed");
        assert_eq!(status_of(&node, &actor)["steps"], json!(["payment", "shipment"]));
    }
    // Each charge step ran once: replayed after the kill, its recorded result stood for it.
    let payments = call(&node, "payments", r#"{"action":"summary"}"#).json();
    for at in 0..workflows.len() {
        assert_eq!(
            payments["charges"][format!("t-{at}")].as_array().map(Vec::len),
            Some(1),
            "{payments}"
        );
    }
    eventually("the shipments", || {
        let summary = call(&node, "shipping", r#"{"action":"summary"}"#).json();
        let mut shipped: Vec<String> = summary["shipped"]
            .as_array()
            .map(|all| all.iter().filter_map(|one| one.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        shipped.sort();
        shipped == ["t-0", "t-1", "t-2"]
    });

    // A cancel before the approval: the workflow refunds (a second step asking Python).
    for (name, order) in [(&workflows[0], "t-9"), (&workflows[2], "t-8")] {
        let actor = format!("{name}/{order}");
        let run = json!({"action": "run", "order_id": order, "amount": 5}).to_string();
        assert_eq!(post(&node, &actor, &run).status, 202, "{actor}");
        post(&node, &actor, r#"{"action":"cancel"}"#);
        post(&node, &actor, r#"{"action":"approve"}"#);
        eventually("the cancelled run to end", || {
            let status = status_of(&node, &actor);
            status["status"] == "cancelled" && status["steps"] == json!(["payment"])
        });
    }
    assert!(node.terminate().success());
}

#[test]
fn python_typescript_and_rust_actors_share_one_node_and_ask_each_other() {
    let python = guests::python_module("tests/fixtures/python/polyglot.py");
    let typescript =
        guests::typescript_module("tests/fixtures/typescript/polyglot.ts", Engine::QuickJs);
    let rust = guests::rust_module("crates/wasm/guests/rust-sdk-actors");
    let dir = data_dir("polyglot");
    let node = start(&dir);
    deploy(&node, "py-bridge", &python);
    deploy(&node, "ts-bridge", &typescript);
    // The Rust SDK's actors as a guest: `rs.counter`, `rs.door`, `rs.tally` (its state has no
    // serde: the guest keeps it, in an instance pinned to each actor) and a workflow.
    let deployed = deploy(&node, "rs", &rust);
    let kept: Vec<(&str, &str)> = deployed["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ty| (ty["name"].as_str().unwrap(), ty["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kept,
        [
            ("rs.counter", "host"),
            ("rs.door", "host"),
            ("rs.tally", "guest"),
            ("rs.order_fulfillment", "host")
        ],
        "{deployed}"
    );
    assert_eq!(
        call(&node, "rs.tally/t1", r#"{"action":"add","text":"a"}"#).json(),
        json!({"seen": ["a"]})
    );
    assert_eq!(
        call(&node, "rs.tally/t1", r#"{"action":"add","text":"b"}"#).json(),
        json!({"seen": ["a", "b"]})
    );

    // KV and the tuple space are the namespace's, whatever the language.
    for (writer, reader, key) in [
        ("py-bridge", "ts-bridge", "from-python"),
        ("ts-bridge", "rs.counter", "from-ts"),
        ("rs.counter", "py-bridge", "from-rust"),
    ] {
        let body = json!({"action": "share", "key": key, "value": format!("{writer} was here")});
        assert_eq!(call(&node, writer, &body.to_string()).json(), json!({"shared": key}));
        let collected = call(&node, reader, &json!({"action": "collect", "key": key}).to_string());
        assert_eq!(
            collected.json(),
            json!({"kv": format!("{writer} was here"),
                   "tuple": json!(["handoff", key, format!("{writer} was here")]).to_string()}),
            "{reader} reads what {writer} wrote"
        );
    }
    // Each asks another and tells the stock binary's native Rust counter.
    let relayed = call(&node, "py-bridge", r#"{"action":"relay","text":"hi"}"#).json();
    assert_eq!(
        relayed,
        json!({"by": "python", "reply": {"echo": "hi", "via": "python", "by": "typescript"}})
    );
    let relayed = call(&node, "ts-bridge", r#"{"action":"relay","text":"hey"}"#).json();
    assert_eq!(
        relayed,
        json!({"by": "typescript", "reply": {"echo": "hey", "via": "typescript", "by": "python"}})
    );
    let relayed =
        call(&node, "rs.counter", r#"{"action":"relay","text":"yo","target":"ts-bridge"}"#).json();
    assert_eq!(
        relayed,
        json!({"by": "rust", "reply": {"echo": "yo", "via": "rust", "by": "typescript"}})
    );
    eventually("every tell reaches the native counter", || {
        call(&node, "counter/polyglot", r#"{"action":"increment","amount":0}"#).json()
            == json!({"count": 3})
    });
    assert!(node.terminate().success());
}
