use plexspaces_sdk::prelude::*;

#[gen_server_actor]
struct Counter {
    count: i32,
}

#[plexspaces_handlers]
impl Counter {
    #[handler("get")]
    async fn get(&self, _ctx: &ActorContext, _msg: &Message) -> Result<Value, BehaviorError> {
        Ok(json!({ "count": self.count }))
    }
}

fn main() {}
