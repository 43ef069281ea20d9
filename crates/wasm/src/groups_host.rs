//! The `process-groups` interface: groups of the calling actor's namespace, and the fan-out of
//! a publish to their members as `pg_message`s.

use std::sync::Arc;

use plexspaces_storage::groups;
use plexspaces_types::ActorId;

use crate::{
    bindings::{HostError, plexspaces::actor},
    ctx::Ctx,
    durable::{CallKind, journaled},
    logs::Stream,
    services::{invalid, json},
};

/// The action a group message arrives as.
pub const PG_MESSAGE: &str = "pg_message";

/// The payload of a group message: `{"action": "pg_message", "group", "topic", "data",
/// "publisher"}` (the publisher is `null` for a client outside the node).
pub fn pg_payload(
    group: &str,
    topic: Option<&str>,
    data: serde_json::Value,
    publisher: Option<&str>,
) -> String {
    serde_json::json!({
        "action": PG_MESSAGE,
        "group": group,
        "topic": topic,
        "data": data,
        "publisher": publisher,
    })
    .to_string()
}

impl Ctx {
    /// The caller, its tenant and namespace, and `member` as `namespace/type/key` (the
    /// caller itself when empty).
    fn group_member(&self, member: &str) -> Result<(ActorId, String), HostError> {
        let me = self.serving()?.clone();
        let member = if member.is_empty() {
            me.local_name()
        } else {
            me.resolve(member).map_err(invalid)?.local_name()
        };
        Ok((me, member))
    }
}

impl actor::process_groups::Host for Ctx {
    async fn join(
        &mut self,
        group: String,
        member: String,
        topic: Option<String>,
    ) -> Result<bool, HostError> {
        journaled!(self, CallKind::PgJoin, effect = true, |this| {
            let (me, member) = this.group_member(&member)?;
            let scope = (me.tenant.as_str(), me.namespace.as_str());
            Ok(this.services.groups.join(scope, &group, &member, topic.as_deref())?)
        })
    }

    async fn leave(
        &mut self,
        group: String,
        member: String,
        topic: Option<String>,
    ) -> Result<bool, HostError> {
        journaled!(self, CallKind::PgLeave, effect = true, |this| {
            let (me, member) = this.group_member(&member)?;
            let scope = (me.tenant.as_str(), me.namespace.as_str());
            Ok(this.services.groups.leave(scope, &group, &member, topic.as_deref())?)
        })
    }

    async fn members(&mut self, group: String) -> Result<Vec<String>, HostError> {
        journaled!(self, CallKind::PgMembers, effect = false, |this| {
            let me = this.serving()?;
            Ok(this.services.groups.members((me.tenant.as_str(), me.namespace.as_str()), &group)?)
        })
    }

    async fn publish(
        &mut self,
        group: String,
        topic: Option<String>,
        data: String,
    ) -> Result<u32, HostError> {
        journaled!(self, CallKind::PgPublish, effect = true, |this| {
            let data = json(&data, "data")?;
            let me = this.serving()?.clone();
            let scope = (me.tenant.as_str(), me.namespace.as_str());
            let payload = pg_payload(&group, topic.as_deref(), data, Some(&me.local_name()));
            let outbound = Arc::clone(&this.outbound);
            // One call, one origin: each member drops it once seen from this sender.
            let origin = crate::durable::origin(&this.journal);
            let delivery = groups::publish(
                &*this.services.groups,
                scope,
                &group,
                topic.as_deref(),
                |member| {
                    outbound
                        .tell(&me, member, PG_MESSAGE, payload.as_bytes(), origin.clone())
                        .map_err(|error| plexspaces_storage::Error {
                            code: error.code,
                            message: error.message,
                        })
                },
            )?;
            for (member, error) in delivery.unreached {
                this.logs.push(
                    &me,
                    "warn",
                    Stream::Host,
                    format!("publish to {group:?}: {member} not reached: {error}"),
                );
            }
            Ok(delivery.sent)
        })
    }
}
