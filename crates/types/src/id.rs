//! Validated names: tenant, namespace, actor type, actor key, and the [`ActorId`] they form.

use std::{fmt, sync::Arc};

/// A name was refused; the message says which rule it broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {value:?}: {reason}")]
pub struct InvalidName {
    /// Which kind of name (`tenant`, `namespace`, `actor type`, `actor key`).
    pub kind: &'static str,
    /// The refused value.
    pub value: String,
    /// The rule it broke.
    pub reason: &'static str,
}

/// Longest tenant, namespace or actor type, in bytes.
const MAX_SEGMENT_LEN: usize = 128;
/// Longest actor key, in characters (so at most 1 KiB of UTF-8).
const MAX_KEY_CHARS: usize = 256;

fn check_segment(kind: &'static str, value: &str) -> Result<(), InvalidName> {
    let refuse = |reason| Err(InvalidName { kind, value: value.to_owned(), reason });
    let Some(first) = value.chars().next() else {
        return refuse("it must not be empty");
    };
    if value.len() > MAX_SEGMENT_LEN {
        return refuse("it must be at most 128 bytes long");
    }
    if !first.is_ascii_alphanumeric() {
        return refuse("it must start with an ASCII letter or digit");
    }
    if !value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) {
        return refuse("it may hold only ASCII letters, digits, '_', '-' and '.'");
    }
    Ok(())
}

fn check_key(kind: &'static str, value: &str) -> Result<(), InvalidName> {
    let refuse = |reason| Err(InvalidName { kind, value: value.to_owned(), reason });
    if value.is_empty() {
        return refuse("it must not be empty");
    }
    if value.chars().count() > MAX_KEY_CHARS {
        return refuse("it must be at most 256 characters long");
    }
    if value.chars().any(|c| c == '/' || c.is_control()) {
        return refuse("it must not contain '/' or control characters");
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $check:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Validates `value` and wraps it.
            pub fn new(value: impl AsRef<str>) -> Result<Self, InvalidName> {
                let value = value.as_ref();
                $check($kind, value)?;
                Ok(Self(Arc::from(value)))
            }

            /// The name as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidName;
            fn from_str(value: &str) -> Result<Self, InvalidName> {
                Self::new(value)
            }
        }
    };
}

name_type!(
    /// The tenant that owns an actor; part of every key in every store.
    TenantId, "tenant", check_segment
);
name_type!(
    /// A namespace inside a tenant.
    Namespace, "namespace", check_segment
);
name_type!(
    /// The type of an actor (what code handles its messages).
    ActorType, "actor type", check_segment
);
name_type!(
    /// Tells one actor of a type from another; any UTF-8 without '/' or control characters.
    ActorKey, "actor key", check_key
);

/// The key of a type's default actor: the one a target without a key names.
pub const DEFAULT_KEY: &str = "default";

/// The full name of one actor: tenant, namespace, type and key.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ActorId {
    /// The owning tenant.
    pub tenant: TenantId,
    /// The namespace inside the tenant.
    pub namespace: Namespace,
    /// The actor's type.
    pub actor_type: ActorType,
    /// The key of this actor among those of its type.
    pub key: ActorKey,
}

impl ActorId {
    /// Builds an id from its four validated parts.
    pub fn new(
        tenant: TenantId,
        namespace: Namespace,
        actor_type: ActorType,
        key: ActorKey,
    ) -> Self {
        Self { tenant, namespace, actor_type, key }
    }

    /// Parses `tenant/namespace/type/key`.
    pub fn parse(path: &str) -> Result<Self, InvalidName> {
        let mut parts = path.splitn(4, '/');
        let mut next = |kind| {
            parts.next().ok_or(InvalidName {
                kind,
                value: path.to_owned(),
                reason: "an actor id is written tenant/namespace/type/key",
            })
        };
        let tenant = TenantId::new(next("tenant")?)?;
        let namespace = Namespace::new(next("namespace")?)?;
        let actor_type = ActorType::new(next("actor type")?)?;
        let key = ActorKey::new(next("actor key")?)?;
        Ok(Self { tenant, namespace, actor_type, key })
    }

    /// The actor `target` names from this one: `type` (its default actor), `type/key` or
    /// `namespace/type/key`, always inside this actor's tenant.
    pub fn resolve(&self, target: &str) -> Result<Self, String> {
        Self::resolve_in(&self.tenant, &self.namespace, target)
    }

    /// The actor `target` names in `tenant`, a target without a namespace meaning one in
    /// `namespace`.
    pub fn resolve_in(
        tenant: &TenantId,
        namespace: &Namespace,
        target: &str,
    ) -> Result<Self, String> {
        let parts: Vec<&str> = target.split('/').collect();
        let (namespace, actor_type, key) = match parts.as_slice() {
            [actor_type] => (namespace.as_str(), *actor_type, DEFAULT_KEY),
            [actor_type, key] => (namespace.as_str(), *actor_type, *key),
            [namespace, actor_type, key] => (*namespace, *actor_type, *key),
            _ => {
                return Err(format!(
                    "a target is type, type/key or namespace/type/key, not {target:?}"
                ));
            }
        };
        let failed = |error: InvalidName| format!("target {target:?}: {error}");
        Ok(Self {
            tenant: tenant.clone(),
            namespace: Namespace::new(namespace).map_err(failed)?,
            actor_type: ActorType::new(actor_type).map_err(failed)?,
            key: ActorKey::new(key).map_err(failed)?,
        })
    }

    /// `namespace/type/key`: how an actor names itself inside its tenant.
    pub fn local_name(&self) -> String {
        format!("{}/{}/{}", self.namespace, self.actor_type, self.key)
    }

    /// The same tenant, namespace and type with another key (shares the first three names).
    pub fn with_key(&self, key: ActorKey) -> Self {
        Self { key, ..self.clone() }
    }
}

impl fmt::Display for ActorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}/{}", self.tenant, self.namespace, self.actor_type, self.key)
    }
}

impl fmt::Debug for ActorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ActorId({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_tenant(value: &str, ok: bool) {
        assert_eq!(TenantId::new(value).is_ok(), ok, "tenant {value:?}");
    }

    #[track_caller]
    fn check_key_value(value: &str, ok: bool) {
        assert_eq!(ActorKey::new(value).is_ok(), ok, "key {value:?}");
    }

    #[test]
    fn segments_are_validated() {
        check_tenant("acme", true);
        check_tenant("acme-1.eu_west", true);
        check_tenant("", false);
        check_tenant("-acme", false);
        check_tenant("ac/me", false);
        check_tenant("ac me", false);
        check_tenant(&"a".repeat(128), true);
        check_tenant(&"a".repeat(129), false);
    }

    #[test]
    fn keys_are_validated() {
        check_key_value("user@example.com", true);
        check_key_value("ключ", true);
        check_key_value("", false);
        check_key_value("a/b", false);
        check_key_value("a\nb", false);
        check_key_value(&"k".repeat(513), false);
    }

    #[test]
    fn ids_parse_and_print_the_same() {
        let id = ActorId::parse("acme/default/counter/c-1").unwrap();
        assert_eq!(id.to_string(), "acme/default/counter/c-1");
        assert_eq!(id.actor_type.as_str(), "counter");
        assert!(ActorId::parse("acme/default/counter").is_err());
        let err = ActorId::parse("acme/default/counter/").unwrap_err();
        assert_eq!(err.kind, "actor key");
        assert_eq!(err.to_string(), r#"invalid actor key "": it must not be empty"#);
    }
}
