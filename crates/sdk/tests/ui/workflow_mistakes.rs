use plexspaces_sdk::prelude::*;

#[workflow_actor]
struct Flow {
    status: String,
}

#[plexspaces_handlers]
impl Flow {
    #[run_handler]
    async fn run(&mut self, _ctx: &WorkflowContext<Self>, _msg: &Message) -> Result<Value, BehaviorError> {
        Ok(Value::Null)
    }

    #[query_handler("status")]
    async fn status(&mut self, _ctx: &ActorContext, _msg: &Message) -> Result<Value, BehaviorError> {
        Ok(json!(self.status))
    }

    #[signal_handler("run")]
    async fn rerun(&mut self, _ctx: &ActorContext, _msg: &Message) -> Result<Value, BehaviorError> {
        Ok(Value::Null)
    }
}

fn main() {}
