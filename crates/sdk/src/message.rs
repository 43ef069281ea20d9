//! The message an SDK actor receives.

use std::borrow::Cow;

use serde_json::Value;

/// One message: the action that picks the handler, and the payload as sent (JSON unless
/// `content_type` says otherwise).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The action; for JSON payloads, the payload's `action` field. A `&'static str`
    /// action costs no allocation.
    pub action: Cow<'static, str>,
    /// The payload bytes, untouched.
    pub payload: Vec<u8>,
    /// The payload's media type.
    pub content_type: Cow<'static, str>,
}

impl Message {
    /// A message with an explicit action and a JSON payload.
    pub fn new(action: impl Into<Cow<'static, str>>, payload: impl Into<Vec<u8>>) -> Self {
        Self {
            action: action.into(),
            payload: payload.into(),
            content_type: Cow::Borrowed("application/json"),
        }
    }

    /// A JSON message whose action is the value's `action` field (empty when it has none).
    pub fn json(value: &Value) -> Self {
        let action = value.get("action").and_then(Value::as_str).unwrap_or_default();
        Self::new(action.to_owned(), value.to_string())
    }

    /// The action that picks the handler.
    pub fn action(&self) -> &str {
        &self.action
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_action_comes_from_the_json_payload() {
        let message = Message::json(&json!({"action": "increment", "amount": 5}));
        assert_eq!(message.action(), "increment");
        let payload: Value = serde_json::from_slice(&message.payload).unwrap();
        assert_eq!(payload["amount"], 5);
        assert_eq!(Message::json(&json!({"amount": 5})).action(), "");
        assert_eq!(Message::json(&json!({"action": 7})).action(), "");
    }
}
