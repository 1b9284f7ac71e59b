//! A page of the log, decoded once and shared by every read model that applies it.

use std::collections::HashMap;

use ledger_core::ledger::Event as LedgerEvent;
use ledger_core::ledger::event::{PendingPosted, PendingReleased};
use ledger_core::{Event, Posting, TransferId};
use ledger_store::RecordedEvent;
use ledger_store::tail::Logged;
use sqlx::PgConnection;

use crate::ApplyError;

pub struct Page {
    /// Each event with its decoded form (shared with the writer's tail when it came from there).
    pub events: Vec<Logged>,
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
        Page::of(conn, decode(records)?).await
    }

    /// The page of `events` (consecutive events of the log, decoded: read from it, or taken from
    /// its tail in memory), with the held postings their settling events need loaded from the
    /// log.
    pub async fn of(conn: &mut PgConnection, events: Vec<Logged>) -> Result<Page, ApplyError> {
        let mut held = HashMap::new();
        let mut created = HashMap::new();
        let mut missing = Vec::new();
        let mut reversed = Vec::new();
        for logged in &events {
            let (record, event) = &**logged;
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
        self.events.last().map(|e| e.0.position)
    }

    /// The whole page.
    pub fn view(&self) -> PageView<'_> {
        PageView { events: &self.events, held: &self.held, created: &self.created }
    }

    /// The events after `checkpoint` (for a projection that is further along than the page's
    /// start), with every hold the page knows.
    pub fn after(&self, checkpoint: i64) -> PageView<'_> {
        let start = self.events.partition_point(|e| e.0.position <= checkpoint);
        PageView { events: &self.events[start..], held: &self.held, created: &self.created }
    }
}

/// Decodes records read from the log; one that cannot be decoded is poison at its position.
pub fn decode(records: Vec<RecordedEvent>) -> Result<Vec<Logged>, ApplyError> {
    records
        .into_iter()
        .map(|record| match record.event() {
            Ok(event) => Ok(std::sync::Arc::new((record, event))),
            Err(e) => Err(ApplyError::Poison { position: record.position, error: e.to_string() }),
        })
        .collect()
}

/// A run of a page's events, as one read model applies it.
pub struct PageView<'a> {
    pub events: &'a [Logged],
    pub held: &'a HashMap<TransferId, Vec<Posting>>,
    pub created: &'a HashMap<TransferId, i64>,
}

impl<'a> PageView<'a> {
    /// The events before `position`.
    pub fn before(&self, position: i64) -> PageView<'a> {
        let end = self.events.partition_point(|e| e.0.position < position);
        PageView { events: &self.events[..end], held: self.held, created: self.created }
    }

    pub fn last_position(&self) -> Option<i64> {
        self.events.last().map(|e| e.0.position)
    }

    /// Every event of the run with its record.
    pub fn iter(&self) -> impl Iterator<Item = (&'a RecordedEvent, &'a Event)> + use<'a> {
        self.events.iter().map(|e| (&e.0, &e.1))
    }

    /// The ledger domain's events of the run: accounts and transfers.
    pub fn ledger(&self) -> impl Iterator<Item = (&'a RecordedEvent, &'a LedgerEvent)> + use<'a> {
        self.iter().filter_map(|(r, e)| e.ledger().map(|e| (r, e)))
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
