//! The project's example actors, embedded in the stock binary so a node started with
//! `plexspaces start` serves something before any module is deployed: `counter`
//! (examples/rust/counter.rs), `echo` (examples/rust/echo.rs), the durable `ledger`
//! (examples/rust/ledger.rs) and the durable workflow `order_workflow`
//! (examples/rust/order_workflow.rs).

use plexspaces_node::NodeBuilder;

mod counter {
    include!("../../../examples/rust/counter.rs");

    pub(super) fn register(builder: super::NodeBuilder) -> super::NodeBuilder {
        builder.register::<Counter>("counter")
    }
}

mod ledger {
    include!("../../../examples/rust/ledger.rs");

    pub(super) fn register(builder: super::NodeBuilder) -> super::NodeBuilder {
        builder.register_with_facets::<Ledger>("ledger", &[("durability", serde_json::json!({}))])
    }
}

mod order_workflow {
    include!("../../../examples/rust/order_workflow.rs");

    pub(super) fn register(builder: super::NodeBuilder) -> super::NodeBuilder {
        let durability = [("durability", serde_json::json!({}))];
        builder.register_workflow_with_facets::<OrderWorkflow>("order_workflow", &durability)
    }
}

mod echo {
    include!("../../../examples/rust/echo.rs");

    pub(super) fn register(builder: super::NodeBuilder) -> super::NodeBuilder {
        builder.register::<Echo>("echo")
    }
}

/// The examples by name.
pub(crate) const ALL: [&str; 4] = ["counter", "echo", "ledger", "order_workflow"];

/// Registers the named examples on a node builder.
pub(crate) fn register(builder: NodeBuilder, names: &[String]) -> Result<NodeBuilder, String> {
    let mut builder = builder;
    for name in names {
        builder = match name.as_str() {
            "counter" => counter::register(builder),
            "echo" => echo::register(builder),
            "ledger" => ledger::register(builder),
            "order_workflow" => order_workflow::register(builder),
            other => {
                return Err(format!(
                    "there is no example actor {other:?}; the examples are {}",
                    ALL.join(", ")
                ));
            }
        };
    }
    Ok(builder)
}
