use plexspaces_sdk::prelude::*;

#[gen_server_actor]
struct Counter {
    count: i32,
}

#[plexspaces_handlers]
impl Counter {
    #[handler]
    async fn increment(&mut self, _ctx: &ActorContext, _msg: &Message) -> Result<Value, BehaviorError> {
        Ok(Value::Null)
    }
}

fn main() {}
