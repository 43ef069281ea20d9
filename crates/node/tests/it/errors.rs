//! Bad input gets a catalogued problem+json answer and loses nothing.

use plexspaces_node::Options;
use plexspaces_sdk::prelude::*;

use crate::{TestNode, http};

const ECHO: &str = "/api/v1/actors/acme/default/echo";

#[test]
fn each_kind_of_bad_request_has_its_code() {
    let node = TestNode::start(Options { max_body_bytes: 1024, ..Options::default() });
    let invoke = node.invoke();
    let cases: Vec<(http::Response, u16, &str)> = vec![
        (http::post_json(invoke, ECHO, "{not json"), 400, "invalid_json"),
        (http::post_json(invoke, ECHO, r#"{"action": 7}"#), 400, "invalid_arguments"),
        (http::post_json(invoke, "/api/v1/actors/acme/default/nothere", "{}"), 404, "not_found"),
        (
            http::post_json(invoke, "/api/v1/actors/acme/default/bad%20type", "{}"),
            400,
            "invalid_arguments",
        ),
        (
            http::post_json(invoke, "/api/v1/actors/acme/default/echo/x?invocation=maybe", "{}"),
            400,
            "invalid_arguments",
        ),
        (
            http::post_json(invoke, "/api/v1/actors/acme/default/echo/x?timeout_ms=-1", "{}"),
            400,
            "invalid_arguments",
        ),
        (
            http::post_json(
                invoke,
                "/api/v1/actors/acme/default/echo/x?timeout_ms=999999999",
                "{}",
            ),
            400,
            "invalid_arguments",
        ),
        (
            http::request(invoke, "POST", ECHO, &[("Content-Type", "text/plain")], b"hi"),
            415,
            "unsupported_media_type",
        ),
        (http::request(invoke, "PUT", ECHO, &[], b""), 405, "method_not_allowed"),
        (http::get(invoke, "/nowhere"), 404, "not_found"),
        (
            http::post_json(
                invoke,
                &format!("{ECHO}?invocation=call"),
                r#"{"action":"x","pad":"#.to_owned().as_str(),
            ),
            400,
            "invalid_json",
        ),
        (
            http::post_json(
                invoke,
                "/api/v1/actors/acme/default/failing?invocation=call",
                r#"{"action":"other"}"#,
            ),
            400,
            "unknown_action",
        ),
        (
            http::post_json(
                invoke,
                "/api/v1/actors/acme/default/failing?invocation=call",
                r#"{"action":"fail"}"#,
            ),
            500,
            "actor_error",
        ),
        (
            http::post_json(
                invoke,
                "/api/v1/actors/acme/default/slow?invocation=call&timeout_ms=50",
                r#"{"action":"sleep","ms":2000}"#,
            ),
            504,
            "timeout",
        ),
        (
            http::get(node.admin(), "/api/v1/actors/acme/default/echo/nobody/state"),
            404,
            "not_found",
        ),
    ];
    for (response, status, code) in cases {
        assert_eq!((response.status, response.code().as_str()), (status, code), "{response:?}");
        let problem = response.json();
        assert_eq!(problem["status"], status);
        assert!(!problem["detail"].as_str().unwrap().is_empty());
    }
    let failed = http::post_json(
        invoke,
        "/api/v1/actors/acme/default/failing?invocation=call",
        r#"{"action":"fail"}"#,
    );
    assert_eq!(
        failed.json()["detail"],
        "the ledger is closed",
        "the actor's own message, apart from platform errors"
    );
    // The actor that failed is still there.
    let again = http::post_json(
        invoke,
        "/api/v1/actors/acme/default/failing?invocation=call",
        r#"{"action":"fail"}"#,
    );
    assert_eq!(again.status, 500);
}

#[test]
fn a_body_over_the_limit_is_413_declared_or_chunked() {
    let node = TestNode::start(Options { max_body_bytes: 1024, ..Options::default() });
    let big = format!(r#"{{"action":"x","pad":"{}"}}"#, "a".repeat(2000));
    let declared = http::post_json(node.invoke(), ECHO, &big);
    assert_eq!((declared.status, declared.code().as_str()), (413, "payload_too_large"));
    let mut chunked = format!(
        "POST {ECHO} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for piece in big.as_bytes().chunks(500) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let response = http::raw(node.invoke(), &chunked).unwrap();
    assert_eq!((response.status, response.code().as_str()), (413, "payload_too_large"));
    // The admin port has the same limit.
    let admin = http::request(node.admin(), "DELETE", &format!("{ECHO}/x"), &[], big.as_bytes());
    assert_eq!(admin.status, 413);
    // Within the limit all is well.
    let small =
        http::post_json(node.invoke(), &format!("{ECHO}?invocation=call"), r#"{"action":"x"}"#);
    assert_eq!(small.status, 200);
}

#[test]
fn a_facet_refusal_names_the_facet() {
    #[derive(Debug)]
    struct Guard;

    #[async_trait]
    impl Facet for Guard {
        fn name(&self) -> &str {
            "guard"
        }
        async fn before_method(
            &mut self,
            method: &str,
            _: &[u8],
        ) -> Result<InterceptResult, FacetError> {
            if method == "forbidden" {
                return Err(FacetError::Custom("not_allowed".into()));
            }
            Ok(InterceptResult::Continue)
        }
    }

    let node = TestNode::start_with(Options::default(), |mut builder| {
        builder.facets().register("guard", |_| Ok(Box::new(Guard)));
        builder.register_with_facets::<crate::Echo>("guarded", &[("guard", Value::Null)])
    });
    let path = "/api/v1/actors/acme/default/guarded?invocation=call";
    let refused = http::post_json(node.invoke(), path, r#"{"action":"forbidden"}"#);
    assert_eq!((refused.status, refused.code().as_str()), (403, "facet_rejected"));
    assert_eq!(refused.json()["facet"], "guard");
    assert!(refused.json()["detail"].as_str().unwrap().contains("not_allowed"));
    assert_eq!(http::post_json(node.invoke(), path, r#"{"action":"fine"}"#).status, 200);
}

#[test]
fn a_node_reachable_from_elsewhere_needs_a_token_and_then_every_request_carries_it() {
    let public = Options { host: "0.0.0.0".parse().unwrap(), ..Options::default() };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let refused =
        runtime.block_on(plexspaces_node::Node::builder().options(public).start()).unwrap_err();
    assert_eq!(refused.code, plexspaces_types::ErrorCode::InvalidArguments);
    assert!(refused.message.contains("--admin-token"), "{}", refused.message);

    let node =
        TestNode::start(Options { admin_token: Some("s3cret".into()), ..Options::default() });
    for address in [node.invoke(), node.admin()] {
        let anonymous = http::get(address, "/healthz");
        assert_eq!((anonymous.status, anonymous.code().as_str()), (401, "unauthenticated"));
        let wrong =
            http::request(address, "GET", "/healthz", &[("Authorization", "Bearer nope")], b"");
        assert_eq!(wrong.status, 401);
        let right =
            http::request(address, "GET", "/healthz", &[("Authorization", "Bearer s3cret")], b"");
        assert_eq!(right.status, 200);
    }
}

#[test]
fn slow_clients_are_cut_off_and_others_are_served_meanwhile() {
    use std::{
        io::{Read, Write},
        net::TcpStream,
        time::{Duration, Instant},
    };
    let node = TestNode::start(Options {
        header_timeout_ms: 300,
        body_timeout_ms: 300,
        ..Options::default()
    });

    // Headers that never end: the connection is closed.
    let mut slow_headers = TcpStream::connect(node.invoke()).unwrap();
    slow_headers.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    slow_headers.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").unwrap();
    // A body that never comes: 408 request_timeout.
    let mut slow_body = TcpStream::connect(node.invoke()).unwrap();
    slow_body.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    slow_body
        .write_all(format!("POST {ECHO} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"act").as_bytes())
        .unwrap();

    // Others are served while the slow ones wait.
    assert_eq!(http::get(node.invoke(), "/healthz").status, 200);

    let started = Instant::now();
    let mut rest = Vec::new();
    let _closed = slow_headers.read_to_end(&mut rest);
    assert!(started.elapsed() < Duration::from_secs(10), "the header timeout is 300 ms");
    assert!(!String::from_utf8_lossy(&rest).starts_with("HTTP/1.1 200"), "{rest:?}");

    let mut answer = Vec::new();
    slow_body.read_to_end(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"request_timeout\""), "{answer}");
}
