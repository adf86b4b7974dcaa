//! Rate-limited endpoints during a claim, for both backends: what each may take now
//! and what its limit's state becomes after the claim (see
//! [`hookd_core::RateLimit`]). The backends read the state and write it back in the
//! claim's transaction, under a lock, so instances share one limit.

use std::collections::HashMap;

use hookd_core::RateLimit;

use crate::{ClaimedDelivery, StoreError, StoreResult, UnixMillis};

/// One rate-limited endpoint as a claim found it.
#[derive(Debug)]
pub(crate) struct PacedEndpoint {
    pub endpoint_id: String,
    limit: RateLimit,
    tat_us: i64,
    /// How many deliveries this claim may lease to it.
    pub allowance: u32,
}

/// The rate-limited endpoints' rows (`endpoint_id, rate_limit_per_second,
/// rate_tat_us`), with what each may take at `now`, at most `cap`.
pub(crate) fn paced_endpoints(
    rows: Vec<(String, i64, i64)>,
    now: UnixMillis,
    cap: u32,
) -> StoreResult<Vec<PacedEndpoint>> {
    let now_us = now.saturating_mul(1000);
    rows.into_iter()
        .map(|(endpoint_id, per_second, tat_us)| {
            let limit = RateLimit::new(per_second).map_err(|_| {
                StoreError::Corrupt(format!("endpoint {endpoint_id}'s rate limit {per_second}"))
            })?;
            let allowance = limit.admit(tat_us, now_us, cap);
            Ok(PacedEndpoint { endpoint_id, limit, tat_us, allowance })
        })
        .collect()
}

/// `{"endpoint id": allowance, ...}`, for the claim statement.
pub(crate) fn allowances_json(paced: &[PacedEndpoint]) -> String {
    let map: serde_json::Map<String, serde_json::Value> =
        paced.iter().map(|p| (p.endpoint_id.clone(), p.allowance.into())).collect();
    serde_json::Value::Object(map).to_string()
}

/// The new state of each rate-limited endpoint the claim took deliveries for.
pub(crate) fn advanced(
    paced: &[PacedEndpoint],
    claimed: &[ClaimedDelivery],
    now: UnixMillis,
) -> Vec<(String, i64)> {
    if paced.is_empty() {
        return Vec::new();
    }
    let mut taken: HashMap<&str, u32> = HashMap::new();
    for delivery in claimed {
        if let Some(endpoint_id) = &delivery.endpoint_id {
            *taken.entry(endpoint_id.as_str()).or_default() += 1;
        }
    }
    let now_us = now.saturating_mul(1000);
    paced
        .iter()
        .filter_map(|p| {
            let taken = *taken.get(p.endpoint_id.as_str())?;
            Some((p.endpoint_id.clone(), p.limit.advance(p.tat_us, now_us, taken)))
        })
        .collect()
}
