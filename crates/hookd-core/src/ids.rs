//! Identifiers: 32 lowercase hex characters, parsed once at the edge. Most are 128
//! random bits; ids minted in bulk (events, deliveries) lead with their creation time.

use std::fmt;

use crate::random::random_bytes;

/// A string that is not a well-formed id. The API answers it like an unknown id (404).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a 32-character lowercase hex id")]
pub struct InvalidId;

macro_rules! hex_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// A new random id from the OS CSPRNG.
            pub fn new_random() -> Self {
                Self(hex::encode(random_bytes::<16>()))
            }

            /// A new id that sorts by creation time: 48 bits of `at_ms` (Unix
            /// milliseconds), then 80 random bits, laid out as in UUIDv7. Rows keyed
            /// by such ids are appended at the right edge of their indexes rather than
            /// on a random page, so a batch of inserts dirties a few pages, not one per
            /// row. 80 random bits keep them unguessable; the time they reveal is the
            /// record's own creation time, which the API shows anyway.
            pub fn new_time_ordered(at_ms: i64) -> Self {
                let millis = u64::try_from(at_ms).unwrap_or(0) & 0xFFFF_FFFF_FFFF;
                let mut bytes = random_bytes::<16>();
                bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
                Self(hex::encode(bytes))
            }

            /// Accepts exactly 32 lowercase hex characters.
            pub fn parse(raw: &str) -> Result<Self, InvalidId> {
                let well_formed = raw.len() == 32
                    && raw.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
                if well_formed { Ok(Self(raw.to_owned())) } else { Err(InvalidId) }
            }

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
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
    };
}

hex_id!(
    /// A customer account; every customer resource belongs to exactly one.
    AccountId
);
hex_id!(
    /// A registered webhook endpoint.
    EndpointId
);
hex_id!(
    /// A published event; also the receiver's de-duplication key (`Heygen-Event-Id`).
    EventId
);
hex_id!(
    /// One event's delivery to one destination (an endpoint or a callback URL).
    DeliveryId
);
hex_id!(
    /// A video job.
    VideoId
);
hex_id!(
    /// The public half of an API key, used to find and revoke it.
    ApiKeyId
);
hex_id!(
    /// A customer portal session: minted by the operator as a one-time link, then
    /// redeemed for the credential the portal's page presents.
    PortalSessionId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_are_32_lowercase_hex_and_parse_back() {
        let id = EndpointId::new_random();
        assert_eq!(EndpointId::parse(id.as_str()), Ok(id.clone()));
        assert_ne!(id, EndpointId::new_random());
    }

    #[test]
    fn time_ordered_ids_sort_by_time_and_stay_distinct() {
        let earlier = EventId::new_time_ordered(1_700_000_000_000);
        let later = EventId::new_time_ordered(1_700_000_000_001);
        let same_ms = EventId::new_time_ordered(1_700_000_000_001);
        assert!(earlier < later, "{earlier} sorts after {later}");
        assert_ne!(later, same_ms, "80 random bits tell ids of one millisecond apart");
        assert_eq!(&later.as_str()[..12], "018bcfe56801");
        assert_eq!(EventId::parse(later.as_str()), Ok(later.clone()));
    }

    #[test]
    fn parse_rejects_wrong_length_case_and_alphabet() {
        for raw in [
            "",
            "abc",
            "0123456789abcdef0123456789abcde",
            "0123456789abcdef0123456789abcdef0",
            "0123456789ABCDEF0123456789ABCDEF",
            "0123456789abcdeg0123456789abcdef",
            "../../etc/passwd/0123456789abcde",
        ] {
            assert_eq!(AccountId::parse(raw), Err(InvalidId), "accepted {raw:?}");
        }
    }
}
