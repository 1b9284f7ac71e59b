//! A page of the log, decoded once and shared by every read model that applies it.

use std::collections::HashMap;

use ledger_core::ledger::Event as LedgerEvent;
use ledger_core::ledger::event::{PendingPosted, PendingReleased};
use ledger_core::{Event, Posting, TransferId};
use ledger_store::RecordedEvent;
use sqlx::PgConnection;

use crate::ApplyError;

pub struct Page {
    pub events: Vec<(RecordedEvent, Event)>,
    /// Held postings of every pending transfer a settling event in this page names.
    pub held: HashMap<TransferId, Vec<Posting>>,
    /// The position that created each transfer the page creates, settles or reverses.
    pub created: HashMap<TransferId, i64>,
}

impl Page {
    /// Reads up to `limit` events after `after`, decodes them, and loads the held postings the
    /// settling events need (from the page itself, or from the log).
    pub async fn read(conn: &mut PgConnection, after: i64, limit: i64) -> Result<Page, ApplyError> {
        let records = ledger_store::log::page(conn, after, limit).await?;
        Page::of(conn, records).await
    }

    /// Decodes `records` (consecutive events of the log, from it or from its tail in memory)
    /// and loads from the log the held postings their settling events need.
    pub async fn of(conn: &mut PgConnection, records: Vec<RecordedEvent>) -> Result<Page, ApplyError> {
        let mut events = Vec::with_capacity(records.len());
        let mut held = HashMap::new();
        let mut created = HashMap::new();
        let mut missing = Vec::new();
        let mut reversed = Vec::new();
        for record in records {
            let event =
                record.event().map_err(|e| ApplyError::Poison { position: record.position, error: e.to_string() })?;
            if let Some(LedgerEvent::TransferPosted(e) | LedgerEvent::PendingTransferCreated(e)) = event.ledger() {
                created.insert(e.id, record.position);
                if let Some(original) = e.reverses.filter(|o| !created.contains_key(o)) {
                    reversed.push(original.0);
                }
            }
            match event.ledger() {
                Some(LedgerEvent::PendingTransferCreated(e)) => {
                    held.insert(e.id, e.postings.clone());
                }
                Some(
                    LedgerEvent::PendingTransferPosted(PendingPosted { id, .. })
                    | LedgerEvent::PendingTransferVoided(PendingReleased { id, .. })
                    | LedgerEvent::PendingTransferExpired(PendingReleased { id, .. }),
                ) if !held.contains_key(id) => {
                    missing.push(id.0);
                }
                _ => {}
            }
            events.push((record, event));
        }
        if !missing.is_empty() {
            // Holds created in an earlier page: their creation events, read as any other
            // stored event (any schema version).
            for record in ledger_store::log::transfer_creations(conn, &missing).await? {
                if let Some(LedgerEvent::PendingTransferCreated(e)) =
                    record.event().ok().as_ref().and_then(Event::ledger)
                {
                    held.insert(e.id, e.postings.clone());
                    created.insert(e.id, record.position);
                }
            }
        }
        if !reversed.is_empty() {
            // Transfers reversed in this page, created in an earlier one.
            for record in ledger_store::log::transfer_creations(conn, &reversed).await? {
                if let Some(LedgerEvent::TransferPosted(e) | LedgerEvent::PendingTransferCreated(e)) =
                    record.event().ok().as_ref().and_then(Event::ledger)
                {
                    created.insert(e.id, record.position);
                }
            }
        }
        Ok(Page { events, held, created })
    }

    pub fn last_position(&self) -> Option<i64> {
        self.events.last().map(|(r, _)| r.position)
    }

    /// The whole page.
    pub fn view(&self) -> PageView<'_> {
        PageView { events: &self.events, held: &self.held, created: &self.created }
    }

    /// The events after `checkpoint` (for a projection that is further along than the page's
    /// start), with every hold the page knows.
    pub fn after(&self, checkpoint: i64) -> PageView<'_> {
        let start = self.events.partition_point(|(r, _)| r.position <= checkpoint);
        PageView { events: &self.events[start..], held: &self.held, created: &self.created }
    }
}

/// A run of a page's events, as one read model applies it.
pub struct PageView<'a> {
    pub events: &'a [(RecordedEvent, Event)],
    pub held: &'a HashMap<TransferId, Vec<Posting>>,
    pub created: &'a HashMap<TransferId, i64>,
}

impl<'a> PageView<'a> {
    /// The events before `position`.
    pub fn before(&self, position: i64) -> PageView<'a> {
        let end = self.events.partition_point(|(r, _)| r.position < position);
        PageView { events: &self.events[..end], held: self.held, created: self.created }
    }

    pub fn last_position(&self) -> Option<i64> {
        self.events.last().map(|(r, _)| r.position)
    }

    /// The ledger domain's events of the run: accounts and transfers.
    pub fn ledger(&self) -> impl Iterator<Item = (&'a RecordedEvent, &'a LedgerEvent)> + use<'a> {
        self.events.iter().filter_map(|(r, e)| e.ledger().map(|e| (r, e)))
    }

    /// The position that created a transfer the run settles or reverses, or a poison error
    /// naming the event.
    pub fn created(&self, id: TransferId, position: i64) -> Result<i64, ApplyError> {
        self.created
            .get(&id)
            .copied()
            .ok_or_else(|| ApplyError::Poison { position, error: format!("transfer {id} is not in the log") })
    }

    /// The held postings of a pending transfer, or a poison error naming the event.
    pub fn held(&self, id: TransferId, position: i64) -> Result<&[Posting], ApplyError> {
        self.held
            .get(&id)
            .map(Vec::as_slice)
            .ok_or_else(|| ApplyError::Poison { position, error: format!("pending transfer {id} is not in the log") })
    }
}
