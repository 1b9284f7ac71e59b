//! The P2P orders' handlers, in two parts: `participants` (stores, traders, their traffic and
//! requisites) and `orders` (create, read, and every transition). Each authenticates with the
//! permission the issue names, scoped by the store or trader the command concerns (read from the
//! writer's memory first), turns the body into the core's command, submits it and answers with
//! the entity as committed. What both parts read and submit with is here.

pub mod orders;
pub mod participants;

use std::sync::Arc;

use axum::http::StatusCode;
use ledger_core::CurrencyCode;
use ledger_core::orders::state::{Requisite, Store};
use ledger_core::orders::{Command, REQUISITE_KIND, Rejection, STORE_KIND, requisite_entity, store_entity};
use ledger_store::{Committed, EventMeta};

use crate::ApiState;
use crate::entity::committed;
pub(super) use crate::entity::{answered, typed};
use crate::error::{ApiError, Refusal};

fn store_of(state: &ApiState, id: &str) -> Result<Option<(Arc<Store>, i64)>, ApiError> {
    committed(state, store_entity(id).id, STORE_KIND)
}

fn requisite_of(state: &ApiState, trader: &str, id: &str) -> Result<Option<(Arc<Requisite>, i64)>, ApiError> {
    committed(state, requisite_entity(trader, id).id, REQUISITE_KIND)
}

async fn submit(state: &ApiState, command: Command, meta: EventMeta) -> Result<Committed, ApiError> {
    crate::entity::submit(state, command, meta).await
}

fn scale(state: &ApiState, currency: &CurrencyCode) -> u32 {
    state.inner.ledger.currencies().scale(currency).unwrap_or(2)
}

fn currency(text: &str) -> Result<CurrencyCode, ApiError> {
    CurrencyCode::parse(text)
        .map_err(|_| ApiError::from(Rejection::Ledger(ledger_core::ledger::Rejection::UnknownCurrency)))
}

fn allow_private(state: &ApiState) -> bool {
    state.config.get(ledger_core::webhook::ALLOW_PRIVATE_KEY).as_bool().unwrap_or(false)
}

/// A callback URL is a receiver the platform may send to (`webhooks::store::check_receiver`).
async fn check_callback(state: &ApiState, url: Option<&str>) -> Result<(), ApiError> {
    let Some(url) = url else { return Ok(()) };
    webhooks::store::check_receiver(url, allow_private(state)).await.map_err(|e| {
        ApiError::Rejected(Refusal {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: Rejection::InvalidCallbackUrl.code(),
            detail: format!("callback_url: {e}"),
        })
    })
}
