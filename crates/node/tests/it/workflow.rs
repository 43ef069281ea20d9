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

/// A durable native workflow: its steps are journaled, and a restart of the node finds the run
/// where it waited.
#[workflow_actor]
#[derive(Serialize, Deserialize)]
struct Signup {
    status: String,
    token: String,
    tries: u32,
}

/// How many times the `token` step's body ran in this process.
static TOKENS_MADE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

#[plexspaces_handlers]
impl Signup {
    #[run_handler]
    async fn run(
        &mut self,
        ctx: &WorkflowContext<Self>,
        msg: &Message,
    ) -> Result<Value, BehaviorError> {
        let input: Value = serde_json::from_slice(&msg.payload)?;
        let user = input["user"].as_str().unwrap_or("?").to_owned();
        self.token = ctx
            .step("token", || async move {
                let made = TOKENS_MADE.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(format!("{user}-{made}"))
            })
            .await?;
        self.status = "sent".to_owned();
        ctx.sleep(self, Duration::from_millis(300)).await?;
        let confirmed = ctx.wait_signal(self, "confirm", Duration::from_secs(120)).await?;
        self.status = match confirmed {
            Some(signal) => format!("confirmed {}", signal["code"]),
            None => "expired".to_owned(),
        };
        Ok(json!({ "status": self.status, "token": self.token, "tries": self.tries }))
    }

    #[signal_handler("retry")]
    async fn retry(&mut self, _ctx: &ActorContext, _msg: &Message) -> Result<Value, BehaviorError> {
        self.tries += 1;
        Ok(Value::Null)
    }

    #[query_handler("status")]
    async fn query(&self, _ctx: &ActorContext, _msg: &Message) -> Result<Value, BehaviorError> {
        Ok(json!({ "status": self.status, "token": self.token, "tries": self.tries }))
    }
}

const SIGNUPS: &str = "/api/v1/actors/acme/default/signup";

fn start_signups(dir: &std::path::Path, checkpoint_every: u64) -> TestNode {
    let options = Options { idle_timeout_secs: 1, ..Options::default() };
    TestNode::start_in(dir, options, |builder| {
        let durability = json!({ "checkpoint_every": checkpoint_every });
        builder.register_workflow_with_facets::<Signup>("signup", &[("durability", durability)])
    })
}

fn signup(node: &TestNode, id: &str) -> Value {
    let got = http::get(node.invoke(), &format!("{SIGNUPS}/{id}?action=status"));
    assert_eq!(got.status, 200, "{got:?}");
    got.json()
}

fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(25);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_durable_native_workflow_resumes_after_a_restart_and_runs_no_step_twice() {
    // Every 2 entries a checkpoint: the run in progress is in the checkpoints too.
    for every in [2, 1000] {
        let dir = crate::data_dir(&format!("durable-workflow-{every}"));
        let node = start_signups(&dir, every);
        let types = http::get(node.admin(), "/api/v1/types").json();
        assert!(types.to_string().contains("durability"), "{types}");
        let started = http::post_json(
            node.invoke(),
            &format!("{SIGNUPS}/s1"),
            r#"{"action":"run","user":"ana"}"#,
        );
        assert_eq!(started.status, 202, "{started:?}");
        until("the token step", || signup(&node, "s1")["status"] == "sent");
        let token = signup(&node, "s1")["token"].clone();
        // Signals while the run sleeps or waits are journaled, and handled once the run takes
        // them.
        for _ in 0..2 {
            let told =
                http::post_json(node.invoke(), &format!("{SIGNUPS}/s1"), r#"{"action":"retry"}"#);
            assert_eq!(told.status, 202, "{told:?}");
        }
        until("the retries", || signup(&node, "s1")["tries"] == 2);
        // Idle past its timeout: the actor deactivates, the run waits on in the journal.
        std::thread::sleep(Duration::from_millis(2500));
        drop(node);

        let node = start_signups(&dir, every);
        let status = signup(&node, "s1");
        assert_eq!(
            (status["status"].as_str(), &status["token"]),
            (Some("sent"), &token),
            "{status}"
        );
        let again = http::post_json(
            node.invoke(),
            &format!("{SIGNUPS}/s1?invocation=call"),
            r#"{"action":"run","user":"x"}"#,
        );
        assert_eq!((again.status, again.code()), (409, "workflow_running".to_owned()), "{again:?}");
        let confirmed = http::post_json(
            node.invoke(),
            &format!("{SIGNUPS}/s1?invocation=call"),
            r#"{"action":"confirm","code":7}"#,
        );
        assert_eq!(confirmed.status, 200, "{confirmed:?}");
        // The signal that let the run end gets the run's result.
        assert_eq!(
            confirmed.json(),
            json!({ "status": "confirmed 7", "token": token, "tries": 2 })
        );
        drop(node);

        // Ended, and replayed whole at the next recovery: the same state, no step run again.
        let made = TOKENS_MADE.load(std::sync::atomic::Ordering::SeqCst);
        let node = start_signups(&dir, every);
        assert_eq!(
            signup(&node, "s1"),
            json!({ "status": "confirmed 7", "token": token, "tries": 2 })
        );
        assert_eq!(TOKENS_MADE.load(std::sync::atomic::Ordering::SeqCst), made);
        // A new run starts from the state the last one ended with.
        let rerun = http::post_json(
            node.invoke(),
            &format!("{SIGNUPS}/s1"),
            r#"{"action":"run","user":"bo"}"#,
        );
        assert_eq!(rerun.status, 202, "{rerun:?}");
        until("the second run", || signup(&node, "s1")["token"] != token);
        drop(node);
    }
}

/// A run handler whose steps depend on something besides its input and its steps' results.
#[workflow_actor]
#[derive(Serialize, Deserialize)]
struct Fickle {
    done: bool,
}

static FICKLE_RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

#[plexspaces_handlers]
impl Fickle {
    #[run_handler]
    async fn run(
        &mut self,
        ctx: &WorkflowContext<Self>,
        _msg: &Message,
    ) -> Result<Value, BehaviorError> {
        let name =
            format!("step-{}", FICKLE_RUNS.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
        ctx.step(&name, || async { Ok(1) }).await?;
        ctx.wait_signal(self, "go", Duration::from_secs(120)).await?;
        self.done = true;
        Ok(Value::Null)
    }
}

#[test]
fn a_durable_native_workflow_that_is_not_deterministic_is_refused_with_replay_diverged() {
    let options = Options::default();
    let node = TestNode::start_with(options, |builder| {
        builder.register_workflow_with_facets::<Fickle>("fickle", &[("durability", json!({}))])
    });
    let path = "/api/v1/actors/acme/default/fickle/f1";
    let started = http::post_json(node.invoke(), path, r#"{"action":"run"}"#);
    assert_eq!(started.status, 202, "{started:?}");
    // The signal resumes the run (which waited in the message before), whose replay names
    // another step.
    let resumed =
        http::post_json(node.invoke(), &format!("{path}?invocation=call"), r#"{"action":"go"}"#);
    assert_eq!(resumed.code(), "replay_diverged", "{resumed:?}");
    assert!(resumed.json()["detail"].as_str().unwrap_or_default().contains("step"), "{resumed:?}");
    // From then on the actor refuses every message with the same code.
    let later = http::get(node.invoke(), &format!("{path}?action=go"));
    assert_eq!(later.code(), "replay_diverged", "{later:?}");
}

/// A value without serde.
#[derive(Debug, Default, Clone)]
struct Handle(u32);

#[workflow_actor]
struct Opaque {
    handle: Handle,
}

#[plexspaces_handlers]
impl Opaque {
    #[run_handler]
    async fn run(
        &mut self,
        _ctx: &WorkflowContext<Self>,
        _msg: &Message,
    ) -> Result<Value, BehaviorError> {
        Ok(json!(self.handle.0))
    }
}

#[test]
fn a_durable_workflow_whose_state_has_no_serde_is_refused_at_registration() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let options = Options {
        invoke_port: 0,
        admin_port: 0,
        grpc_port: 0,
        data_dir: crate::data_dir("durable-workflow-opaque"),
        ..Options::default()
    };
    let started = runtime.block_on(
        plexspaces_node::Node::builder()
            .options(options)
            .register_workflow_with_facets::<Opaque>("opaque", &[("durability", json!({}))])
            .start(),
    );
    let error = started.expect_err("a durable workflow whose state has no serde is refused");
    assert_eq!(error.code.as_str(), "state_not_serializable", "{error}");
}
