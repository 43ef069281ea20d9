//! Actors written with the Rust SDK's macros, exported as one component: the same code runs
//! natively. A state with serde is the host's between messages; one without lives in the guest.

use std::time::Duration;

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

    #[handler("directory")]
    async fn directory(
        &mut self,
        _ctx: &ActorContext,
        _msg: &Message,
    ) -> Result<Value, BehaviorError> {
        let me = host::registry::register("rust-svc", "", &json!({"lang": "rust"}), 60_000)?;
        let beat = host::registry::heartbeat("rust-svc", "", 0)?;
        let found: Vec<String> =
            host::registry::lookup("rust-svc")?.into_iter().map(|r| r.instance).collect();
        let services = host::registry::list("rust", "", 0)?.len();
        let stored = host::blobs::put("rust/note.txt", b"from rust", "text/plain")?;
        let read = host::blobs::get("rust/note.txt")?.map(|data| String::from_utf8_lossy(&data).into_owned());
        let listed: Vec<String> =
            host::blobs::list("rust/", "", 0)?.into_iter().map(|b| b.key).collect();
        let head = host::blobs::head("rust/note.txt")?.map(|info| info.content_type);
        let deleted = host::blobs::delete("rust/note.txt")?;
        let bad = host::blobs::put("a//b", b"", "").err().map(|error| error.code);
        Ok(json!({
            "me": me.instance, "renewed": beat.expires_at_ms >= me.expires_at_ms,
            "found": found, "services": services, "size": stored.size, "read": read,
            "listed": listed, "content_type": head, "deleted": deleted, "bad": bad,
            "deregistered": host::registry::deregister("rust-svc", "")?,
        }))
    }

    #[handler("queue")]
    async fn queue(&mut self, _ctx: &ActorContext, _msg: &Message) -> Result<Value, BehaviorError> {
        use host::channels;
        let created = channels::create("rust-q", "queue", 10, 60_000)?;
        let sent = channels::send("rust-q", &json!({"n": 1}), 0)?
            + channels::send("rust-q", &json!({"n": 2}), 0)?;
        let first = channels::receive("rust-q", "", 2, 0)?;
        let acked = channels::ack("rust-q", &first[0].receipt)?;
        let nacked = channels::nack("rust-q", &first[1].receipt, 0)?;
        let again = channels::receive("rust-q", "", 1, 1000)?;
        let closed = channels::close("rust-q")?;
        let refused = channels::send("rust-q", &json!(3), 0).err().map(|error| error.code);
        channels::create("rust-t", "topic", 0, 0)?;
        let subscribed = channels::subscribe("rust-t", "s1")?;
        let fanned = channels::send("rust-t", &json!("hello"), 0)?;
        let from_topic = channels::receive("rust-t", "s1", 1, 0)?.pop().map(|d| d.data);
        Ok(json!({
            "created": created, "sent": sent, "first": first.iter().map(|d| d.data.clone()).collect::<Vec<_>>(),
            "acked": acked, "nacked": nacked,
            "again": again.iter().map(|d| (d.data.clone(), d.attempt)).collect::<Vec<_>>(),
            "closed": closed, "refused": refused, "subscribed": subscribed, "fanned": fanned,
            "from_topic": from_topic, "unsubscribed": channels::unsubscribe("rust-t", "s1")?,
        }))
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

/// A tally whose state has no serde: it lives in the guest, in an instance the host pins to
/// each tally while it is active.
#[gen_server_actor]
pub struct Tally {
    seen: Vec<String>,
}

#[plexspaces_handlers]
impl Tally {
    #[handler("add")]
    async fn add(&mut self, _ctx: &ActorContext, msg: &Message) -> Result<Value, BehaviorError> {
        let payload: Value = serde_json::from_slice(&msg.payload)?;
        self.seen.push(payload["text"].as_str().unwrap_or_default().to_owned());
        Ok(json!({ "seen": self.seen }))
    }

    /// Changes the state, then fails: the state stays as the handler left it, as natively.
    #[handler("fail")]
    async fn fail(&mut self, _ctx: &ActorContext, _msg: &Message) -> Result<Value, BehaviorError> {
        self.seen.push("failed".to_owned());
        Err(BehaviorError::ProcessingError("the tally refuses".to_owned()))
    }

    /// Never returns: the host's deadline stops it.
    #[handler("spin")]
    async fn spin(&mut self, _ctx: &ActorContext, _msg: &Message) -> Result<Value, BehaviorError> {
        let mut turns: u64 = 0;
        loop {
            turns = std::hint::black_box(turns.wrapping_add(1));
        }
    }
}

/// A durable workflow, the Rust twin of `examples/typescript/order_workflow.ts`: a crash in
/// the middle resumes it, and steps that finished are not run again.
#[workflow_actor]
#[derive(Serialize, Deserialize)]
pub struct OrderFulfillment {
    order_id: String,
    status: String,
    steps_completed: Vec<String>,
}

#[plexspaces_handlers]
impl OrderFulfillment {
    #[run_handler]
    async fn run(
        &mut self,
        ctx: &WorkflowContext<Self>,
        msg: &Message,
    ) -> Result<Value, BehaviorError> {
        let input: Value = serde_json::from_slice(&msg.payload)?;
        self.order_id = input["order_id"].as_str().unwrap_or_default().to_owned();
        let order = json!({ "order_id": self.order_id, "amount": input["amount"] });

        // Each step runs once; on replay its recorded result is returned instead.
        let charge: Value = ctx
            .step("charge", || async move { Ok(host::ask("payments", "charge", &order, 5000)?) })
            .await?;
        self.steps_completed.push("payment".into());
        self.status = "charged".into();

        // A durable timer: survives a restart of the node.
        ctx.sleep(self, Duration::from_secs(2)).await?;

        // Wait for a person to approve, or cancel.
        let decision = ctx.wait_signal(self, "approve", Duration::from_secs(60)).await?;
        if self.status == "cancelled" || decision.is_none() {
            let refund = json!({ "order_id": self.order_id, "charge": charge });
            let _: Value =
                ctx.step("refund", || async move {
                    Ok(host::ask("payments", "refund", &refund, 5000)?)
                })
                .await?;
            return Ok(json!({ "status": "cancelled", "order_id": self.order_id }));
        }
        let shipment = json!({ "order_id": self.order_id });
        ctx.step("ship", || async move { Ok(host::tell("shipping", "ship", &shipment)?) }).await?;
        self.steps_completed.push("shipment".into());
        self.status = "completed".into();
        Ok(json!({ "status": "completed", "order_id": self.order_id }))
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
        Ok(json!({
            "order_id": self.order_id,
            "status": self.status,
            "steps": self.steps_completed,
        }))
    }
}

plexspaces_sdk::export_actors!(Counter, Door, Tally, OrderFulfillment { facets: ["durability"] });
