// From the user-facing examples, as written, plus the imports and the scoring method the
// excerpt leaves to the user.
use plexspaces_sdk::prelude::*;

use plexspaces_core::{Facet, FacetError, InterceptResult};

pub struct FraudDetectionFacet {
    threshold: f64,
}

#[async_trait]
impl Facet for FraudDetectionFacet {
    fn name(&self) -> &str { "fraud_detection" }
    fn priority(&self) -> u32 { 200 }  // Run after security, before domain logic

    async fn before_method(
        &mut self, method: &str, payload: &[u8]
    ) -> Result<InterceptResult, FacetError> {
        let score = self.score_transaction(payload).await?;
        if score > self.threshold {
            return Err(FacetError::Custom("fraud_detected".into()));
        }
        Ok(InterceptResult::Continue)
    }
}
// "Register it once, attach it to any actor by name."

impl FraudDetectionFacet {
    /// The user's scoring: here, the transaction's `amount` over 10,000, capped at 1.
    async fn score_transaction(&self, payload: &[u8]) -> Result<f64, FacetError> {
        let transaction: Value = serde_json::from_slice(payload)
            .map_err(|error| FacetError::Custom(format!("unreadable transaction: {error}")))?;
        let amount = transaction["amount"].as_f64().unwrap_or(0.0);
        Ok((amount / 10_000.0).min(1.0))
    }
}

/// Registers the facet once; any actor can then attach it by name, with its own threshold.
pub fn register(registry: &mut FacetRegistry) {
    registry.register("fraud_detection", |config| {
        let threshold = config["threshold"].as_f64().unwrap_or(0.8);
        Ok(Box::new(FraudDetectionFacet { threshold }))
    });
}
