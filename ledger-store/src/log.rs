//! Reading the log: the one way readers outside the writer (the APIs, the followers of the log,
//! tools) read events. Events come back as stored (`RecordedEvent`), in position order;
//! `RecordedEvent::event` reads any schema version as today's type. The statements are
//! `sql`'s; this is the surface readers depend on. Domain entities are read as their latest
//! stored rows (`entities`).

pub use crate::sql::{
    StoredEntity, entities_by_id as entities, events_at as at, events_page as page, events_page_of as page_of, to_time,
    transfer_creations,
};
