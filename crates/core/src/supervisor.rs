//! Supervision trees with Erlang/OTP semantics.
//!
//! A [`Supervisor`] is an actor that starts its children in order, links to them, traps
//! their exits and restarts them by its [`Strategy`]:
//! - `OneForOne`: only the child that stopped is restarted;
//! - `OneForAll`: every other child is stopped (in reverse start order) and all are started
//!   again in start order;
//! - `RestForOne`: the children started after the one that stopped are stopped (in reverse
//!   order), then it and they are started again in order.
//!
//! A child's [`Restart`] type says when it is restarted: `Permanent` always, `Transient`
//! only after an abnormal exit, `Temporary` never (it is removed when it stops, and is not
//! restarted when a sibling's failure restarts the others). A normal exit of a transient child
//! keeps its spec with no running actor; `OneForAll`/`RestForOne` restarts start it again, as
//! OTP does.
//!
//! Restart intensity: if more than `max_restarts` restarts happen within `period`, the
//! supervisor stops all its children and exits with [`ExitReason::RestartIntensity`], which
//! its own supervisor sees as a failure (escalation). OTP exits with `shutdown` there, which a
//! transient parent would not restart; this runtime treats giving up as abnormal on purpose,
//! so escalation always reaches the parent.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    fmt,
    future::Future,
    pin::Pin,
    sync::Arc,
    time::Duration,
};

use plexspaces_types::ActorId;
use tokio::time::Instant;

use crate::{Actor, ActorRef, AnyRef, Context, Error, ExitReason, LinkExit, Pid, Result, System};

/// Which children are restarted when one stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Restart only the child that stopped.
    OneForOne,
    /// Restart every child.
    OneForAll,
    /// Restart the child that stopped and those started after it.
    RestForOne,
}

/// When a child is restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// Always.
    Permanent,
    /// After an abnormal exit only.
    Transient,
    /// Never.
    Temporary,
}

type StartFuture = Pin<Box<dyn Future<Output = Result<AnyRef>> + Send>>;
type StartFn = Arc<dyn Fn(System, ActorId) -> StartFuture + Send + Sync>;

/// How to start (and restart) one child.
#[derive(Clone)]
pub struct ChildSpec {
    /// The child's id (its name in the directory, kept across restarts).
    pub id: ActorId,
    /// When it is restarted.
    pub restart: Restart,
    /// How long it may take to stop before it is killed.
    pub shutdown: Duration,
    start: StartFn,
}

impl fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildSpec")
            .field("id", &self.id)
            .field("restart", &self.restart)
            .field("shutdown", &self.shutdown)
            .finish()
    }
}

impl ChildSpec {
    /// A worker child: `factory` builds a new actor object for each (re)start.
    pub fn worker<A: Actor>(
        id: ActorId,
        restart: Restart,
        factory: impl Fn() -> A + Send + Sync + 'static,
    ) -> Self {
        let factory = Arc::new(factory);
        let start: StartFn = Arc::new(move |system: System, id: ActorId| {
            let result = system.spawn(id, factory()).map(AnyRef::from);
            Box::pin(std::future::ready(result)) as StartFuture
        });
        Self { id, restart, shutdown: Duration::from_secs(5), start }
    }

    /// A nested supervisor child.
    pub fn supervisor(id: ActorId, restart: Restart, spec: SupervisorSpec) -> Self {
        let start: StartFn = Arc::new(move |system: System, id: ActorId| {
            let spec = spec.clone();
            Box::pin(async move { system.spawn_supervisor(id, spec).await.map(AnyRef::from) })
                as StartFuture
        });
        Self { id, restart, shutdown: Duration::from_secs(30), start }
    }

    /// Sets how long the child may take to stop before it is killed.
    pub fn with_shutdown(mut self, grace: Duration) -> Self {
        self.shutdown = grace;
        self
    }
}

/// A supervisor's strategy, restart intensity and children.
#[derive(Debug, Clone)]
pub struct SupervisorSpec {
    /// Which children are restarted when one stops.
    pub strategy: Strategy,
    /// Restarts allowed within `period` (OTP's intensity); one more and the supervisor gives up.
    pub max_restarts: u32,
    /// The window of the restart intensity.
    pub period: Duration,
    /// The children, in start order.
    pub children: Vec<ChildSpec>,
}

impl SupervisorSpec {
    /// A spec with OTP's default intensity: 1 restart within 5 seconds.
    pub fn new(strategy: Strategy) -> Self {
        Self { strategy, max_restarts: 1, period: Duration::from_secs(5), children: Vec::new() }
    }

    /// Sets the restart intensity.
    pub fn intensity(mut self, max_restarts: u32, period: Duration) -> Self {
        self.max_restarts = max_restarts;
        self.period = period;
        self
    }

    /// Adds a child at the end of the start order.
    pub fn child(mut self, child: ChildSpec) -> Self {
        self.children.push(child);
        self
    }
}

/// One child as the supervisor sees it.
#[derive(Debug, Clone)]
pub struct ChildInfo {
    /// The child's id.
    pub id: ActorId,
    /// Its restart type.
    pub restart: Restart,
    /// The running incarnation, if any.
    pub actor: Option<AnyRef>,
}

/// Requests a supervisor handles (use [`SupervisorRef`] rather than sending them yourself).
#[derive(Debug)]
pub enum SupervisorMsg {
    /// List the children in start order.
    WhichChildren,
    /// Add a child at the end and start it.
    StartChild(ChildSpec),
    /// Stop a child and keep its spec.
    TerminateChild(ActorId),
    /// Start a stopped child again.
    RestartChild(ActorId),
    /// Remove a stopped child's spec.
    DeleteChild(ActorId),
}

/// What a supervisor answers.
#[derive(Debug)]
pub enum SupervisorReply {
    /// The children, in start order.
    Children(Vec<ChildInfo>),
    /// The started child.
    Started(AnyRef),
    /// Done.
    Done,
    /// The request failed.
    Failed(Error),
}

struct Child {
    spec: ChildSpec,
    actor: Option<AnyRef>,
}

/// The supervisor actor. Spawn it with [`System::spawn_supervisor`].
///
/// Children are kept by start order in a map, with indexes by id and by running pid, so a
/// supervisor of 100,000 children handles each exit in logarithmic time.
pub struct Supervisor {
    strategy: Strategy,
    max_restarts: u32,
    period: Duration,
    /// Children by start order (the key grows with each added child).
    children: BTreeMap<u64, Child>,
    by_id: HashMap<ActorId, u64>,
    by_pid: HashMap<Pid, u64>,
    next_order: u64,
    restarts: VecDeque<Instant>,
}

impl fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Supervisor")
            .field("strategy", &self.strategy)
            .field("children", &self.children.len())
            .finish()
    }
}

impl Supervisor {
    fn new(spec: SupervisorSpec) -> Self {
        let mut supervisor = Self {
            strategy: spec.strategy,
            max_restarts: spec.max_restarts,
            period: spec.period,
            children: BTreeMap::new(),
            by_id: HashMap::new(),
            by_pid: HashMap::new(),
            next_order: 0,
            restarts: VecDeque::new(),
        };
        for child in spec.children {
            supervisor.add(child);
        }
        supervisor
    }

    /// Adds a child at the end of the start order; `None` if its id is taken.
    fn add(&mut self, spec: ChildSpec) -> Option<u64> {
        if self.by_id.contains_key(&spec.id) {
            return None;
        }
        let order = self.next_order;
        self.next_order += 1;
        self.by_id.insert(spec.id.clone(), order);
        self.children.insert(order, Child { spec, actor: None });
        Some(order)
    }

    fn remove(&mut self, order: u64) {
        if let Some(child) = self.children.remove(&order) {
            self.by_id.remove(&child.spec.id);
            if let Some(actor) = child.actor {
                self.by_pid.remove(&actor.pid());
            }
        }
    }

    fn orders_from(&self, from: u64) -> Vec<u64> {
        self.children.range(from..).map(|(order, _)| *order).collect()
    }

    fn restart_type(&self, order: u64) -> Option<Restart> {
        self.children.get(&order).map(|child| child.spec.restart)
    }

    /// Starts child `order` and links it; `Ok` if it runs.
    async fn start(&mut self, order: u64, ctx: &Context<Self>) -> Result<AnyRef> {
        let Some(child) = self.children.get(&order) else {
            return Err(Error::ShuttingDown);
        };
        let spec = child.spec.clone();
        let started = (spec.start)(ctx.system().clone(), spec.id.clone()).await?;
        ctx.link(&started);
        self.by_pid.insert(started.pid(), order);
        if let Some(child) = self.children.get_mut(&order) {
            child.actor = Some(started.clone());
        }
        Ok(started)
    }

    /// Stops child `order` (if running), waiting up to its shutdown grace. Its exit notice
    /// arrives later and is ignored: the pid is no longer a running child's.
    async fn terminate(&mut self, order: u64) {
        let Some(child) = self.children.get_mut(&order) else { return };
        let grace = child.spec.shutdown;
        if let Some(actor) = child.actor.take() {
            self.by_pid.remove(&actor.pid());
            actor.shutdown(ExitReason::Shutdown, grace).await;
        }
    }

    /// Stops children from `from` on in reverse start order, dropping temporary ones (OTP's
    /// `terminate_children`).
    async fn terminate_from(&mut self, from: u64) {
        for order in self.orders_from(from).into_iter().rev() {
            self.terminate(order).await;
            if self.restart_type(order) == Some(Restart::Temporary) {
                self.remove(order);
            }
        }
    }

    /// Records a restart; false when that exceeds the intensity.
    fn add_restart(&mut self) -> bool {
        let now = Instant::now();
        while self.restarts.front().is_some_and(|at| now.duration_since(*at) > self.period) {
            self.restarts.pop_front();
        }
        self.restarts.push_back(now);
        self.restarts.len() <= self.max_restarts as usize
    }

    /// Starts children from `from` on in order; the order of the first that failed to start.
    async fn start_from(&mut self, from: u64, ctx: &Context<Self>) -> Result<(), u64> {
        for order in self.orders_from(from) {
            if let Err(error) = self.start(order, ctx).await {
                let child = self.children.get(&order).map(|child| child.spec.id.to_string());
                tracing::warn!(child = child.unwrap_or_default(), %error, "child failed to start");
                return Err(order);
            }
        }
        Ok(())
    }

    /// Restarts after child `order` stopped abnormally (or normally, if permanent).
    async fn restart(&mut self, order: u64, ctx: &mut Context<Self>) {
        let mut failed = order;
        loop {
            if !self.add_restart() {
                tracing::error!(supervisor = %ctx.id(), "reached max restart intensity");
                self.terminate_from(0).await;
                ctx.stop(ExitReason::RestartIntensity);
                return;
            }
            let restarted = match self.strategy {
                Strategy::OneForOne => self.start(failed, ctx).await.map(drop).map_err(|_| failed),
                Strategy::OneForAll => {
                    self.terminate_from(0).await;
                    self.start_from(0, ctx).await
                }
                Strategy::RestForOne => {
                    self.terminate_from(failed).await;
                    self.start_from(failed, ctx).await
                }
            };
            match restarted {
                Ok(()) => return,
                // A start that fails counts as another restart, as OTP's try_again does.
                Err(order) => failed = order,
            }
        }
    }

    async fn child_exited(&mut self, exit: LinkExit, ctx: &mut Context<Self>) {
        // An unknown pid is an incarnation the supervisor already replaced or stopped itself.
        let Some(order) = self.by_pid.remove(&exit.pid) else { return };
        let Some(child) = self.children.get_mut(&order) else { return };
        child.actor = None;
        let restart_type = child.spec.restart;
        if ctx.system().is_shutting_down() {
            return;
        }
        let restart = match restart_type {
            Restart::Permanent => true,
            Restart::Transient => !exit.reason.is_normal(),
            Restart::Temporary => false,
        };
        if restart {
            tracing::warn!(child = %exit.id, reason = %exit.reason, "restarting child");
            self.restart(order, ctx).await;
        } else if restart_type == Restart::Temporary {
            self.remove(order);
        }
    }

    fn children_info(&self) -> Vec<ChildInfo> {
        let info = |child: &Child| ChildInfo {
            id: child.spec.id.clone(),
            restart: child.spec.restart,
            actor: child.actor.clone(),
        };
        self.children.values().map(info).collect()
    }
}

impl Actor for Supervisor {
    type Msg = SupervisorMsg;
    type Reply = SupervisorReply;
    type Snapshot = ();

    async fn activate(&mut self, _: Option<()>, ctx: &mut Context<Self>) -> Result<(), ExitReason> {
        ctx.trap_exit(true);
        if let Err(order) = self.start_from(0, ctx).await {
            let id = self.children.get(&order).map(|child| child.spec.id.to_string());
            self.terminate_from(0).await;
            let id = id.unwrap_or_default();
            return Err(ExitReason::error(format!("child {id} failed to start")));
        }
        Ok(())
    }

    async fn deactivate(&mut self, _: &mut Context<Self>) -> Option<()> {
        self.terminate_from(0).await;
        None
    }

    async fn on_link_exit(&mut self, exit: LinkExit, ctx: &mut Context<Self>) {
        self.child_exited(exit, ctx).await;
    }

    async fn handle(&mut self, msg: SupervisorMsg, ctx: &mut Context<Self>) -> SupervisorReply {
        match msg {
            SupervisorMsg::WhichChildren => SupervisorReply::Children(self.children_info()),
            SupervisorMsg::StartChild(spec) => {
                let id = spec.id.clone();
                let Some(order) = self.add(spec) else {
                    return SupervisorReply::Failed(Error::AlreadyExists(id));
                };
                match self.start(order, ctx).await {
                    Ok(started) => SupervisorReply::Started(started),
                    Err(error) => {
                        self.remove(order);
                        SupervisorReply::Failed(error)
                    }
                }
            }
            SupervisorMsg::TerminateChild(id) => match self.by_id.get(&id).copied() {
                Some(order) => {
                    self.terminate(order).await;
                    if self.restart_type(order) == Some(Restart::Temporary) {
                        self.remove(order);
                    }
                    SupervisorReply::Done
                }
                None => SupervisorReply::Failed(Error::NotFound(id)),
            },
            SupervisorMsg::RestartChild(id) => match self.stopped_child(&id) {
                Ok(order) => match self.start(order, ctx).await {
                    Ok(started) => SupervisorReply::Started(started),
                    Err(error) => SupervisorReply::Failed(error),
                },
                Err(error) => SupervisorReply::Failed(error),
            },
            SupervisorMsg::DeleteChild(id) => match self.stopped_child(&id) {
                Ok(order) => {
                    self.remove(order);
                    SupervisorReply::Done
                }
                Err(error) => SupervisorReply::Failed(error),
            },
        }
    }
}

impl Supervisor {
    /// The order of child `id` if it exists and is not running.
    fn stopped_child(&self, id: &ActorId) -> Result<u64> {
        let order = *self.by_id.get(id).ok_or_else(|| Error::NotFound(id.clone()))?;
        match self.children.get(&order) {
            Some(child) if child.actor.is_none() => Ok(order),
            _ => Err(Error::AlreadyExists(id.clone())),
        }
    }
}

/// A handle to a running supervisor.
#[derive(Debug, Clone)]
pub struct SupervisorRef {
    actor: ActorRef<Supervisor>,
}

impl From<SupervisorRef> for AnyRef {
    fn from(supervisor: SupervisorRef) -> Self {
        supervisor.actor.as_any()
    }
}

impl SupervisorRef {
    /// The supervisor actor itself.
    pub fn actor(&self) -> &ActorRef<Supervisor> {
        &self.actor
    }

    async fn request(&self, msg: SupervisorMsg) -> Result<SupervisorReply> {
        match self.actor.ask(msg).await? {
            SupervisorReply::Failed(error) => Err(error),
            reply => Ok(reply),
        }
    }

    /// The children in start order, with their running incarnations.
    pub async fn which_children(&self) -> Result<Vec<ChildInfo>> {
        match self.request(SupervisorMsg::WhichChildren).await? {
            SupervisorReply::Children(children) => Ok(children),
            _ => Ok(Vec::new()),
        }
    }

    /// Adds a child at the end of the start order and starts it.
    pub async fn start_child(&self, spec: ChildSpec) -> Result<AnyRef> {
        let id = spec.id.clone();
        match self.request(SupervisorMsg::StartChild(spec)).await? {
            SupervisorReply::Started(started) => Ok(started),
            _ => Err(Error::NotFound(id)),
        }
    }

    /// Stops a child; its spec stays (unless temporary) for [`SupervisorRef::restart_child`].
    pub async fn terminate_child(&self, id: ActorId) -> Result<()> {
        self.request(SupervisorMsg::TerminateChild(id)).await.map(drop)
    }

    /// Starts a stopped child again.
    pub async fn restart_child(&self, id: ActorId) -> Result<AnyRef> {
        match self.request(SupervisorMsg::RestartChild(id.clone())).await? {
            SupervisorReply::Started(started) => Ok(started),
            _ => Err(Error::NotFound(id)),
        }
    }

    /// Removes a stopped child's spec.
    pub async fn delete_child(&self, id: ActorId) -> Result<()> {
        self.request(SupervisorMsg::DeleteChild(id)).await.map(drop)
    }

    /// Waits until the supervisor has stopped and returns why.
    pub async fn stopped(&self) -> ExitReason {
        self.actor.stopped().await
    }
}

impl System {
    /// Spawns a supervisor and starts its children in order. Fails (having stopped the
    /// children it started) if a child fails to start.
    pub async fn spawn_supervisor(
        &self,
        id: ActorId,
        spec: SupervisorSpec,
    ) -> Result<SupervisorRef> {
        let actor = self.spawn(id, Supervisor::new(spec))?;
        // The first message activates the supervisor, which starts the children.
        match actor.ask(SupervisorMsg::WhichChildren).await {
            Ok(_) => Ok(SupervisorRef { actor }),
            Err(Error::Stopped(id)) => {
                let reason = actor.stopped().await;
                Err(Error::Failed { id, reason })
            }
            Err(error) => Err(error),
        }
    }
}
