use plexspaces_sdk::prelude::*;

#[gen_server_actor]
struct Counter {
    count: i32,
}

impl Counter {
    #[handler("increment")]
    async fn increment(&mut self, _ctx: &ActorContext, _msg: &Message) -> Result<Value, BehaviorError> {
        Ok(Value::Null)
    }
}

fn main() {}
