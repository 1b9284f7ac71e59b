//! Reconciliation inside `ledger up`: the scheduler (`schedules`), the fund movements' runner
//! and the runs' computer (`runs`), one task ticking all three in the one engine that holds the
//! database's reconciliation lock (`lease`).
//!
//! A movement's state is its row: every `interval`, the runner reads the movements still
//! `pending` whose next call is due from the writer's memory and asks each one's provider to
//! move the money (`POST {base_url}/movements`, which the provider deduplicates by the
//! movement's id), then records what came back as the movement's next attempt: the core posts
//! the hold on success, voids it on a refusal, and on an error either schedules the next call
//! (waits doubling from `recon.movement.retry_seconds`) or, at `recon.movement.max_attempts`,
//! voids it as failed with a critical audit entry (which reaches the alert webhook). An answer
//! the provider should never give (a 4xx, a malformed body) fails the movement at once. After
//! a crash between the call and its record, the next tick calls again and the provider answers
//! the first outcome: nothing moves twice.

use std::time::Duration;

use ledger_core::Timestamp;
use ledger_core::recon::command::Outcome;
use ledger_core::recon::state::{Movement, MovementStatus, Provider};
use ledger_core::recon::{Attempt, Command, MOVEMENT_KIND, PROVIDER_KIND, Terms, provider_entity};
use ledger_store::{EventMeta, LedgerHandle, Source};
use tracing::{info, warn};

use crate::domains::{Context as Up, Domain, Running};
use crate::env::env;
use crate::provider::{AllowHttp, Direction, HttpProvider, MoveOutcome, ProviderAdapter, ProviderError};

mod lease;
mod runs;
mod schedules;

use runs::reason;

/// The `[recon]` table of the configuration file.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    jobs: Option<bool>,
    interval_ms: Option<u64>,
    call_timeout_ms: Option<u64>,
}

/// The domain as `ledger up` runs it.
#[derive(Debug)]
pub struct Recon {
    /// Whether this process runs the movements' runner.
    jobs: bool,
    interval: Duration,
    call_timeout: Duration,
}

/// Reads the `[recon]` table and `LEDGER_RECON_*`.
pub fn load(table: Option<toml::Value>) -> anyhow::Result<Box<dyn Domain>> {
    let file: File = crate::domains::table("recon", table)?;
    let jobs = env("LEDGER_RECON_JOBS")?.or(file.jobs).unwrap_or(true);
    let ms = env("LEDGER_RECON_INTERVAL_MS")?.or(file.interval_ms).unwrap_or(1000u64).max(10);
    let timeout = env("LEDGER_RECON_CALL_TIMEOUT_MS")?.or(file.call_timeout_ms).unwrap_or(10_000u64).max(100);
    Ok(Box::new(Recon { jobs, interval: Duration::from_millis(ms), call_timeout: Duration::from_millis(timeout) }))
}

impl Domain for Recon {
    fn start(&self, cx: &Up<'_>, _api: &mut command_api::ApiState) -> anyhow::Result<Running> {
        if !self.jobs {
            return Ok(Running::default());
        }
        let client = crate::env::outbound_client(HttpProvider::client_config(self.call_timeout, AllowHttp::Yes))?;
        let computer = runs::Computer {
            ledger: cx.ledger.clone(),
            pool: cx.pool.clone(),
            read_pool: cx.read_pool.clone(),
            client: client.clone(),
            tries: Default::default(),
        };
        let lease = lease::Lease::new(cx.url);
        let runner = Runner { ledger: cx.ledger.clone(), client, runtime: cx.runtime.clone(), computer, lease };
        Ok(Running { tasks: Vec::new(), aborted: vec![tokio::spawn(runner.run(self.interval))] })
    }
}

struct Runner {
    ledger: LedgerHandle,
    client: outbound::Client,
    runtime: ledger_store::config::RuntimeConfig,
    computer: runs::Computer,
    lease: lease::Lease,
}

fn job() -> EventMeta {
    EventMeta {
        channel: Some("recon".into()),
        source: Some(Source::Job { name: "recon_movement".into() }),
        ..Default::default()
    }
}

fn now() -> Timestamp {
    let micros = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000;
    Timestamp(i64::try_from(micros).unwrap_or(i64::MAX))
}

impl Runner {
    async fn run(mut self, interval: Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if !self.lease.hold().await {
                continue;
            }
            schedules::fire_due(&self.ledger, now()).await;
            for movement in self.due() {
                self.attempt(&movement).await;
            }
            self.computer.tick().await;
        }
    }

    /// The pending movements whose next call is due, oldest first.
    fn due(&self) -> Vec<Movement> {
        let now = now();
        let mut due: Vec<Movement> = self
            .ledger
            .view()
            .entities_keyed(MOVEMENT_KIND, "")
            .into_iter()
            .filter_map(|(row, _)| row.typed::<Movement>().ok())
            .filter(|m| m.status == MovementStatus::Pending && m.next_attempt_at.is_some_and(|at| at <= now))
            .map(|m| (*m).clone())
            .collect();
        due.sort_by_key(|m| (m.created_at, m.id));
        due
    }

    fn provider(&self, id: &str) -> Option<Provider> {
        let (row, _) = self.ledger.view().entity(provider_entity(id).id)?;
        (row.kind == PROVIDER_KIND).then(|| row.typed::<Provider>().ok().map(|p| (*p).clone())).flatten()
    }

    async fn attempt(&self, m: &Movement) {
        let mut terms = Terms::resolve(|key| self.runtime.get(key));
        let outcome = match self.provider(&m.provider) {
            None => {
                terms.max_attempts = 1;
                Outcome::Error { error: format!("provider {} is not known", m.provider) }
            }
            Some(p) => {
                let direction = match m.direction {
                    ledger_core::recon::Direction::ToOperational => Direction::ToOperational,
                    ledger_core::recon::Direction::ToTransactional => Direction::ToTransactional,
                };
                let called = match HttpProvider::new(self.client.clone(), &p.base_url, p.currency.as_str()) {
                    Ok(adapter) => adapter.move_funds(m.id.0, direction, m.amount, m.currency.as_str()).await,
                    Err(e) => Err(e),
                };
                match called {
                    Ok(MoveOutcome::Succeeded) => Outcome::Succeeded,
                    Ok(MoveOutcome::Refused { reason: why }) => Outcome::Refused { reason: reason(&why) },
                    Err(ProviderError::Retryable(e)) => Outcome::Error { error: reason(&e) },
                    Err(ProviderError::Invalid(e)) => {
                        terms.max_attempts = 1;
                        Outcome::Error { error: reason(&format!("the provider's answer is not usable: {e}")) }
                    }
                }
            }
        };
        let command = Command::RecordAttempt(Attempt { id: m.id, outcome: outcome.clone(), terms });
        match self.ledger.submit(command, job()).await {
            Ok(Ok(_)) => info!(movement = %m.id, outcome = ?outcome, "fund movement attempt recorded"),
            Ok(Err(r)) => warn!(movement = %m.id, code = r.code(), "fund movement attempt refused"),
            Err(e) => {
                warn!(movement = %m.id, error = %e, "fund movement attempt not recorded; called again next interval")
            }
        }
    }
}
