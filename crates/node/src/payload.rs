//! What an invocation's payload says: whether its media type is JSON, and the action a JSON
//! payload names.

use plexspaces_types::ErrorCode;

use crate::{Error, Result};

/// The JSON media type.
pub(crate) const JSON: &str = "application/json";

/// Whether a media type is JSON (`application/json`, `application/*+json`, with parameters).
pub(crate) fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    let prefix = "application/";
    essence.eq_ignore_ascii_case(JSON)
        || (essence.len() > prefix.len() + "+json".len()
            && essence.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
            && essence.as_bytes()[essence.len() - 5..].eq_ignore_ascii_case(b"+json"))
}

/// The action a payload names: a JSON object's `action` field (empty when it has none).
pub(crate) fn action_of(payload: &[u8], content_type: &str) -> Result<String> {
    if !is_json(content_type) {
        return Ok(String::new());
    }
    let invalid_json = |error: serde_json::Error| {
        Error::new(ErrorCode::InvalidJson, format!("the payload is not valid JSON: {error}"))
    };
    let mut deserializer = serde_json::Deserializer::from_slice(payload);
    let action = serde::Deserializer::deserialize_any(&mut deserializer, action::Visitor)
        .map_err(invalid_json)?;
    deserializer.end().map_err(invalid_json)?;
    match action {
        action::Field::Missing => Ok(String::new()),
        action::Field::Name(name) => Ok(name),
        action::Field::NotAString(other) => Err(Error::new(
            ErrorCode::InvalidArguments,
            format!("the payload's action must be a string, not {other}"),
        )),
    }
}

/// Reads a JSON payload's `action` field while checking the whole payload is JSON, without
/// building the payload's value.
mod action {
    use serde::de::{self, IgnoredAny, MapAccess, SeqAccess};

    pub(super) enum Field {
        Missing,
        Name(String),
        NotAString(serde_json::Value),
    }

    pub(super) struct Visitor;

    impl<'de> de::Visitor<'de> for Visitor {
        type Value = Field;

        fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            formatter.write_str("JSON")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Field, A::Error> {
            let mut field = Field::Missing;
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                if key == "action" {
                    field = match map.next_value::<serde_json::Value>()? {
                        serde_json::Value::String(name) => Field::Name(name),
                        serde_json::Value::Null => Field::Missing,
                        other => Field::NotAString(other),
                    };
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(field)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Field, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(Field::Missing)
        }

        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Field, E> {
            Ok(Field::Missing)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Field, E> {
            Ok(Field::Missing)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Field, E> {
            Ok(Field::Missing)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Field, E> {
            Ok(Field::Missing)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Field, E> {
            Ok(Field::Missing)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Field, E> {
            Ok(Field::Missing)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_action_comes_from_a_json_object_and_the_whole_payload_must_be_json() {
        let json = "application/json";
        assert_eq!(action_of(br#"{"n":[1,{"a":2}],"action":"go"}"#, json), Ok("go".to_owned()));
        assert_eq!(action_of(br#"{"action":null}"#, json), Ok(String::new()));
        assert_eq!(action_of(br#"[1,2]"#, json), Ok(String::new()));
        assert_eq!(action_of(br#""text""#, json), Ok(String::new()));
        assert_eq!(action_of(b"binary", "application/octet-stream"), Ok(String::new()));
        for media in
            ["application/json", "Application/JSON; charset=utf-8", "application/problem+json"]
        {
            assert!(is_json(media), "{media}");
        }
        for media in [
            "text/plain",
            "application/+json",
            "+json",
            "application/jsonx",
            "ü/+json",
            "applicatioüüüü+json",
        ] {
            assert!(!is_json(media), "{media}");
        }
        assert_eq!(
            action_of(br#"{"action":7}"#, json).unwrap_err().code,
            ErrorCode::InvalidArguments
        );
        for broken in [&b"{"[..], b"{\"action\":\"go\"} trailing", b"[1,", b"", b"\xff"] {
            assert_eq!(
                action_of(broken, json).unwrap_err().code,
                ErrorCode::InvalidJson,
                "{broken:?}"
            );
        }
        // Deep nesting is skipped without recursion that could overflow the stack.
        let deep = format!("{{\"x\":{}{}}}", "[".repeat(500_000), "]".repeat(500_000));
        assert_eq!(action_of(deep.as_bytes(), json), Ok(String::new()));
    }
}
