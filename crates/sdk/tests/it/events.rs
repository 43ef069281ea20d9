//! GenEvent: fire-and-forget events; several handlers for one event run in declaration order.

use std::sync::Arc;

use parking_lot::Mutex;
use plexspaces_core::Options;
use plexspaces_sdk::{Handlers, prelude::*};
use plexspaces_types::{ActorId, ErrorCode};

/// Where the handlers write what they saw (shared so the test can read it).
type Journal = Arc<Mutex<Vec<String>>>;

#[gen_event_actor]
struct OrderEvents {
    journal: Journal,
}

#[plexspaces_handlers]
impl OrderEvents {
    #[handler("order_placed")]
    async fn audit(&mut self, _ctx: &ActorContext, msg: &Message) -> Result<Value, BehaviorError> {
        let order: Value = serde_json::from_slice(&msg.payload)?;
        self.journal.lock().push(format!("audit {}", order["id"]));
        Ok(Value::Null)
    }

    #[handler("order_placed")]
    async fn notify(&mut self, _ctx: &ActorContext, msg: &Message) -> Result<Value, BehaviorError> {
        let order: Value = serde_json::from_slice(&msg.payload)?;
        if order["id"] == "bad" {
            return Err(BehaviorError::ProcessingError("no address".into()));
        }
        self.journal.lock().push(format!("notify {}", order["id"]));
        Ok(json!({ "notified": order["id"] }))
    }

    #[handler("order_shipped")]
    async fn shipped(
        &mut self,
        _ctx: &ActorContext,
        _msg: &Message,
    ) -> Result<Value, BehaviorError> {
        self.journal.lock().push("shipped".into());
        Ok(Value::Null)
    }
}

#[test]
fn each_event_is_listed_once() {
    assert_eq!(OrderEvents::ACTIONS, ["order_placed", "order_shipped"]);
}

#[tokio::test]
async fn every_handler_of_an_event_runs_in_order() {
    let system = Options::default().build().unwrap();
    let journal = Journal::default();
    let events = GenEvent::new(OrderEvents { journal: Arc::clone(&journal) });
    let events = system.spawn(ActorId::parse("acme/default/events/e").unwrap(), events).unwrap();

    events.tell(Message::json(&json!({"action": "order_placed", "id": "o-1"}))).unwrap();
    events.tell(Message::json(&json!({"action": "order_shipped"}))).unwrap();
    // An ask waits until the event is handled and returns the last handler's value.
    let reply = events.ask(Message::json(&json!({"action": "order_placed", "id": "o-2"}))).await;
    assert_eq!(reply.unwrap().unwrap(), json!({"notified": "o-2"}));
    assert_eq!(
        *journal.lock(),
        [r#"audit "o-1""#, r#"notify "o-1""#, "shipped", r#"audit "o-2""#, r#"notify "o-2""#]
    );

    // The first error stops the handlers after it and goes back to an asker.
    let failed = events.ask(Message::json(&json!({"action": "order_placed", "id": "bad"}))).await;
    assert_eq!(failed.unwrap().unwrap_err().code(), ErrorCode::ActorError);
    assert_eq!(journal.lock().last().unwrap(), r#"audit "bad""#);
}
