//! The scheduler: every interval, each enabled schedule whose next time has come is fired
//! (`FireSchedule` with the due time it holds), which starts its run.

use ledger_core::Timestamp;
use ledger_core::recon::schedule::Schedule;
use ledger_core::recon::{Command, SCHEDULE_KIND};
use ledger_store::{EventMeta, LedgerHandle, Source};
use tracing::{info, warn};

fn job() -> EventMeta {
    EventMeta {
        channel: Some("recon".into()),
        source: Some(Source::Job { name: "recon_schedule".into() }),
        ..Default::default()
    }
}

/// Fires every schedule due at `now`.
pub(super) async fn fire_due(ledger: &LedgerHandle, now: Timestamp) {
    let due: Vec<(String, Timestamp)> = ledger
        .view()
        .entities_keyed(SCHEDULE_KIND, "")
        .into_iter()
        .filter_map(|(row, _)| row.typed::<Schedule>().ok())
        .filter_map(|s| s.next_due.filter(|due| s.enabled && *due <= now).map(|due| (s.id.clone(), due)))
        .collect();
    for (id, due) in due {
        match ledger.submit(Command::FireSchedule { id: id.clone(), due }, job()).await {
            Ok(Ok(_)) => info!(schedule = id, due = %due.rfc3339(), "schedule fired"),
            Ok(Err(r)) => warn!(schedule = id, code = r.code(), "schedule not fired"),
            Err(e) => warn!(schedule = id, error = %e, "schedule not fired; tried again next interval"),
        }
    }
}
