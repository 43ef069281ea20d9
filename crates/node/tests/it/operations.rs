//! Operations: health, readiness and Prometheus metrics (checked by `promtool`).

use std::{
    io::Write as _,
    process::Stdio,
    time::{Duration, Instant},
};

use plexspaces_node::Options;

use crate::{TestNode, http};

#[test]
fn metrics_pass_promtool_and_count_requests_by_route() {
    let node = TestNode::start(Options::default());
    for _ in 0..3 {
        http::post_json(
            node.invoke(),
            "/api/v1/actors/acme/default/echo/m?invocation=call",
            r#"{"action":"x"}"#,
        );
    }
    http::post_json(node.invoke(), "/api/v1/actors/acme/default/nothere", "{}");
    http::get(node.invoke(), "/nowhere");
    // One sleep in the handler (the actor is active once its turn has taken the message),
    // then two more that wait in the mailbox.
    let slow = "/api/v1/actors/acme/default/slow/q";
    let sleep = r#"{"action":"sleep","ms":2000}"#;
    http::post_json(node.invoke(), slow, sleep);
    let deadline = Instant::now() + Duration::from_secs(10);
    let lifecycle = || {
        http::get(node.admin(), "/api/v1/actors/acme/default/slow").json()["actors"][0]["lifecycle"]
            .clone()
    };
    while lifecycle() != "active" {
        assert!(Instant::now() < deadline, "the slow actor never activated");
        std::thread::sleep(Duration::from_millis(10));
    }
    http::post_json(node.invoke(), slow, sleep);
    http::post_json(node.invoke(), slow, sleep);
    let endpoint = format!("http://{}", node.node().grpc_addr());
    node.runtime.block_on(async {
        let mut status =
            plexspaces_proto::v1::node_service_client::NodeServiceClient::connect(endpoint)
                .await
                .unwrap();
        status.get_status(plexspaces_proto::v1::GetStatusRequest {}).await.unwrap();
    });

    let metrics = http::get(node.admin(), "/metrics");
    assert_eq!(metrics.status, 200);
    assert!(metrics.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
    let text = String::from_utf8(metrics.body).unwrap();
    let route = "/api/v1/actors/{tenant}/{namespace}/{actor_type}/{actor_id}";
    assert!(
        text.contains(&format!(
            "plexspaces_http_requests_total{{port=\"invoke\",method=\"POST\",route=\"{route}\",status=\"200\"}} 3\n"
        )),
        "{text}"
    );
    assert!(text.contains("route=\"unmatched\",status=\"404\"} 1\n"), "{text}");
    assert!(text.contains(&format!("plexspaces_http_request_duration_seconds_count{{port=\"invoke\",method=\"POST\",route=\"{route}\"}} 6\n")), "{text}");
    assert!(text.contains("plexspaces_grpc_requests_total{method=\"plexspaces.v1.NodeService/GetStatus\",code=\"Ok\"} 1\n"), "{text}");
    assert!(text.contains("plexspaces_actors{lifecycle=\"active\"} 2\n"), "{text}");
    assert!(
        text.contains("plexspaces_mailbox_depth_max_messages{actor_type=\"slow\"} 2\n"),
        "one sleep runs, two wait: {text}"
    );

    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) must be installed: make test installs it");
    promtool.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}

#[test]
fn health_and_readiness_answer_on_both_ports() {
    let node = TestNode::start(Options::default());
    for address in [node.invoke(), node.admin()] {
        assert_eq!(http::get(address, "/healthz").json()["status"], "ok");
        assert_eq!(http::get(address, "/readyz").json()["status"], "ready");
        let openapi = http::get(address, "/api/v1/openapi.json").json();
        assert_eq!(openapi["openapi"], "3.0.3");
    }
}
