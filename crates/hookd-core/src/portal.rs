//! Customer portal sessions. The operator mints a one-time link for an account; the
//! portal page redeems it once for a session credential and presents that as a bearer
//! token on the customer API. Bearer, not a cookie: it carries no ambient authority (so
//! no CSRF) and works the same top-level and inside a cross-site iframe, where
//! third-party cookies are blocked.
//!
//! Both tokens embed the session id, so a lookup is by id and the secret part is only
//! ever compared as a hash, in constant time (as with API keys).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::random::random_bytes;
use crate::{PortalSessionId, TokenHash};

/// Which of a session's two tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortalTokenKind {
    /// The one-time link's token, in the URL fragment.
    Link,
    /// The credential the link is redeemed for.
    Session,
}

impl PortalTokenKind {
    fn prefix(self) -> &'static str {
        match self {
            Self::Link => "pl_",
            Self::Session => "ps_",
        }
    }
}

/// A portal token: `pl_<session id>_<43 chars of base64url>` or `ps_...`.
#[derive(Clone)]
pub struct PortalToken {
    session_id: PortalSessionId,
    plaintext: String,
}

impl PortalToken {
    pub fn generate(kind: PortalTokenKind, session_id: &PortalSessionId) -> Self {
        let secret = URL_SAFE_NO_PAD.encode(random_bytes::<32>());
        Self { session_id: session_id.clone(), plaintext: format!("{}{session_id}_{secret}", kind.prefix()) }
    }

    /// The session a presented token names, or `None` if it cannot be one of `kind`.
    pub fn session_of(kind: PortalTokenKind, presented: &str) -> Option<PortalSessionId> {
        let rest = presented.strip_prefix(kind.prefix())?;
        let (id, secret) = rest.split_once('_')?;
        if secret.is_empty() {
            return None;
        }
        PortalSessionId::parse(id).ok()
    }

    pub fn session_id(&self) -> &PortalSessionId {
        &self.session_id
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.plaintext)
    }

    pub fn expose(&self) -> &str {
        &self.plaintext
    }
}

impl fmt::Debug for PortalToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PortalToken({}, <redacted>)", self.session_id)
    }
}

/// How long a portal link, and the session it opens, stays valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortalTtl {
    seconds: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'ttl_seconds' must be an integer from {} to {}", PortalTtl::MIN_SECONDS, PortalTtl::MAX_SECONDS)]
pub struct PortalTtlOutOfRange;

impl PortalTtl {
    pub const MIN_SECONDS: i64 = 60;
    pub const MAX_SECONDS: i64 = 86_400;
    pub const DEFAULT_SECONDS: i64 = 3_600;

    pub fn new(seconds: Option<i64>) -> Result<Self, PortalTtlOutOfRange> {
        let seconds = seconds.unwrap_or(Self::DEFAULT_SECONDS);
        if (Self::MIN_SECONDS..=Self::MAX_SECONDS).contains(&seconds) {
            Ok(Self { seconds })
        } else {
            Err(PortalTtlOutOfRange)
        }
    }

    pub fn millis(self) -> i64 {
        self.seconds * 1000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_its_session_only_under_its_own_kind() {
        let session = PortalSessionId::new_random();
        let link = PortalToken::generate(PortalTokenKind::Link, &session);
        assert_eq!(PortalToken::session_of(PortalTokenKind::Link, link.expose()), Some(session.clone()));
        assert_eq!(
            PortalToken::session_of(PortalTokenKind::Session, link.expose()),
            None,
            "a link is no credential"
        );
        assert_eq!(PortalToken::session_of(PortalTokenKind::Link, &format!("pl_{session}_")), None);
        assert!(!format!("{link:?}").contains(link.expose()), "Debug hides the secret");
        let credential = PortalToken::generate(PortalTokenKind::Session, &session);
        assert_ne!(credential.hash(), link.hash());
    }

    #[test]
    fn ttls_outside_a_minute_to_a_day_are_refused() {
        assert_eq!(PortalTtl::new(None).map(PortalTtl::millis), Ok(3_600_000));
        assert!(PortalTtl::new(Some(60)).is_ok() && PortalTtl::new(Some(86_400)).is_ok());
        assert_eq!(PortalTtl::new(Some(59)), Err(PortalTtlOutOfRange));
        assert_eq!(PortalTtl::new(Some(86_401)), Err(PortalTtlOutOfRange));
    }
}
