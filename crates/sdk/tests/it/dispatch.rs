//! Dispatch rules: named handlers before the wildcard, unknown actions, the generated tables.

use plexspaces_core::Options;
use plexspaces_sdk::{Handlers, prelude::*};
use plexspaces_types::{ActorId, ErrorCode};

#[gen_server_actor]
struct Router {
    seen: Vec<String>,
}

#[plexspaces_handlers]
impl Router {
    #[handler("ping")]
    async fn ping(&mut self, _ctx: &ActorContext, _msg: &Message) -> Result<Value, BehaviorError> {
        self.seen.push("ping".into());
        Ok(json!("pong"))
    }

    #[handler("*")]
    async fn other(&mut self, ctx: &ActorContext, msg: &Message) -> Result<Value, BehaviorError> {
        self.seen.push(msg.action().to_owned());
        Ok(json!({"wildcard": msg.action(), "actor": ctx.actor_id().to_string()}))
    }

    /// Not a handler: callable only by the actor itself.
    fn count(&self) -> usize {
        self.seen.len()
    }
}

#[gen_server_actor]
struct Strict;

#[plexspaces_handlers]
impl Strict {
    #[handler("only")]
    async fn only(&mut self, _ctx: &ActorContext, _msg: &Message) -> Result<Value, BehaviorError> {
        Ok(Value::Null)
    }
}

/// A GenServer, for comparison with GenFSM actors.
#[gen_server_actor]
pub struct Plain;

#[plexspaces_handlers]
impl Plain {
    #[handler("*")]
    async fn any(&mut self, _ctx: &ActorContext, _msg: &Message) -> Result<Value, BehaviorError> {
        Ok(Value::Null)
    }
}

#[test]
fn the_generated_tables_list_the_handlers() {
    assert_eq!(Router::ACTIONS, ["ping"]);
    const { assert!(Router::WILDCARD) };
    assert_eq!(Strict::ACTIONS, ["only"]);
    const { assert!(!Strict::WILDCARD) };
    assert_eq!(Router::default().count(), 0);
}

#[tokio::test]
async fn named_handlers_take_precedence_over_the_wildcard() {
    let system = Options::default().build().unwrap();
    let id = ActorId::parse("acme/default/router/r").unwrap();
    let router = system.spawn(id, GenServer::<Router>::default()).unwrap();
    let ping = router.ask(Message::json(&json!({"action": "ping"}))).await.unwrap();
    assert_eq!(ping.unwrap(), json!("pong"));
    let other = router.ask(Message::json(&json!({"action": "anything"}))).await.unwrap();
    assert_eq!(other.unwrap(), json!({"wildcard": "anything", "actor": "acme/default/router/r"}));
    let empty = router.ask(Message::json(&json!({"no": "action"}))).await.unwrap();
    assert_eq!(empty.unwrap()["wildcard"], "");
}

#[tokio::test]
async fn without_a_wildcard_an_unknown_action_is_an_error() {
    let system = Options::default().build().unwrap();
    let id = ActorId::parse("acme/default/strict/s").unwrap();
    let strict = system.spawn(id, GenServer::<Strict>::default()).unwrap();
    let error = strict.ask(Message::new("nope", "{}")).await.unwrap().unwrap_err();
    assert_eq!(error.code(), ErrorCode::UnknownAction);
    assert!(strict.ask(Message::new("only", "{}")).await.unwrap().is_ok());
}
