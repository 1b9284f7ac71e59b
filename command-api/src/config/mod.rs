//! The runtime configuration's endpoints: every setting in effect, one setting, and changing or
//! resetting one (each change an event of the `config` domain); their OpenAPI part and the
//! table that maps the config domain's rejections to HTTP.

pub mod routes;
pub mod wire;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use ledger_core::config::Rejection;
use utoipa::OpenApi;

use crate::ApiState;
use crate::error::{ApiError, Refusal};
use wire::*;

/// The configuration's routes.
/// The texts the settings' requests carry: a key is a reference (an unknown one is 404).
pub const TEXTS: &[(crate::openapi::At, crate::openapi::Text)] = &[
    (crate::openapi::At::Parameter("get", "key"), crate::openapi::Text::Reference),
    (crate::openapi::At::Parameter("set", "key"), crate::openapi::Text::Reference),
    (crate::openapi::At::Parameter("reset", "key"), crate::openapi::Text::Reference),
];

pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/v1/config", get(routes::list))
        .route("/v1/config/{key}", get(routes::get).put(routes::set).delete(routes::reset))
}

/// The configuration's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    paths(routes::list, routes::get, routes::set, routes::reset),
    components(schemas(ConfigEntry, ConfigList, SetConfigBody))
)]
pub struct Doc;

/// HTTP status of each config rejection: 404 for a key no setting has, 422 for a value the
/// setting refuses, 409 for a key whose entity id another kind holds.
pub fn rejection_status(r: Rejection) -> StatusCode {
    match r {
        Rejection::UnknownConfigKey => StatusCode::NOT_FOUND,
        Rejection::InvalidConfigValue => StatusCode::UNPROCESSABLE_ENTITY,
        Rejection::IdTaken => StatusCode::CONFLICT,
    }
}

/// A config rejection as the API answers it, with why when it is known.
pub fn refusal(r: Rejection, why: Option<String>) -> Refusal {
    let detail = match why {
        Some(why) => format!("{r}: {why}"),
        None => r.to_string(),
    };
    Refusal { status: rejection_status(r), code: r.code(), detail }
}

impl From<Rejection> for ApiError {
    fn from(r: Rejection) -> Self {
        ApiError::Rejected(refusal(r, None))
    }
}
