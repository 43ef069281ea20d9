//! The PlexSpaces actor runtime: actors, their mailboxes, tell and ask, lifecycle, virtual
//! activation, links, monitors and supervision trees. No I/O, no storage, no network: those
//! reach actors through the crates built on this one.
//!
//! An actor implements [`Actor`]; [`System::spawn`] names it with an
//! [`ActorId`](plexspaces_types::ActorId) and returns an [`ActorRef`] to [`ActorRef::tell`]
//! or [`ActorRef::ask`] it. An idle actor is not a task: it is a cell holding its mailbox and
//! state, and a turn is scheduled on the tokio runtime only when mail arrives (see
//! `docs/adr/001-actor-scheduling.md`). Each actor handles one message at a time, in order
//! per sender. [`supervisor`] builds Erlang/OTP supervision trees on top.
//!
//! ```
//! use plexspaces_core::{Actor, Context, Options};
//! use plexspaces_types::ActorId;
//!
//! #[derive(Default)]
//! struct Counter { count: u64 }
//!
//! impl Actor for Counter {
//!     type Msg = u64;
//!     type Reply = u64;
//!     type Snapshot = u64;
//!
//!     async fn handle(&mut self, amount: u64, _ctx: &mut Context<Self>) -> u64 {
//!         self.count += amount;
//!         self.count
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> plexspaces_core::Result<()> {
//! let system = Options::default().build()?;
//! let counter = system.spawn(ActorId::parse("acme/default/counter/c-1").unwrap(), Counter::default())?;
//! counter.tell(5)?;
//! assert_eq!(counter.ask(1).await?, 6);
//! # Ok(())
//! # }
//! ```

mod actor;
mod actor_ref;
mod cell;
mod directory;
mod error;
pub mod facet;
mod lifecycle;
pub mod supervisor;
mod system;

pub use actor::{Actor, Context, Down, ExitReason, LinkExit, MonitorRef, Pid, ReplyTo};
pub use actor_ref::{ActorRef, AnyRef};
pub use async_trait::async_trait;
pub use error::{Error, Result};
pub use facet::{Facet, FacetError, FacetRegistry, InterceptResult};
pub use lifecycle::Lifecycle;
pub use system::{LifecycleObserver, Options, System};
