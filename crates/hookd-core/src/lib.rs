//! hookd's domain: the types and rules every other crate shares.
//!
//! Invariant: nothing here does I/O or is `async`. Time comes in as an argument and
//! randomness from the OS CSPRNG only where a secret or id is minted. These types are
//! not the wire format; `hookd-api` owns the JSON shapes.

pub mod account;
pub mod catalog;
pub mod cursor;
pub mod delivery;
pub mod delivery_settings;
pub mod destination;
pub mod endpoint;
pub mod ids;
pub mod operational;
pub mod portal;
pub mod portal_framing;
pub mod publication;
pub mod random;
pub mod recovery;
pub mod retry;
pub mod sealing;
pub mod secret;
pub mod video;

pub use account::{AccountName, InvalidAccountName};
pub use catalog::{EventCatalog, EventTypeInfo};
pub use cursor::{Cursor, CursorError, CursorKey};
pub use delivery::{AttemptVerdict, DeliveryState, RetryPolicy};
pub use delivery_settings::{DeliveryOrdering, DeliverySettings, RateLimit, RateLimitOutOfRange};
pub use destination::{DestinationPolicy, RefusedDestination};
pub use endpoint::{
    CallbackId, CallbackIdTooLong, EndpointStatus, EndpointUrl, EntityId, EntityIdTooLong, EventFilter,
    EventFilterError, UrlError, UrlRules,
};
pub use ids::{AccountId, ApiKeyId, DeliveryId, EndpointId, EventId, InvalidId, PortalSessionId, VideoId};
pub use operational::{OperationalEventType, operations_account};
pub use portal::{PortalToken, PortalTokenKind, PortalTtl, PortalTtlOutOfRange};
pub use portal_framing::{FrameAncestors, InvalidFrameAncestor};
pub use publication::{EventDraft, InvalidEvent, PublicationRules, ValidEvent};
pub use recovery::{RecoveryWindow, RecoveryWindowError};
pub use retry::{RetrySchedule, RetryScheduleError};
pub use sealing::{MasterKey, SealError, SecretSealer};
pub use secret::{ApiKey, EndpointSecret, TokenHash};
pub use video::{Transition, VideoStatus};
