// An actor that answers every action with what it was sent, and keeps what it saw as state
// (its state derives Serialize, so `GET .../state` shows it). It never fails: the node's API
// tests run against it.
use plexspaces_sdk::prelude::*;

#[gen_server_actor]
#[derive(Serialize, Deserialize)]
struct Echo {
    received: u64,
    last: Value,
}

#[plexspaces_handlers]
impl Echo {
    #[handler("*")]
    async fn echo(&mut self, _ctx: &ActorContext, msg: &Message) -> Result<Value, BehaviorError> {
        let payload = serde_json::from_slice(&msg.payload)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&msg.payload).into_owned()));
        self.received += 1;
        self.last = payload.clone();
        Ok(json!({ "action": msg.action(), "echo": payload, "received": self.received }))
    }
}
