// A durable order workflow, native: registered with the `durability` facet (the stock binary
// serves it as `order_workflow`), so its run survives a restart, or a kill -9, of the node.
// Each step runs once: its result is journaled before the run goes on, and a replay after a
// restart returns it instead of running the step again (the charge keeps its id). The sleep
// and the wait for approval end when they are due, also across restarts. Everything the run
// does outside steps runs again on replay, so it must be deterministic in its input and the
// steps' results. The state derives Serialize and Deserialize: it is journaled as its JSON.
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use plexspaces_sdk::prelude::*;

#[workflow_actor]
#[derive(Serialize, Deserialize)]
struct OrderWorkflow {
    order_id: String,
    status: String,
    steps: Vec<String>,
    charge_id: String,
}

/// An id no replay could make up again: proof that a step's recorded result stood for it.
fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_nanos());
    format!("{prefix}-{nanos}")
}

#[plexspaces_handlers]
impl OrderWorkflow {
    #[run_handler]
    async fn run(&mut self, ctx: &WorkflowContext<Self>, msg: &Message) -> Result<Value, BehaviorError> {
        let input: Value = serde_json::from_slice(&msg.payload)?;
        self.order_id = input["order_id"].as_str().unwrap_or_default().to_owned();
        let amount = input["amount"].as_u64().unwrap_or(0);

        self.charge_id =
            ctx.step("charge", || async move { Ok(unique(&format!("ch{amount}"))) }).await?;
        self.steps.push("payment".into());
        self.status = "charged".into();

        // A durable timer: the run resumes when it is due, also after a restart.
        ctx.sleep(self, Duration::from_secs(2)).await?;

        // Wait for a person to approve, or cancel (a signal handled on the run's state).
        let decision = ctx.wait_signal(self, "approve", Duration::from_secs(60)).await?;
        if self.status == "cancelled" || decision.is_none() {
            let charge = self.charge_id.clone();
            let refund: String = ctx.step("refund", || async move { Ok(format!("re-{charge}")) }).await?;
            self.status = "cancelled".into();
            return Ok(json!({ "status": "cancelled", "order_id": self.order_id, "refund": refund }));
        }
        let tracking: String = ctx.step("ship", || async move { Ok(unique("tr")) }).await?;
        self.steps.push("shipment".into());
        self.status = "completed".into();
        Ok(json!({ "status": "completed", "order_id": self.order_id, "tracking": tracking }))
    }

    #[signal_handler("cancel")]
    async fn cancel(&mut self, _ctx: &ActorContext, _msg: &Message) -> Result<Value, BehaviorError> {
        self.status = "cancelled".into();
        Ok(Value::Null)
    }

    #[query_handler("status")]
    async fn status(&self, _ctx: &ActorContext, _msg: &Message) -> Result<Value, BehaviorError> {
        Ok(json!({
            "order_id": self.order_id,
            "status": self.status,
            "steps": self.steps,
            "charge_id": self.charge_id,
        }))
    }
}
