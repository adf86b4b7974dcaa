//! What a producer may publish: the rules an event passes before it is stored, the
//! same whichever way it arrives (the operator API, or a row of the PostgreSQL outbox).

use crate::catalog::EventCatalog;
use crate::endpoint::{CallbackId, EndpointUrl, EntityId, UrlRules};
use crate::ids::AccountId;

/// The largest `event_data`, as compact JSON.
pub const MAX_EVENT_DATA_BYTES: usize = 256 * 1024;

/// An event as a producer reported it, not yet checked.
#[derive(Debug, Clone)]
pub struct EventDraft {
    pub account_id: String,
    pub event_type: String,
    /// The `event_data` as a JSON serializer wrote it (no leading whitespace), so an
    /// object is exactly a text that starts with `{`.
    pub event_data: String,
    pub entity_id: Option<String>,
    pub callback_url: Option<String>,
    pub callback_id: Option<String>,
}

/// An event that passed every rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidEvent {
    pub account_id: AccountId,
    pub event_type: String,
    pub event_data: String,
    pub entity_id: Option<String>,
    pub callback_url: Option<String>,
    pub callback_id: Option<String>,
}

/// The first rule a draft broke: the field and a sentence for the producer. Whether
/// the account exists is not among these rules; only the store can tell.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidEvent {
    pub field: &'static str,
    pub message: String,
}

impl InvalidEvent {
    fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self { field, message: message.into() }
    }
}

/// The operator's rules for events: the catalog and what a callback URL may be.
#[derive(Debug, Clone)]
pub struct PublicationRules {
    pub catalog: EventCatalog,
    pub url_rules: UrlRules,
}

impl PublicationRules {
    pub fn check(&self, draft: EventDraft) -> Result<ValidEvent, InvalidEvent> {
        let account_id = AccountId::parse(&draft.account_id)
            .map_err(|_| InvalidEvent::new("account_id", "'account_id' is not an account id."))?;
        if !self.catalog.contains(&draft.event_type) {
            return Err(InvalidEvent::new(
                "event_type",
                format!("Unknown event type {:?}.", draft.event_type),
            ));
        }
        if !draft.event_data.starts_with('{') {
            return Err(InvalidEvent::new("event_data", "'event_data' must be a JSON object."));
        }
        if draft.event_data.len() > MAX_EVENT_DATA_BYTES {
            return Err(InvalidEvent::new("event_data", "'event_data' must be at most 256 KiB."));
        }
        let entity_id = draft
            .entity_id
            .map(EntityId::parse)
            .transpose()
            .map_err(|error| InvalidEvent::new("entity_id", format!("{error}.")))?;
        let callback_id = draft
            .callback_id
            .map(CallbackId::parse)
            .transpose()
            .map_err(|error| InvalidEvent::new("callback_id", format!("{error}.")))?;
        let callback_url = draft
            .callback_url
            .map(|url| EndpointUrl::parse(&url, &self.url_rules))
            .transpose()
            .map_err(|error| InvalidEvent::new("callback_url", format!("'callback_url' {error}.")))?;
        Ok(ValidEvent {
            account_id,
            event_type: draft.event_type,
            event_data: draft.event_data,
            entity_id: entity_id.map(EntityId::into_string),
            callback_url: callback_url.map(|url| url.as_str().to_owned()),
            callback_id: callback_id.map(CallbackId::into_string),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> PublicationRules {
        PublicationRules { catalog: EventCatalog::builtin(), url_rules: UrlRules::default() }
    }

    fn draft() -> EventDraft {
        EventDraft {
            account_id: AccountId::new_random().to_string(),
            event_type: "avatar_video.success".into(),
            event_data: r#"{"video_id":"v1"}"#.into(),
            entity_id: None,
            callback_url: None,
            callback_id: None,
        }
    }

    fn field_of(draft: EventDraft) -> &'static str {
        rules().check(draft).expect_err("refused").field
    }

    #[test]
    fn a_draft_within_the_rules_passes_unchanged() {
        let valid = rules().check(draft()).expect("valid");
        assert_eq!(valid.event_data, r#"{"video_id":"v1"}"#);
        assert_eq!(valid.event_type, "avatar_video.success");
    }

    #[test]
    fn each_rule_names_the_field_it_refuses() {
        assert_eq!(field_of(EventDraft { account_id: "nope".into(), ..draft() }), "account_id");
        assert_eq!(field_of(EventDraft { event_type: "made.up".into(), ..draft() }), "event_type");
        assert_eq!(field_of(EventDraft { event_data: "[1]".into(), ..draft() }), "event_data");
        let huge = format!(r#"{{"x":"{}"}}"#, "a".repeat(MAX_EVENT_DATA_BYTES));
        assert_eq!(field_of(EventDraft { event_data: huge, ..draft() }), "event_data");
        assert_eq!(field_of(EventDraft { entity_id: Some("e".repeat(256)), ..draft() }), "entity_id");
        assert_eq!(field_of(EventDraft { callback_id: Some("c".repeat(256)), ..draft() }), "callback_id");
        let internal = Some("https://10.0.0.1/hook".to_owned());
        assert_eq!(field_of(EventDraft { callback_url: internal, ..draft() }), "callback_url");
    }
}
