//! GenFSM: explicit states and transitions; an action not valid in the current state is a
//! clear error that changes nothing.

use plexspaces_core::Options;
use plexspaces_sdk::{Handlers, Transition, prelude::*};
use plexspaces_types::{ActorId, ErrorCode};

#[gen_fsm_actor(initial = "locked")]
struct Turnstile {
    coins: u32,
    passages: u32,
}

#[plexspaces_handlers]
impl Turnstile {
    #[handler("coin", from = ["locked", "unlocked"], to = "unlocked")]
    async fn coin(&mut self, _ctx: &ActorContext, _msg: &Message) -> Result<Value, BehaviorError> {
        self.coins += 1;
        Ok(json!({ "coins": self.coins }))
    }

    #[handler("push", from = "unlocked", to = "locked")]
    async fn push(&mut self, _ctx: &ActorContext, msg: &Message) -> Result<Value, BehaviorError> {
        let payload: Value = serde_json::from_slice(&msg.payload)?;
        if payload["jammed"] == true {
            return Err(BehaviorError::ProcessingError("the arm is jammed".into()));
        }
        self.passages += 1;
        Ok(json!({ "passages": self.passages }))
    }

    #[handler("status")]
    async fn status(&mut self, ctx: &ActorContext, _msg: &Message) -> Result<Value, BehaviorError> {
        Ok(json!({ "state": ctx.fsm_state(), "coins": self.coins, "passages": self.passages }))
    }
}

async fn send(
    turnstile: &plexspaces_core::ActorRef<GenFsm<Turnstile>>,
    payload: Value,
) -> Result<Value, BehaviorError> {
    turnstile.ask(Message::json(&payload)).await.unwrap()
}

#[test]
fn the_transition_table_is_generated_from_the_handlers() {
    assert_eq!(
        Turnstile::TRANSITIONS,
        [
            Transition { action: "coin", from: &["locked", "unlocked"], to: Some("unlocked") },
            Transition { action: "push", from: &["unlocked"], to: Some("locked") },
        ]
    );
    assert_eq!(GenFsm::<Turnstile>::default().fsm_state(), Some("locked"));
    assert_eq!(GenServer::<crate::dispatch::Plain>::default().fsm_state(), None);
}

#[tokio::test]
async fn a_turnstile_moves_between_its_states() {
    let system = Options::default().build().unwrap();
    let id = ActorId::parse("acme/default/turnstile/t-1").unwrap();
    let turnstile = system.spawn(id, GenFsm::<Turnstile>::default()).unwrap();

    let refused = send(&turnstile, json!({"action": "push"})).await.unwrap_err();
    assert_eq!(refused.code(), ErrorCode::InvalidState);
    assert_eq!(refused.to_string(), r#"action "push" is not valid in state "locked""#);

    send(&turnstile, json!({"action": "coin"})).await.unwrap();
    let status = send(&turnstile, json!({"action": "status"})).await.unwrap();
    assert_eq!(status, json!({"state": "unlocked", "coins": 1, "passages": 0}));

    // A handler that fails leaves the state where it was.
    let jammed = send(&turnstile, json!({"action": "push", "jammed": true})).await.unwrap_err();
    assert_eq!(jammed.code(), ErrorCode::ActorError);
    let status = send(&turnstile, json!({"action": "status"})).await.unwrap();
    assert_eq!(status["state"], "unlocked");

    send(&turnstile, json!({"action": "push"})).await.unwrap();
    let status = send(&turnstile, json!({"action": "status"})).await.unwrap();
    assert_eq!(status, json!({"state": "locked", "coins": 1, "passages": 1}));

    let unknown = send(&turnstile, json!({"action": "kick"})).await.unwrap_err();
    assert_eq!(unknown.code(), ErrorCode::UnknownAction);
}
