//! The reconciliation runs' computer inside `ledger up`. A run is started as a command (by an
//! operator or a schedule); every interval the computer takes the runs still `running` from the
//! writer's memory and, once the read models have applied the run's start, computes each:
//! the provider's reported balance as of the run's time and its statement for the run's period
//! (through the adapter), the players' balances as of that time (the writer's sum recorded at
//! the start, or the balances' history), the ledger's changes of the provider's transactional
//! account in the period, and the provider's open items of earlier runs; the core matches them
//! (`ledger_core::recon::items::assemble`), the result is stored beside the log, and the run's
//! completion is recorded with its totals and hashes. A provider that cannot be reached is
//! asked again on the next intervals, then the run fails with the last error; an answer that
//! cannot be used fails it at once. A crash between storing and recording computes the run
//! again, and the store replaces what the first attempt wrote.

use std::collections::HashMap;
use std::time::Instant;

use ledger_core::recon::command::{Command, CompleteRun};
use ledger_core::recon::items::assemble;
use ledger_core::recon::matching::{Entry, Line};
use ledger_core::recon::rule::{Rule, RuleSpec};
use ledger_core::recon::run::{Run, RunStatus};
use ledger_core::recon::state::Provider;
use ledger_core::recon::{PROVIDER_KIND, RUN_KIND, provider_entity, resolution_entity, transactional_account};
use ledger_core::{RunId, Timestamp};
use ledger_store::{EventMeta, LedgerHandle, Source};
use time::OffsetDateTime;
use tracing::{info, warn};

use crate::provider::{HttpProvider, ProviderAdapter, ProviderError};

/// Calls a run makes to an unreachable provider (one per interval) before it fails.
const MAX_TRIES: u32 = 5;

pub(super) struct Computer {
    pub ledger: LedgerHandle,
    pub pool: sqlx::PgPool,
    pub read_pool: sqlx::PgPool,
    pub client: outbound::Client,
    /// Failed tries per run, in this process.
    pub tries: HashMap<RunId, u32>,
}

/// Why a run was not computed this time.
enum NotYet {
    /// Try again next interval without counting (the read models are behind).
    Wait(String),
    /// Count a try (the provider did not answer, the database failed).
    Retry(String),
    /// Fail the run now.
    Fail(String),
}

fn job() -> EventMeta {
    EventMeta {
        channel: Some("recon".into()),
        source: Some(Source::Job { name: "recon_run".into() }),
        ..Default::default()
    }
}

pub(super) fn instant(t: Timestamp) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.micros()) * 1000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn timestamp(t: OffsetDateTime) -> Timestamp {
    Timestamp(i64::try_from(t.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX))
}

fn provider_error(e: ProviderError) -> NotYet {
    match e {
        ProviderError::Retryable(e) => NotYet::Retry(e),
        ProviderError::Invalid(e) => NotYet::Fail(format!("the provider's answer is not usable: {e}")),
    }
}

fn db(e: sqlx::Error) -> NotYet {
    NotYet::Retry(format!("database: {e}"))
}

impl Computer {
    /// Computes every run still running whose start the read models have applied.
    pub async fn tick(&mut self) {
        let runs: Vec<(Run, i64)> = self
            .ledger
            .view()
            .entities_keyed(RUN_KIND, "")
            .into_iter()
            .filter_map(|(row, position)| row.typed::<Run>().ok().map(|r| ((*r).clone(), position)))
            .filter(|(r, _)| r.status == RunStatus::Running)
            .collect();
        for (run, position) in runs {
            let started = Instant::now();
            let outcome = match self.compute(&run, position, started).await {
                Ok(complete) => Some(Command::CompleteRun(Box::new(complete))),
                Err(NotYet::Wait(why)) => {
                    info!(run = %run.id, why, "reconciliation run waits");
                    None
                }
                Err(NotYet::Retry(e)) => {
                    let tries = self.tries.entry(run.id).or_default();
                    *tries += 1;
                    warn!(run = %run.id, tries = *tries, error = e, "reconciliation run not computed");
                    (*tries >= MAX_TRIES).then(|| Command::FailRun { id: run.id, reason: reason(&e) })
                }
                Err(NotYet::Fail(e)) => Some(Command::FailRun { id: run.id, reason: reason(&e) }),
            };
            if let Some(command) = outcome {
                match self.ledger.submit(command, job()).await {
                    Ok(Ok(_)) => {
                        self.tries.remove(&run.id);
                        info!(run = %run.id, "reconciliation run recorded");
                    }
                    Ok(Err(r)) => warn!(run = %run.id, code = r.code(), "reconciliation run's result refused"),
                    Err(e) => {
                        warn!(run = %run.id, error = %e, "reconciliation run's result not recorded; computed again")
                    }
                }
            }
        }
    }

    async fn compute(&self, run: &Run, position: i64, started: Instant) -> Result<CompleteRun, NotYet> {
        let mut read = self.read_pool.acquire().await.map_err(db)?;
        for model in [projections::Model::Balances, projections::Model::Journal] {
            let at = projections::read::checkpoint(&mut read, model).await.map_err(db)?;
            if at < position {
                return Err(NotYet::Wait(format!("the {} read model is at {at}, the run at {position}", model.name())));
            }
        }
        let provider =
            self.provider(&run.provider).ok_or_else(|| NotYet::Fail(format!("provider {} not found", run.provider)))?;
        let adapter = HttpProvider::new(self.client.clone(), &provider.base_url, provider.currency.as_str())
            .map_err(provider_error)?;
        let reported = adapter.balance(run.as_of).await.map_err(provider_error)?;
        let from = run.from.unwrap_or(Timestamp(0));
        let lines: Vec<Line> = adapter
            .statement(from, run.as_of)
            .await
            .map_err(provider_error)?
            .into_iter()
            .map(|l| Line {
                id: l.id,
                amount: l.amount,
                currency: l.currency,
                reference: l.reference,
                date: l.date,
                metadata: l.metadata,
            })
            .collect();
        let players = match run.players_at_start {
            Some(sum) => sum,
            None => {
                let accounts =
                    ledger_store::recon::attributed_accounts(&self.pool, &provider.id, provider.currency.as_str())
                        .await
                        .map_err(db)?;
                projections::recon::balances_at(&mut read, &accounts, instant(run.as_of)).await.map_err(db)?
            }
        };
        let account = transactional_account(&provider.id).0.0;
        let changes = projections::recon::account_changes(
            &mut read,
            account,
            run.from.map(instant),
            instant(run.as_of),
            position,
        )
        .await
        .map_err(db)?;
        let entries: Vec<Entry> = changes
            .into_iter()
            .map(|c| Entry {
                id: c.transfer,
                amount: c.amount,
                currency: provider.currency.to_string(),
                reference: c.external_ref.unwrap_or_else(|| c.transfer.to_string()),
                date: timestamp(c.at),
                metadata: c.metadata,
            })
            .collect();
        drop(read);
        let mut open = ledger_store::recon::open_items(&self.pool, &provider.id, run.id).await.map_err(db)?;
        // An item resolved by hand is closed, whatever the store's copy says.
        let view = self.ledger.view();
        open.retain(|i| view.entity(resolution_entity(i.id).id).is_none());
        let mut rules = Vec::with_capacity(run.rules.len());
        for r in &run.rules {
            let spec: RuleSpec =
                serde_json::from_value(r.spec.clone()).map_err(|e| NotYet::Fail(format!("rule {}: {e}", r.name)))?;
            let rule = Rule::check(&spec).map_err(|e| NotYet::Fail(format!("rule {}: {e}", r.name)))?;
            rules.push((r.name.clone(), rule));
        }
        let id = run.id;
        let (lines, result) = tokio::task::spawn_blocking(move || {
            let result = assemble(id, &lines, &entries, &open, &rules);
            (lines, result)
        })
        .await
        .map_err(|e| NotYet::Retry(format!("matching: {e}")))?;
        ledger_store::recon::store_result(&self.pool, run.id, &provider.id, &lines, &result).await.map_err(db)?;
        Ok(CompleteRun {
            id: run.id,
            reported: reported.balance,
            players,
            totals: result.totals,
            lines_hash: result.lines_hash,
            items_hash: result.items_hash,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        })
    }

    fn provider(&self, id: &str) -> Option<Provider> {
        let (row, _) = self.ledger.view().entity(provider_entity(id).id)?;
        (row.kind == PROVIDER_KIND).then(|| row.typed::<Provider>().ok().map(|p| (*p).clone())).flatten()
    }
}

/// An error as a reason the core records: control characters dropped, at most 500 characters.
pub(super) fn reason(text: &str) -> String {
    let clean: String = text.chars().filter(|c| !c.is_control()).take(ledger_core::text::REASON_MAX_CHARS).collect();
    if clean.trim().is_empty() { "no reason given".to_owned() } else { clean }
}
