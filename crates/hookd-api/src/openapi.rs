//! The OpenAPI 3.1 document's frame; the operations and schemas come from the
//! `#[utoipa::path]` annotations on the handlers, collected as the router is built.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

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
