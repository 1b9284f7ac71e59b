//! What every domain's handlers share: authentication, event metadata from the request, and
//! answering with JSON.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ledger_core::permission::Need;
use ledger_store::keys::{Principal, bearer};
use ledger_store::{Committed, EventMeta};
use uuid::Uuid;

use crate::error::ApiError;
use crate::{ApiState, RequestId};

/// The caller, if its key grants `need`. Every refusal of a key (401, and the 403 naming the
/// missing permission) of every handler passes here: the one place to record them.
/// A 403 is an audit entry (`Auditor::denied`: `access.denied`, the missing permission as its
/// subject), recorded before the refusal is answered.
pub(crate) async fn require(state: &ApiState, headers: &HeaderMap, need: Need<'_>) -> Result<Principal, ApiError> {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let who = state.inner.keys.authenticate(bearer(authorization)).await?;
    if let Err(refused) = who.require(&need) {
        state.auditor.denied(&who, &need.to_string()).await;
        return Err(refused.into());
    }
    Ok(who)
}

/// The caller, whatever its key grants: for a handler that decides itself which permission to
/// ask (then [`require_of`], which records the refusal).
pub(crate) async fn authenticate(state: &ApiState, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    Ok(state.inner.keys.authenticate(bearer(authorization)).await?)
}

/// The caller, if its key grants `need` for at least one owner: the check before a handler has
/// read which owner its command concerns (it then asks [`require_of`] with the owner).
pub(crate) async fn require_some(state: &ApiState, headers: &HeaderMap, need: Need<'_>) -> Result<Principal, ApiError> {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let who = state.inner.keys.authenticate(bearer(authorization)).await?;
    if let Err(refused) = who.require_some_scope(&need) {
        state.auditor.denied(&who, &need.to_string()).await;
        return Err(refused.into());
    }
    Ok(who)
}

/// `Ok` if the authenticated caller's key grants one of `needs` (the first is named, and
/// audited, when none does): a store's or a trader's view of the same order.
pub(crate) async fn require_of(state: &ApiState, who: &Principal, needs: &[Need<'_>]) -> Result<(), ApiError> {
    if needs.iter().any(|need| who.require(need).is_ok()) {
        return Ok(());
    }
    let first = needs.first().map(|n| n.to_string()).unwrap_or_default();
    state.auditor.denied(who, &first).await;
    Err(ApiError::Forbidden(first))
}

/// Event metadata: the authenticated channel and key, plus optional correlation headers.
pub(crate) fn meta(who: &Principal, headers: &HeaderMap, request_id: RequestId) -> Result<EventMeta, ApiError> {
    let header = |name: &str| headers.get(name).map(|v| v.to_str().map_err(|_| bad_header(name)));
    let uuid = |name: &'static str| -> Result<Option<Uuid>, ApiError> {
        header(name).transpose()?.map(|v| Uuid::parse_str(v).map_err(|_| bad_header(name))).transpose()
    };
    let initiator = header("x-initiator").transpose()?;
    // 1 to 128 visible ASCII characters, spaces only inside (the document's pattern).
    let visible = |i: &str| {
        (1..=128).contains(&i.len())
            && i.bytes().all(|b| (b' '..=b'~').contains(&b))
            && !i.starts_with(' ')
            && !i.ends_with(' ')
    };
    if initiator.is_some_and(|i| !visible(i)) {
        return Err(bad_header("x-initiator"));
    }
    Ok(EventMeta {
        correlation_id: Some(uuid("x-correlation-id")?.unwrap_or(request_id.0)),
        causation_id: uuid("x-causation-id")?,
        channel: Some(who.channel.clone()),
        initiator: initiator.map(str::to_owned),
        key_id: Some(who.key_id),
        source: Some(ledger_store::Source::Http),
    })
}

pub(crate) fn bad_header(name: &str) -> ApiError {
    ApiError::InvalidBody(format!("header {name} is not valid (UUIDs for ids, 1 to 128 characters for x-initiator)"))
}

pub(crate) fn json(status: StatusCode, body: impl serde::Serialize) -> Response {
    (status, axum::Json(body)).into_response()
}

/// 201 for something new, 200 for a replayed retry.
pub(crate) fn created(c: &Committed) -> StatusCode {
    if c.replayed { StatusCode::OK } else { StatusCode::CREATED }
}
