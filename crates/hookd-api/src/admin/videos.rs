//! The renderer's side of videos (contract §6): status reports, and the work list.
//! A final report emits `avatar_video.success` or `avatar_video.fail` to the account's
//! matching endpoints and, once, to the video's callback URL, in the same transaction
//! as the status change.

use axum::Json;
use axum::extract::{Path, State};
use hookd_core::{AccountId, EventId, Transition, VideoId, VideoStatus, video::transition};
use hookd_store::{Event, Video, VideoResult, VideoUpdate};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::super::v3::videos::VideoDetail;
use crate::envelope::{Data, List};
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::query::try_list_envelope;
use crate::extract::{JsonBody, PageParams, QueryParams, RequestBody};
use crate::openapi::ResourceId;
use crate::{ApiState, now_millis};

/// A renderer's report. `processing` carries nothing else; `completed` needs
/// `video_url`; `failed` needs `failure_code` and `failure_message`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusReport {
    status: String,
    #[serde(default)]
    video_url: Option<String>,
    #[serde(default)]
    thumbnail_url: Option<String>,
    #[serde(default)]
    gif_url: Option<String>,
    #[serde(default)]
    captioned_video_url: Option<String>,
    #[serde(default)]
    subtitle_url: Option<String>,
    #[serde(default)]
    duration: Option<f64>,
    #[serde(default)]
    folder_id: Option<String>,
    #[serde(default)]
    output_language: Option<String>,
    #[serde(default)]
    video_page_url: Option<String>,
    #[serde(default)]
    failure_code: Option<String>,
    #[serde(default)]
    failure_message: Option<String>,
}

impl RequestBody for StatusReport {
    const FIELDS: &'static [&'static str] = &[
        "status",
        "video_url",
        "thumbnail_url",
        "gif_url",
        "captioned_video_url",
        "subtitle_url",
        "duration",
        "folder_id",
        "output_language",
        "video_page_url",
        "failure_code",
        "failure_message",
    ];
    const REQUIRED: &'static [&'static str] = &["status"];
}

impl utoipa::PartialSchema for StatusReport {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        crate::openapi::written_as_json_schema()
    }
}

impl ToSchema for StatusReport {}

/// The video after the report, and the event it emitted (null for a repeat).
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportOutcome {
    video: VideoDetail,
    event_id: Option<String>,
    deliveries: usize,
}

/// A video as a renderer sees it: with its account and the create request.
#[derive(Debug, Serialize, ToSchema)]
pub struct RenderJob {
    #[schema(value_type = ResourceId)]
    video_id: String,
    #[schema(value_type = ResourceId)]
    account_id: String,
    #[serde(rename = "type")]
    video_type: String,
    #[schema(value_type = crate::openapi::VideoStatus)]
    status: &'static str,
    #[schema(value_type = Object)]
    request: Box<serde_json::value::RawValue>,
    created_at: i64,
}

#[utoipa::path(
    post, path = "/admin/v1/videos/{video_id}/status", tag = "Admin", operation_id = "reportVideoStatus",
    params(("video_id" = ResourceId, Path, description = "The video's id")),
    request_body = StatusReport,
    responses(
        (status = 200, description = "Applied, or a repeat that changed nothing", body = Data<ReportOutcome>),
        (status = 400, description = "Invalid request parameters", body = ErrorEnvelope),
        (status = 401, description = "Authentication failed", body = ErrorEnvelope),
        (status = 404, description = "No such video", body = ErrorEnvelope),
        (status = 409, description = "Contradicts the video's final state", body = ErrorEnvelope),
    ),
    security(("AdminToken" = []))
)]
pub async fn report_status(
    State(state): State<ApiState>,
    Path(video_id): Path<String>,
    JsonBody(report): JsonBody<StatusReport>,
) -> Result<Json<Data<ReportOutcome>>, ApiError> {
    let video_id = VideoId::parse(&video_id).map_err(|_| ApiError::NotFound)?;
    let (reported, result) = parse_report(report)?;
    // Decide from the current state; if another report lands between the read and the
    // write, the conditional update refuses and we decide again.
    for _ in 0..3 {
        let video = state.store.find_video(&video_id).await?;
        match transition(video.status, reported) {
            Transition::Conflict => {
                let message = format!(
                    "The video is {}; a '{}' report cannot change that.",
                    video.status.as_str(),
                    reported.as_str()
                );
                return Err(ApiError::Conflict(message));
            }
            Transition::Unchanged => {
                return Ok(Json(Data {
                    data: ReportOutcome { video: video.into(), event_id: None, deliveries: 0 },
                }));
            }
            Transition::Apply => {}
        }
        let now = now_millis();
        let event = completion_event(&video, reported, &result, now);
        let event_id = event.as_ref().map(|event| event.event_id.to_string());
        let update = VideoUpdate {
            expected: video.status,
            status: reported,
            result: if reported == VideoStatus::Processing { video.result.clone() } else { result.clone() },
            completed_at: reported.is_final().then_some(now),
            event,
        };
        if let Some(deliveries) = state.store.update_video(&video_id, &update, now).await? {
            if deliveries > 0 {
                state.delivery.wake.notify_one();
            }
            let video = state.store.find_video(&video_id).await?;
            return Ok(Json(Data { data: ReportOutcome { video: video.into(), event_id, deliveries } }));
        }
    }
    Err(ApiError::Conflict("The video kept changing while this report was applied; retry.".into()))
}

#[utoipa::path(
    get, path = "/admin/v1/videos", tag = "Admin", operation_id = "listVideos",
    params(
        ("status" = Option<crate::openapi::VideoStatus>, Query, description = "Only videos with this status"),
        ("limit" = Option<u32>, Query, description = "Items per page, 1-100 (default 10)", minimum = 1, maximum = 100),
        ("token" = Option<String>, Query, description = "Opaque cursor from a previous next_token"),
    ),
    responses(
        (status = 200, description = "Videos, newest first", body = List<RenderJob>),
        (status = 400, description = "Invalid request parameters", body = ErrorEnvelope),
        (status = 401, description = "Authentication failed", body = ErrorEnvelope),
    ),
    security(("AdminToken" = []))
)]
pub async fn list_videos(
    State(state): State<ApiState>,
    query: QueryParams,
) -> Result<Json<List<RenderJob>>, ApiError> {
    let status = match query.get("status") {
        None => None,
        Some(raw) => Some(VideoStatus::parse(raw).ok_or_else(|| {
            ApiError::invalid_parameter(
                "status",
                "'status' must be pending, processing, completed or failed.",
            )
        })?),
    };
    let scope = format!("videos|{}", status.map_or("*", VideoStatus::as_str));
    let page = PageParams::from_query(&query)?.page_request(&state.cursor_key, &scope)?;
    let videos = state.store.list_videos(status, page).await?;
    Ok(Json(try_list_envelope(videos, &state.cursor_key, &scope, RenderJob::try_from)?))
}

impl TryFrom<Video> for RenderJob {
    type Error = serde_json::Error;

    /// Fails only if the stored request is not JSON, which hookd never writes.
    fn try_from(video: Video) -> Result<Self, Self::Error> {
        Ok(Self {
            request: serde_json::value::RawValue::from_string(video.request)?,
            video_id: video.video_id.to_string(),
            account_id: video.account_id.to_string(),
            video_type: video.video_type,
            status: video.status.as_str(),
            created_at: video.created_at / 1000,
        })
    }
}

fn parse_report(report: StatusReport) -> Result<(VideoStatus, VideoResult), ApiError> {
    let status =
        VideoStatus::parse(&report.status).filter(|status| *status != VideoStatus::Pending).ok_or_else(
            || ApiError::invalid_parameter("status", "'status' must be processing, completed or failed."),
        )?;
    let require = |value: &Option<String>, field: &str| match value {
        Some(text) if !text.is_empty() => Ok(()),
        _ => Err(ApiError::invalid_parameter(
            field,
            format!("'{field}' is required when status is '{}'.", status.as_str()),
        )),
    };
    match status {
        VideoStatus::Completed => require(&report.video_url, "video_url")?,
        VideoStatus::Failed => {
            require(&report.failure_code, "failure_code")?;
            require(&report.failure_message, "failure_message")?;
        }
        _ => {}
    }
    let result = VideoResult {
        video_url: report.video_url,
        thumbnail_url: report.thumbnail_url,
        gif_url: report.gif_url,
        captioned_video_url: report.captioned_video_url,
        subtitle_url: report.subtitle_url,
        duration: report.duration,
        folder_id: report.folder_id,
        output_language: report.output_language,
        video_page_url: report.video_page_url,
        failure_code: report.failure_code,
        failure_message: report.failure_message,
    };
    Ok((status, result))
}

/// The event of contract section 4 for a final report; `None` for `processing`.
fn completion_event(video: &Video, reported: VideoStatus, result: &VideoResult, now: i64) -> Option<Event> {
    let (event_type, event_data): (&str, Value) = match reported {
        VideoStatus::Completed => (
            "avatar_video.success",
            json!({
                "video_id": video.video_id.to_string(),
                "url": result.video_url,
                "gif_download_url": result.gif_url,
                "video_page_url": result.video_page_url,
                "video_share_page_url": result.video_page_url,
                "folder_id": result.folder_id,
                "callback_id": video.callback_id,
            }),
        ),
        VideoStatus::Failed => (
            "avatar_video.fail",
            json!({
                "video_id": video.video_id.to_string(),
                "msg": result.failure_message,
                "callback_id": video.callback_id,
                "failure_code": result.failure_code,
                "failure_message": result.failure_message,
            }),
        ),
        VideoStatus::Pending | VideoStatus::Processing => return None,
    };
    Some(Event {
        event_id: EventId::new_time_ordered(now),
        account_id: video.account_id.clone(),
        event_type: event_type.to_owned(),
        entity_id: None,
        event_data: event_data.to_string(),
        callback_url: video.callback_url.clone(),
        callback_id: video.callback_id.clone(),
        created_at: now,
        traceparent: hookd_delivery::trace_context::current_traceparent(),
    })
}

/// What hookd's own video events carry, for the portal's catalog: the event a sample
/// video's report would publish. `None` for types hookd does not emit itself.
pub(crate) fn example_event_data(event_type: &str) -> Option<Value> {
    let reported = match event_type {
        "avatar_video.success" => VideoStatus::Completed,
        "avatar_video.fail" => VideoStatus::Failed,
        _ => return None,
    };
    let result = VideoResult {
        video_url: Some("https://files.example.com/video.mp4".into()),
        gif_url: Some("https://files.example.com/video.gif".into()),
        video_page_url: Some("https://app.example.com/videos/page".into()),
        failure_code: Some("RENDER_FAILED".into()),
        failure_message: Some("The renderer could not finish the video.".into()),
        ..VideoResult::default()
    };
    let video = Video {
        video_id: VideoId::new_random(),
        account_id: AccountId::new_random(),
        video_type: "avatar".into(),
        status: VideoStatus::Processing,
        request: "{}".into(),
        title: None,
        callback_url: None,
        callback_id: Some("your-callback-id".into()),
        output_format: "mp4".into(),
        result: VideoResult::default(),
        created_at: 0,
        completed_at: None,
    };
    let event = completion_event(&video, reported, &result, 0)?;
    serde_json::from_str(&event.event_data).ok()
}

/// `StatusReport` as JSON Schema: one variant per `status`, each with its required fields.
pub(crate) fn status_report_schema() -> Value {
    let variant = |status: &str, required: &[&str]| {
        let mut properties = serde_json::Map::new();
        for field in &StatusReport::FIELDS[1..] {
            let schema = match *field {
                "duration" => json!({ "type": ["number", "null"] }),
                field if required.contains(&field) => json!({ "type": "string", "minLength": 1 }),
                _ => json!({ "type": ["string", "null"] }),
            };
            properties.insert((*field).to_owned(), schema);
        }
        properties.insert("status".into(), json!({ "const": status }));
        let mut required = required.to_vec();
        required.insert(0, "status");
        json!({
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": false,
        })
    };
    json!({
        "description": "A renderer's report. `processing` carries nothing else; `completed` \
            needs `video_url`; `failed` needs `failure_code` and `failure_message`.",
        "oneOf": [
            variant("processing", &[]),
            variant("completed", &["video_url"]),
            variant("failed", &["failure_code", "failure_message"]),
        ],
        "discriminator": { "propertyName": "status" },
    })
}
