//! What the handlers of a domain with entities of its own share: reading an entity as last
//! committed from the writer's memory, submitting a command and reading the row it answered with.

use std::sync::Arc;

use ledger_core::domain::DomainCommand;
use ledger_core::{Entity, EntityRow, Timestamp};
use ledger_store::{Committed, EventMeta};

use crate::ApiState;
use crate::error::ApiError;

/// A row's typed state (parsed once, kept with the row).
pub(crate) fn typed<T: serde::de::DeserializeOwned + Send + Sync + 'static>(
    row: &EntityRow,
) -> Result<Arc<T>, ApiError> {
    row.typed::<T>().map_err(|e| ApiError::Internal(format!("{} row: {e}", row.kind)))
}

/// An entity of `kind` as last committed, with the position of its latest event.
pub(crate) fn committed<T: serde::de::DeserializeOwned + Send + Sync + 'static>(
    state: &ApiState,
    id: uuid::Uuid,
    kind: &str,
) -> Result<Option<(Arc<T>, i64)>, ApiError> {
    match state.inner.ledger.view().entity(id) {
        Some((row, position)) if row.kind == kind => Ok(Some((typed(&row)?, position))),
        _ => Ok(None),
    }
}

/// The row a command answered with.
pub(crate) fn answered(c: &Committed) -> Result<&EntityRow, ApiError> {
    match &c.entity {
        Some(Entity::Row(row)) => Ok(row),
        _ => Err(ApiError::Internal("a command answered without its entity".into())),
    }
}

/// Submits a domain's command; its refusal is the domain's rejection as an `ApiError`.
pub(crate) async fn submit<C>(state: &ApiState, command: C, meta: EventMeta) -> Result<Committed, ApiError>
where
    C: DomainCommand + Into<ledger_core::Command>,
    C::Rejection: TryFrom<ledger_core::Rejection> + Into<ApiError>,
{
    state.inner.ledger.submit(command, meta).await?.map_err(Into::into)
}

/// The wall clock as the core takes it.
pub(crate) fn now() -> Timestamp {
    let micros = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000;
    Timestamp(i64::try_from(micros).unwrap_or(i64::MAX))
}

/// A time a request gives in RFC 3339 (`field` names it in the refusal), as the core takes it.
pub(crate) fn instant(field: &str, text: &str) -> Result<Timestamp, ApiError> {
    use time::format_description::well_known::Rfc3339;
    let t = time::OffsetDateTime::parse(text, &Rfc3339)
        .map_err(|_| ApiError::InvalidBody(format!("{field}: {text:?} is not an RFC 3339 time")))?;
    i64::try_from(t.unix_timestamp_nanos() / 1000)
        .map(Timestamp)
        .map_err(|_| ApiError::InvalidBody(format!("{field}: out of range")))
}
