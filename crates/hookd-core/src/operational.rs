//! Operational events: what hookd tells the operator about its customers' endpoints
//! (`/admin/v1/operational-endpoints`). They are ordinary events of one reserved
//! account, the operations account, so the same engine stores, signs, delivers and
//! retries them; nothing about them reaches a customer.

use crate::AccountId;

/// The reserved account whose endpoints are the operator's operational endpoints. It
/// has no API key, so no customer can reach it. All zeros: hookd's own ids are random
/// 128-bit values, which are never all zero in practice.
pub const OPERATIONS_ACCOUNT_ID: &str = "00000000000000000000000000000000";

/// The reserved operations account.
pub fn operations_account() -> AccountId {
    // A constant that is a well-formed id; the unit test below checks it parses.
    AccountId::parse(OPERATIONS_ACCOUNT_ID).unwrap_or_else(|_| unreachable!("a well-formed constant"))
}

/// A failure run at least this long makes its first success an `endpoint.recovered`.
pub const RECOVERED_AFTER_MS: i64 = 3_600_000;

/// The kinds of operational event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationalEventType {
    /// An endpoint was disabled: by hookd after failing too long, or by its owner.
    EndpointDisabled,
    /// A disabled endpoint was enabled again.
    EndpointEnabled,
    /// A delivery failed for good: its retry schedule ran out.
    DeliveryExhausted,
    /// An endpoint succeeded again after failing for at least an hour.
    EndpointRecovered,
}

impl OperationalEventType {
    pub const ALL: [Self; 4] =
        [Self::EndpointDisabled, Self::EndpointEnabled, Self::DeliveryExhausted, Self::EndpointRecovered];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::EndpointDisabled => "endpoint.disabled",
            Self::EndpointEnabled => "endpoint.enabled",
            Self::DeliveryExhausted => "delivery.exhausted",
            Self::EndpointRecovered => "endpoint.recovered",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    /// What the event says, for the catalog the admin API shows.
    pub fn description(self) -> &'static str {
        match self {
            Self::EndpointDisabled => {
                "An endpoint was disabled: by hookd after failing with no success for --disable-after \
                 (reason \"failing\"), or by its owner (reason \"owner\")."
            }
            Self::EndpointEnabled => "A disabled endpoint was enabled again by its owner.",
            Self::DeliveryExhausted => "A delivery failed for good: its retry schedule ran out.",
            Self::EndpointRecovered => {
                "An endpoint answered with success after failing for at least an hour."
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operations_account_id_is_well_formed() {
        assert_eq!(operations_account().as_str(), OPERATIONS_ACCOUNT_ID);
    }

    #[test]
    fn event_types_round_trip_through_their_names() {
        for kind in OperationalEventType::ALL {
            assert_eq!(OperationalEventType::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(OperationalEventType::parse("endpoint.deleted"), None);
    }
}
