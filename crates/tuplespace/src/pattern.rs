//! Patterns: per field, anything (`null`), any value of a kind (`{"$type": "string"}`), or one
//! exact value.

use std::hash::{BuildHasher, Hash, Hasher};

use serde_json::Value;

use crate::{Error, MAX_ARITY, Result, Tuple};

/// The kinds a typed wildcard names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Any JSON string.
    String,
    /// A number without a fraction (`3`, `-7`).
    Int,
    /// Any number.
    Number,
    /// `true` or `false`.
    Bool,
    /// Any array.
    Array,
    /// Any object.
    Object,
}

impl Kind {
    const NAMES: [(&'static str, Kind); 6] = [
        ("string", Kind::String),
        ("int", Kind::Int),
        ("number", Kind::Number),
        ("bool", Kind::Bool),
        ("array", Kind::Array),
        ("object", Kind::Object),
    ];

    fn parse(name: &str) -> Option<Self> {
        Self::NAMES.iter().find(|(known, _)| *known == name).map(|(_, kind)| *kind)
    }

    fn holds(self, value: &Value) -> bool {
        match self {
            Kind::String => value.is_string(),
            Kind::Int => value.is_i64() || value.is_u64(),
            Kind::Number => value.is_number(),
            Kind::Bool => value.is_boolean(),
            Kind::Array => value.is_array(),
            Kind::Object => value.is_object(),
        }
    }
}

/// One field of a pattern.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    /// Matches any value (`null` in a pattern).
    Any,
    /// Matches any value of the kind (`{"$type": "string"}`).
    Typed(Kind),
    /// Matches this value only (numbers compare as JSON writes them: `1` is not `1.0`).
    Exact(Value, u64),
}

/// A pattern: a tuple of the same arity whose fields each match.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern {
    pub(crate) fields: Vec<Field>,
}

/// The hash of a field value, the same in every space of the process.
pub(crate) fn value_hash(value: &Value) -> u64 {
    let mut hasher = foldhash::fast::FixedState::with_seed(0x5eed).build_hasher();
    match value {
        Value::Null => 0u8.hash(&mut hasher),
        Value::Bool(b) => (1u8, *b).hash(&mut hasher),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                (2u8, i).hash(&mut hasher);
            } else if let Some(u) = n.as_u64() {
                (3u8, u).hash(&mut hasher);
            } else {
                (4u8, n.as_f64().unwrap_or(0.0).to_bits()).hash(&mut hasher);
            }
        }
        Value::String(s) => (5u8, s.as_str()).hash(&mut hasher),
        other => (6u8, other.to_string()).hash(&mut hasher),
    }
    hasher.finish()
}

pub(crate) fn check_arity(len: usize, what: &str) -> Result<()> {
    if len == 0 {
        return Err(Error::invalid(format!("a {what} needs at least one field")));
    }
    if len > MAX_ARITY {
        return Err(Error::invalid(format!("a {what} has at most {MAX_ARITY} fields, not {len}")));
    }
    Ok(())
}

impl Pattern {
    /// A pattern from its fields.
    pub fn new(fields: Vec<Field>) -> Result<Self> {
        check_arity(fields.len(), "pattern")?;
        Ok(Self { fields })
    }

    /// A pattern from its JSON form: an array whose `null`s are wildcards, whose
    /// `{"$type": KIND}` objects are typed wildcards (string, int, number, bool, array,
    /// object), and whose other values must be equal.
    pub fn from_json(value: &Value) -> Result<Self> {
        let Value::Array(items) = value else {
            return Err(Error::invalid("a pattern is a JSON array, like [\"order\", null]"));
        };
        let fields = items
            .iter()
            .map(|item| match item {
                Value::Null => Ok(Field::Any),
                Value::Object(map) if map.len() == 1 && map.contains_key("$type") => {
                    let name = map["$type"].as_str().unwrap_or("");
                    Kind::parse(name).map(Field::Typed).ok_or_else(|| {
                        let known: Vec<&str> = Kind::NAMES.iter().map(|(name, _)| *name).collect();
                        Error::invalid(format!(
                            "unknown $type {:?} in the pattern (known: {})",
                            map["$type"],
                            known.join(", ")
                        ))
                    })
                }
                exact => Ok(Field::Exact(exact.clone(), value_hash(exact))),
            })
            .collect::<Result<Vec<_>>>()?;
        Self::new(fields)
    }

    /// Parses a pattern from JSON text.
    pub fn parse(text: &str) -> Result<Self> {
        let value: Value = serde_json::from_str(text)
            .map_err(|error| Error::invalid(format!("the pattern is not JSON: {error}")))?;
        Self::from_json(&value)
    }

    /// How many fields it has.
    pub fn arity(&self) -> usize {
        self.fields.len()
    }

    /// Whether `tuple` (with its field hashes) matches.
    pub(crate) fn matches_hashed(&self, tuple: &[Value], hashes: &[u64]) -> bool {
        tuple.len() == self.fields.len()
            && self.fields.iter().zip(tuple.iter().zip(hashes)).all(|(field, (value, hash))| {
                match field {
                    Field::Any => true,
                    Field::Typed(kind) => kind.holds(value),
                    Field::Exact(exact, exact_hash) => exact_hash == hash && exact == value,
                }
            })
    }

    /// Whether `tuple` matches.
    pub fn matches(&self, tuple: &Tuple) -> bool {
        let hashes: Vec<u64> = tuple.iter().map(value_hash).collect();
        self.matches_hashed(tuple, &hashes)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn tuple(value: Value) -> Tuple {
        value.as_array().cloned().unwrap_or_default()
    }

    #[test]
    fn wildcards_typed_wildcards_and_exact_values() {
        let pattern = Pattern::from_json(&json!(["order", null, {"$type": "int"}])).unwrap();
        assert!(pattern.matches(&tuple(json!(["order", "a", 3]))));
        assert!(pattern.matches(&tuple(json!(["order", {"x": 1}, -3]))));
        assert!(!pattern.matches(&tuple(json!(["order", "a", 3.5]))));
        assert!(!pattern.matches(&tuple(json!(["order", "a", "3"]))));
        assert!(!pattern.matches(&tuple(json!(["other", "a", 3]))));
        // The arity is part of the pattern.
        assert!(!pattern.matches(&tuple(json!(["order", "a"]))));
        assert!(!pattern.matches(&tuple(json!(["order", "a", 3, 4]))));
        let exact = Pattern::from_json(&json!([[1, 2], {"k": "v"}, true, 1])).unwrap();
        assert!(exact.matches(&tuple(json!([[1, 2], {"k": "v"}, true, 1]))));
        assert!(!exact.matches(&tuple(json!([[1, 2], {"k": "v"}, true, 1.0]))));
    }

    #[test]
    fn bad_patterns_are_refused_with_a_reason() {
        for (text, says) in [
            ("{}", "JSON array"),
            ("[]", "at least one field"),
            (r#"[{"$type": "date"}]"#, "unknown $type"),
            ("[1,", "not JSON"),
        ] {
            let error = Pattern::parse(text).unwrap_err();
            assert!(error.message.contains(says), "{text}: {error}");
            assert_eq!(error.code, plexspaces_types::ErrorCode::InvalidArguments);
        }
        let long = format!("[{}]", vec!["1"; MAX_ARITY + 1].join(","));
        assert!(Pattern::parse(&long).unwrap_err().message.contains("at most"));
    }
}
