//! Backpressure: readers of the log that run beside the writer (the projections `ledger up`
//! runs) report how far they got, and the writer does not run away from the slowest one.
//!
//! While the slowest follower is at most `max_lag` events behind, nothing changes. Beyond that,
//! the writer earns the right to write half as many events as the followers apply, so the lag
//! shrinks back to the bound instead of growing, and writes slow down but never stop while
//! the followers make progress. A follower that is halted, gone, or has not advanced for
//! `STALL` while behind is ignored: a stuck read model never stops payments.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A follower behind the bound that has not advanced for this long is not waited for.
pub const STALL: Duration = Duration::from_secs(5);

#[derive(Debug)]
struct Slot {
    name: String,
    /// The follower's checkpoint; `i64::MAX` once it left.
    checkpoint: AtomicI64,
    /// Microseconds since `Followers::epoch` of its last advance.
    advanced_micros: AtomicI64,
}

/// The followers of one writer.
#[derive(Debug)]
pub struct Followers {
    max_lag: i64,
    epoch: Instant,
    slots: Mutex<Vec<Arc<Slot>>>,
}

/// One follower's handle: report each checkpoint; dropping it (or `leave`) stops the writer
/// from waiting for it.
#[derive(Debug)]
pub struct Follower {
    slot: Arc<Slot>,
    epoch: Instant,
}

impl Follower {
    pub fn report(&self, checkpoint: i64) {
        let before = self.slot.checkpoint.swap(checkpoint, Ordering::Relaxed);
        if checkpoint != before {
            self.slot.advanced_micros.store(self.epoch.elapsed().as_micros() as i64, Ordering::Relaxed);
        }
    }

    pub fn leave(&self) {
        self.slot.checkpoint.store(i64::MAX, Ordering::Relaxed);
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.leave();
    }
}

impl Followers {
    /// `max_lag` events: how far the writer may run ahead of the slowest follower.
    pub fn new(max_lag: i64) -> Arc<Followers> {
        Arc::new(Followers { max_lag: max_lag.max(1), epoch: Instant::now(), slots: Mutex::new(Vec::new()) })
    }

    /// Registers a follower; it counts once it reports its first checkpoint.
    pub fn join(&self, name: &str) -> Follower {
        let slot = Arc::new(Slot {
            name: name.to_owned(),
            checkpoint: AtomicI64::new(i64::MAX),
            advanced_micros: AtomicI64::new(self.epoch.elapsed().as_micros() as i64),
        });
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.retain(|s| s.checkpoint.load(Ordering::Relaxed) != i64::MAX || Arc::strong_count(s) > 1);
        slots.push(Arc::clone(&slot));
        Follower { slot, epoch: self.epoch }
    }

    pub fn max_lag(&self) -> i64 {
        self.max_lag
    }

    /// The checkpoint of the slowest follower worth waiting for, with its name.
    pub fn slowest(&self, head: i64) -> Option<(i64, String)> {
        let now = self.epoch.elapsed().as_micros() as i64;
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots
            .iter()
            .filter_map(|s| {
                let checkpoint = s.checkpoint.load(Ordering::Relaxed);
                let stalled = now - s.advanced_micros.load(Ordering::Relaxed) > STALL.as_micros() as i64;
                let waited_for = checkpoint != i64::MAX && !(stalled && head - checkpoint > self.max_lag);
                waited_for.then(|| (checkpoint, s.name.clone()))
            })
            .min()
    }
}

/// The writer's side: whether the next group may be decided now.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    /// The slowest checkpoint seen last.
    seen: Option<i64>,
    /// Events the writer may still write while over the bound.
    credit: i64,
}

impl Throttle {
    /// `None`: go ahead. `Some(lag)`: over the bound with no credit; wait and ask again.
    pub(crate) fn check(&mut self, followers: &Followers, head: i64) -> Option<i64> {
        let (slowest, _) = followers.slowest(head)?;
        let lag = head - slowest;
        if lag <= followers.max_lag() {
            *self = Throttle { seen: Some(slowest), credit: 0 };
            return None;
        }
        if let Some(seen) = self.seen
            && slowest > seen
        {
            self.credit += (slowest - seen) / 2;
        }
        self.seen = Some(self.seen.map_or(slowest, |seen| seen.max(slowest)));
        if self.credit > 0 { None } else { Some(lag) }
    }

    /// The writer wrote `events`.
    pub(crate) fn spend(&mut self, events: i64) {
        self.credit -= events;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_the_bound_nothing_waits() {
        let followers = Followers::new(100);
        let f = followers.join("balances");
        let mut throttle = Throttle::default();
        assert_eq!(throttle.check(&followers, 50), None, "a follower that has not reported yet is not waited for");
        f.report(0);
        assert_eq!(throttle.check(&followers, 100), None);
        assert_eq!(throttle.check(&followers, 101), Some(101));
    }

    #[test]
    fn over_the_bound_the_writer_gets_half_of_what_followers_apply() {
        let followers = Followers::new(100);
        let f = followers.join("journal");
        f.report(0);
        let mut throttle = Throttle::default();
        assert_eq!(throttle.check(&followers, 0), None);
        assert_eq!(throttle.check(&followers, 300), Some(300));
        f.report(40);
        assert_eq!(throttle.check(&followers, 300), None, "40 applied: 20 may be written");
        throttle.spend(20);
        assert_eq!(throttle.check(&followers, 320), Some(280));
        f.report(230);
        assert_eq!(throttle.check(&followers, 320), None, "back within the bound");
    }

    #[test]
    fn the_slowest_counts_and_a_follower_that_left_does_not() {
        let followers = Followers::new(10);
        let a = followers.join("a");
        let b = followers.join("b");
        a.report(90);
        b.report(50);
        assert_eq!(followers.slowest(100), Some((50, "b".to_owned())));
        drop(b);
        assert_eq!(followers.slowest(100), Some((90, "a".to_owned())));
        a.leave();
        assert_eq!(followers.slowest(100), None);
    }
}
