//! Actors written with the Rust SDK's macros, exported as one component: the same code runs
//! natively. A guest's state must have serde: the host keeps it between messages.

use plexspaces_sdk::prelude::*;

/// A counter with a serde state.
#[gen_server_actor]
#[derive(Serialize, Deserialize)]
pub struct Counter {
    count: i64,
}

#[plexspaces_handlers]
impl Counter {
    #[handler("increment")]
    async fn increment(
        &mut self,
        _ctx: &ActorContext,
        msg: &Message,
    ) -> Result<Value, BehaviorError> {
        let payload: Value = serde_json::from_slice(&msg.payload)?;
        self.count += payload["amount"].as_i64().unwrap_or(1);
        Ok(json!({ "count": self.count }))
    }

    #[handler("get")]
    async fn get(&mut self, ctx: &ActorContext, _msg: &Message) -> Result<Value, BehaviorError> {
        Ok(json!({ "count": self.count, "key": ctx.actor_id().key.as_str() }))
    }

    #[handler("fail")]
    async fn fail(&mut self, _ctx: &ActorContext, _msg: &Message) -> Result<Value, BehaviorError> {
        self.count += 1000;
        Err(BehaviorError::ProcessingError("the counter refuses".to_owned()))
    }

    #[handler("share")]
    async fn share(&mut self, _ctx: &ActorContext, msg: &Message) -> Result<Value, BehaviorError> {
        let payload: Value = serde_json::from_slice(&msg.payload)?;
        let key = payload["key"].as_str().unwrap_or("rust");
        let value = payload["value"].as_str().unwrap_or("");
        host::kv_put(key, value, 0)?;
        host::ts_write(&json!(["handoff", key, value]), 0)?;
        Ok(json!({ "shared": key }))
    }

    #[handler("collect")]
    async fn collect(
        &mut self,
        _ctx: &ActorContext,
        msg: &Message,
    ) -> Result<Value, BehaviorError> {
        let payload: Value = serde_json::from_slice(&msg.payload)?;
        let key = payload["key"].as_str().unwrap_or("rust");
        let kv = host::kv_get(key)?;
        let tuple = host::ts_take(&json!(["handoff", key, null]), 0)?;
        Ok(json!({ "kv": kv, "tuple": tuple }))
    }

    #[handler("relay")]
    async fn relay(&mut self, _ctx: &ActorContext, msg: &Message) -> Result<Value, BehaviorError> {
        let payload: Value = serde_json::from_slice(&msg.payload)?;
        let target = payload["target"].as_str().unwrap_or("py-bridge");
        let reply =
            host::ask(target, "echo", &json!({"text": payload["text"], "via": "rust"}), 5000)?;
        host::tell("counter/polyglot", "increment", &json!({"amount": 1}))?;
        Ok(json!({ "by": "rust", "reply": reply }))
    }

    #[handler("echo")]
    async fn echo(&mut self, _ctx: &ActorContext, msg: &Message) -> Result<Value, BehaviorError> {
        let payload: Value = serde_json::from_slice(&msg.payload)?;
        Ok(json!({ "echo": payload["text"], "via": payload["via"], "by": "rust" }))
    }
}

/// A door as a GenFSM.
#[gen_fsm_actor(initial = "locked")]
#[derive(Serialize, Deserialize)]
pub struct Door {
    opened: u32,
}

#[plexspaces_handlers]
impl Door {
    #[handler("unlock", from = ["locked"], to = "closed")]
    async fn unlock(
        &mut self,
        _ctx: &ActorContext,
        _msg: &Message,
    ) -> Result<Value, BehaviorError> {
        Ok(json!("closed"))
    }

    #[handler("open", from = ["closed"], to = "open")]
    async fn open(&mut self, _ctx: &ActorContext, _msg: &Message) -> Result<Value, BehaviorError> {
        self.opened += 1;
        Ok(json!({ "opened": self.opened }))
    }

    #[handler("close", from = ["open"], to = "closed")]
    async fn close(&mut self, _ctx: &ActorContext, _msg: &Message) -> Result<Value, BehaviorError> {
        Ok(json!("closed"))
    }

    #[handler("peek")]
    async fn peek(&mut self, ctx: &ActorContext, _msg: &Message) -> Result<Value, BehaviorError> {
        Ok(json!({ "state": ctx.fsm_state(), "opened": self.opened }))
    }
}

plexspaces_sdk::export_actors!(Counter, Door);
