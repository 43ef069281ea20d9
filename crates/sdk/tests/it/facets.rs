//! Facets attached by name at spawn: the virtual-actor facet, and errors at spawn time.

use std::time::Duration;

use plexspaces_core::{Lifecycle, Options};
use plexspaces_sdk::{SpawnError, prelude::*, spawn_actor};
use plexspaces_types::{ActorId, ErrorCode};

#[gen_server_actor]
struct Tally {
    total: i64,
}

#[plexspaces_handlers]
impl Tally {
    #[handler("add")]
    async fn add(&mut self, _ctx: &ActorContext, msg: &Message) -> Result<Value, BehaviorError> {
        let payload: Value = serde_json::from_slice(&msg.payload)?;
        self.total += payload["n"].as_i64().unwrap_or(1);
        Ok(json!({ "total": self.total }))
    }
}

fn id(key: &str) -> ActorId {
    ActorId::parse(&format!("acme/default/tally/{key}")).unwrap()
}

#[tokio::test(start_paused = true)]
async fn the_virtual_actor_facet_deactivates_when_idle_and_keeps_the_state() {
    let system = Options::default().build().unwrap();
    let metrics = FacetMetrics::default();
    let registry = FacetRegistry::with_builtins(metrics.clone());
    let attached = [("virtual_actor", json!({"idle_timeout_ms": 1000})), ("metrics", json!({}))];
    let tally = spawn_actor::<Tally>(&system, id("v"), &registry, &attached).unwrap();
    assert_eq!(tally.lifecycle(), Lifecycle::Created);

    let add = |n: i64| Message::json(&json!({"action": "add", "n": n}));
    assert_eq!(tally.ask(add(5)).await.unwrap().unwrap(), json!({"total": 5}));
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(tally.lifecycle(), Lifecycle::Inactive, "deactivated after 1 s idle");
    assert_eq!(tally.ask(add(2)).await.unwrap().unwrap(), json!({"total": 7}));
    assert_eq!(tally.lifecycle(), Lifecycle::Active, "reactivated transparently");
    assert_eq!(metrics.messages(), 2, "the reactivated actor has its facets again");
}

#[tokio::test]
async fn unknown_facets_and_bad_configs_fail_at_spawn() {
    let system = Options::default().build().unwrap();
    let registry = FacetRegistry::with_builtins(FacetMetrics::default());

    let unknown = spawn_actor::<Tally>(&system, id("a"), &registry, &[("durability", json!({}))]);
    let error = unknown.unwrap_err();
    assert!(matches!(error, SpawnError::Facet(FacetError::Unknown { .. })), "{error:?}");
    assert_eq!(error.code(), ErrorCode::InvalidArguments);
    assert!(system.lookup_any(&id("a")).is_none(), "nothing was spawned");

    let bad = [("virtual_actor", json!({"idle_timeout_ms": "soon"}))];
    let error = spawn_actor::<Tally>(&system, id("b"), &registry, &bad).unwrap_err();
    assert_eq!(
        error.to_string(),
        r#"invalid config for facet "virtual_actor": idle_timeout_ms must be a positive integer, not "soon""#
    );

    spawn_actor::<Tally>(&system, id("c"), &registry, &[]).unwrap();
    let taken = spawn_actor::<Tally>(&system, id("c"), &registry, &[]).unwrap_err();
    assert_eq!(taken.code(), ErrorCode::AlreadyExists);
}
