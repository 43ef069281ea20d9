//! A native workflow type on the node: run, signals and queries over HTTP, and a run that
//! goes on while its actor is deactivated.

use std::time::Duration;

use plexspaces_node::Options;
use plexspaces_sdk::prelude::*;
use serde_json::json;

use crate::{TestNode, http};

const APPROVALS: &str = "/api/v1/actors/acme/default/approval";

#[workflow_actor]
struct Approval {
    status: String,
    approver: String,
}

#[plexspaces_handlers]
impl Approval {
    #[run_handler]
    async fn run(
        &mut self,
        ctx: &WorkflowContext<Self>,
        msg: &Message,
    ) -> Result<Value, BehaviorError> {
        let input: Value = serde_json::from_slice(&msg.payload)?;
        let document = input["document"].as_str().unwrap_or("?").to_owned();
        self.status =
            ctx.step("submit", || async move { Ok(format!("submitted {document}")) }).await?;
        ctx.commit(self);
        let approved = ctx.wait_signal(self, "approve", Duration::from_secs(120)).await?;
        self.approver = approved.map(|signal| signal["by"].to_string()).unwrap_or_default();
        self.status = "approved".to_owned();
        Ok(json!({ "status": self.status, "approver": self.approver }))
    }

    #[query_handler("status")]
    async fn status(&self, _ctx: &ActorContext, _msg: &Message) -> Result<Value, BehaviorError> {
        Ok(json!({ "status": self.status, "approver": self.approver }))
    }
}

fn status(node: &TestNode, id: &str) -> Value {
    let got = http::get(node.invoke(), &format!("{APPROVALS}/{id}?action=status"));
    assert_eq!(got.status, 200, "{got:?}");
    got.json()
}

#[test]
fn a_native_workflow_runs_waits_for_its_signal_and_outlives_deactivation() {
    let options = Options { idle_timeout_secs: 1, ..Options::default() };
    let node =
        TestNode::start_with(options, |builder| builder.register_workflow::<Approval>("approval"));
    let types = http::get(node.admin(), "/api/v1/types").json();
    assert!(types.to_string().contains(r#""behavior":"workflow""#), "{types}");

    let started = http::post_json(
        node.invoke(),
        &format!("{APPROVALS}/a1"),
        r#"{"action":"run","document":"d-7"}"#,
    );
    assert_eq!(started.status, 202, "{started:?}");
    let deadline = std::time::Instant::now() + Duration::from_secs(25);
    while status(&node, "a1")["status"] != "submitted d-7" {
        assert!(std::time::Instant::now() < deadline, "{}", status(&node, "a1"));
        std::thread::sleep(Duration::from_millis(20));
    }
    let again = http::post_json(
        node.invoke(),
        &format!("{APPROVALS}/a1?invocation=call"),
        r#"{"action":"run","document":"x"}"#,
    );
    assert_eq!(
        (again.status, again.json()["code"].clone()),
        (409, json!("workflow_running")),
        "{again:?}"
    );

    // Idle past its timeout (1 s, 3 s here): the actor deactivates, and its run waits on.
    std::thread::sleep(Duration::from_secs(3));
    let listed = http::get(node.admin(), APPROVALS).json();
    assert_eq!(listed["actors"][0]["lifecycle"], "inactive", "{listed}");
    let signalled = http::post_json(
        node.invoke(),
        &format!("{APPROVALS}/a1"),
        r#"{"action":"approve","by":"kim"}"#,
    );
    assert_eq!(signalled.status, 202, "{signalled:?}");
    while status(&node, "a1")["status"] != "approved" {
        assert!(std::time::Instant::now() < deadline, "{}", status(&node, "a1"));
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(status(&node, "a1"), json!({"status": "approved", "approver": "\"kim\""}));

    // An ask of `run` answers with the run's result; a signal that came first is waiting.
    let signalled = http::post_json(
        node.invoke(),
        &format!("{APPROVALS}/a2"),
        r#"{"action":"approve","by":"lee"}"#,
    );
    assert_eq!(signalled.status, 202, "{signalled:?}");
    let finished = http::post_json(
        node.invoke(),
        &format!("{APPROVALS}/a2?invocation=call"),
        r#"{"action":"run","document":"d-8"}"#,
    );
    assert_eq!(finished.status, 200, "{finished:?}");
    assert_eq!(finished.json(), json!({"status": "approved", "approver": "\"lee\""}));
}
