//! The committer: the connection that holds the writer lock, one statement per commit.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use sqlx::PgConnection;
use tokio::sync::{mpsc, watch};
use tracing::{error, warn};

use super::decider::Sealed;
use super::{Standby, lock, micros};
use crate::metrics::WriterMetrics;
use crate::sql::{self, GroupWrite};
use crate::view::{CommittedAccount, CommittedView};

pub(super) struct Committer {
    url: String,
    conn: PgConnection,
    max_commit_events: usize,
    epoch: u64,
    epoch_tx: watch::Sender<u64>,
    metrics: Arc<WriterMetrics>,
    view: Arc<CommittedView>,
}

impl Committer {
    pub(super) fn new(
        url: &str,
        conn: PgConnection,
        max_commit_events: usize,
        metrics: Arc<WriterMetrics>,
        view: Arc<CommittedView>,
        epoch_tx: watch::Sender<u64>,
    ) -> Committer {
        Committer { url: url.to_owned(), conn, max_commit_events, epoch: 0, epoch_tx, metrics, view }
    }

    /// Commits everything sealed since the last commit in one statement, then answers.
    pub(super) async fn run(mut self, mut rx: mpsc::Receiver<Sealed>) {
        while let Some(first) = rx.recv().await {
            let mut events = first.events.len();
            let mut groups = vec![first];
            while events < self.max_commit_events {
                match rx.try_recv() {
                    Ok(group) => {
                        events += group.events.len();
                        groups.push(group);
                    }
                    Err(_) => break,
                }
            }
            // Groups decided on top of a failed commit are void: their callers may retry.
            let (groups, stale): (Vec<Sealed>, Vec<Sealed>) = groups.into_iter().partition(|g| g.epoch == self.epoch);
            stale.into_iter().flat_map(|g| g.replies).for_each(super::Reply::fail);
            if groups.is_empty() {
                continue;
            }
            self.commit(groups).await;
        }
        // Every handle is gone and everything is committed: hand the writer lock over now, so a
        // standby or a restart need not wait for Postgres to notice the closed connection.
        let _ = sqlx::query("SELECT pg_advisory_unlock_all()").execute(&mut self.conn).await;
        let _ = sqlx::Connection::close(self.conn).await;
    }

    async fn commit(&mut self, groups: Vec<Sealed>) {
        // Later groups hold newer rows of the same account or transfer: keep the last.
        let mut accounts = HashMap::new();
        let mut transfers = HashMap::new();
        let mut write = GroupWrite::default();
        for group in &groups {
            write.events.extend(group.events.iter());
            for (account, first, last) in &group.accounts {
                accounts.insert(account.id, (account, *first, *last));
            }
            for transfer in &group.transfers {
                transfers.insert(transfer.id, transfer);
            }
        }
        let head = write.events.last().map(|e| e.position);
        if let Some(head) = head {
            write.accounts = accounts.values().copied().collect();
            write.transfers = transfers.values().copied().collect();
            let started = Instant::now();
            if let Err(e) = sql::write_group(&mut self.conn, &write).await {
                error!(error = %e, events = write.events.len(), "commit failed; the writer reloads its state");
                WriterMetrics::add(&self.metrics.failed_commits, 1);
                drop(write);
                groups.into_iter().flat_map(|g| g.replies).for_each(super::Reply::fail);
                self.recover().await;
                return;
            }
            self.metrics.observe_commit(micros(started.elapsed()), write.events.len() as u64);
            WriterMetrics::add(&self.metrics.events, write.events.len() as u64);
            let committed = accounts
                .into_values()
                .map(|(account, _, last)| CommittedAccount { account: account.clone(), position: last });
            self.view.publish(committed, head);
            self.metrics.set_head(head);
            WriterMetrics::add(&self.metrics.groups, 1);
        }
        drop(write);
        groups.into_iter().flat_map(|g| g.replies).for_each(super::Reply::send);
    }

    /// Reconnects and retakes the lock (waiting as a standby if another writer took over), then
    /// tells the decider to reload from what is durable.
    async fn recover(&mut self) {
        let mut delay = std::time::Duration::from_millis(100);
        loop {
            match lock(&self.url, Standby::Wait).await {
                Ok(conn) => {
                    self.conn = conn;
                    self.epoch += 1;
                    let _ = self.epoch_tx.send(self.epoch);
                    return;
                }
                Err(e) => warn!(error = %e, "reconnecting the writer failed"),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(std::time::Duration::from_secs(5));
        }
    }
}
