//! Identifiers: 32 lowercase hex characters (128 random bits), parsed once at the edge.

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
