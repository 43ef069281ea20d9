//! The coordination services end to end: process groups (the chat room example and a member
//! that records what it receives), the KV store from Python (every call, its limits,
//! concurrent read-modify-write, and entries kept across a restart of the node), and journaled
//! tuple spaces across a kill -9.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::{
    NodeProcess, data_dir, guests, http,
    wasm::{call, deploy, deploy_bytes, eventually, start},
};

fn tell(node: &NodeProcess, actor: &str, body: &str) {
    let told =
        http::post_json(node.invoke, &format!("/api/v1/actors/default/default/{actor}"), body);
    assert_eq!(told.status, 202, "tell {actor} {body}: {told:?}");
}

fn received(node: &NodeProcess, member: &str) -> Vec<Value> {
    let reply = call(node, &format!("member/{member}"), r#"{"action":"received"}"#).json();
    reply["received"].as_array().cloned().unwrap_or_default()
}

fn dropped(node: &NodeProcess) -> u64 {
    let metrics = http::get(node.admin, "/metrics").body_text();
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("plexspaces_pg_messages_dropped_total "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no dropped counter in the metrics:\n{metrics}"))
}

/// Each publisher's sequence numbers as one member received them.
fn by_publisher(messages: &[Value]) -> BTreeMap<String, Vec<u64>> {
    let mut sequences: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for message in messages {
        let publisher = message["publisher"].as_str().unwrap().to_owned();
        sequences.entry(publisher).or_default().push(message["data"]["seq"].as_u64().unwrap());
    }
    sequences
}

#[test]
fn each_publish_reaches_each_member_once_in_order_and_deleted_members_leave() {
    let member = guests::python_module("examples/python/chat_member.py");
    let room = guests::python_module("examples/python/chat_room.py");
    let dir = data_dir("services-groups");
    let node = start(&dir);
    // Members deactivate after 300 ms without messages: memberships must outlive that.
    let deployed = deploy_bytes(
        &node,
        &[
            ("namespace", "default"),
            ("actor_type", "member"),
            ("config", r#"{"idle_timeout_ms":300}"#),
        ],
        &std::fs::read(&member).unwrap(),
    );
    assert_eq!(deployed.status, 201, "{deployed:?}");
    deploy(&node, "room", &room);

    for name in ["m1", "m2"] {
        let joined =
            call(&node, &format!("member/{name}"), r#"{"action":"join","room_name":"lobby"}"#);
        assert_eq!(joined.json()["joined"], true, "{joined:?}");
    }
    let topic = r#"{"action":"join","room_name":"lobby","topic":"sports"}"#;
    assert_eq!(call(&node, "member/m3", topic).json()["joined"], true);
    assert_eq!(call(&node, "member/m3", topic).json()["joined"], false, "joining twice is once");

    // Two publishers, 40 tells each, interleaved: every member of the whole group gets all
    // 80 once, each publisher's in its order; the topic member gets none of them.
    for seq in 0..40 {
        for publisher in ["m1", "m2"] {
            let body = format!(r#"{{"action":"say","room_name":"lobby","text":"hi","seq":{seq}}}"#);
            tell(&node, &format!("member/{publisher}"), &body);
        }
    }
    for name in ["m1", "m2"] {
        eventually(&format!("{name} receiving 80 messages"), || received(&node, name).len() >= 80);
        let messages = received(&node, name);
        assert_eq!(messages.len(), 80, "{name}: each publish once");
        let sequences = by_publisher(&messages);
        for publisher in ["default/member/m1", "default/member/m2"] {
            assert_eq!(
                sequences[publisher],
                (0..40).collect::<Vec<u64>>(),
                "{name} from {publisher}"
            );
        }
    }
    assert!(received(&node, "m3").is_empty(), "a topic member gets only its topic");

    // A publish to the topic reaches the whole-group members and the topic's.
    let sent = call(
        &node,
        "member/m1",
        r#"{"action":"say","room_name":"lobby","text":"goal","seq":99,"topic":"sports"}"#,
    );
    assert_eq!(sent.json(), json!({"sent_to": 3}));
    eventually("m3 receiving the topic's message", || received(&node, "m3").len() == 1);
    let message = &received(&node, "m3")[0];
    assert_eq!(
        (message["group"].clone(), message["topic"].clone(), message["publisher"].clone()),
        (json!("lobby"), json!("sports"), json!("default/member/m1"))
    );

    // The chat room example: it joins, lists the members and sends; having no pg_message
    // handler, it drops its own copy, and the node counts it.
    let joined = call(&node, "room/r1", r#"{"action":"join","room_name":"lobby"}"#).json();
    assert_eq!(joined, json!({"status": "joined", "room": "lobby"}));
    let members = call(&node, "room/r1", r#"{"action":"members","room_name":"lobby"}"#).json();
    assert_eq!(
        members["members"],
        json!(["default/member/m1", "default/member/m2", "default/member/m3", "default/room/r1"])
    );
    let before = dropped(&node);
    let sent =
        call(&node, "room/r1", r#"{"action":"send","room_name":"lobby","text":"hello all"}"#);
    assert_eq!(sent.json(), json!({"status": "sent"}));
    eventually("the room's own copy being dropped", || dropped(&node) == before + 1);
    eventually("m2 receiving the room's message", || {
        received(&node, "m2")
            .last()
            .is_some_and(|last| last["data"] == json!({"text": "hello all"}))
    });

    // Deactivated members stay members: a publish activates them again, state and all.
    let inactive = || {
        let listed = http::get(node.admin, "/api/v1/actors/default/default/member").json();
        listed["actors"].as_array().unwrap().iter().all(|actor| actor["lifecycle"] != "active")
    };
    eventually("the members deactivating", inactive);
    let sent = call(&node, "room/r1", r#"{"action":"send","room_name":"lobby","text":"wake up"}"#);
    assert_eq!(sent.status, 200, "{sent:?}");
    eventually("m1 woken by the publish", || {
        let messages = received(&node, "m1");
        messages.len() == 83 && messages[82]["data"] == json!({"text": "wake up"})
    });

    // An actor stopped for good leaves its groups.
    let deleted =
        http::request(node.admin, "DELETE", "/api/v1/actors/default/default/member/m2", &[], b"");
    assert_eq!(deleted.status, 204, "{deleted:?}");
    let members = call(&node, "room/r1", r#"{"action":"members","room_name":"lobby"}"#).json();
    assert_eq!(
        members["members"],
        json!(["default/member/m1", "default/member/m3", "default/room/r1"])
    );
    assert_eq!(
        call(&node, "member/m1", r#"{"action":"say","room_name":"lobby","text":"x","seq":1}"#)
            .json(),
        json!({"sent_to": 2}),
        "m1 itself and the room; m3 follows only its topic"
    );

    // A client outside the node publishes over HTTP: no publisher.
    let published = http::post_json(
        node.invoke,
        "/api/v1/groups/default/default/lobby/publish",
        r#"{"data":{"text":"from outside"},"topic":"sports"}"#,
    );
    assert_eq!(published.json(), json!({"sent": 3}), "{published:?}");
    eventually("m3 receiving the outside publish", || {
        received(&node, "m3").last().is_some_and(|last| {
            last["publisher"].is_null() && last["data"] == json!({"text": "from outside"})
        })
    });
    assert!(node.terminate().success());
}

#[test]
fn every_channel_call_from_python() {
    let module = guests::python_module("tests/fixtures/python/channel_user.py");
    let dir = data_dir("services-channels");
    let node = start(&dir);
    deploy(&node, "chan", &module);
    let got = || call(&node, "chan/c1", r#"{"action":"got"}"#).json().as_array().cloned().unwrap();
    crate::channels::check_every_channel_call(&node, "chan/c1", &got);
}

#[test]
fn kv_from_python_with_limits_concurrency_and_a_restart() {
    let module = guests::python_module("tests/fixtures/python/kv_user.py");
    let dir = data_dir("services-kv");
    let node = start(&dir);
    deploy(&node, "kv", &module);
    let other = deploy_bytes(
        &node,
        &[("namespace", "other"), ("actor_type", "kv")],
        &std::fs::read(&module).unwrap(),
    );
    assert_eq!(other.status, 201, "{other:?}");
    let kv = |body: &str| call(&node, "kv/a", body).json();

    assert_eq!(kv(r#"{"action":"get","key":"user:1"}"#), json!({"value": null}));
    for (key, value) in [("user:1", "ann"), ("user:2", "bob"), ("user:3", "cy"), ("order:1", "o")] {
        let body = json!({"action": "put", "key": key, "value": value}).to_string();
        assert_eq!(kv(&body), json!({"stored": key}));
    }
    assert_eq!(kv(r#"{"action":"get","key":"user:1"}"#), json!({"value": "ann"}));
    // Another actor of the namespace sees the same store; another namespace does not.
    assert_eq!(
        call(&node, "kv/b", r#"{"action":"get","key":"user:2"}"#).json(),
        json!({"value": "bob"})
    );
    let elsewhere = http::post_json(
        node.invoke,
        "/api/v1/actors/default/other/kv/a?invocation=call",
        r#"{"action":"get","key":"user:2"}"#,
    );
    assert_eq!(elsewhere.json(), json!({"value": null}));

    assert_eq!(
        kv(r#"{"action":"list","prefix":"user:","limit":2}"#),
        json!({"entries": [["user:1", "ann"], ["user:2", "bob"]]})
    );
    assert_eq!(
        kv(r#"{"action":"list","prefix":"user:","after":"user:2"}"#),
        json!({"entries": [["user:3", "cy"]]})
    );
    assert_eq!(kv(r#"{"action":"delete","key":"user:3"}"#), json!({"deleted": true}));
    assert_eq!(kv(r#"{"action":"delete","key":"user:3"}"#), json!({"deleted": false}));
    assert_eq!(
        kv(r#"{"action":"cas","key":"user:1","expected":"bob","value":"x"}"#),
        json!({"swapped": false})
    );
    assert_eq!(
        kv(r#"{"action":"cas","key":"user:1","expected":"ann","value":"anne"}"#),
        json!({"swapped": true})
    );
    assert_eq!(kv(r#"{"action":"cas","key":"new","value":"1"}"#), json!({"swapped": true}));

    // Time to live.
    assert_eq!(
        kv(r#"{"action":"put","key":"session","value":"s","ttl_ms":100}"#),
        json!({"stored": "session"})
    );
    eventually("the session expiring", || {
        kv(r#"{"action":"get","key":"session"}"#) == json!({"value": null})
    });

    // Bad input: a clear code, and nothing stored.
    let empty = kv(r#"{"action":"put","key":"","value":"v"}"#);
    assert_eq!(empty["error"], "invalid_arguments", "{empty}");
    let huge = json!({"action": "put", "key": "big", "value": "v".repeat(1_100_000)}).to_string();
    let refused =
        http::post_json(node.invoke, "/api/v1/actors/default/default/kv/a?invocation=call", &huge);
    assert_eq!(refused.status, 413, "a request past the body limit: {refused:?}");
    let long_key = json!({"action": "put", "key": "k".repeat(2000), "value": "v"}).to_string();
    assert_eq!(kv(&long_key)["error"], "invalid_arguments");
    assert_eq!(kv(r#"{"action":"get","key":"big"}"#), json!({"value": null}));

    // Four actors incrementing one counter at once lose no update.
    let threads: Vec<_> = (0..4)
        .map(|worker| {
            let invoke = node.invoke;
            std::thread::spawn(move || {
                for _ in 0..25 {
                    let reply = http::post_json(
                        invoke,
                        &format!("/api/v1/actors/default/default/kv/w{worker}?invocation=call"),
                        r#"{"action":"increment","key":"counter"}"#,
                    );
                    assert_eq!(reply.status, 200, "{reply:?}");
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(kv(r#"{"action":"get","key":"counter"}"#), json!({"value": "100"}));
    assert!(node.terminate().success());

    // The KV store is on SQLite in the data directory by default: it survives the restart.
    let node = start(&dir);
    let kv = |body: &str| call(&node, "kv/a", body).json();
    assert_eq!(kv(r#"{"action":"get","key":"user:1"}"#), json!({"value": "anne"}));
    assert_eq!(kv(r#"{"action":"get","key":"counter"}"#), json!({"value": "100"}));
    assert_eq!(kv(r#"{"action":"get","key":"user:3"}"#), json!({"value": null}));
    assert!(node.terminate().success());
}

#[test]
fn journaled_tuple_spaces_come_back_after_a_kill_9() {
    let dir = data_dir("services-tuples");
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("plexspaces.toml");
    std::fs::write(&config, "tuple_space_backend = \"sqlite\"\n").unwrap();
    let config = config.display().to_string();
    let node = NodeProcess::start(&dir, &["--config", &config]);
    let post = |node: &NodeProcess, path: &str, body: &str| {
        http::post_json(node.invoke, &format!("/api/v1/tuples/acme/shop{path}"), body)
    };
    for n in 0..3 {
        let written = post(&node, "", &format!(r#"{{"tuple":["order",{n},"pending"]}}"#));
        assert_eq!(written.status, 204, "{written:?}");
    }
    post(&node, "", r#"{"tuple":["session"],"lease_ms":100}"#);
    let taken = post(&node, "/take", r#"{"pattern":["order",1,null]}"#).json();
    assert_eq!(taken, json!({"tuple": ["order", 1, "pending"]}));
    // Every write and take was answered once durable: a kill -9 now loses none of them.
    drop(node);
    std::thread::sleep(std::time::Duration::from_millis(300));

    let node = NodeProcess::start(&dir, &["--config", &config]);
    let scanned = post(&node, "/scan", r#"{"pattern":["order",null,null]}"#).json();
    assert_eq!(scanned, json!({"tuples": [["order", 0, "pending"], ["order", 2, "pending"]]}));
    assert_eq!(post(&node, "/count", r#"{"pattern":["session"]}"#).json(), json!({"count": 0}));
    assert!(node.terminate().success());
}
