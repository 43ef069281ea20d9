use plexspaces_sdk::prelude::*;

#[gen_fsm_actor(start = "locked")]
struct Door {
    opened: u32,
}

#[plexspaces_handlers]
impl Door {
    #[handler("open", from = ["closed"], goto = "opened")]
    async fn open(&mut self, _ctx: &ActorContext, _msg: &Message) -> Result<Value, BehaviorError> {
        Ok(Value::Null)
    }
}

fn main() {}
