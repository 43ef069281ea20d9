// A durable account, native: registered with the `durability` facet, so each deposit is
// journaled (and a tell acknowledged only once that is on disk) before its handler runs, and
// a restarted node rebuilds the balance from the latest checkpoint and the journal after it.
// The state derives Serialize and Deserialize: checkpoints are its JSON.
use plexspaces_sdk::prelude::*;

#[gen_server_actor]
#[derive(Serialize, Deserialize)]
struct Ledger {
    balance: i64,
    deposits: u64,
}

#[plexspaces_handlers]
impl Ledger {
    #[handler("deposit")]
    async fn deposit(&mut self, _ctx: &ActorContext, msg: &Message) -> Result<Value, BehaviorError> {
        let payload: Value = serde_json::from_slice(&msg.payload)?;
        let amount = payload["amount"].as_i64().filter(|amount| *amount > 0).ok_or_else(|| {
            BehaviorError::ProcessingError("amount must be a positive integer".to_owned())
        })?;
        self.balance += amount;
        self.deposits += 1;
        Ok(json!({ "balance": self.balance, "deposits": self.deposits }))
    }

    #[handler("balance")]
    async fn balance(&mut self, _ctx: &ActorContext, _msg: &Message) -> Result<Value, BehaviorError> {
        Ok(json!({ "balance": self.balance, "deposits": self.deposits }))
    }
}
