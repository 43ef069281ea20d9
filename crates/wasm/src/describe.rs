//! What a module says about itself (`describe`), checked before it may serve.

use serde::Deserialize;
use serde_json::Value;

use crate::{Error, Result, bindings::WORLD_VERSION};

/// A module's description.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
pub struct Description {
    /// The world version the SDK built against.
    pub world: String,
    /// The SDK and its version (`python 0.1.0`).
    #[serde(default)]
    pub sdk: String,
    /// The actor classes, in the order `handle` numbers them.
    pub classes: Vec<Class>,
}

/// One actor class of a module.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
pub struct Class {
    /// The class's name in the guest language.
    pub name: String,
    /// gen_server, gen_event, gen_fsm or workflow.
    pub behavior: String,
    /// The facets each actor of the class gets, with their configs.
    #[serde(default)]
    pub facets: Vec<FacetSpec>,
    /// The handlers.
    #[serde(default)]
    pub handlers: Vec<Handler>,
    /// Who keeps the state between messages: `host` (the guest returns it after each handler,
    /// the host commits it) or `guest` (it lives in an instance pinned to the actor: a Rust
    /// state without serde).
    #[serde(default = "host_state", skip_serializing_if = "is_host_state")]
    pub state: String,
}

/// Who keeps a class's state unless it says otherwise.
pub(crate) const HOST_STATE: &str = "host";
/// A state that lives in the guest, in an instance pinned to its actor.
pub(crate) const GUEST_STATE: &str = "guest";

fn host_state() -> String {
    HOST_STATE.to_owned()
}

fn is_host_state(state: &str) -> bool {
    state == HOST_STATE
}

impl Class {
    /// Whether the state lives in the guest (an instance pinned to each actor).
    pub fn guest_state(&self) -> bool {
        self.state == GUEST_STATE
    }
}

/// A facet a class asks for.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
pub struct FacetSpec {
    /// Its registered name.
    pub name: String,
    /// Its config.
    #[serde(default)]
    pub config: Value,
}

/// A handler of a class.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
pub struct Handler {
    /// The action it handles.
    pub name: String,
    /// handler, run, signal or query.
    pub kind: String,
}

const BEHAVIORS: [&str; 4] = ["gen_server", "gen_event", "gen_fsm", "workflow"];
const KINDS: [&str; 4] = ["handler", "run", "signal", "query"];

impl Description {
    /// Parses and checks `describe`'s JSON.
    pub fn parse(json: &str) -> Result<Self> {
        let description: Description = serde_json::from_str(json).map_err(|error| {
            Error::invalid_module(format!("the module's description is not valid: {error}"))
        })?;
        if description.world != WORLD_VERSION {
            return Err(Error::invalid_module(format!(
                "the module was built for world version {}; this node serves {WORLD_VERSION}",
                description.world
            )));
        }
        if description.classes.is_empty() {
            return Err(Error::invalid_module("the module defines no actor class"));
        }
        for class in &description.classes {
            if !BEHAVIORS.contains(&class.behavior.as_str()) {
                return Err(Error::invalid_module(format!(
                    "class {} has an unknown behavior {:?} (known: {})",
                    class.name,
                    class.behavior,
                    BEHAVIORS.join(", ")
                )));
            }
            if ![HOST_STATE, GUEST_STATE].contains(&class.state.as_str()) {
                return Err(Error::invalid_module(format!(
                    "class {} keeps its state in {:?}; the host knows {HOST_STATE:?} and {GUEST_STATE:?}",
                    class.name, class.state
                )));
            }
            if class.guest_state() && class.behavior == "workflow" {
                return Err(Error::invalid_module(format!(
                    "class {} is a workflow, whose state the host must keep: derive Serialize and \
                     Deserialize for it",
                    class.name
                )));
            }
            if let Some(handler) =
                class.handlers.iter().find(|handler| !KINDS.contains(&handler.kind.as_str()))
            {
                return Err(Error::invalid_module(format!(
                    "handler {} of class {} has an unknown kind {:?}",
                    handler.name, class.name, handler.kind
                )));
            }
        }
        Ok(description)
    }

    /// The actor type each class deploys as: the given name for a module of one class,
    /// `<name>.<snake_case class>` for each class of a module with several.
    pub fn type_names(&self, name: &str) -> Vec<String> {
        if self.classes.len() == 1 {
            return vec![name.to_owned()];
        }
        self.classes.iter().map(|class| format!("{name}.{}", snake_case(&class.name))).collect()
    }
}

/// `OrderProducer` → `order_producer`, `HTTPServer` → `http_server`.
pub fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (at, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let previous = at.checked_sub(1).map(|p| chars[p]);
            let next = chars.get(at + 1);
            let boundary = previous.is_some_and(|p| p.is_lowercase() || p.is_ascii_digit())
                || (previous.is_some_and(char::is_uppercase)
                    && next.is_some_and(|n| n.is_lowercase()));
            if boundary && !out.ends_with('_') {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_names_become_snake_case() {
        for (name, snake) in [
            ("OrderProducer", "order_producer"),
            ("HTTPServer", "http_server"),
            ("Counter", "counter"),
            ("counter_actor", "counter_actor"),
            ("Order2Processor", "order2_processor"),
        ] {
            assert_eq!(snake_case(name), snake, "{name}");
        }
    }

    #[test]
    fn descriptions_are_checked() {
        let good = r#"{"world":"0.1.0","sdk":"python 0.1.0","classes":[{"name":"A","behavior":"gen_server","facets":[],"handlers":[{"name":"x","kind":"handler"}]}]}"#;
        assert_eq!(Description::parse(good).unwrap().type_names("a"), vec!["a"]);
        let two = r#"{"world":"0.1.0","classes":[{"name":"OrderProducer","behavior":"gen_server"},{"name":"OrderProcessor","behavior":"gen_server"}]}"#;
        assert_eq!(
            Description::parse(two).unwrap().type_names("orders"),
            vec!["orders.order_producer", "orders.order_processor"]
        );
        for (bad, says) in [
            (r#"{"world":"9.0.0","classes":[]}"#, "world version 9.0.0"),
            (r#"{"world":"0.1.0","classes":[]}"#, "no actor class"),
            (r#"{"world":"0.1.0","classes":[{"name":"A","behavior":"odd"}]}"#, "unknown behavior"),
            (r#"not json"#, "not valid"),
            (
                r#"{"world":"0.1.0","classes":[{"name":"A","behavior":"gen_server","state":"disk"}]}"#,
                "keeps its state in \"disk\"",
            ),
            (
                r#"{"world":"0.1.0","classes":[{"name":"A","behavior":"workflow","state":"guest"}]}"#,
                "a workflow, whose state the host must keep",
            ),
        ] {
            let error = Description::parse(bad).unwrap_err();
            assert!(error.message.contains(says), "{bad}: {}", error.message);
        }
    }
}
