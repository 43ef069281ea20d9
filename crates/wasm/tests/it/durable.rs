//! Durable actors on the host, property-tested: for random sequences of deposits and
//! withdrawals (examples/python/bank_account.py), the live state, the state rebuilt by a full
//! replay of the journal, and the state rebuilt from a checkpoint and the tail after it are
//! the same.

use std::{sync::Arc, time::Duration};

use plexspaces_core::System;
use plexspaces_storage::{SqliteJournal, journal::JournalBackend};
use plexspaces_types::ActorId;
use plexspaces_wasm::{Binding, Durability, Invocation, Module, Options, Served, WasmActor};
use proptest::{collection::vec, prelude::*, test_runner::TestRunner};

use crate::{guests, support};

fn durable(
    host: &plexspaces_wasm::Host,
    system: &System,
    module: &Module,
    durability: &Arc<Durability>,
    id: &ActorId,
) -> plexspaces_core::ActorRef<WasmActor> {
    let served = Served::new(Binding { module: module.clone(), class: 0 }, host.logs().clone());
    let durability = Arc::clone(durability);
    system
        .spawn_virtual(id.clone(), Duration::from_secs(600), move || {
            WasmActor::durable(Arc::clone(&served), Default::default(), Arc::clone(&durability))
        })
        .unwrap()
}

async fn state_of(system: &System, id: &ActorId) -> serde_json::Value {
    system.lookup_any(id).unwrap().inspect(Duration::from_secs(30)).await.unwrap().unwrap()
}

#[test]
fn live_state_equals_full_replay_equals_checkpoint_and_tail() {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let wasm = std::fs::read(guests::python_module("examples/python/bank_account.py")).unwrap();
    let host = support::host(Options::default());
    let module = runtime.block_on(support::load(&host, &wasm)).unwrap();
    let dir = std::env::temp_dir().join(format!("plexspaces-wasm-durable-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let journal: Arc<dyn JournalBackend> = Arc::new(SqliteJournal::open(&dir).unwrap());
    let durability = |every: u64| {
        Arc::new(Durability {
            journal: Arc::clone(&journal),
            checkpoint_every: every,
            key_window: Duration::from_secs(600),
            max_keys: 100,
        })
    };
    let mut runner = TestRunner::new(ProptestConfig { cases: 16, ..ProptestConfig::default() });
    let case = std::sync::atomic::AtomicU32::new(0);
    let strategy = (vec((any::<bool>(), 1u32..100), 1..80), 2u64..30);
    runner
        .run(&strategy, |(operations, every)| {
            let case = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let (full, checkpointed) = (durability(u64::MAX), durability(every));
            let replayed = ActorId::parse(&format!("acme/default/bank/replayed-{case}")).unwrap();
            let resumed = ActorId::parse(&format!("acme/default/bank/resumed-{case}")).unwrap();
            let (live, recovered) = runtime.block_on(async {
                let system = System::new().unwrap();
                let actors = [
                    durable(&host, &system, &module, &full, &replayed),
                    durable(&host, &system, &module, &checkpointed, &resumed),
                ];
                for (deposit, amount) in &operations {
                    let action = if *deposit { "deposit" } else { "withdraw" };
                    let payload = format!(r#"{{"action":"{action}","amount":{amount}}}"#);
                    for actor in &actors {
                        let tell = Invocation::new(
                            action.to_owned(),
                            payload.clone().into_bytes(),
                            Some("m".into()),
                        );
                        actor.tell(tell).unwrap();
                    }
                }
                // An ask is answered once everything before it is durable.
                for actor in &actors {
                    actor.ask(support::message("replay", "{}")).await.unwrap().unwrap();
                }
                let live = (state_of(&system, &replayed).await, state_of(&system, &resumed).await);
                // A new system holds nothing: both recover from the journal.
                let fresh = System::new().unwrap();
                durable(&host, &fresh, &module, &full, &replayed);
                durable(&host, &fresh, &module, &checkpointed, &resumed);
                let recovered =
                    (state_of(&fresh, &replayed).await, state_of(&fresh, &resumed).await);
                (live, recovered)
            });
            prop_assert_eq!(&live.0, &live.1);
            prop_assert_eq!(&recovered.0, &live.0, "full replay");
            prop_assert_eq!(
                &recovered.1,
                &live.1,
                "checkpoint every {} entries, then the tail",
                every
            );
            Ok(())
        })
        .unwrap();
}
