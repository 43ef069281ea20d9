//! The admin token: when set, every request on every port carries it as a bearer token.

use axum::http::HeaderValue;

/// Whether an `Authorization` header carries `Bearer <token>`, compared in constant time.
pub(crate) fn bearer_matches(header: Option<&HeaderValue>, token: &str) -> bool {
    let Some(presented) = header.and_then(|value| value.to_str().ok()) else { return false };
    let Some(presented) = presented.strip_prefix("Bearer ") else { return false };
    constant_time_eq(presented.trim().as_bytes(), token.as_bytes())
}

/// Equal bytes, in time that depends only on the lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |differ, (x, y)| differ | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_bearer_token_passes() {
        let header = |text: &str| HeaderValue::from_str(text).unwrap();
        assert!(bearer_matches(Some(&header("Bearer s3cret")), "s3cret"));
        assert!(!bearer_matches(Some(&header("Bearer s3cre")), "s3cret"));
        assert!(!bearer_matches(Some(&header("Bearer s3cret2")), "s3cret"));
        assert!(!bearer_matches(Some(&header("Basic s3cret")), "s3cret"));
        assert!(!bearer_matches(None, "s3cret"));
    }
}
