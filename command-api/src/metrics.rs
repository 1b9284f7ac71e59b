//! Prometheus metrics: HTTP requests by route and status, and the writer's own counters.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use ledger_store::LedgerHandle;
use ledger_store::metrics::{COMMIT_BUCKETS_MS, COMMIT_SIZE_BUCKETS, WriterMetrics};

/// Requests by route and status. Counting a request whose route and status were seen before
/// takes a shared lock and one atomic add: no allocation, no waiting on other requests.
#[derive(Default)]
pub struct HttpMetrics {
    requests: RwLock<BTreeMap<String, BTreeMap<u16, AtomicU64>>>,
}

impl HttpMetrics {
    pub fn record(&self, route: &str, status: u16) {
        {
            let requests = self.requests.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(counter) = requests.get(route).and_then(|by_status| by_status.get(&status)) {
                counter.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        let mut requests = self.requests.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        requests.entry(route.to_owned()).or_default().entry(status).or_default().fetch_add(1, Ordering::Relaxed);
    }

    /// The text exposition format.
    pub fn render(&self, ledger: &LedgerHandle, projections: &[ledger_store::follow::ProjectionStatus]) -> String {
        let mut out = String::new();
        out.push_str("# TYPE ledger_http_requests_total counter\n");
        for (route, by_status) in self.requests.read().unwrap_or_else(std::sync::PoisonError::into_inner).iter() {
            for (status, n) in by_status {
                let n = n.load(Ordering::Relaxed);
                let _ = writeln!(out, "ledger_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}");
            }
        }
        let m = ledger.metrics();
        let get = WriterMetrics::get;
        let counters = [
            ("ledger_writer_commits_total", "counter", get(&m.groups)),
            ("ledger_writer_commands_total", "counter", get(&m.commands)),
            ("ledger_writer_events_total", "counter", get(&m.events)),
            ("ledger_writer_failed_commits_total", "counter", get(&m.failed_commits)),
            ("ledger_writer_head_position", "gauge", get(&m.head_position)),
            ("ledger_writer_queue_depth", "gauge", ledger.queue_depth() as u64),
            // Events the read models and the Kafka publisher in this process took from the
            // writer's tail, not the log.
            ("ledger_projection_events_from_memory_total", "counter", ledger.tail().map_or(0, |t| t.served())),
        ];
        for (name, kind, value) in counters {
            let _ = writeln!(out, "# TYPE {name} {kind}\n{name} {value}");
        }
        let throttled = get(&m.throttled_micros) as f64 / 1e6;
        let _ = writeln!(
            out,
            "# TYPE ledger_writer_throttled_seconds_total counter\nledger_writer_throttled_seconds_total {throttled}"
        );
        out.push_str("# TYPE ledger_writer_commit_seconds histogram\n");
        for (bound_ms, bucket) in COMMIT_BUCKETS_MS.iter().zip(&m.commit_buckets) {
            let _ = writeln!(
                out,
                "ledger_writer_commit_seconds_bucket{{le=\"{}\"}} {}",
                *bound_ms as f64 / 1000.0,
                get(bucket)
            );
        }
        let commits = get(&m.groups);
        let _ = writeln!(out, "ledger_writer_commit_seconds_bucket{{le=\"+Inf\"}} {commits}");
        let _ = writeln!(out, "ledger_writer_commit_seconds_sum {}", get(&m.commit_micros) as f64 / 1e6);
        let _ = writeln!(out, "ledger_writer_commit_seconds_count {commits}");
        out.push_str("# TYPE ledger_writer_commit_events histogram\n");
        for (bound, bucket) in COMMIT_SIZE_BUCKETS.iter().zip(&m.commit_size_buckets) {
            let _ = writeln!(out, "ledger_writer_commit_events_bucket{{le=\"{bound}\"}} {}", get(bucket));
        }
        let _ = writeln!(out, "ledger_writer_commit_events_bucket{{le=\"+Inf\"}} {commits}");
        let _ = writeln!(out, "ledger_writer_commit_events_sum {}", get(&m.events));
        let _ = writeln!(out, "ledger_writer_commit_events_count {commits}");
        out.push_str("# TYPE ledger_projection_lag gauge\n");
        for p in projections {
            let _ = writeln!(out, "ledger_projection_lag{{projection=\"{}\"}} {}", p.name, p.lag);
        }
        out.push_str("# TYPE ledger_projection_halted gauge\n");
        for p in projections {
            let _ = writeln!(
                out,
                "ledger_projection_halted{{projection=\"{}\"}} {}",
                p.name,
                u8::from(p.halted_position.is_some())
            );
        }
        out
    }
}
