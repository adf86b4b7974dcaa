//! What both backends' schemas share by name: one column list per table, in the
//! order [`crate::rows`] reads them, and the keys of the `settings` table.

/// An event, as [`crate::rows::event`] reads it.
pub(crate) const EVENT_COLUMNS: &str =
    "seq, event_id, account_id, event_type, entity_id, event_data, callback_url, callback_id, created_at";

/// An endpoint, as [`crate::rows::endpoint`] reads it.
pub(crate) const ENDPOINT_COLUMNS: &str =
    "seq, endpoint_id, account_id, url, events, entity_id, status, created_at";

/// A video, as [`crate::rows::video`] reads it.
pub(crate) const VIDEO_COLUMNS: &str =
    "seq, video_id, account_id, video_type, status, request, title, callback_url, callback_id,
    output_format, video_url, thumbnail_url, gif_url, captioned_video_url, subtitle_url, duration, folder_id,
    output_language, video_page_url, failure_code, failure_message, created_at, completed_at";

/// The HMAC key of list cursors.
pub(crate) const CURSOR_KEY: &str = "cursor_key";
/// The admin token's hash, set at first start.
pub(crate) const ADMIN_TOKEN_HASH: &str = "admin_token_hash";
/// Proof of the master key the endpoint secrets are sealed with.
pub(crate) const MASTER_KEY_CHECK: &str = "master_key_check";
