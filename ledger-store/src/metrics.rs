//! Counters the writer keeps about itself, read by `/metrics` and the benchmark.

use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds (milliseconds) of the commit-latency histogram buckets.
pub const COMMIT_BUCKETS_MS: [u64; 12] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000];

/// Upper bounds of the events-per-commit histogram buckets.
pub const COMMIT_SIZE_BUCKETS: [u64; 10] = [1, 4, 16, 64, 256, 1024, 4096, 16384, 32768, 65536];

#[derive(Default)]
pub struct WriterMetrics {
    pub groups: AtomicU64,
    pub commands: AtomicU64,
    pub events: AtomicU64,
    pub failed_commits: AtomicU64,
    /// Time spent loading transfers named by commands, deciding, and committing (microseconds).
    pub prefetch_micros: AtomicU64,
    pub decide_micros: AtomicU64,
    pub commit_micros: AtomicU64,
    /// Time the decider waited for slow followers (backpressure), in microseconds.
    pub throttled_micros: AtomicU64,
    /// Cumulative counts of commits at or under each bucket of `COMMIT_BUCKETS_MS`.
    pub commit_buckets: [AtomicU64; COMMIT_BUCKETS_MS.len()],
    /// Cumulative counts of commits writing at most each bucket of `COMMIT_SIZE_BUCKETS` events.
    pub commit_size_buckets: [AtomicU64; COMMIT_SIZE_BUCKETS.len()],
    pub head_position: AtomicU64,
    /// Transfer ids the decider looked up in the database (not in memory, maybe stored).
    pub transfers_looked_up: AtomicU64,
    /// 1 once the filter of stored transfer ids is built (new ids are then not looked up).
    pub transfer_filter_ready: AtomicU64,
}

impl WriterMetrics {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn observe_commit(&self, micros: u64, events: u64) {
        for (bucket, bound) in self.commit_size_buckets.iter().zip(COMMIT_SIZE_BUCKETS) {
            if events <= bound {
                Self::add(bucket, 1);
            }
        }
        Self::add(&self.commit_micros, micros);
        for (bucket, bound_ms) in self.commit_buckets.iter().zip(COMMIT_BUCKETS_MS) {
            if micros <= bound_ms * 1000 {
                Self::add(bucket, 1);
            }
        }
    }

    pub(crate) fn set_head(&self, head: i64) {
        self.head_position.store(u64::try_from(head).unwrap_or(0), Ordering::Relaxed);
    }

    pub(crate) fn set(gauge: &AtomicU64, value: u64) {
        gauge.store(value, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
