//! The gaming wallet inside `ledger up`: the withdrawal saga's runner and the wallet's expiry,
//! and its `wallet.transactions` topic, which rides on the Kafka publisher (`publisher_topics`).
//!
//! The saga's state is the withdrawals' rows: every `interval`, the runner reads the withdrawals
//! still `locked` (main → locked posted, the payout not yet accepted) from the writer's memory
//! and sends each to its payment provider (`POST {base_url}/payouts`, which the provider
//! deduplicates by id); a 2xx is recorded as the `sent` step. The same tick returns the money of
//! every withdrawal past its deadline (`ExpireWithdrawals`) and expires the bonuses past their end
//! (`ExpireBonuses`): commands the writer decides whole, so jobs in several processes never do a
//! step twice. After a crash at any step, the rows say where each saga stands and the runner
//! goes on from there; a payout is not sent once less than the call's timeout is left before its
//! deadline, so the money cannot return to main while the provider is still accepting it.

use std::time::Duration;

use command_api::wallet::movements::{AppliedLine, MovementKey, MovementsReader, Reading};
use ledger_core::wallet::state::{Provider, Withdrawal, WithdrawalStatus};
use ledger_core::wallet::{Command, PROVIDER_KIND, WITHDRAWAL_KIND, provider_entity};
use ledger_core::{Timestamp, WithdrawalId};
use ledger_store::{EventMeta, LedgerHandle, Source};
use tracing::{info, warn};

use crate::domains::{Context as Up, Domain, Running};
use crate::env::env;

/// The `[wallet]` table of the configuration file.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    jobs: Option<bool>,
    interval_ms: Option<u64>,
    payout_timeout_ms: Option<u64>,
    /// Whether `wallet.transactions` is published (default true, when Kafka is on).
    kafka: Option<bool>,
    transactions_topic: Option<String>,
}

/// The domain as `ledger up` runs it.
#[derive(Debug)]
pub struct Wallet {
    /// Whether this process runs the saga's runner and the expiry.
    jobs: bool,
    interval: Duration,
    payout_timeout: Duration,
    /// Its topic, `None`: not published.
    topics: Option<streams::wallet::WalletTopics>,
}

/// Reads the `[wallet]` table and `LEDGER_WALLET_*`.
pub fn load(table: Option<toml::Value>) -> anyhow::Result<Box<dyn Domain>> {
    let file: File = crate::domains::table("wallet", table)?;
    let jobs = env("LEDGER_WALLET_JOBS")?.or(file.jobs).unwrap_or(true);
    let ms = env("LEDGER_WALLET_INTERVAL_MS")?.or(file.interval_ms).unwrap_or(1000u64).max(10);
    let timeout = env("LEDGER_WALLET_PAYOUT_TIMEOUT_MS")?.or(file.payout_timeout_ms).unwrap_or(5000u64).max(100);
    let topics = if env("LEDGER_WALLET_KAFKA")?.or(file.kafka).unwrap_or(true) {
        let name = crate::env::topic(
            "LEDGER_WALLET_TRANSACTIONS_TOPIC",
            file.transactions_topic,
            streams::wallet::TRANSACTIONS_TOPIC.into(),
        )?;
        Some(streams::wallet::WalletTopics { transactions: name })
    } else {
        None
    };
    Ok(Box::new(Wallet {
        jobs,
        interval: Duration::from_millis(ms),
        payout_timeout: Duration::from_millis(timeout),
        topics,
    }))
}

impl Domain for Wallet {
    fn written_topics(&self) -> Vec<String> {
        self.topics.iter().map(|t| t.transactions.clone()).collect()
    }

    /// `wallet.transactions`: every movement of a player's balances, keyed by player.
    fn publisher_topics(&self) -> Vec<Box<dyn streams::publisher::DomainTopics>> {
        self.topics.iter().map(|t| Box::new(t.clone()) as Box<dyn streams::publisher::DomainTopics>).collect()
    }

    /// The API gets the secrets key and the read model's movements for statements.
    fn start(&self, cx: &Up<'_>, api: &mut command_api::ApiState) -> anyhow::Result<Running> {
        *api = api.clone().with_wallet_movements(std::sync::Arc::new(ReadModelMovements(cx.read_pool.clone())));
        match cx.secrets {
            Some(keys) => *api = api.clone().with_secrets(std::sync::Arc::clone(keys)),
            None => warn!("no LEDGER_SECRETS_KEY: wallet providers cannot be written or verified (503)"),
        }
        if !self.jobs {
            return Ok(Running::default());
        }
        let client = crate::env::outbound_client(outbound::ClientConfig {
            timeout: self.payout_timeout,
            allow_http: true,
            ..outbound::ClientConfig::default()
        })?;
        let runner = Runner { ledger: cx.ledger.clone(), client, payout_timeout: self.payout_timeout };
        Ok(Running { tasks: Vec::new(), aborted: vec![tokio::spawn(runner.run(self.interval))] })
    }
}

/// The statements' movements up to the wallet read model's checkpoint (`projections::wallet`), in
/// the read models' database.
struct ReadModelMovements(sqlx::PgPool);

impl MovementsReader for ReadModelMovements {
    fn checkpoint(&self) -> Reading<'_, i64> {
        Box::pin(async move {
            let mut conn = self.0.acquire().await.map_err(|e| e.to_string())?;
            projections::read::checkpoint(&mut conn, projections::Model::Wallet).await.map_err(|e| e.to_string())
        })
    }

    fn movements<'a>(
        &'a self,
        player: &'a str,
        after: MovementKey,
        upto: i64,
        limit: i64,
    ) -> Reading<'a, Vec<AppliedLine>> {
        Box::pin(async move {
            let mut conn = self.0.acquire().await.map_err(|e| e.to_string())?;
            let after = projections::wallet::MovementCursor { position: after.position, seq: after.seq };
            let rows = projections::wallet::movements_upto(&mut conn, player, after, upto, limit)
                .await
                .map_err(|e| e.to_string())?;
            rows.into_iter()
                .map(|r| {
                    let key = MovementKey { position: r.position, seq: r.seq };
                    AppliedLine::new(key, r.at, &r.account, r.kind, r.reference_id, r.round_id, r.amount)
                })
                .collect()
        })
    }
}

struct Runner {
    ledger: LedgerHandle,
    client: outbound::Client,
    payout_timeout: Duration,
}

fn job(name: &str) -> EventMeta {
    EventMeta { channel: Some("wallet".into()), source: Some(Source::Job { name: name.into() }), ..Default::default() }
}

fn now() -> Timestamp {
    let micros = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000;
    Timestamp(i64::try_from(micros).unwrap_or(i64::MAX))
}

impl Runner {
    async fn run(self, interval: Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.send_payouts().await;
            self.expire(Command::ExpireWithdrawals, "wallet_withdrawal_timeout").await;
            self.expire(Command::ExpireBonuses, "wallet_bonus_expiry").await;
        }
    }

    /// Submits an expiry until it finds nothing more due.
    async fn expire(&self, command: Command, name: &str) {
        loop {
            match self.ledger.submit(command.clone(), job(name)).await {
                Ok(Ok(c)) if !c.replayed => continue,
                Ok(Ok(_)) => break,
                Ok(Err(r)) => {
                    warn!(code = r.code(), job = name, "wallet expiry refused");
                    break;
                }
                Err(e) => {
                    warn!(error = %e, job = name, "wallet expiry not run; retried next interval");
                    break;
                }
            }
        }
    }

    /// The withdrawals whose payout is not yet accepted, with time left to send it.
    fn unsent(&self) -> Vec<Withdrawal> {
        let view = self.ledger.view();
        let margin = u32::try_from(self.payout_timeout.as_secs() + 1).unwrap_or(u32::MAX);
        let now = now();
        view.entities_keyed(WITHDRAWAL_KIND, "")
            .into_iter()
            .filter_map(|(row, _)| row.typed::<Withdrawal>().ok())
            .filter(|w| w.status == WithdrawalStatus::Locked && now.plus_seconds(margin) < w.deadline)
            .map(|w| (*w).clone())
            .collect()
    }

    fn provider(&self, id: &str) -> Option<Provider> {
        let (row, _) = self.ledger.view().entity(provider_entity(id).id)?;
        (row.kind == PROVIDER_KIND).then(|| row.typed::<Provider>().ok().map(|p| (*p).clone())).flatten()
    }

    async fn send_payouts(&self) {
        for w in self.unsent() {
            let Some(base) = self.provider(&w.provider).and_then(|p| p.base_url) else {
                warn!(withdrawal = %w.id, provider = w.provider, "the provider has no base URL: the payout waits");
                continue;
            };
            let url = format!("{}/payouts", base.trim_end_matches('/'));
            let body = serde_json::json!({"id": w.id, "player_id": w.player, "amount": w.amount.to_string(),
                "currency": w.currency.as_str()});
            let mut headers = axum::http::HeaderMap::new();
            headers.insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_static("application/json"));
            match self.client.post(&url, headers, body.to_string().into()).await {
                Ok(answer) if answer.status.is_success() => self.sent(w.id).await,
                Ok(answer) => {
                    warn!(withdrawal = %w.id, status = answer.status.as_u16(), "payout refused; retried next interval")
                }
                Err(e) => warn!(withdrawal = %w.id, error = %e, "payout not sent; retried next interval"),
            }
        }
    }

    async fn sent(&self, id: WithdrawalId) {
        match self.ledger.submit(Command::MarkWithdrawalSent { id }, job("wallet_payout")).await {
            Ok(Ok(_)) => info!(withdrawal = %id, "payout accepted by the provider"),
            Ok(Err(r)) => warn!(withdrawal = %id, code = r.code(), "payout accepted, its step refused"),
            Err(e) => {
                warn!(withdrawal = %id, error = %e, "payout accepted, its step not recorded; sent again next interval")
            }
        }
    }
}
