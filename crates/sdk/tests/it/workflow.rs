//! Workflows: an exclusive run, signals handed to the run, queries answered while it runs.

use std::time::Duration;

use plexspaces_core::{ActorRef, Options};
use plexspaces_sdk::{WorkflowHandlers, prelude::*};
use plexspaces_types::{ActorId, ErrorCode};

#[workflow_actor]
struct Approval {
    order_id: String,
    status: String,
    notes: Vec<String>,
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
        self.order_id = input["order_id"].as_str().unwrap_or_default().to_owned();
        self.status = "waiting".into();
        let decision = ctx.wait_signal(self, "approve", Duration::from_secs(30)).await?;
        if self.status == "cancelled" {
            return Ok(json!({ "status": "cancelled", "order_id": self.order_id }));
        }
        self.status = match decision {
            Some(signal) => format!("approved by {}", signal["by"].as_str().unwrap_or("?")),
            None => "timed out".into(),
        };
        Ok(json!({ "status": self.status, "order_id": self.order_id }))
    }

    #[signal_handler("note")]
    async fn on_note(
        &mut self,
        _ctx: &ActorContext,
        msg: &Message,
    ) -> Result<Value, BehaviorError> {
        let note: Value = serde_json::from_slice(&msg.payload)?;
        self.notes.push(note["text"].as_str().unwrap_or_default().to_owned());
        Ok(Value::Null)
    }

    #[signal_handler("cancel")]
    async fn on_cancel(
        &mut self,
        _ctx: &ActorContext,
        _msg: &Message,
    ) -> Result<Value, BehaviorError> {
        self.status = "cancelled".into();
        Ok(Value::Null)
    }

    #[query_handler("status")]
    async fn status(&self, _ctx: &ActorContext, _msg: &Message) -> Result<Value, BehaviorError> {
        Ok(json!({ "order_id": self.order_id, "status": self.status, "notes": self.notes }))
    }
}

type Workflow = ActorRef<WorkflowActor<Approval>>;

async fn send(workflow: &Workflow, payload: Value) -> Result<Value, BehaviorError> {
    workflow.ask(Message::json(&payload)).await.unwrap()
}

/// Waits (on paused time) until the committed status is `status`.
async fn until_status(workflow: &Workflow, status: &str) -> Value {
    for _ in 0..1000 {
        let seen = send(workflow, json!({"action": "status"})).await.unwrap();
        if seen["status"] == status {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("the workflow never reached {status:?}");
}

fn spawn(key: &str) -> Workflow {
    let system = Options::default().build().unwrap();
    let id = ActorId::parse(&format!("acme/default/approval/{key}")).unwrap();
    system.spawn(id, WorkflowActor::<Approval>::default()).unwrap()
}

#[test]
fn the_handler_tables_are_generated() {
    assert_eq!(Approval::QUERIES, ["status"]);
    assert_eq!(Approval::SIGNALS, ["note", "cancel"]);
}

#[tokio::test(start_paused = true)]
async fn a_run_waits_for_its_signal_while_queries_and_signals_are_served() {
    let workflow = spawn("w-1");
    let runner = workflow.clone();
    let run = tokio::spawn(async move {
        runner.ask(Message::json(&json!({"action": "run", "order_id": "o-7"}))).await
    });
    // Queries answer from the committed state while the run waits.
    until_status(&workflow, "waiting").await;
    // One run at a time.
    let second = send(&workflow, json!({"action": "run", "order_id": "o-8"})).await.unwrap_err();
    assert_eq!(second.code(), ErrorCode::WorkflowRunning);
    // A signal with a handler is handed to the run, which commits it at its next call.
    send(&workflow, json!({"action": "note", "text": "call the customer"})).await.unwrap();
    send(&workflow, json!({"action": "approve", "by": "ada"})).await.unwrap();
    let result = run.await.unwrap().unwrap().unwrap();
    assert_eq!(result, json!({"status": "approved by ada", "order_id": "o-7"}));
    let status = send(&workflow, json!({"action": "status"})).await.unwrap();
    assert_eq!(status["notes"], json!(["call the customer"]));
    assert_eq!(status["status"], "approved by ada");
}

#[tokio::test(start_paused = true)]
async fn a_signal_sent_before_the_run_is_still_returned_by_wait_signal() {
    let workflow = spawn("w-2");
    send(&workflow, json!({"action": "note", "text": "early"})).await.unwrap();
    send(&workflow, json!({"action": "approve", "by": "grace"})).await.unwrap();
    // Without a run the signal's handler runs on the committed state at once.
    let status = send(&workflow, json!({"action": "status"})).await.unwrap();
    assert_eq!(status["notes"], json!(["early"]));
    let result = send(&workflow, json!({"action": "run", "order_id": "o-1"})).await.unwrap();
    assert_eq!(result["status"], "approved by grace");
    // The run started from that state; the early signal is not handled a second time.
    let status = send(&workflow, json!({"action": "status"})).await.unwrap();
    assert_eq!(status["notes"], json!(["early"]));
}

#[tokio::test(start_paused = true)]
async fn a_signal_handler_changes_what_the_run_does_and_a_wait_can_time_out() {
    let cancelled = spawn("w-3");
    let runner = cancelled.clone();
    let run = tokio::spawn(async move {
        runner
            .ask_timeout(
                Message::json(&json!({"action": "run", "order_id": "o-2"})),
                Duration::from_secs(120),
            )
            .await
    });
    until_status(&cancelled, "waiting").await;
    send(&cancelled, json!({"action": "cancel"})).await.unwrap();
    send(&cancelled, json!({"action": "approve", "by": "x"})).await.unwrap();
    assert_eq!(run.await.unwrap().unwrap().unwrap()["status"], "cancelled");

    let idle = spawn("w-4");
    let result = idle
        .ask_timeout(
            Message::json(&json!({"action": "run", "order_id": "o-3"})),
            Duration::from_secs(120),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(result["status"], "timed out");
    // After a run ends, another may start, from the state the first one committed.
    send(&idle, json!({"action": "note", "text": "second try"})).await.unwrap();
    send(&idle, json!({"action": "approve", "by": "lin"})).await.unwrap();
    let again = send(&idle, json!({"action": "run", "order_id": "o-4"})).await.unwrap();
    assert_eq!(again, json!({"status": "approved by lin", "order_id": "o-4"}));
    let status = send(&idle, json!({"action": "status"})).await.unwrap();
    assert_eq!(status["notes"], json!(["second try"]));
}

/// The calls a guest run journals, natively: steps, sleeps and signal waits.
#[workflow_actor]
struct Booking {
    seats: u32,
    log: Vec<String>,
}

#[plexspaces_handlers]
impl Booking {
    #[run_handler]
    async fn run(
        &mut self,
        ctx: &WorkflowContext<Self>,
        msg: &Message,
    ) -> Result<Value, BehaviorError> {
        let input: Value = serde_json::from_slice(&msg.payload)?;
        let wanted = input["seats"].as_u64().unwrap_or(1) as u32;
        let held: u32 = ctx.step("hold", || async move { Ok(wanted.min(4)) }).await?;
        self.seats = held;
        self.log.push(format!("held {held}"));
        ctx.sleep(self, Duration::from_secs(5)).await?;
        let paid = ctx.wait_signal(self, "paid", Duration::from_secs(60)).await?;
        let receipt: String = ctx
            .step("receipt", || async move {
                Ok(format!("receipt for {held} paid by {}", paid.unwrap_or_default()["by"]))
            })
            .await?;
        if input["empty_step"].as_bool() == Some(true) {
            ctx.step("", || async { Ok(()) }).await?;
        }
        Ok(json!({ "seats": self.seats, "receipt": receipt, "log": self.log }))
    }

    #[query_handler("status")]
    async fn status(&self, _ctx: &ActorContext, _msg: &Message) -> Result<Value, BehaviorError> {
        Ok(json!({ "seats": self.seats, "status": if self.seats > 0 { "held" } else { "new" } }))
    }
}

#[tokio::test(start_paused = true)]
async fn a_native_run_takes_steps_sleeps_and_waits() {
    let system = Options::default().build().unwrap();
    let id = ActorId::parse("acme/default/booking/b-1").unwrap();
    let booking = system.spawn(id, WorkflowActor::<Booking>::default()).unwrap();
    let runner = booking.clone();
    let run = tokio::spawn(async move {
        let msg = Message::json(&json!({"action": "run", "seats": 9}));
        runner.ask_timeout(msg, Duration::from_secs(600)).await
    });
    // The state committed at the sleep shows the step's result.
    for _ in 0..1000 {
        let status = booking.ask(Message::json(&json!({"action": "status"}))).await.unwrap();
        if status.unwrap()["status"] == "held" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    booking.ask(Message::json(&json!({"action": "paid", "by": "kim"}))).await.unwrap().unwrap();
    let result = run.await.unwrap().unwrap().unwrap();
    assert_eq!(
        result,
        json!({"seats": 4, "receipt": "receipt for 4 paid by \"kim\"", "log": ["held 4"]})
    );

    let id = ActorId::parse("acme/default/booking/b-2").unwrap();
    let booking = system.spawn(id, WorkflowActor::<Booking>::default()).unwrap();
    booking.ask(Message::json(&json!({"action": "paid", "by": "lee"}))).await.unwrap().unwrap();
    let msg = Message::json(&json!({"action": "run", "empty_step": true}));
    let refused = booking.ask_timeout(msg, Duration::from_secs(600)).await.unwrap().unwrap_err();
    assert!(refused.to_string().contains("a step needs a name"), "{refused}");
}
