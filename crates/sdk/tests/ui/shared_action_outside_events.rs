use plexspaces_sdk::prelude::*;

#[gen_server_actor]
struct Counter {
    count: i32,
}

#[plexspaces_handlers]
impl Counter {
    #[handler("increment")]
    async fn increment(&mut self, _ctx: &ActorContext, _msg: &Message) -> Result<Value, BehaviorError> {
        Ok(Value::Null)
    }

    #[handler("increment")]
    async fn add(&mut self, _ctx: &ActorContext, _msg: &Message) -> Result<Value, BehaviorError> {
        Ok(Value::Null)
    }
}

fn main() {}
