//! Webhook endpoint rules: the URL a delivery may go to, the event filter and the
//! entity scope. Each is a type that can only hold a valid value.

use std::fmt;
use std::net::IpAddr;

use url::{Host, Url};

use crate::catalog::EventCatalog;
use crate::destination::{DestinationPolicy, RefusedDestination};

const MAX_URL_LEN: usize = 2048;
const MAX_ENTITY_ID_LEN: usize = 255;

/// What the operator allows for endpoint and callback URLs.
#[derive(Debug, Clone, Default)]
pub struct UrlRules {
    /// `--allow-http`: accept `http://` (development only).
    pub allow_http: bool,
    pub destinations: DestinationPolicy,
}

/// Why a URL is refused. Each message completes a sentence that names the field
/// (`'url' must use https`), written for the customer who sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("must be at most 2048 characters")]
    TooLong,
    #[error("must not contain whitespace or control characters")]
    ForbiddenCharacter,
    #[error("is not a valid absolute URL")]
    Unparseable,
    #[error("must use https")]
    SchemeNotHttps,
    #[error("must use http or https")]
    SchemeNotHttp,
    #[error("must not contain a user name or password")]
    HasCredentials,
    #[error("must not contain a fragment")]
    HasFragment,
    #[error("must have a host")]
    NoHost,
    #[error("must name its host by an IP address or a DNS name (letters, digits, '-' and '.')")]
    InvalidHostName,
    #[error("must be a publicly accessible URL: {0}")]
    Refused(RefusedDestination),
    #[error("must be a publicly accessible URL: localhost is refused")]
    Localhost,
}

/// An absolute URL that passed every create-time rule. Names that resolve to refused
/// addresses are caught again at connect time, where DNS is actually consulted.
#[derive(Clone, PartialEq, Eq)]
pub struct EndpointUrl(String);

impl EndpointUrl {
    pub fn parse(raw: &str, rules: &UrlRules) -> Result<Self, UrlError> {
        if raw.len() > MAX_URL_LEN {
            return Err(UrlError::TooLong);
        }
        // The URL parser silently strips some of these, so reject them before it runs.
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(UrlError::ForbiddenCharacter);
        }
        let url = Url::parse(raw).map_err(|_| UrlError::Unparseable)?;
        match url.scheme() {
            "https" => {}
            "http" if rules.allow_http => {}
            _ if rules.allow_http => return Err(UrlError::SchemeNotHttp),
            _ => return Err(UrlError::SchemeNotHttps),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UrlError::HasCredentials);
        }
        if url.fragment().is_some() {
            return Err(UrlError::HasFragment);
        }
        // `Url` has already normalised decimal, octal, hex and short IPv4 spellings,
        // so `http://2130706433/` arrives here as 127.0.0.1.
        match url.host() {
            None => return Err(UrlError::NoHost),
            Some(Host::Ipv4(v4)) => rules.destinations.check(IpAddr::V4(v4)).map_err(UrlError::Refused)?,
            Some(Host::Ipv6(v6)) => rules.destinations.check(IpAddr::V6(v6)).map_err(UrlError::Refused)?,
            Some(Host::Domain(name)) => {
                // The URL parser lets through names no DNS lookup can succeed for
                // (`*`, `_`, empty labels); refuse them now rather than fail every attempt.
                if !is_dns_name(name) {
                    return Err(UrlError::InvalidHostName);
                }
                if is_localhost(name) && !rules.destinations.allows_loopback() {
                    return Err(UrlError::Localhost);
                }
            }
        }
        Ok(Self(raw.to_owned()))
    }

    /// Wraps a URL read back from storage, which was validated when it was written.
    pub fn from_stored(value: String) -> Self {
        Self(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for EndpointUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EndpointUrl({})", self.0)
    }
}

/// Letters, digits and hyphens in non-empty labels of at most 63 bytes, with an
/// optional root dot (the parser has already turned an IDN into its ASCII form).
fn is_dns_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// `localhost`, `LOCALHOST.`, `api.localhost`: names that always mean loopback (RFC 6761).
fn is_localhost(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// Which event types an endpoint receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventFilter {
    /// Every type, including types added to the catalog later.
    All,
    /// These types only; non-empty, without duplicates, in the order given.
    Only(Vec<String>),
}

/// Why an `events` list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventFilterError {
    #[error("'events' must not be empty; omit it or send null to receive every event type")]
    Empty,
    #[error("'events' contains an unknown event type: {0:?}")]
    UnknownType(String),
}

impl EventFilter {
    /// `None` (omitted or null) means all; duplicates collapse, keeping the first.
    pub fn parse(events: Option<Vec<String>>, catalog: &EventCatalog) -> Result<Self, EventFilterError> {
        let Some(events) = events else {
            return Ok(Self::All);
        };
        if events.is_empty() {
            return Err(EventFilterError::Empty);
        }
        let mut unique: Vec<String> = Vec::with_capacity(events.len());
        for name in events {
            if !catalog.contains(&name) {
                return Err(EventFilterError::UnknownType(name));
            }
            if !unique.contains(&name) {
                unique.push(name);
            }
        }
        Ok(Self::Only(unique))
    }

    pub fn matches(&self, event_type: &str) -> bool {
        match self {
            Self::All => true,
            Self::Only(types) => types.iter().any(|t| t == event_type),
        }
    }

    pub fn as_list(&self) -> Option<&[String]> {
        match self {
            Self::All => None,
            Self::Only(types) => Some(types),
        }
    }
}

/// Scopes an endpoint (or tags an event) to one resource of the customer's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityId(String);

/// An `entity_id` over 255 characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'entity_id' must be at most 255 characters")]
pub struct EntityIdTooLong;

impl EntityId {
    pub fn parse(raw: String) -> Result<Self, EntityIdTooLong> {
        if raw.chars().count() > MAX_ENTITY_ID_LEN {
            return Err(EntityIdTooLong);
        }
        Ok(Self(raw))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// The customer's own reference for a one-off callback (`callback_id`), echoed in the
/// event it is delivered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackId(String);

/// A `callback_id` over 255 characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'callback_id' must be at most 255 characters")]
pub struct CallbackIdTooLong;

impl CallbackId {
    pub fn parse(raw: String) -> Result<Self, CallbackIdTooLong> {
        if raw.chars().count() > MAX_ENTITY_ID_LEN {
            return Err(CallbackIdTooLong);
        }
        Ok(Self(raw))
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// Whether an endpoint receives new deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointStatus {
    Enabled,
    Disabled,
}

impl EndpointStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enabled => "enabled",
            Self::Disabled => "disabled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "enabled" => Some(Self::Enabled),
            "disabled" => Some(Self::Disabled),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict() -> UrlRules {
        UrlRules::default()
    }

    #[test]
    fn accepts_a_public_https_url() {
        assert!(EndpointUrl::parse("https://example.com/hooks?x=1", &strict()).is_ok());
    }

    #[test]
    fn refuses_each_malformed_url_with_its_reason() {
        let long = format!("https://example.com/{}", "a".repeat(2048));
        let long_label = format!("https://{}.example.com/", "a".repeat(64));
        let cases = [
            (long.as_str(), UrlError::TooLong),
            ("https://example.com/a b", UrlError::ForbiddenCharacter),
            ("https://example.com/\ta", UrlError::ForbiddenCharacter),
            (" https://example.com/", UrlError::ForbiddenCharacter),
            ("/relative/path", UrlError::Unparseable),
            ("http://example.com/", UrlError::SchemeNotHttps),
            ("ftp://example.com/", UrlError::SchemeNotHttps),
            ("https://user:pw@example.com/", UrlError::HasCredentials),
            ("https://user@example.com/", UrlError::HasCredentials),
            ("https://example.com/#frag", UrlError::HasFragment),
            ("https://localhost/", UrlError::Localhost),
            ("https://LocalHost./", UrlError::Localhost),
            ("https://api.localhost/", UrlError::Localhost),
            ("https://pucjm3p.test*", UrlError::InvalidHostName),
            ("https://under_score.example.com/", UrlError::InvalidHostName),
            ("https://-leading.example.com/", UrlError::InvalidHostName),
            ("https://a..b/", UrlError::InvalidHostName),
            (&long_label, UrlError::InvalidHostName),
        ];
        for (raw, expected) in cases {
            assert_eq!(EndpointUrl::parse(raw, &strict()), Err(expected), "{raw}");
        }
    }

    #[test]
    fn refuses_literal_internal_addresses_in_any_spelling() {
        for raw in [
            "https://127.0.0.1/",
            "https://2130706433/",
            "https://0x7f.1/",
            "https://0177.0.0.1/",
            "https://127.1/",
            "https://[::1]/",
            "https://[::ffff:169.254.169.254]/",
            "https://10.0.0.1/",
        ] {
            assert!(
                matches!(EndpointUrl::parse(raw, &strict()), Err(UrlError::Refused(_))),
                "{raw} should be refused"
            );
        }
    }

    #[test]
    fn http_and_loopback_pass_only_where_the_operator_allowed_them() {
        let dev = UrlRules {
            allow_http: true,
            destinations: DestinationPolicy::new(vec!["127.0.0.0/8".parse().expect("cidr")]),
        };
        assert!(EndpointUrl::parse("http://127.0.0.1:9000/hook", &dev).is_ok());
        assert!(EndpointUrl::parse("http://localhost:9000/hook", &dev).is_ok());
        assert_eq!(EndpointUrl::parse("ftp://example.com/", &dev), Err(UrlError::SchemeNotHttp));
    }

    #[test]
    fn event_filter_collapses_duplicates_in_order_and_refuses_unknown_names() {
        let catalog = EventCatalog::builtin();
        let list =
            vec!["avatar_video.fail".into(), "avatar_video.success".into(), "avatar_video.fail".into()];
        assert_eq!(
            EventFilter::parse(Some(list), &catalog),
            Ok(EventFilter::Only(vec!["avatar_video.fail".into(), "avatar_video.success".into()]))
        );
        assert_eq!(EventFilter::parse(None, &catalog), Ok(EventFilter::All));
        assert_eq!(EventFilter::parse(Some(vec![]), &catalog), Err(EventFilterError::Empty));
        assert_eq!(
            EventFilter::parse(Some(vec!["nope".into()]), &catalog),
            Err(EventFilterError::UnknownType("nope".into()))
        );
    }

    #[test]
    fn entity_id_is_limited_to_255_characters() {
        assert!(EntityId::parse("é".repeat(255)).is_ok());
        assert_eq!(EntityId::parse("a".repeat(256)), Err(EntityIdTooLong));
    }
}
