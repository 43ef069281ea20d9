//! The project's example actors, embedded in the stock binary so a node started with
//! `plexspaces start` serves something before any module is deployed: `counter`
//! (examples/rust/counter.rs) and `echo` (examples/rust/echo.rs).

use plexspaces_node::NodeBuilder;

mod counter {
    include!("../../../examples/rust/counter.rs");

    pub(super) fn register(builder: super::NodeBuilder) -> super::NodeBuilder {
        builder.register::<Counter>("counter")
    }
}

mod echo {
    include!("../../../examples/rust/echo.rs");

    pub(super) fn register(builder: super::NodeBuilder) -> super::NodeBuilder {
        builder.register::<Echo>("echo")
    }
}

/// Registers the examples on a node builder.
pub(crate) fn register(builder: NodeBuilder) -> NodeBuilder {
    echo::register(counter::register(builder))
}
