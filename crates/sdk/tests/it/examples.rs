//! The examples in the project's `examples/rust`, compiled as written and run as native actors.
//! Each is included in a module of its own, with its tests beside it.

use plexspaces_core::{ActorRef, Options, System};
use plexspaces_sdk::{ActorState, BehaviorError, GenServer, Handlers, Message, Value};
use plexspaces_types::ActorId;

fn system() -> System {
    Options::default().build().unwrap()
}

fn id(path: &str) -> ActorId {
    ActorId::parse(path).unwrap()
}

async fn call<S: Handlers + ActorState>(
    actor: &ActorRef<GenServer<S>>,
    payload: Value,
) -> Result<Value, BehaviorError> {
    actor.ask(Message::json(&payload)).await.unwrap()
}

// The examples are user code as written; lints on their style are not ours to fix here.
#[allow(clippy::all)]
mod counter {
    include!("../../../../examples/rust/counter.rs");

    use super::{call, id, system};
    use plexspaces_types::ErrorCode;

    #[tokio::test]
    async fn the_counter_example_counts() {
        let system = system();
        let counter =
            system.spawn(id("acme/default/counter/c-1"), GenServer::<Counter>::default()).unwrap();
        let reply = call(&counter, json!({"action": "increment", "amount": 5})).await.unwrap();
        assert_eq!(reply, json!({"count": 5}));
        counter.tell(Message::json(&json!({"action": "increment"}))).unwrap();
        let reply = call(&counter, json!({"action": "increment", "amount": 2})).await.unwrap();
        assert_eq!(reply, json!({"count": 8}));
    }

    #[tokio::test]
    async fn the_counter_example_reports_bad_input_and_keeps_its_state() {
        let system = system();
        let counter =
            system.spawn(id("acme/default/counter/c-1"), GenServer::<Counter>::default()).unwrap();
        call(&counter, json!({"action": "increment", "amount": 3})).await.unwrap();

        let unknown = call(&counter, json!({"action": "decrement"})).await.unwrap_err();
        assert_eq!(unknown.code(), ErrorCode::UnknownAction);
        assert_eq!(unknown.to_string(), r#"unknown action "decrement""#);

        let broken = counter.ask(Message::new("increment", "{not json")).await.unwrap();
        assert_eq!(broken.unwrap_err().code(), ErrorCode::InvalidJson);

        let reply = call(&counter, json!({"action": "increment", "amount": 1})).await.unwrap();
        assert_eq!(reply, json!({"count": 4}), "errors leave the state as it was");
    }
}

#[allow(clippy::all)]
mod worker {
    include!("../../../../examples/rust/worker_actor.rs");

    use super::{call, id, system};
    use plexspaces_types::ErrorCode;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_worker_example_handles_every_action_through_its_wildcard() {
        let system = system();
        let worker = system
            .spawn(id("acme/default/worker/w-1"), GenServer::<WorkerActor>::default())
            .unwrap();
        for i in 0..10u64 {
            let key = format!("key-{i}");
            let reply =
                call(&worker, json!({"action": "set", "key": key, "value": i})).await.unwrap();
            assert_eq!(reply["action"], "set");
            assert_eq!(reply["key"], key);
        }
        let total = call(&worker, json!({"action": "get_total_count"})).await.unwrap();
        assert_eq!(total["total"], 45);
        assert_eq!(total["keys_processed"], 10);
        let stats = call(&worker, json!({"action": "stats"})).await.unwrap();
        assert_eq!(stats["tasks_processed"], 10);
        assert_eq!(stats["keys_in_state"], 10);
        let unknown = call(&worker, json!({"action": "explode"})).await.unwrap_err();
        assert_eq!(unknown.code(), ErrorCode::ActorError);
        assert_eq!(unknown.to_string(), "Unknown action");
    }
}

#[allow(clippy::all, unused_variables)]
mod fraud_detection {
    include!("../../../../examples/rust/fraud_detection_facet.rs");

    use super::{call, id, system};
    use plexspaces_core::facet::FacetMetrics;
    use plexspaces_types::ErrorCode;

    #[gen_server_actor]
    struct Payments {
        accepted: u64,
    }

    #[plexspaces_handlers]
    impl Payments {
        #[handler("pay")]
        async fn pay(
            &mut self,
            _ctx: &ActorContext,
            _msg: &Message,
        ) -> Result<Value, BehaviorError> {
            self.accepted += 1;
            Ok(json!({ "accepted": self.accepted }))
        }
    }

    #[tokio::test]
    async fn a_custom_facet_registered_once_guards_any_actor_it_is_attached_to() {
        let metrics = FacetMetrics::default();
        let mut registry = FacetRegistry::with_builtins(metrics.clone());
        register(&mut registry);
        let system = system();
        let attached = [("fraud_detection", json!({"threshold": 0.5})), ("metrics", json!({}))];
        let payments = system
            .spawn(
                id("acme/default/payments/p-1"),
                GenServer::with_facets(Payments::default(), registry.build(&attached).unwrap()),
            )
            .unwrap();
        let ok = call(&payments, json!({"action": "pay", "amount": 100})).await.unwrap();
        assert_eq!(ok, json!({"accepted": 1}));
        let refused = call(&payments, json!({"action": "pay", "amount": 9000})).await.unwrap_err();
        assert_eq!(refused.code(), ErrorCode::FacetRejected);
        assert_eq!(
            refused.to_string(),
            "facet fraud_detection rejected the message: fraud_detected"
        );
        let ok = call(&payments, json!({"action": "pay", "amount": 10})).await.unwrap();
        assert_eq!(ok, json!({"accepted": 2}), "the refused payment never reached the handler");
        assert_eq!((metrics.messages(), metrics.rejections()), (2, 1));

        // Another actor, another threshold, the same registration.
        let strict = registry.build(&[("fraud_detection", json!({"threshold": 0.0}))]).unwrap();
        let other = system
            .spawn(
                id("acme/default/payments/p-2"),
                GenServer::with_facets(Payments::default(), strict),
            )
            .unwrap();
        let refused = call(&other, json!({"action": "pay", "amount": 100})).await.unwrap_err();
        assert_eq!(refused.code(), ErrorCode::FacetRejected);
        // Unknown facet names are refused when the actor is built.
        let unknown = registry.build(&[("durability", json!({}))]).unwrap_err();
        assert!(unknown.to_string().starts_with(r#"unknown facet "durability""#));
    }
}
