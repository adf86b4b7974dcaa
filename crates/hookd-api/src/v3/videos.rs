//! `/v3/videos` (contract §4): customers create video jobs and poll them. hookd does
//! not render; it keeps the job and turns the renderer's reports into events.

use axum::Json;
use axum::extract::{Path, State};
use hookd_core::{AccountId, CallbackId, EndpointUrl, VideoId, VideoStatus};
use hookd_store::Video;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use crate::envelope::Data;
use crate::error::{ApiError, ErrorEnvelope};
use crate::extract::{Customer, JsonBody, RequestBody};
use crate::openapi::ResourceId;
use crate::{ApiState, now_millis};

const MAX_CALLBACK_ID_CHARS: usize = 255;

/// The create request: `type` selects the required fields; renderer options beyond
/// the ones hookd checks are stored as given.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct CreateVideoRequest(Map<String, Value>);

impl utoipa::PartialSchema for CreateVideoRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        crate::openapi::written_as_json_schema()
    }
}

impl ToSchema for CreateVideoRequest {}

impl RequestBody for CreateVideoRequest {
    const FIELDS: &'static [&'static str] = &[];
    const REQUIRED: &'static [&'static str] = &["type"];
    const ACCEPTS_ANY_FIELD: bool = true;
}

/// HeyGen's `CreateAvatarVideoResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub struct VideoCreated {
    video_id: String,
    /// Always `waiting` for a new video.
    status: &'static str,
    output_format: String,
}

/// HeyGen's `VideoDetail`; timestamps in unix seconds.
#[derive(Debug, Serialize, ToSchema)]
pub struct VideoDetail {
    id: String,
    #[schema(value_type = crate::openapi::VideoStatus)]
    status: &'static str,
    title: Option<String>,
    created_at: Option<i64>,
    completed_at: Option<i64>,
    video_url: Option<String>,
    thumbnail_url: Option<String>,
    gif_url: Option<String>,
    captioned_video_url: Option<String>,
    subtitle_url: Option<String>,
    duration: Option<f64>,
    folder_id: Option<String>,
    output_language: Option<String>,
    failure_code: Option<String>,
    failure_message: Option<String>,
    video_page_url: Option<String>,
}

impl From<Video> for VideoDetail {
    fn from(video: Video) -> Self {
        let result = video.result;
        Self {
            id: video.video_id.to_string(),
            status: video.status.as_str(),
            title: video.title,
            created_at: Some(video.created_at / 1000),
            completed_at: video.completed_at.map(|at| at / 1000),
            video_url: result.video_url,
            thumbnail_url: result.thumbnail_url,
            gif_url: result.gif_url,
            captioned_video_url: result.captioned_video_url,
            subtitle_url: result.subtitle_url,
            duration: result.duration,
            folder_id: result.folder_id,
            output_language: result.output_language,
            failure_code: result.failure_code,
            failure_message: result.failure_message,
            video_page_url: result.video_page_url,
        }
    }
}

#[utoipa::path(
    post, path = "/v3/videos", tag = "Videos", operation_id = "createVideo",
    request_body = CreateVideoRequest,
    responses(
        (status = 200, description = "The new video job", body = Data<VideoCreated>),
        (status = 400, description = "Invalid request parameters", body = ErrorEnvelope),
        (status = 401, description = "Authentication failed", body = ErrorEnvelope),
        (status = 429, description = "Too many requests for this account; Retry-After says when to retry", body = ErrorEnvelope),
    ),
    security(("ApiKeyAuth" = []), ("BearerAuth" = []))
)]
pub async fn create_video(
    State(state): State<ApiState>,
    Customer(account_id): Customer,
    JsonBody(CreateVideoRequest(request)): JsonBody<CreateVideoRequest>,
) -> Result<Json<Data<VideoCreated>>, ApiError> {
    let video = validate(&state, account_id, request)?;
    state.store.create_video(&video).await?;
    let data = VideoCreated {
        video_id: video.video_id.to_string(),
        status: "waiting",
        output_format: video.output_format,
    };
    Ok(Json(Data { data }))
}

#[utoipa::path(
    get, path = "/v3/videos/{video_id}", tag = "Videos", operation_id = "getVideo",
    params(("video_id" = ResourceId, Path, description = "The video's id")),
    responses(
        (status = 200, description = "The video", body = Data<VideoDetail>),
        (status = 401, description = "Authentication failed", body = ErrorEnvelope),
        (status = 429, description = "Too many requests for this account; Retry-After says when to retry", body = ErrorEnvelope),
        (status = 404, description = "No such video", body = ErrorEnvelope),
    ),
    security(("ApiKeyAuth" = []), ("BearerAuth" = []))
)]
pub async fn get_video(
    State(state): State<ApiState>,
    Customer(account_id): Customer,
    Path(video_id): Path<String>,
) -> Result<Json<Data<VideoDetail>>, ApiError> {
    let video_id = VideoId::parse(&video_id).map_err(|_| ApiError::NotFound)?;
    let video = state.store.get_video(&account_id, &video_id).await?;
    Ok(Json(Data { data: video.into() }))
}

/// The per-`type` rules of contract section 4.
fn validate(state: &ApiState, account_id: AccountId, request: Map<String, Value>) -> Result<Video, ApiError> {
    let invalid = |param: &str, message: &str| ApiError::invalid_parameter(param, message);
    let video_type = request.get("type").and_then(Value::as_str).unwrap_or_default().to_owned();
    let non_empty_string =
        |field: &str| request.get(field).and_then(Value::as_str).is_some_and(|v| !v.is_empty());
    match video_type.as_str() {
        "avatar" if !non_empty_string("avatar_id") => {
            return Err(invalid("avatar_id", "'avatar_id' is required for type 'avatar'."));
        }
        "image" if !request.get("image").is_some_and(Value::is_object) => {
            return Err(invalid(
                "image",
                "'image' (an object: url, asset_id or base64) is required for type 'image'.",
            ));
        }
        "studio"
            if !request
                .get("scenes")
                .and_then(Value::as_array)
                .is_some_and(|s| (1..=50).contains(&s.len())) =>
        {
            return Err(invalid("scenes", "'scenes' must be an array of 1 to 50 scenes for type 'studio'."));
        }
        "cinematic_avatar" => {
            if !non_empty_string("prompt") {
                return Err(invalid("prompt", "'prompt' is required for type 'cinematic_avatar'."));
            }
            let avatars = request.get("avatar_id").and_then(Value::as_array);
            if !avatars.is_some_and(|ids| (1..=3).contains(&ids.len()) && ids.iter().all(Value::is_string)) {
                return Err(invalid(
                    "avatar_id",
                    "'avatar_id' must be 1 to 3 avatar ids for type 'cinematic_avatar'.",
                ));
            }
            if request.contains_key("callback_url") {
                return Err(invalid(
                    "callback_url",
                    "'callback_url' is not supported for type 'cinematic_avatar'.",
                ));
            }
        }
        "avatar" | "image" | "studio" => {}
        _ => return Err(invalid("type", "'type' must be one of avatar, image, studio, cinematic_avatar.")),
    }
    let optional_string = |field: &str| match request.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(value)) => Ok(Some(value.clone())),
        Some(_) => Err(invalid(field, &format!("'{field}' must be a string."))),
    };
    let callback_url = optional_string("callback_url")?
        .map(|url| EndpointUrl::parse(&url, &state.publication.url_rules))
        .transpose()
        .map_err(|error| ApiError::invalid_parameter("callback_url", format!("'callback_url' {error}.")))?;
    let callback_id = optional_string("callback_id")?
        .map(CallbackId::parse)
        .transpose()
        .map_err(|error| ApiError::invalid_parameter("callback_id", format!("{error}.")))?
        .map(CallbackId::into_string);
    let output_format = optional_string("output_format")?.unwrap_or_else(|| "mp4".to_owned());
    if !matches!(output_format.as_str(), "mp4" | "webm") {
        return Err(invalid("output_format", "'output_format' must be 'mp4' or 'webm'."));
    }
    let title = optional_string("title")?;
    Ok(Video {
        video_id: VideoId::new_random(),
        account_id,
        video_type,
        status: VideoStatus::Pending,
        request: Value::Object(request).to_string(),
        title,
        callback_url: callback_url.map(|url| url.as_str().to_owned()),
        callback_id,
        output_format,
        result: hookd_store::VideoResult::default(),
        created_at: now_millis(),
        completed_at: None,
    })
}

/// `CreateVideoRequest` as JSON Schema: one variant per `type`, each with its required
/// fields; other fields are stored as given.
pub(crate) fn create_video_schema() -> Value {
    let variant = |video_type: &str, required: &[&str], fields: Value| {
        let mut properties = json!({
            "type": { "const": video_type },
            "title": { "type": ["string", "null"] },
            "callback_url": {
                "oneOf": [{ "$ref": "#/components/schemas/WebhookUrl" }, { "type": "null" }],
                "description": "Also deliver the completion event once to this URL, unsigned.",
            },
            "callback_id": { "type": ["string", "null"], "maxLength": MAX_CALLBACK_ID_CHARS },
            "output_format": { "enum": ["mp4", "webm", null], "description": "Default mp4." },
        });
        if let (Some(properties), Value::Object(fields)) = (properties.as_object_mut(), fields) {
            properties.extend(fields);
        }
        let required: Vec<&str> = std::iter::once("type").chain(required.iter().copied()).collect();
        json!({ "type": "object", "properties": properties, "required": required })
    };
    let non_empty = json!({ "type": "string", "minLength": 1 });
    let mut cinematic = variant(
        "cinematic_avatar",
        &["prompt", "avatar_id"],
        json!({
            "prompt": non_empty,
            "avatar_id": { "type": "array", "items": { "type": "string" }, "minItems": 1, "maxItems": 3 },
        }),
    );
    // A cinematic avatar video takes no callback (contract section 4).
    cinematic["properties"]["callback_url"] = json!(false);
    json!({
        "description": "The create request: `type` selects the required fields; renderer \
            options beyond the ones hookd checks are stored as given.",
        "oneOf": [
            variant("avatar", &["avatar_id"], json!({ "avatar_id": non_empty })),
            variant("image", &["image"], json!({ "image": { "type": "object" } })),
            variant("studio", &["scenes"], json!({ "scenes": { "type": "array", "minItems": 1, "maxItems": 50 } })),
            cinematic,
        ],
        "discriminator": { "propertyName": "type" },
    })
}
