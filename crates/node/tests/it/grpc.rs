//! The gRPC front door: the same services as HTTP, errors with the catalogue code.

use plexspaces_node::{Error, Options};
use plexspaces_proto::v1::{
    self as pb, actor_service_client::ActorServiceClient,
    invocation_service_client::InvocationServiceClient, node_service_client::NodeServiceClient,
};
use plexspaces_types::ErrorCode;
use serde_json::{Value, json};

use crate::{TestNode, http};

fn address(actor_type: &str, actor_id: &str) -> Option<pb::ActorAddress> {
    Some(pb::ActorAddress {
        tenant: "acme".into(),
        namespace: "default".into(),
        actor_type: actor_type.into(),
        actor_id: actor_id.into(),
    })
}

/// One message to `actor_type/actor_id`.
fn message(
    actor_type: &str,
    actor_id: &str,
    payload: &[u8],
    mode: pb::InvocationMode,
) -> pb::InvokeRequest {
    pb::InvokeRequest {
        actor: address(actor_type, actor_id),
        payload: payload.to_vec(),
        mode: mode as i32,
        ..Default::default()
    }
}

#[test]
fn grpc_and_http_reach_the_same_actors() {
    let node = TestNode::start(Options::default());
    let endpoint = format!("http://{}", node.node().grpc_addr());
    node.runtime.block_on(async {
        let mut invocation = InvocationServiceClient::connect(endpoint.clone()).await.unwrap();
        let note = br#"{"action":"note"}"#;
        let told = invocation
            .invoke(message("echo", "g", note, pb::InvocationMode::Tell))
            .await
            .unwrap()
            .into_inner();
        assert!(!told.message_id.is_empty());
        let called = invocation
            .invoke(message("echo", "g", note, pb::InvocationMode::Call))
            .await
            .unwrap()
            .into_inner();
        let reply: Value = serde_json::from_slice(&called.payload).unwrap();
        assert_eq!(reply["received"], 2);

        let fail = br#"{"action":"fail"}"#;
        let refused = invocation
            .invoke(message("failing", "", fail, pb::InvocationMode::Call))
            .await
            .unwrap_err();
        let error = Error::from_status(&refused);
        assert_eq!(
            (error.code, error.message.as_str()),
            (ErrorCode::ActorError, "the ledger is closed")
        );
        assert_eq!(refused.code(), tonic::Code::Unknown);

        let missing = invocation
            .invoke(pb::InvokeRequest { actor: address("nothere", ""), ..Default::default() })
            .await
            .unwrap_err();
        assert_eq!(Error::from_status(&missing).code, ErrorCode::NotFound);

        let mut actors = ActorServiceClient::connect(endpoint.clone()).await.unwrap();
        let state = actors
            .get_actor_state(pb::GetActorStateRequest { actor: address("echo", "g") })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(serde_json::from_slice::<Value>(&state.state).unwrap(), json!({"received": 2}));
        let mut status = NodeServiceClient::connect(endpoint).await.unwrap();
        let status = status.get_status(pb::GetStatusRequest {}).await.unwrap().into_inner();
        assert_eq!(status.actor_types, 3);
    });
    // HTTP sees the actor gRPC created, with the state gRPC left.
    let state = http::get(node.admin(), "/api/v1/actors/acme/default/echo/g/state");
    assert_eq!(state.json(), json!({"received": 2}));
}

#[test]
fn grpc_requires_the_token_when_one_is_set() {
    let node =
        TestNode::start(Options { admin_token: Some("s3cret".into()), ..Options::default() });
    let endpoint = format!("http://{}", node.node().grpc_addr());
    node.runtime.block_on(async {
        let mut status = NodeServiceClient::connect(endpoint).await.unwrap();
        let refused = status.get_status(pb::GetStatusRequest {}).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated);
        assert_eq!(Error::from_status(&refused).code, ErrorCode::Unauthenticated);
        let mut request = tonic::Request::new(pb::GetStatusRequest {});
        request.metadata_mut().insert("authorization", "Bearer s3cret".parse().unwrap());
        assert!(status.get_status(request).await.is_ok());
    });
}
