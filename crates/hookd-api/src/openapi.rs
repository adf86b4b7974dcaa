//! The OpenAPI 3.1 document's frame; the operations and schemas come from the
//! `#[utoipa::path]` annotations on the handlers, collected as the router is built.
//!
//! The document states every rule a request is checked against that a schema can
//! express (ids, lengths, enums, unknown fields), so that a client generated from it,
//! or a fuzzer such as schemathesis, sends what hookd accepts. What depends on how the
//! server was started (event types, `http`) is filled in by [`served_document`].

use hookd_core::EventCatalog;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, SchemaFormat};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

/// The schema of a request body that [`served_document`] replaces with its JSON Schema.
pub(crate) fn written_as_json_schema() -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::Object).into()
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "hookd",
        description = "A self-hosted webhook platform whose customer API is wire-compatible with HeyGen's v3 webhook API."
    ),
    servers((url = "http://127.0.0.1:8080", description = "hookd's default listen address")),
    tags(
        (name = "Webhooks", description = "Customer API, compatible with HeyGen v3"),
        (name = "Videos", description = "Customer API: video jobs, compatible with HeyGen v3"),
        (name = "Admin", description = "Operator API"),
        (name = "Portal", description = "Customer portal sessions: redeem a link, sign out"),
        (name = "Operations", description = "Health and readiness"),
    ),
    modifiers(&SecuritySchemes)
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "ApiKeyAuth",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-api-key"))),
        );
        components.add_security_scheme(
            "BearerAuth",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The API key as a bearer token."))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "AdminToken",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The operator's admin token."))
                    .build(),
            ),
        );
    }
}

/// A catalog event type's name (HeyGen's `WebhookEventType`). The served document
/// lists the running catalog, built-in types and `--event-type` additions alike.
pub struct WebhookEventType;

impl PartialSchema for WebhookEventType {
    fn schema() -> RefOr<Schema> {
        event_type_schema(None).into()
    }
}

impl ToSchema for WebhookEventType {}

/// An endpoint or callback URL. The served document says whether `http` is accepted
/// (`--allow-http`). It cannot say which hosts the destination policy refuses; those
/// are refused with 400 at create time when the URL names them, and at connect time.
pub struct WebhookUrl;

impl PartialSchema for WebhookUrl {
    fn schema() -> RefOr<Schema> {
        url_schema(false).into()
    }
}

impl ToSchema for WebhookUrl {}

/// The id of an account, endpoint, event, delivery or video: 32 lowercase hex digits.
/// A well-formed id that names nothing of the caller's is 404, as is a malformed one.
pub struct ResourceId;

impl PartialSchema for ResourceId {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^[0-9a-f]{32}$"))
            .description(Some("32 lowercase hex digits."))
            .into()
    }
}

impl ToSchema for ResourceId {}

/// The document as served: the derived one, with what depends on how this server was
/// started (the catalog's event types, whether `http` URLs are accepted), and the two
/// request bodies whose rules depend on one field's value (`type`, `status`), which
/// utoipa's schema model cannot say (`const`, `not`), written as JSON Schema.
pub fn served_document(
    document: &utoipa::openapi::OpenApi,
    catalog: &EventCatalog,
    allow_http: bool,
    oauth: bool,
) -> Result<serde_json::Value, serde_json::Error> {
    let names: Vec<&str> = catalog.entries().iter().map(|entry| entry.name.as_str()).collect();
    let mut value = serde_json::to_value(document)?;
    let schemas = &mut value["components"]["schemas"];
    schemas[WebhookEventType::name().as_ref()] = serde_json::to_value(event_type_schema(Some(names)))?;
    schemas[WebhookUrl::name().as_ref()] = serde_json::to_value(url_schema(allow_http))?;
    schemas["CreateVideoRequest"] = crate::v3::videos::create_video_schema();
    schemas["StatusReport"] = crate::admin::videos::status_report_schema();
    // An update must change something (HeyGen's 400 "At least one of 'url' or
    // 'events' must be provided."): a url, the events key (null means all), or the
    // status extension. A null url or status changes nothing.
    schemas["UpdateEndpointRequest"]["anyOf"] = serde_json::json!([
        { "required": ["url"], "properties": { "url": { "type": "string" } } },
        { "required": ["events"] },
        { "required": ["status"], "properties": { "status": { "type": "string" } } },
    ]);
    document_idempotency_keys(&mut value);
    if oauth {
        document_insufficient_scope(&mut value);
    }
    Ok(value)
}

/// With `--oauth-issuer`, every customer route may answer 403 `insufficient_scope` to
/// an access token that lacks the route's scope; the document says so only then.
fn document_insufficient_scope(document: &mut serde_json::Value) {
    const WHY: &str = "An OAuth access token without the scope this request needs (insufficient_scope)";
    let Some(paths) = document["paths"].as_object_mut() else { return };
    for (_, operations) in paths.iter_mut().filter(|(path, _)| path.starts_with("/v3/")) {
        let Some(operations) = operations.as_object_mut() else { continue };
        for operation in operations.values_mut() {
            let Some(responses) = operation["responses"].as_object_mut() else { continue };
            let forbidden = responses.entry("403").or_insert_with(|| {
                serde_json::json!({
                    "description": WHY,
                    "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErrorEnvelope" } } },
                })
            });
            // A route that already answers 403 (a read-only portal session) says both.
            if let Some(description) =
                forbidden["description"].as_str().filter(|d| !d.contains("insufficient_scope"))
            {
                forbidden["description"] = format!("{description}; or: {WHY}").into();
            }
        }
    }
}

/// Every POST, PATCH and DELETE takes an optional `Idempotency-Key` (contract §1);
/// one middleware implements it for all of them, so the document says it once here,
/// with the two answers it adds: 400 for a malformed key, 409 while the first request
/// with the key still runs.
fn document_idempotency_keys(document: &mut serde_json::Value) {
    let error = |description: &str| {
        serde_json::json!({
            "description": description,
            "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErrorEnvelope" } } },
        })
    };
    let malformed = error("Invalid request parameters (a malformed Idempotency-Key among them)");
    let in_progress = error("A request with this Idempotency-Key is still running (request_in_progress)");
    let parameter = serde_json::json!({
        "name": "Idempotency-Key",
        "in": "header",
        "required": false,
        "description": "Replays the first successful response to a repeat with the same key, \
            method and path for 24 hours; a repeat while the first still runs gets 409.",
        "schema": { "type": "string", "pattern": "^[A-Za-z0-9_:.-]{1,255}$" },
    });
    let Some(paths) = document["paths"].as_object_mut() else { return };
    for operations in paths.values_mut().filter_map(serde_json::Value::as_object_mut) {
        for (method, operation) in operations.iter_mut() {
            if !matches!(method.as_str(), "post" | "patch" | "delete") {
                continue;
            }
            let parameters = operation.as_object_mut().map(|operation| {
                operation.entry("parameters").or_insert_with(|| serde_json::Value::Array(Vec::new()))
            });
            if let Some(serde_json::Value::Array(parameters)) = parameters {
                parameters.push(parameter.clone());
            }
            if let Some(responses) = operation["responses"].as_object_mut() {
                responses.entry("400").or_insert_with(|| malformed.clone());
                responses.entry("409").or_insert_with(|| in_progress.clone());
            }
        }
    }
}

fn event_type_schema(names: Option<Vec<&str>>) -> Schema {
    let schema = ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some("An event type from the catalog (GET /v3/webhooks/event-types)."));
    Schema::Object(schema.enum_values(names).build())
}

fn url_schema(allow_http: bool) -> Schema {
    // DNS labels (as `EndpointUrl` checks them) that start with a letter: a host of
    // digits is an IPv4 spelling (`https://2130706433/`), which the destination policy
    // judges, not the schema. So the schema is narrower than the server here.
    let (scheme, description) = if allow_http {
        ("https?", "An absolute https or http URL (this server accepts http), at most 2048 bytes.")
    } else {
        ("https", "An absolute https URL, at most 2048 bytes.")
    };
    let label = "[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
    let pattern = format!(
        "^{scheme}://{label}(\\.{label})*(:[1-9][0-9]{{0,3}})?(/([A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-Fa-f]{{2}})*)?$"
    );
    Schema::Object(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::Custom("uri".into())))
            .pattern(Some(pattern))
            .max_length(Some(2048))
            .description(Some(description))
            .build(),
    )
}

/// A schema-only string enum: the document names the values a `String` field holds.
macro_rules! string_enum_schema {
    ($(#[$doc:meta])* $name:ident: [$($value:literal),+ $(,)?]) => {
        $(#[$doc])*
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new().schema_type(Type::String).enum_values(Some([$($value),+])).into()
            }
        }

        impl ToSchema for $name {}
    };
}

string_enum_schema!(
    /// Whether an endpoint receives new deliveries.
    EndpointState: ["enabled", "disabled"]
);
string_enum_schema!(
    /// HeyGen's `VideoStatus`.
    VideoStatus: ["pending", "processing", "completed", "failed"]
);
string_enum_schema!(
    /// Where a delivery stands.
    DeliveryState: ["pending", "delivered", "failed", "cancelled"]
);

#[cfg(test)]
mod tests {
    use hookd_core::EventTypeInfo;
    use serde_json::{Value, json};
    use utoipa::PartialSchema;

    use super::*;
    use crate::extract::RequestBody;

    fn served(catalog: &EventCatalog, allow_http: bool) -> Value {
        served_document(&ApiDoc::openapi(), catalog, allow_http, false).expect("serialises")
    }

    fn sorted(values: impl IntoIterator<Item = String>) -> Vec<String> {
        let mut values: Vec<String> = values.into_iter().collect();
        values.sort();
        values
    }

    /// The document's properties and required fields are exactly the ones the body
    /// parser accepts and demands, and nothing else is allowed.
    fn assert_publishes_its_fields<T: RequestBody + PartialSchema>() {
        let schema = serde_json::to_value(T::schema()).expect("serialises");
        let name = std::any::type_name::<T>();
        let properties = schema["properties"].as_object().map(|p| p.keys().cloned()).into_iter().flatten();
        assert_eq!(sorted(properties), sorted(T::FIELDS.iter().map(|f| f.to_string())), "{name} properties");
        let required = schema["required"].as_array().cloned().unwrap_or_default();
        let required = required.iter().filter_map(Value::as_str).map(str::to_owned);
        assert_eq!(sorted(required), sorted(T::REQUIRED.iter().map(|f| f.to_string())), "{name} required");
        assert_eq!(schema["additionalProperties"], json!(false), "{name} must refuse unknown fields");
    }

    #[test]
    fn request_bodies_publish_exactly_the_fields_they_accept() {
        assert_publishes_its_fields::<crate::v3::endpoints::CreateEndpointRequest>();
        assert_publishes_its_fields::<crate::v3::endpoints::UpdateEndpointRequest>();
        assert_publishes_its_fields::<crate::v3::endpoints::RotateSecretRequest>();
        assert_publishes_its_fields::<crate::v3::deliveries::ResendRequest>();
        assert_publishes_its_fields::<crate::v3::deliveries::TestRequest>();
        assert_publishes_its_fields::<crate::v3::recovery::RecoverRequest>();
        assert_publishes_its_fields::<crate::v3::delivery_settings::Settings>();
        assert_publishes_its_fields::<crate::admin::operational::CreateOperationalEndpointRequest>();
        assert_publishes_its_fields::<crate::portal::sessions::MintPortalSessionRequest>();
        assert_publishes_its_fields::<crate::portal::sessions::RedeemPortalLinkRequest>();
        assert_publishes_its_fields::<crate::admin::accounts::CreateAccountRequest>();
        assert_publishes_its_fields::<crate::admin::events::PublishEventRequest>();
        assert_publishes_its_fields::<crate::admin::events::PublishBatchRequest>();
    }

    #[test]
    fn status_report_variants_publish_exactly_the_fields_it_accepts() {
        type Report = crate::admin::videos::StatusReport;
        let schema = crate::admin::videos::status_report_schema();
        let variants = schema["oneOf"].as_array().expect("oneOf");
        assert_eq!(variants.len(), 3);
        for variant in variants {
            let properties = variant["properties"].as_object().expect("properties").keys().cloned();
            assert_eq!(sorted(properties), sorted(Report::FIELDS.iter().map(|f| f.to_string())));
            assert_eq!(variant["additionalProperties"], json!(false));
        }
    }

    #[test]
    fn every_video_type_requires_type_and_its_own_fields() {
        let schema = crate::v3::videos::create_video_schema();
        let variants = schema["oneOf"].as_array().expect("oneOf");
        let types: Vec<&str> =
            variants.iter().filter_map(|v| v["properties"]["type"]["const"].as_str()).collect();
        assert_eq!(types, ["avatar", "image", "studio", "cinematic_avatar"]);
        for variant in variants {
            let required = variant["required"].as_array().expect("required");
            assert_eq!(required[0], "type");
            assert!(required.len() > 1, "{variant}");
        }
    }

    #[test]
    fn served_document_lists_the_running_catalog() {
        let extra = EventTypeInfo { name: "report.ready".into(), description: "A report is ready.".into() };
        let catalog = EventCatalog::with_extra_types([extra]).expect("valid name");
        let document = served(&catalog, false);
        let names = document["components"]["schemas"]["WebhookEventType"]["enum"].as_array().expect("enum");
        assert_eq!(names.len(), catalog.entries().len());
        assert!(names.contains(&json!("avatar_video.success")));
        assert!(names.contains(&json!("report.ready")));
    }

    #[test]
    fn served_document_says_whether_http_is_accepted() {
        let catalog = EventCatalog::builtin();
        let pattern = |allow_http| {
            served(&catalog, allow_http)["components"]["schemas"]["WebhookUrl"]["pattern"]
                .as_str()
                .map(str::to_owned)
                .expect("pattern")
        };
        assert!(pattern(false).starts_with("^https://"));
        assert!(pattern(true).starts_with("^https?://"));
    }
}
