//! Which transfer ids may exist in the database without being in the writer's memory.
//!
//! A command that names a transfer the decider does not hold (an idempotent retry, a post, void
//! or reversal of an older transfer) needs that transfer loaded before it is decided. Asking the
//! database for every new transfer id would cost a query per group for ids that almost never
//! exist. Instead the decider keeps a Bloom filter of the ids that can exist in the database
//! but not in memory: every row of `transfers` when the writer started, and every transfer it
//! evicted from memory since. An id the filter does not contain cannot be in the database, so
//! only ids it may contain are looked up. Until the filter is built (in the background, from a
//! scan of `transfers`), and again after a failed commit or when it fills up, every id is
//! looked up as before. The database stays the arbiter: a transfer row is only ever inserted
//! once (its primary key), so a mistake here could fail a commit, never duplicate a transfer.

use sqlx::{Connection, PgConnection};
use tokio::sync::oneshot;
use tracing::{info, warn};
use uuid::Uuid;

/// Bits per id and hash functions: about 1% false positives at capacity.
const BITS_PER_ID: usize = 10;
const HASHES: u64 = 7;
/// Ids read per page while building.
const SCAN_PAGE: i64 = 50_000;

pub(super) struct Bloom {
    bits: Vec<u64>,
    mask: u64,
    items: usize,
    capacity: usize,
}

/// A 64-bit finaliser (splitmix64): ids are client-chosen, so they are mixed, not trusted to
/// be random.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Bloom {
    pub(super) fn with_capacity(capacity: usize) -> Bloom {
        let capacity = capacity.max(1 << 16);
        let bits = (capacity * BITS_PER_ID).next_power_of_two();
        Bloom { bits: vec![0; bits / 64], mask: bits as u64 - 1, items: 0, capacity }
    }

    fn positions(&self, id: &Uuid) -> impl Iterator<Item = u64> + use<> {
        let v = id.as_u128();
        let (lo, hi) = (v as u64, (v >> 64) as u64);
        let h1 = mix(lo ^ mix(hi));
        let h2 = mix(hi ^ lo.rotate_left(32) ^ 0x9e37_79b9_7f4a_7c15) | 1;
        let mask = self.mask;
        (0..HASHES).map(move |i| h1.wrapping_add(i.wrapping_mul(h2)) & mask)
    }

    pub(super) fn insert(&mut self, id: &Uuid) {
        for bit in self.positions(id) {
            self.bits[(bit / 64) as usize] |= 1 << (bit % 64);
        }
        self.items += 1;
    }

    pub(super) fn contains(&self, id: &Uuid) -> bool {
        self.positions(id).all(|bit| self.bits[(bit / 64) as usize] & (1 << (bit % 64)) != 0)
    }

    fn is_full(&self) -> bool {
        self.items > self.capacity
    }
}

pub(super) enum Known {
    /// Being built from `transfers`; ids evicted meanwhile wait here.
    Building {
        ready: oneshot::Receiver<Bloom>,
        evicted: Vec<Uuid>,
    },
    Ready(Bloom),
}

impl Known {
    /// Starts building the filter from the rows of `transfers` in the background.
    pub(super) fn build(url: &str) -> Known {
        let (tx, ready) = oneshot::channel();
        let url = url.to_owned();
        tokio::spawn(async move {
            let mut delay = std::time::Duration::from_millis(100);
            loop {
                match scan(&url).await {
                    Ok(bloom) => {
                        let _ = tx.send(bloom);
                        return;
                    }
                    Err(e) => warn!(error = %e, "building the transfer id filter failed; retrying"),
                }
                if tx.is_closed() {
                    return;
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(std::time::Duration::from_secs(10));
            }
        });
        Known::Building { ready, evicted: Vec::new() }
    }

    /// Installs the filter once its scan has finished.
    pub(super) fn poll(&mut self) {
        if let Known::Building { ready, evicted } = self
            && let Ok(mut bloom) = ready.try_recv()
        {
            for id in evicted.iter() {
                bloom.insert(id);
            }
            info!(ids = bloom.items, "transfer id filter ready: new transfer ids are no longer looked up");
            *self = Known::Ready(bloom);
        }
    }

    pub(super) fn is_ready(&self) -> bool {
        matches!(self, Known::Ready(_))
    }

    /// False only when `id` cannot be a transfer in the database that memory lacks.
    pub(super) fn may_exist(&self, id: &Uuid) -> bool {
        match self {
            Known::Building { .. } => true,
            Known::Ready(bloom) => bloom.contains(id),
        }
    }

    /// Records transfers dropped from memory (they are committed, so they are in the database).
    /// A filter past its capacity is rebuilt, bigger, from the table.
    pub(super) fn evicted(&mut self, url: &str, ids: Vec<Uuid>) {
        match self {
            Known::Building { evicted, .. } => evicted.extend(ids),
            Known::Ready(bloom) => {
                for id in &ids {
                    bloom.insert(id);
                }
                if bloom.is_full() {
                    *self = Known::build(url);
                }
            }
        }
    }
}

/// Reads every transfer id, a page at a time, into a filter with room for twice as many.
async fn scan(url: &str) -> Result<Bloom, sqlx::Error> {
    let mut conn = PgConnection::connect(url).await?;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM transfers").fetch_one(&mut conn).await?;
    let mut bloom = Bloom::with_capacity(usize::try_from(count).unwrap_or(0).saturating_mul(2));
    let mut after = Uuid::nil();
    loop {
        let ids: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM transfers WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after)
            .bind(SCAN_PAGE)
            .fetch_all(&mut conn)
            .await?;
        let Some(last) = ids.last() else { break };
        after = *last;
        for id in &ids {
            bloom.insert(id);
        }
    }
    let _ = conn.close().await;
    Ok(bloom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_forgets_an_id_and_rarely_claims_one() {
        let mut bloom = Bloom::with_capacity(100_000);
        let inserted: Vec<Uuid> = (0..100_000u128).map(|i| Uuid::from_u128(i * 7919)).collect();
        for id in &inserted {
            bloom.insert(id);
        }
        assert!(inserted.iter().all(|id| bloom.contains(id)), "no false negatives, even for sequential ids");
        let others = (0..100_000).filter(|_| bloom.contains(&Uuid::new_v4())).count();
        assert!(others < 2_000, "{others} false positives in 100,000 at capacity");
        assert!(!bloom.is_full());
        bloom.insert(&Uuid::new_v4());
        assert!(bloom.is_full());
    }
}
