use plexspaces_sdk::prelude::*;

#[gen_server_actor]
struct Counter {
    count: i32,
}

#[plexspaces_handlers]
impl Counter {
    #[handler("increment")]
    fn increment(&mut self, _ctx: &ActorContext, _msg: &Message) -> Result<Value, BehaviorError> {
        self.count += 1;
        Ok(json!({ "count": self.count }))
    }
}

fn main() {}
