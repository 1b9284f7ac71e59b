//! The log's tail in memory: the events of every commit that landed, handed by the writer's
//! committer to the followers of the log running in the same process (`ledger up`'s read models),
//! so a follower that keeps up reads its pages from memory instead of reading back from Postgres
//! what was just written.
//!
//! Nothing here is trusted beyond what the log says: a reader takes events from memory only
//! when they continue exactly where it stands (the next position, then every position after it
//! without a gap), and reads the log otherwise (behind, restarted, lagging past the channel,
//! or after the writer reloaded). The events are the sealed records the commit wrote, each with
//! the event the writer decided, which is what decoding the record gives back (a test holds the
//! writer to it): a page from memory is the page the log would have answered, already decoded,
//! and shared by every reader without a copy.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ledger_core::Event;
use tokio::sync::broadcast;

use crate::RecordedEvent;

/// An event of the log and its decoded form, shared by every reader of the tail.
pub type Logged = Arc<(RecordedEvent, Event)>;

/// Commits a reader may fall behind before it is told it lagged (and reads the log instead).
const COMMITS: usize = 4096;

/// The sending side, held by the writer. Cheap to clone; every clone feeds the same readers.
#[derive(Clone, Debug)]
pub struct Tail {
    tx: broadcast::Sender<Arc<[Logged]>>,
    keep: usize,
    served: Arc<AtomicU64>,
}

impl Tail {
    /// A tail whose readers each keep at most `keep` events they have not reached yet (a reader
    /// further behind reads the log until it is within `keep` of the head).
    pub fn new(keep: usize) -> Tail {
        Tail { tx: broadcast::channel(COMMITS).0, keep: keep.max(1), served: Arc::default() }
    }

    /// A commit landed with these events (in position order). Nothing is kept without readers.
    pub fn publish(&self, events: Vec<Logged>) {
        if !events.is_empty() && self.tx.receiver_count() > 0 {
            let _ = self.tx.send(events.into());
        }
    }

    /// A reader of the commits published from now on.
    pub fn reader(&self) -> TailReader {
        TailReader {
            rx: self.tx.subscribe(),
            buffer: VecDeque::new(),
            buffered: 0,
            keep: self.keep,
            served: Arc::clone(&self.served),
        }
    }

    /// Events every reader together took from memory instead of the log.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }
}

/// One follower's view of the tail.
#[derive(Debug)]
pub struct TailReader {
    rx: broadcast::Receiver<Arc<[Logged]>>,
    buffer: VecDeque<Arc<[Logged]>>,
    buffered: usize,
    keep: usize,
    served: Arc<AtomicU64>,
}

impl TailReader {
    /// Up to `limit` events after `after`, when memory holds the very next one and every one
    /// after it up to the last it returns; `None`: read the log.
    pub fn page(&mut self, after: i64, limit: usize) -> Option<Vec<Logged>> {
        self.receive();
        // What the follower has passed is of no more use.
        while self.buffer.front().is_some_and(|c| c.last().is_none_or(|e| e.0.position <= after)) {
            self.pop();
        }
        let first = self.buffer.front()?.first()?.0.position;
        if first > after + 1 {
            return None;
        }
        let mut page = Vec::with_capacity(limit.min(self.buffered));
        let mut next = after + 1;
        'commits: for commit in &self.buffer {
            let start = next;
            for event in commit.iter().skip_while(|e| e.0.position < start) {
                if event.0.position != next || page.len() == limit {
                    break 'commits;
                }
                page.push(Arc::clone(event));
                next += 1;
            }
        }
        self.served.fetch_add(page.len() as u64, Ordering::Relaxed);
        Some(page).filter(|p| !p.is_empty())
    }

    fn receive(&mut self) {
        loop {
            match self.rx.try_recv() {
                Ok(commit) => {
                    self.buffered += commit.len();
                    self.buffer.push_back(commit);
                    // Far behind: the oldest go; the follower reads those from the log.
                    while self.buffered > self.keep && self.buffer.len() > 1 {
                        self.pop();
                    }
                }
                // Commits were missed: what is kept no longer continues into what comes next.
                Err(broadcast::error::TryRecvError::Lagged(_)) => {
                    self.buffer.clear();
                    self.buffered = 0;
                }
                Err(broadcast::error::TryRecvError::Empty | broadcast::error::TryRecvError::Closed) => return,
            }
        }
    }

    fn pop(&mut self) {
        if let Some(commit) = self.buffer.pop_front() {
            self.buffered -= commit.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(positions: std::ops::RangeInclusive<i64>) -> Vec<Logged> {
        positions
            .map(|position| {
                let event = Event::from(ledger_core::ledger::Event::AccountFrozen(
                    ledger_core::ledger::event::AccountStatusChanged {
                        id: ledger_core::AccountId(uuid::Uuid::from_u128(position as u128)),
                        reason: None,
                        at: ledger_core::Timestamp(0),
                    },
                ));
                (
                    RecordedEvent {
                        position,
                        event_id: uuid::Uuid::from_u128(position as u128),
                        stream_id: format!("s-{position}"),
                        stream_version: 1,
                        event_type: "T".into(),
                        schema_version: 1,
                        payload: "{}".into(),
                        metadata: "{}".into(),
                        recorded_at: ledger_core::Timestamp(0),
                        hash: [0; 32],
                    },
                    event,
                )
            })
            .map(Arc::new)
            .collect()
    }

    fn positions(page: Option<Vec<Logged>>) -> Option<Vec<i64>> {
        page.map(|p| p.iter().map(|e| e.0.position).collect())
    }

    #[test]
    fn a_reader_gets_the_events_that_continue_where_it_stands_and_nothing_else() {
        let tail = Tail::new(100);
        tail.publish(events(1..=2));
        let mut reader = tail.reader();
        // Published before the reader existed: not there; the log answers.
        assert_eq!(positions(reader.page(0, 10)), None);
        tail.publish(events(3..=5));
        tail.publish(events(6..=6));
        assert_eq!(positions(reader.page(0, 10)), None, "position 1 is not in memory");
        assert_eq!(positions(reader.page(2, 10)), Some(vec![3, 4, 5, 6]));
        assert_eq!(positions(reader.page(3, 2)), Some(vec![4, 5]), "at most the limit");
        assert_eq!(positions(reader.page(5, 10)), Some(vec![6]));
        assert_eq!(positions(reader.page(6, 10)), None, "nothing past the head");
        assert_eq!(tail.served(), 7);
        // A gap (a commit this reader never saw): memory serves up to it, the log after.
        tail.publish(events(7..=8));
        tail.publish(events(10..=11));
        assert_eq!(positions(reader.page(6, 10)), Some(vec![7, 8]));
        assert_eq!(positions(reader.page(8, 10)), None);
        assert_eq!(positions(reader.page(9, 10)), Some(vec![10, 11]));
        // Empty commits and publishing without readers change nothing.
        tail.publish(Vec::new());
        drop(reader);
        tail.publish(events(12..=12));
        assert_eq!(tail.served(), 11);
    }

    #[test]
    fn a_reader_far_behind_keeps_only_the_newest_and_a_lagging_one_reads_the_log() {
        let tail = Tail::new(4);
        let mut reader = tail.reader();
        for p in 1..=6 {
            tail.publish(events(p..=p));
        }
        assert_eq!(positions(reader.page(0, 10)), None, "the oldest were let go");
        assert_eq!(positions(reader.page(2, 10)), Some(vec![3, 4, 5, 6]));
        // One commit larger than what is kept is still kept whole.
        tail.publish(events(7..=16));
        assert_eq!(positions(reader.page(6, 20)).map(|p| p.len()), Some(10));

        let tail = Tail::new(1_000_000);
        let mut lagging = tail.reader();
        for p in 17..=(16 + COMMITS as i64 + 1) {
            tail.publish(events(p..=p));
        }
        // The channel dropped the oldest commit for this reader: memory starts after it.
        assert_eq!(positions(lagging.page(16, 10)), None);
        let last = 16 + COMMITS as i64 + 1;
        tail.publish(events(last + 1..=last + 1));
        assert_eq!(positions(lagging.page(last, 10)), Some(vec![last + 1]));
    }
}
