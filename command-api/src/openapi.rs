//! The OpenAPI 3 document, generated from the handlers and wire types. A copy is kept in
//! `schemas/openapi.json`; a test fails when the two drift.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::Problem;
use crate::routes;
use crate::wire::*;

#[derive(OpenApi)]
#[openapi(
    info(title = "ledger command API", description = "Accounts, transfers, holds and reversals for payment channels. \
        Amounts are decimal strings; every write answers with the log position it produced."),
    paths(routes::open_account, routes::get_account, routes::find_account, routes::change_account_status,
        routes::create_transfer,
        routes::create_batch, routes::post_pending, routes::void_pending, routes::reverse, routes::get_transfer,
        routes::events),
    components(schemas(Problem, AccountBody, BalanceBody, OpenAccountRequest, TransferRequest, PostingRequestBody,
        AccountStatusRequest, routes::StatusAction, PostPendingRequest, ReverseRequest, BatchRequest, BatchBody, BatchItem, TransferBody, PostingBody, EventBody,
        EventPage, WireAmount)),
    modifiers(&BearerKey)
)]
pub struct ApiDoc;

struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("api_key", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// The document as committed under `schemas/`.
pub fn json() -> String {
    let mut text = ApiDoc::openapi().to_pretty_json().unwrap_or_default();
    text.push('\n');
    text
}
