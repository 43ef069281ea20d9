//! Process groups, in the style of Erlang's `pg`: named groups of actors per tenant and
//! namespace, joined and left by name, with topics inside a group.
//!
//! A member joins a whole group (it receives every publish to it) or one or more of its topics
//! (it receives the publishes to those topics). Membership belongs to the actor's id, not to
//! an activation: a virtual actor that is deactivated stays a member, and a publish to it
//! activates it again. An actor stopped for good leaves every group ([`Groups::leave_all`]).
//! Delivery is the caller's: [`Groups::recipients`] says who gets a publish.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::atomic::{AtomicU64, Ordering},
};

use parking_lot::Mutex;
use plexspaces_types::ErrorCode;

use crate::{Error, Result};

/// The longest group or topic name, in characters.
pub const MAX_NAME: usize = 256;

/// The longest member name (`namespace/type/key`), in bytes.
pub const MAX_MEMBER: usize = 2048;

/// The most members one group holds.
pub const MAX_MEMBERS: usize = 100_000;

/// Whose groups: tenant and namespace.
pub type Scope<'a> = (&'a str, &'a str);

/// What a member receives.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Topics {
    /// Every publish to the group.
    All,
    /// Publishes to these topics.
    Only(BTreeSet<String>),
}

type GroupKey = (String, String, String);

/// The process groups of a node.
#[derive(Debug, Default)]
pub struct Groups {
    groups: Mutex<HashMap<GroupKey, BTreeMap<String, Topics>>>,
    dropped: AtomicU64,
}

/// One group and its members, for listings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The group's name.
    pub name: String,
    /// How many members it has.
    pub members: usize,
}

fn check(what: &str, name: &str) -> Result<()> {
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(Error::new(
            ErrorCode::InvalidArguments,
            format!("a {what} name is 1 to {MAX_NAME} characters"),
        ));
    }
    Ok(())
}

fn key(scope: Scope<'_>, group: &str) -> GroupKey {
    (scope.0.to_owned(), scope.1.to_owned(), group.to_owned())
}

impl Groups {
    /// Adds `member` to `group` (to one of its topics when `topic` is given); true when that
    /// changed anything. Joining twice is one membership.
    pub fn join(
        &self,
        scope: Scope<'_>,
        group: &str,
        member: &str,
        topic: Option<&str>,
    ) -> Result<bool> {
        check("group", group)?;
        if member.is_empty() || member.len() > MAX_MEMBER {
            return Err(Error::new(
                ErrorCode::InvalidArguments,
                format!("a member name is 1 to {MAX_MEMBER} bytes"),
            ));
        }
        if let Some(topic) = topic {
            check("topic", topic)?;
        }
        let mut groups = self.groups.lock();
        let members = groups.entry(key(scope, group)).or_default();
        if !members.contains_key(member) && members.len() >= MAX_MEMBERS {
            return Err(Error::new(
                ErrorCode::InvalidState,
                format!("group {group:?} has {MAX_MEMBERS} members, the most it may have"),
            ));
        }
        let changed = match (members.get_mut(member), topic) {
            (Some(Topics::All), _) => false,
            (Some(Topics::Only(topics)), Some(topic)) => topics.insert(topic.to_owned()),
            (Some(subscribed), None) => {
                *subscribed = Topics::All;
                true
            }
            (None, topic) => {
                let topics = match topic {
                    None => Topics::All,
                    Some(topic) => Topics::Only(BTreeSet::from([topic.to_owned()])),
                };
                members.insert(member.to_owned(), topics);
                true
            }
        };
        Ok(changed)
    }

    /// Takes `member` out of `group` (out of one topic only when `topic` is given); true when
    /// it was in.
    pub fn leave(
        &self,
        scope: Scope<'_>,
        group: &str,
        member: &str,
        topic: Option<&str>,
    ) -> Result<bool> {
        check("group", group)?;
        if let Some(topic) = topic {
            check("topic", topic)?;
        }
        let mut groups = self.groups.lock();
        let group_key = key(scope, group);
        let Some(members) = groups.get_mut(&group_key) else { return Ok(false) };
        let left = match (members.get_mut(member), topic) {
            (None, _) => false,
            (Some(_), None) => members.remove(member).is_some(),
            (Some(Topics::All), Some(_)) => false,
            (Some(Topics::Only(topics)), Some(topic)) => {
                let removed = topics.remove(topic);
                if topics.is_empty() {
                    members.remove(member);
                }
                removed
            }
        };
        if members.is_empty() {
            groups.remove(&group_key);
        }
        Ok(left)
    }

    /// The members of `group`, in order.
    pub fn members(&self, scope: Scope<'_>, group: &str) -> Result<Vec<String>> {
        check("group", group)?;
        let groups = self.groups.lock();
        Ok(groups
            .get(&key(scope, group))
            .map(|members| members.keys().cloned().collect())
            .unwrap_or_default())
    }

    /// Who receives a publish to `group` (and `topic`): the members of the whole group, and
    /// of that topic.
    pub fn recipients(
        &self,
        scope: Scope<'_>,
        group: &str,
        topic: Option<&str>,
    ) -> Result<Vec<String>> {
        check("group", group)?;
        if let Some(topic) = topic {
            check("topic", topic)?;
        }
        let groups = self.groups.lock();
        let Some(members) = groups.get(&key(scope, group)) else { return Ok(Vec::new()) };
        Ok(members
            .iter()
            .filter(|(_, topics)| match (topics, topic) {
                (Topics::All, _) => true,
                (Topics::Only(_), None) => false,
                (Topics::Only(topics), Some(topic)) => topics.contains(topic),
            })
            .map(|(member, _)| member.clone())
            .collect())
    }

    /// The groups of a namespace with their sizes, by name.
    pub fn list(&self, scope: Scope<'_>) -> Vec<Summary> {
        let groups = self.groups.lock();
        let mut summaries: Vec<Summary> = groups
            .iter()
            .filter(|(key, _)| key.0 == scope.0 && key.1 == scope.1)
            .map(|(key, members)| Summary { name: key.2.clone(), members: members.len() })
            .collect();
        summaries.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        summaries
    }

    /// Takes every member of `tenant` that `gone` picks out of every group of the tenant
    /// (an actor stopped for good, or all actors of an undeployed type); how many
    /// memberships ended.
    pub fn leave_all(&self, tenant: &str, gone: impl Fn(&str) -> bool) -> usize {
        let mut groups = self.groups.lock();
        let mut ended = 0;
        groups.retain(|key, members| {
            if key.0 == tenant {
                let before = members.len();
                members.retain(|member, _| !gone(member));
                ended += before - members.len();
            }
            !members.is_empty()
        });
        ended
    }

    /// Counts a group message its receiver had no handler for.
    pub fn count_dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Group messages dropped because their receiver had no handler for them.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// What a group store does, for every backend: the embedded [`Groups`] here; a shared store
/// for a cluster implements the same.
pub trait GroupBackend: Send + Sync + std::fmt::Debug + 'static {
    /// Adds a member to a group or one of its topics; true when that changed anything.
    fn join(
        &self,
        scope: Scope<'_>,
        group: &str,
        member: &str,
        topic: Option<&str>,
    ) -> Result<bool>;

    /// Takes a member out of a group (of one topic only, when given); true when it was in.
    fn leave(
        &self,
        scope: Scope<'_>,
        group: &str,
        member: &str,
        topic: Option<&str>,
    ) -> Result<bool>;

    /// The members, in order.
    fn members(&self, scope: Scope<'_>, group: &str) -> Result<Vec<String>>;

    /// Who receives a publish to `group` (and `topic`).
    fn recipients(&self, scope: Scope<'_>, group: &str, topic: Option<&str>)
    -> Result<Vec<String>>;

    /// The groups of a namespace with their sizes.
    fn list(&self, scope: Scope<'_>) -> Vec<Summary>;

    /// Ends the memberships of the members of `tenant` that `gone` picks; how many.
    fn leave_all(&self, tenant: &str, gone: &dyn Fn(&str) -> bool) -> usize;

    /// Counts a group message its receiver had no handler for.
    fn count_dropped(&self);

    /// Group messages dropped for want of a handler.
    fn dropped(&self) -> u64;
}

impl GroupBackend for Groups {
    fn join(
        &self,
        scope: Scope<'_>,
        group: &str,
        member: &str,
        topic: Option<&str>,
    ) -> Result<bool> {
        Groups::join(self, scope, group, member, topic)
    }

    fn leave(
        &self,
        scope: Scope<'_>,
        group: &str,
        member: &str,
        topic: Option<&str>,
    ) -> Result<bool> {
        Groups::leave(self, scope, group, member, topic)
    }

    fn members(&self, scope: Scope<'_>, group: &str) -> Result<Vec<String>> {
        Groups::members(self, scope, group)
    }

    fn recipients(
        &self,
        scope: Scope<'_>,
        group: &str,
        topic: Option<&str>,
    ) -> Result<Vec<String>> {
        Groups::recipients(self, scope, group, topic)
    }

    fn list(&self, scope: Scope<'_>) -> Vec<Summary> {
        Groups::list(self, scope)
    }

    fn leave_all(&self, tenant: &str, gone: &dyn Fn(&str) -> bool) -> usize {
        Groups::leave_all(self, tenant, gone)
    }

    fn count_dropped(&self) {
        Groups::count_dropped(self);
    }

    fn dropped(&self) -> u64 {
        Groups::dropped(self)
    }
}

/// What a publish did: how many members it was sent to, and the members it could not reach
/// (with why), for the caller to log.
#[derive(Debug, Default)]
pub struct Delivery {
    /// Members it was sent to.
    pub sent: u32,
    /// Members it could not reach, and why.
    pub unreached: Vec<(String, Error)>,
}

/// Sends a publish to `group` (and `topic`) through `send`, once per recipient, in member
/// order; a member whose actor is gone for good (`send` answers `not_found`: its type is no
/// longer deployed) leaves the group.
pub fn publish(
    groups: &dyn GroupBackend,
    scope: Scope<'_>,
    group: &str,
    topic: Option<&str>,
    mut send: impl FnMut(&str) -> Result<()>,
) -> Result<Delivery> {
    let mut delivery = Delivery::default();
    for member in groups.recipients(scope, group, topic)? {
        match send(&member) {
            Ok(()) => delivery.sent += 1,
            Err(error) if error.code == ErrorCode::NotFound => {
                groups.leave(scope, group, &member, None)?;
            }
            Err(error) => delivery.unreached.push((member, error)),
        }
    }
    Ok(delivery)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCOPE: Scope<'static> = ("acme", "chat");

    #[test]
    fn members_join_whole_groups_or_topics() {
        let groups = Groups::default();
        assert!(groups.join(SCOPE, "room", "chat/member/a", None).unwrap());
        assert!(!groups.join(SCOPE, "room", "chat/member/a", None).unwrap());
        assert!(groups.join(SCOPE, "room", "chat/member/b", Some("sports")).unwrap());
        assert_eq!(groups.members(SCOPE, "room").unwrap(), ["chat/member/a", "chat/member/b"]);
        assert_eq!(groups.recipients(SCOPE, "room", None).unwrap(), ["chat/member/a"]);
        assert_eq!(
            groups.recipients(SCOPE, "room", Some("sports")).unwrap(),
            ["chat/member/a", "chat/member/b"]
        );
        assert!(groups.recipients(("acme", "other"), "room", None).unwrap().is_empty());
        assert!(groups.leave(SCOPE, "room", "chat/member/b", Some("sports")).unwrap());
        assert_eq!(groups.members(SCOPE, "room").unwrap(), ["chat/member/a"]);
        assert!(!groups.leave(SCOPE, "room", "chat/member/b", None).unwrap());
        assert!(groups.leave(SCOPE, "room", "chat/member/a", None).unwrap());
        assert!(groups.list(SCOPE).is_empty(), "an empty group is gone");
    }

    #[test]
    fn an_actor_stopped_for_good_leaves_every_group() {
        let groups = Groups::default();
        for group in ["a", "b"] {
            groups.join(SCOPE, group, "chat/member/x", None).unwrap();
            groups.join(SCOPE, group, "chat/member/y", Some("t")).unwrap();
        }
        groups.join(("other", "chat"), "a", "chat/member/x", None).unwrap();
        assert_eq!(groups.leave_all("acme", |member| member == "chat/member/x"), 2);
        assert_eq!(groups.members(SCOPE, "a").unwrap(), ["chat/member/y"]);
        assert_eq!(groups.members(("other", "chat"), "a").unwrap(), ["chat/member/x"]);
    }

    #[test]
    fn names_are_checked() {
        let groups = Groups::default();
        for bad in ["", &"g".repeat(MAX_NAME + 1)] {
            let error = groups.join(SCOPE, bad, "m", None).unwrap_err();
            assert_eq!(error.code, ErrorCode::InvalidArguments);
        }
        assert!(groups.join(SCOPE, "g", "m", Some("")).is_err());
    }
}
