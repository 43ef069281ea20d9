//! How guests reach other actors: `host.tell` and `host.ask` resolve their target inside the
//! caller's tenant and go through the same path as an invocation from outside.

use std::{
    sync::{OnceLock, Weak},
    time::Duration,
};

use plexspaces_sdk::Message;
use plexspaces_types::{ActorId, ErrorCode};
use plexspaces_wasm::{BoxFuture, Outbound};
use serde_json::Value;

use crate::{Api, api::Inner, payload::JSON, registry::Envelope};
use plexspaces_storage::journal::Origin;

/// The node's [`Outbound`]: set once the API exists (the host is built before it).
#[derive(Default)]
pub(crate) struct GuestOutbound {
    api: OnceLock<Weak<Inner>>,
}

impl GuestOutbound {
    pub(crate) fn connect(&self, api: &Api) {
        let _already = self.api.set(api.downgrade());
    }

    fn api(&self) -> Result<Api, plexspaces_wasm::Error> {
        self.api.get().and_then(Api::upgrade).ok_or_else(|| {
            plexspaces_wasm::Error::new(ErrorCode::Unavailable, "the node is stopping")
        })
    }
}

fn invalid(message: String) -> plexspaces_wasm::Error {
    plexspaces_wasm::Error::new(ErrorCode::InvalidArguments, message)
}

/// `type`, `type/key` or `namespace/type/key`, inside the caller's tenant.
fn resolve(from: &ActorId, target: &str) -> Result<ActorId, plexspaces_wasm::Error> {
    from.resolve(target).map_err(invalid)
}

/// `{"action": action, ...payload}`.
fn message(action: &str, payload: &[u8]) -> Result<Message, plexspaces_wasm::Error> {
    let mut body = if payload.is_empty() {
        serde_json::Map::new()
    } else {
        match serde_json::from_slice::<Value>(payload) {
            Ok(Value::Object(object)) => object,
            Ok(_) => return Err(invalid("a payload is a JSON object".to_owned())),
            Err(error) => {
                return Err(plexspaces_wasm::Error::new(
                    ErrorCode::InvalidJson,
                    format!("the payload is not JSON: {error}"),
                ));
            }
        }
    };
    if action.is_empty() {
        return Err(invalid("an action is needed".to_owned()));
    }
    body.insert("action".to_owned(), Value::String(action.to_owned()));
    let payload = serde_json::to_vec(&Value::Object(body))
        .map_err(|error| plexspaces_wasm::Error::internal(error.to_string()))?;
    Ok(Message { action: action.to_owned().into(), payload, content_type: JSON.into() })
}

fn to_wasm(error: crate::Error) -> plexspaces_wasm::Error {
    let mut converted = plexspaces_wasm::Error::new(error.code, error.message);
    converted.error_type = error.error_type;
    converted.facet = error.facet;
    converted
}

impl Outbound for GuestOutbound {
    fn tell(
        &self,
        from: &ActorId,
        target: &str,
        action: &str,
        payload: &[u8],
        origin: Option<Origin>,
    ) -> Result<(), plexspaces_wasm::Error> {
        let api = self.api()?;
        let id = resolve(from, target)?;
        let msg = message(action, payload)?;
        let kind = api.kind(&id).map_err(to_wasm)?;
        let message_id = api.next_message_id();
        let envelope = Envelope { origin, ..Envelope::named(message_id) };
        kind.tell(api.system(), id, msg, envelope).map_err(to_wasm)
    }

    fn ask<'a>(
        &'a self,
        from: &'a ActorId,
        target: &'a str,
        action: &'a str,
        payload: &'a [u8],
        timeout: Option<Duration>,
        origin: Option<Origin>,
    ) -> BoxFuture<'a, Result<Vec<u8>, plexspaces_wasm::Error>> {
        Box::pin(async move {
            let api = self.api()?;
            let id = resolve(from, target)?;
            let msg = message(action, payload)?;
            let kind = api.kind(&id).map_err(to_wasm)?;
            let options = api.options();
            let timeout = timeout
                .unwrap_or_else(|| options.ask_timeout())
                .min(Duration::from_millis(options.max_ask_timeout_ms));
            kind.call(api.system(), id, msg, timeout, origin).await.map_err(to_wasm)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_resolve_inside_the_callers_tenant() {
        let from = ActorId::parse("acme/shop/orders/o-1").unwrap();
        for (target, expected) in [
            ("inventory-actor", "acme/shop/inventory-actor/default"),
            ("inventory/sku-1", "acme/shop/inventory/sku-1"),
            ("billing/payments/p-9", "acme/billing/payments/p-9"),
        ] {
            assert_eq!(resolve(&from, target).unwrap().to_string(), expected, "{target}");
        }
        for bad in ["", "a/b/c/d", "bad type", "ns/-x/k"] {
            assert_eq!(
                resolve(&from, bad).unwrap_err().code,
                ErrorCode::InvalidArguments,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_message_carries_its_action() {
        let msg = message("check_stock", br#"{"sku":"a"}"#).unwrap();
        let body: Value = serde_json::from_slice(&msg.payload).unwrap();
        assert_eq!(body, serde_json::json!({"action": "check_stock", "sku": "a"}));
        assert_eq!(message("x", b"[1]").unwrap_err().code, ErrorCode::InvalidArguments);
        assert_eq!(message("x", b"{").unwrap_err().code, ErrorCode::InvalidJson);
    }
}
