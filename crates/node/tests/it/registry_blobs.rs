//! The service registry and the blob store for clients: HTTP and gRPC reach the same ones,
//! registrations expire unless they heartbeat and outlive a restart, blobs stream both ways
//! within the node's size and time limits, and presigned URLs work without the node's token
//! until they expire, and never once changed.

use std::{
    io::{Read as _, Write as _},
    time::Duration,
};

use futures_util::StreamExt as _;
use plexspaces_node::Options;
use plexspaces_proto::v1::{
    self as pb, blob_service_client::BlobServiceClient,
    registry_service_client::RegistryServiceClient,
};
use serde_json::json;

use crate::{TestNode, coordination::send, data_dir, http};

fn scope() -> Option<pb::Scope> {
    Some(pb::Scope { tenant: "acme".into(), namespace: "shop".into() })
}

#[test]
fn registry_over_http_and_grpc_with_expiry_and_a_restart() {
    let dir = data_dir("registry");
    let node = TestNode::start_in(&dir, Options::default(), |builder| builder);
    let put = send(
        &node,
        "PUT",
        "/api/v1/registry/acme/shop/orders/ns%2Fworker%2F1",
        r#"{"metadata":{"zone":"a"},"ttl_ms":60000}"#,
    );
    assert_eq!(put.status, 200, "{put:?}");
    let registered = put.json();
    assert_eq!(registered["instance"], "ns/worker/1");
    assert_eq!(registered["metadata"], json!({"zone": "a"}));
    let expires = registered["expires_at_ms"].as_u64().unwrap();
    let short = send(&node, "PUT", "/api/v1/registry/acme/shop/orders/brief", r#"{"ttl_ms":300}"#);
    assert_eq!(short.status, 200, "{short:?}");
    let found = http::get(node.invoke(), "/api/v1/registry/acme/shop/orders").json();
    let instances: Vec<&str> = found["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["instance"].as_str().unwrap())
        .collect();
    assert_eq!(instances, ["brief", "ns/worker/1"]);
    std::thread::sleep(Duration::from_millis(20));
    let beat =
        send(&node, "POST", "/api/v1/registry/acme/shop/orders/ns%2Fworker%2F1/heartbeat", "{}");
    assert_eq!(beat.status, 200, "{beat:?}");
    assert!(beat.json()["expires_at_ms"].as_u64().unwrap() > expires);
    let listed = http::get(node.invoke(), "/api/v1/registry/acme/shop?prefix=or").json();
    assert_eq!(
        listed,
        json!({"services": [{"service": "orders", "instances": 2}], "next_after": null})
    );

    // An instance that stops heartbeating is gone for everyone, and its heartbeat says so.
    std::thread::sleep(Duration::from_millis(1_500));
    let found = http::get(node.invoke(), "/api/v1/registry/acme/shop/orders").json();
    assert_eq!(found["instances"].as_array().unwrap().len(), 1, "{found}");
    let late = send(&node, "POST", "/api/v1/registry/acme/shop/orders/brief/heartbeat", "{}");
    assert_eq!((late.status, late.code().as_str()), (404, "not_found"), "{late:?}");

    // Bad requests get their codes.
    let bad = send(&node, "PUT", "/api/v1/registry/acme/shop/bad%20name/x", "{}");
    assert_eq!((bad.status, bad.code().as_str()), (400, "invalid_arguments"));
    let bad = send(&node, "PUT", "/api/v1/registry/acme/shop/orders/x", r#"{"metadata":[1]}"#);
    assert_eq!((bad.status, bad.code().as_str()), (400, "invalid_arguments"));
    let bad = send(&node, "PUT", "/api/v1/registry/acme/shop/orders/x", r#"{"ttl_ms":86400001}"#);
    assert_eq!((bad.status, bad.code().as_str()), (400, "invalid_arguments"));
    let bad = http::get(node.invoke(), "/api/v1/registry/acme/shop?limit=5000");
    assert_eq!((bad.status, bad.code().as_str()), (400, "invalid_arguments"));

    // gRPC sees the same registry.
    let endpoint = format!("http://{}", node.node().grpc_addr());
    node.runtime.block_on(async {
        let mut registry = RegistryServiceClient::connect(endpoint).await.unwrap();
        let registered = registry
            .register(pb::RegistryRegisterRequest {
                scope: scope(),
                service: "payments".into(),
                instance: "10.0.0.9:443".into(),
                metadata_json: r#"{"weight":3}"#.into(),
                ttl_ms: 0,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(registered.ttl_ms, 30_000);
        let found = registry
            .lookup(pb::RegistryLookupRequest { scope: scope(), service: "orders".into() })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(found.instances[0].instance, "ns/worker/1");
        let missing = registry
            .heartbeat(pb::RegistryHeartbeatRequest {
                scope: scope(),
                service: "payments".into(),
                instance: "nobody".into(),
                ttl_ms: 0,
            })
            .await
            .unwrap_err();
        assert_eq!(missing.code(), tonic::Code::NotFound);
        let listed = registry
            .list(pb::RegistryListRequest { scope: scope(), limit: 1, ..Default::default() })
            .await
            .unwrap()
            .into_inner();
        assert_eq!((listed.services.len(), listed.next_after.as_str()), (1, "orders"));
    });
    drop(node);

    // On SQLite (the default), registrations outlive the node.
    let node = TestNode::start_in(&dir, Options::default(), |builder| builder);
    let listed = http::get(node.invoke(), "/api/v1/registry/acme/shop").json();
    assert_eq!(
        listed["services"],
        json!([{"service": "orders", "instances": 1}, {"service": "payments", "instances": 1}])
    );
    let gone = http::request(
        node.invoke(),
        "DELETE",
        "/api/v1/registry/acme/shop/payments/10.0.0.9:443",
        &[],
        b"",
    );
    assert_eq!(gone.json(), json!({"deregistered": true}));
    let again = http::request(
        node.invoke(),
        "DELETE",
        "/api/v1/registry/acme/shop/payments/10.0.0.9:443",
        &[],
        b"",
    );
    assert_eq!(again.json(), json!({"deregistered": false}));
}

fn put_blob(node: &TestNode, key: &str, content_type: &str, body: &[u8]) -> http::Response {
    let path = format!("/api/v1/blobs/acme/shop/{key}");
    http::request(node.invoke(), "PUT", &path, &[("Content-Type", content_type)], body)
}

#[test]
fn blobs_over_http_and_grpc() {
    let node = TestNode::start(Options::default());
    let put = put_blob(&node, "docs/a%20b.txt", "text/plain", b"hello");
    assert_eq!(put.status, 201, "{put:?}");
    let info = put.json();
    assert_eq!((info["key"].as_str(), info["size"].as_u64()), (Some("docs/a b.txt"), Some(5)));
    let got = http::get(node.invoke(), "/api/v1/blobs/acme/shop/docs/a%20b.txt");
    assert_eq!((got.status, got.body.as_slice()), (200, b"hello".as_slice()));
    assert_eq!(got.header("content-type"), Some("text/plain"));
    assert_eq!(
        got.header("etag"),
        Some(format!("\"{}\"", info["etag"].as_str().unwrap()).as_str())
    );
    let head =
        http::request(node.invoke(), "HEAD", "/api/v1/blobs/acme/shop/docs/a%20b.txt", &[], b"");
    assert_eq!((head.status, head.header("content-length")), (200, Some("5")));
    put_blob(&node, "docs/z.bin", "", &[0, 1, 2]);
    put_blob(&node, "other", "", b"x");
    let listed = http::get(node.invoke(), "/api/v1/blobs/acme/shop?prefix=docs/&limit=1").json();
    assert_eq!(listed["blobs"][0]["key"], "docs/a b.txt");
    assert_eq!(listed["next_after"], "docs/a b.txt");
    let rest =
        http::get(node.invoke(), "/api/v1/blobs/acme/shop?prefix=docs/&after=docs/a%20b.txt")
            .json();
    assert_eq!(rest["blobs"][0]["content_type"], "application/octet-stream");
    assert_eq!(rest["next_after"], json!(null));
    // Bad keys, missing blobs, deletes.
    let bad = http::get(node.invoke(), "/api/v1/blobs/acme/shop/a/../b");
    assert!(matches!(bad.status, 400 | 404), "{bad:?}");
    let bad = put_blob(&node, "a//b", "", b"x");
    assert_eq!((bad.status, bad.code().as_str()), (400, "invalid_arguments"));
    let missing = http::get(node.invoke(), "/api/v1/blobs/acme/shop/nothing");
    assert_eq!((missing.status, missing.code().as_str()), (404, "not_found"));
    let conflict = put_blob(&node, "other/below", "", b"x");
    assert_eq!((conflict.status, conflict.code().as_str()), (409, "invalid_state"));
    let deleted = http::request(node.invoke(), "DELETE", "/api/v1/blobs/acme/shop/other", &[], b"");
    assert_eq!(deleted.json(), json!({"deleted": true}));
    let elsewhere = http::get(node.invoke(), "/api/v1/blobs/acme/elsewhere/docs/z.bin");
    assert_eq!(elsewhere.status, 404);

    // gRPC: a streamed put of 5 MiB in 64 KiB chunks, read back in chunks.
    let endpoint = format!("http://{}", node.node().grpc_addr());
    node.runtime.block_on(async {
        let mut blobs = BlobServiceClient::connect(endpoint).await.unwrap();
        let data: Vec<u8> = (0..5 << 20).map(|at: u32| (at % 251) as u8).collect();
        let mut parts = vec![pb::BlobPutRequest {
            part: Some(pb::blob_put_request::Part::Header(pb::BlobPutHeader {
                scope: scope(),
                key: "big/data.bin".into(),
                content_type: "application/x-test".into(),
            })),
        }];
        for chunk in data.chunks(64 << 10) {
            parts.push(pb::BlobPutRequest {
                part: Some(pb::blob_put_request::Part::Chunk(chunk.to_vec())),
            });
        }
        let stored = blobs.put(futures_util::stream::iter(parts)).await.unwrap().into_inner();
        assert_eq!((stored.size, stored.content_type.as_str()), (5 << 20, "application/x-test"));
        let mut stream = blobs
            .get(pb::BlobRef { scope: scope(), key: "big/data.bin".into() })
            .await
            .unwrap()
            .into_inner();
        let first = stream.next().await.unwrap().unwrap();
        let Some(pb::blob_get_chunk::Part::Info(info)) = first.part else { panic!("{first:?}") };
        assert_eq!(info.size, 5 << 20);
        let mut read = Vec::new();
        while let Some(chunk) = stream.next().await {
            let Some(pb::blob_get_chunk::Part::Chunk(chunk)) = chunk.unwrap().part else {
                panic!()
            };
            read.extend_from_slice(&chunk);
        }
        assert!(read == data, "the blob came back as it was stored");
        let no_header = blobs
            .put(futures_util::stream::iter(vec![pb::BlobPutRequest {
                part: Some(pb::blob_put_request::Part::Chunk(vec![1])),
            }]))
            .await
            .unwrap_err();
        assert_eq!(no_header.code(), tonic::Code::InvalidArgument);
        let missing =
            blobs.get(pb::BlobRef { scope: scope(), key: "none".into() }).await.unwrap_err();
        assert_eq!(missing.code(), tonic::Code::NotFound);
        let listed = blobs
            .list(pb::BlobListRequest {
                scope: scope(),
                prefix: "big/".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(listed.blobs.len(), 1);
    });
    // What gRPC stored, HTTP serves.
    let got = http::get(node.invoke(), "/api/v1/blobs/acme/shop/big/data.bin");
    assert_eq!((got.status, got.body.len()), (200, 5 << 20));
}

/// Sends a request whose body comes in `chunks` (chunked encoding), pausing `pause` before
/// each, and reads the answer.
fn chunked_put(node: &TestNode, path: &str, chunks: &[Vec<u8>], pause: Duration) -> http::Response {
    let mut stream = std::net::TcpStream::connect(node.invoke()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    for chunk in chunks {
        std::thread::sleep(pause);
        let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
        frame.extend_from_slice(chunk);
        frame.extend_from_slice(b"\r\n");
        if stream.write_all(&frame).is_err() {
            break; // Refused mid-way: read what it answered.
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n");
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    http::parse_response(&bytes).unwrap_or_else(|| panic!("{:?}", String::from_utf8_lossy(&bytes)))
}

#[test]
fn uploads_are_bounded_in_size_and_time_and_leave_the_old_blob() {
    let options = Options { max_blob_bytes: 100_000, body_timeout_ms: 300, ..Options::default() };
    let node = TestNode::start(options);
    assert_eq!(put_blob(&node, "kept", "", b"old").status, 201);
    // Too large, declared or streamed.
    let declared = put_blob(&node, "kept", "", &vec![7; 100_001]);
    assert_eq!((declared.status, declared.code().as_str()), (413, "payload_too_large"));
    let streamed = chunked_put(
        &node,
        "/api/v1/blobs/acme/shop/kept",
        &vec![vec![7; 30_000]; 4],
        Duration::ZERO,
    );
    assert_eq!((streamed.status, streamed.code().as_str()), (413, "payload_too_large"));
    // Too slow between chunks.
    let slow = chunked_put(
        &node,
        "/api/v1/blobs/acme/shop/kept",
        &[vec![1; 10], vec![2; 10]],
        Duration::from_millis(800),
    );
    assert_eq!((slow.status, slow.code().as_str()), (408, "request_timeout"));
    // Within the limits, chunked works; and the refused ones changed nothing.
    assert_eq!(http::get(node.invoke(), "/api/v1/blobs/acme/shop/kept").body, b"old");
    let fine = chunked_put(
        &node,
        "/api/v1/blobs/acme/shop/fine",
        &vec![vec![9; 25_000]; 4],
        Duration::ZERO,
    );
    assert_eq!(fine.status, 201, "{fine:?}");
    assert_eq!(http::get(node.invoke(), "/api/v1/blobs/acme/shop/fine").body, vec![9; 100_000]);
}

fn query<'a>(url: &'a str, name: &str) -> &'a str {
    let query = url.split_once('?').map_or("", |(_, query)| query);
    query.split('&').find_map(|pair| pair.strip_prefix(name)?.strip_prefix('=')).unwrap_or("")
}

#[test]
fn presigned_urls_need_no_token_and_refuse_expiry_and_tampering() {
    let options = Options { admin_token: Some("secret".into()), ..Options::default() };
    let node = TestNode::start(options);
    let auth = [("Authorization", "Bearer secret"), ("Content-Type", "application/json")];
    let stored = http::request(
        node.invoke(),
        "PUT",
        "/api/v1/blobs/acme/shop/photos/cat.jpg",
        &[("Authorization", "Bearer secret"), ("Content-Type", "image/jpeg")],
        b"meow",
    );
    assert_eq!(stored.status, 201, "{stored:?}");
    let refused = http::get(node.invoke(), "/api/v1/blobs/acme/shop/photos/cat.jpg");
    assert_eq!(refused.status, 401, "the blob routes need the token");
    let presign = |body: serde_json::Value| {
        http::request(
            node.invoke(),
            "POST",
            "/api/v1/blob-urls/acme/shop",
            &auth,
            body.to_string().as_bytes(),
        )
    };
    let signed = presign(json!({"key": "photos/cat.jpg", "method": "GET", "ttl_ms": 60_000}));
    assert_eq!(signed.status, 201, "{signed:?}");
    let signed = signed.json();
    let url = signed["url"].as_str().unwrap();
    let path = signed["path"].as_str().unwrap();
    assert_eq!(url, format!("http://{}{path}", node.invoke()));
    let got = http::get(node.invoke(), path);
    assert_eq!((got.status, got.body.as_slice()), (200, b"meow".as_slice()), "{got:?}");
    assert_eq!(got.header("content-type"), Some("image/jpeg"));
    let head = http::request(node.invoke(), "HEAD", path, &[], b"");
    assert_eq!(head.status, 200);

    // Any change of the URL, or another method, is refused.
    let (expires, signature) = (query(path, "expires"), query(path, "signature"));
    let later = (expires.parse::<u64>().unwrap() + 1_000).to_string();
    let mut flipped = signature.to_owned().into_bytes();
    flipped[10] = if flipped[10] == b'a' { b'b' } else { b'a' };
    let flipped = String::from_utf8(flipped).unwrap();
    for tampered in [
        path.replace("cat.jpg", "dog.jpg"),
        path.replace("/acme/", "/globex/"),
        path.replace("/shop/", "/other/"),
        path.replace(expires, &later),
        path.replace(signature, &flipped),
        path.replace(&format!("&signature={signature}"), ""),
    ] {
        let refused = http::get(node.invoke(), &tampered);
        assert_eq!(
            (refused.status, refused.code().as_str()),
            (403, "signature_invalid"),
            "{tampered}"
        );
    }
    let put_with_get_url = http::request(node.invoke(), "PUT", path, &[], b"overwrite");
    assert_eq!(
        (put_with_get_url.status, put_with_get_url.code().as_str()),
        (403, "signature_invalid")
    );

    // A PUT URL stores what it is sent, without the token.
    let upload = presign(json!({"key": "uploads/report.csv", "method": "PUT"})).json();
    let upload_path = upload["path"].as_str().unwrap();
    let put = http::request(
        node.invoke(),
        "PUT",
        upload_path,
        &[("Content-Type", "text/csv")],
        b"a,b\n1,2\n",
    );
    assert_eq!(put.status, 201, "{put:?}");
    let read = http::request(
        node.invoke(),
        "GET",
        "/api/v1/blobs/acme/shop/uploads/report.csv",
        &[("Authorization", "Bearer secret")],
        b"",
    );
    assert_eq!(
        (read.body.as_slice(), read.header("content-type")),
        (b"a,b\n1,2\n".as_slice(), Some("text/csv"))
    );
    let get_with_put_url = http::get(node.invoke(), upload_path);
    assert_eq!(get_with_put_url.code(), "signature_invalid");

    // An expired URL is refused as such.
    let brief = presign(json!({"key": "photos/cat.jpg", "ttl_ms": 1})).json();
    std::thread::sleep(Duration::from_millis(50));
    let expired = http::get(node.invoke(), brief["path"].as_str().unwrap());
    assert_eq!((expired.status, expired.code().as_str()), (403, "url_expired"));
    // A URL of a blob that is gone finds nothing.
    let doomed = presign(json!({"key": "photos/gone.jpg"})).json();
    let missing = http::get(node.invoke(), doomed["path"].as_str().unwrap());
    assert_eq!((missing.status, missing.code().as_str()), (404, "not_found"));
    let bad = presign(json!({"key": "photos/cat.jpg", "method": "DELETE"}));
    assert_eq!((bad.status, bad.code().as_str()), (400, "invalid_arguments"));
}
