//! What the two load generators share: the mix of transfers, a cheap deterministic account
//! picker and percentiles.

use std::time::Duration;

/// The transfers a load generator sends.
#[derive(clap::Args, Clone)]
pub struct Mix {
    /// Transfers to send in all.
    #[arg(long, default_value_t = 100_000)]
    pub transfers: usize,
    /// Transfers per request: 1 sends single transfers, more sends unlinked batches.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Accounts the transfers are spread over (uniformly).
    #[arg(long, default_value_t = 1_000)]
    pub accounts: u32,
    /// Every transfer also credits one platform fee account.
    #[arg(long)]
    pub hot: bool,
}

/// Xorshift: deterministic per task and cheap; the load needs spread, not quality.
pub struct Picker(u64);

impl Picker {
    pub fn new(seed: usize) -> Picker {
        Picker(0x9e37_79b9_7f4a_7c15u64 ^ (seed as u64 + 1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Two different accounts out of `accounts` (at least 2), uniformly: (debit, credit).
    pub fn pair(&mut self, accounts: u32) -> (u32, u32) {
        let debit = (self.next() % u64::from(accounts)) as u32;
        let credit = (debit + 1 + (self.next() % u64::from(accounts - 1)) as u32) % accounts;
        (debit, credit)
    }
}

/// `(p50, p99)` in milliseconds.
pub fn percentiles_ms(latencies: &mut [Duration]) -> (f64, f64) {
    latencies.sort();
    let at = |p: usize| {
        let i = (latencies.len() * p / 100).min(latencies.len().saturating_sub(1));
        latencies.get(i).copied().unwrap_or_default().as_secs_f64() * 1000.0
    };
    (at(50), at(99))
}

/// The JSON line both load generators print: the mix, totals, rate and latency percentiles,
/// plus the fields of `extra`.
pub fn report(
    mix: &Mix,
    transfers: u64,
    elapsed: Duration,
    latencies: &mut [Duration],
    extra: serde_json::Value,
) -> String {
    let (p50_ms, p99_ms) = percentiles_ms(latencies);
    let secs = elapsed.as_secs_f64();
    let mut line = serde_json::json!({
        "transfers": transfers,
        "batch": mix.batch,
        "hot": mix.hot,
        "seconds": (secs * 1000.0).round() / 1000.0,
        "transfers_per_second": (transfers as f64 / secs).round(),
        "p50_ms": p50_ms,
        "p99_ms": p99_ms,
    });
    if let (Some(line), serde_json::Value::Object(extra)) = (line.as_object_mut(), extra) {
        line.extend(extra);
    }
    line.to_string()
}
