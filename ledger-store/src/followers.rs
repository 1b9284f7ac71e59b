//! Backpressure: readers of the log that run beside the writer (the projections `ledger up`
//! runs) report how far they got, and the writer does not run away from the slowest one.
//!
//! The bound is `max_lag` events, and with a `max_delay` also time: no more events than the
//! followers apply in `max_delay` at the pace they can apply pages (the fastest page of late,
//! measured as they go; the slowest follower's pace counts, and the
//! bound never drops below `MIN_BOUND`), so once the writes
//! stop the followers have everything within about `max_delay`, however costly an event is to
//! apply (many accounts, a second database, a slow machine). While the slowest follower is
//! within the bound, nothing changes. Beyond it, the writer earns the right to write half as
//! many events as the followers apply, so the lag shrinks back to the bound instead of growing,
//! and writes slow down but never stop while the followers make progress. A follower that is
//! halted, gone, or has not advanced for `STALL` while behind is ignored: a stuck read model
//! never stops payments.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A follower behind the bound that has not advanced for this long is not waited for.
pub const STALL: Duration = Duration::from_secs(5);

/// The time bound never holds the writer closer than this many events to the followers.
pub const MIN_BOUND: i64 = 1_000;

#[derive(Debug)]
struct Slot {
    name: String,
    /// The follower's checkpoint; `i64::MAX` once it left.
    checkpoint: AtomicI64,
    /// Microseconds since `Followers::epoch` of its last advance.
    advanced_micros: AtomicI64,
    /// Events per second it can apply: the fastest page it applied lately (a maximum that decays
    /// by a thirty-second per page), 0 until one read something. The fastest, not the average:
    /// under load its pages are small and share the CPU with the writer, while after the writes
    /// stop it catches up in big pages on an idle machine; the average of the small pages would
    /// hold the writer far closer than the catch-up needs. Every page counts: measuring full
    /// pages only would never measure again once a bound below one page kept them small.
    pace: AtomicI64,
}

/// The followers of one writer.
#[derive(Debug)]
pub struct Followers {
    max_lag: i64,
    max_delay: Option<Duration>,
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

    /// A page of `events` (at least one) took `took` to apply: the pace the time bound is
    /// taken at.
    pub fn applied(&self, events: usize, took: Duration) {
        let micros = took.as_micros().max(1);
        let sample = i64::try_from(events as u128 * 1_000_000 / micros).unwrap_or(i64::MAX).max(1);
        let before = self.slot.pace.load(Ordering::Relaxed);
        let pace = sample.max(before - before / 32);
        self.slot.pace.store(pace.max(1), Ordering::Relaxed);
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
        Followers::with_max_delay(max_lag, None)
    }

    /// `max_lag` events, and no more than the followers apply in `max_delay` (see the module).
    pub fn with_max_delay(max_lag: i64, max_delay: Option<Duration>) -> Arc<Followers> {
        Arc::new(Followers {
            max_lag: max_lag.max(1),
            max_delay: max_delay.filter(|d| !d.is_zero()),
            epoch: Instant::now(),
            slots: Mutex::new(Vec::new()),
        })
    }

    /// Registers a follower; it counts once it reports its first checkpoint.
    pub fn join(&self, name: &str) -> Follower {
        let slot = Arc::new(Slot {
            name: name.to_owned(),
            checkpoint: AtomicI64::new(i64::MAX),
            advanced_micros: AtomicI64::new(self.epoch.elapsed().as_micros() as i64),
            pace: AtomicI64::new(0),
        });
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.retain(|s| s.checkpoint.load(Ordering::Relaxed) != i64::MAX || Arc::strong_count(s) > 1);
        slots.push(Arc::clone(&slot));
        Follower { slot, epoch: self.epoch }
    }

    pub fn max_lag(&self) -> i64 {
        self.max_lag
    }

    /// How many events the writer may run ahead now: `max_lag`, or fewer where the slowest
    /// pace of the followers applies fewer in `max_delay` (never below `MIN_BOUND`).
    pub fn bound(&self) -> i64 {
        let Some(delay) = self.max_delay else { return self.max_lag };
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let slowest_pace = slots
            .iter()
            .filter(|s| s.checkpoint.load(Ordering::Relaxed) != i64::MAX)
            .map(|s| s.pace.load(Ordering::Relaxed))
            .filter(|pace| *pace > 0)
            .min();
        match slowest_pace {
            Some(pace) => {
                let in_delay = i64::try_from(pace as i128 * delay.as_micros() as i128 / 1_000_000).unwrap_or(i64::MAX);
                in_delay.clamp(MIN_BOUND.min(self.max_lag), self.max_lag)
            }
            None => self.max_lag,
        }
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
                // Stalled past the lowest the bound can be: never waited for, whatever the
                // bound is at the moment.
                let waited_for =
                    checkpoint != i64::MAX && !(stalled && head - checkpoint > self.max_lag.min(MIN_BOUND));
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
        if lag <= followers.bound() {
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
    fn with_a_delay_the_bound_is_what_the_slowest_pace_applies_in_it() {
        let followers = Followers::with_max_delay(20_000, Some(Duration::from_millis(500)));
        let fast = followers.join("turnover");
        let slow = followers.join("journal");
        fast.report(0);
        slow.report(0);
        assert_eq!(followers.bound(), 20_000, "no pace measured yet: the event bound");
        fast.applied(2_000, Duration::from_millis(20));
        assert_eq!(followers.bound(), 20_000, "100,000 events/s apply 50,000 in 500 ms: capped");
        slow.applied(2_000, Duration::from_millis(200));
        assert_eq!(followers.bound(), 5_000, "the slowest pace, 10,000 events/s, for 500 ms");
        let mut throttle = Throttle::default();
        assert_eq!(throttle.check(&followers, 5_000), None);
        assert_eq!(throttle.check(&followers, 5_001), Some(5_001));
        // The fastest page lately: a faster one takes over at once, slower ones wear it down.
        slow.applied(2_000, Duration::from_millis(100));
        assert_eq!(followers.bound(), 10_000);
        slow.applied(10, Duration::from_secs(10));
        assert_eq!(followers.bound(), (20_000 - 20_000 / 32) / 2);
        // Never below the floor, and a follower that left no longer counts.
        for _ in 0..100 {
            slow.applied(10, Duration::from_secs(10));
        }
        assert_eq!(followers.bound(), MIN_BOUND);
        slow.leave();
        assert_eq!(followers.bound(), 20_000);
        // Without a delay, only the event bound.
        let plain = Followers::new(300);
        let f = plain.join("balances");
        f.report(0);
        f.applied(10, Duration::from_secs(1));
        assert_eq!(plain.bound(), 300);
    }

    #[test]
    fn a_stalled_follower_past_the_lowest_bound_is_not_waited_for() {
        let followers = Followers::with_max_delay(20_000, Some(Duration::from_millis(500)));
        let f = followers.join("journal");
        f.report(0);
        f.applied(1_000, Duration::from_secs(1));
        assert_eq!(followers.bound(), MIN_BOUND);
        assert_eq!(followers.slowest(5_000), Some((0, "journal".to_owned())));
        // As if it had not advanced for longer than STALL.
        f.slot.advanced_micros.store(-(STALL.as_micros() as i64) - 1, Ordering::Relaxed);
        assert_eq!(followers.slowest(MIN_BOUND), Some((0, "journal".to_owned())), "within the lowest bound");
        assert_eq!(followers.slowest(MIN_BOUND + 1), None, "past it: the writer goes on");
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
