//! A counter actor class as a Rust component: `increment {"amount": n}` adds to the count and
//! returns it, `get` returns it. The host owns the committed state (`{"count": n}`); this
//! instance keeps a copy of each actor it served last, as the world allows.

use std::{cell::RefCell, collections::HashMap};

use exports::plexspaces::actor::guest::{Failure, Guest, Reply, StateIn};
use serde_json::{Value, json};

wit_bindgen::generate!({ path: "../../../../wit", world: "actor-module" });

struct Counter;

thread_local! {
    /// The counts this instance holds, by actor key.
    static COUNTS: RefCell<HashMap<String, i64>> = RefCell::new(HashMap::new());
}

fn failure(code: &str, message: String) -> Failure {
    Failure { code: code.to_owned(), message, error_type: None }
}

fn count_from(state: StateIn, key: &str) -> Result<i64, Failure> {
    match state {
        StateIn::Fresh => Ok(0),
        StateIn::Cached => COUNTS.with_borrow(|counts| counts.get(key).copied()).ok_or_else(|| {
            failure("need_state", format!("this instance no longer holds actor {key}"))
        }),
        StateIn::Bytes(bytes) => {
            let state: Value = serde_json::from_slice(&bytes).map_err(|error| {
                failure("invalid_json", format!("the state is not JSON: {error}"))
            })?;
            Ok(state["count"].as_i64().unwrap_or(0))
        }
    }
}

impl Guest for Counter {
    fn describe() -> String {
        json!({
            "world": "0.1.0",
            "sdk": "rust wit-bindgen",
            "classes": [{
                "name": "Counter",
                "behavior": "gen_server",
                "facets": [],
                "handlers": [
                    {"name": "increment", "kind": "handler"},
                    {"name": "get", "kind": "handler"}
                ]
            }]
        })
        .to_string()
    }

    fn handle(
        _class: u32,
        key: String,
        state: StateIn,
        action: String,
        payload: Vec<u8>,
        evict: Vec<(u32, String)>,
    ) -> Result<Reply, Failure> {
        COUNTS.with_borrow_mut(|counts| {
            for (_, gone) in &evict {
                counts.remove(gone);
            }
        });
        let count = count_from(state, &key)?;
        let (count, changed) = match action.as_str() {
            "increment" => {
                let payload: Value = serde_json::from_slice(&payload).map_err(|error| {
                    failure("invalid_json", format!("the payload is not JSON: {error}"))
                })?;
                let amount = match payload.get("amount") {
                    None => 1,
                    Some(amount) => amount.as_i64().ok_or_else(|| {
                        failure(
                            "invalid_arguments",
                            format!("amount must be an integer, not {amount}"),
                        )
                    })?,
                };
                (
                    count.checked_add(amount).ok_or_else(|| {
                        failure("invalid_arguments", "the count would overflow".to_owned())
                    })?,
                    true,
                )
            }
            "get" => (count, false),
            other => {
                return Err(failure(
                    "unknown_action",
                    format!("Counter has no handler {other:?} (handlers: increment, get)"),
                ));
            }
        };
        COUNTS.with_borrow_mut(|counts| counts.insert(key, count));
        let state = changed.then(|| json!({ "count": count }).to_string().into_bytes());
        Ok(Reply { payload: json!({ "count": count }).to_string().into_bytes(), state })
    }
}

export!(Counter);
