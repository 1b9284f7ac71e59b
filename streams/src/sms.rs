//! The SMS adapter: the one place a certificate's CVC is revealed. It follows the log (the
//! `CertificateActivated` event is the outbox: nothing is sent that is not committed), opens the
//! sealed CVC with the configured keys, and posts `{"message_id","to","text"}` to the SMS
//! gateway. A gateway that fails is retried with back-off; after the last attempt the message is
//! dead-lettered (`sms_dead_letters`, without the CVC) and the follower goes on: the certificate
//! stays active. At least once: a message may be sent again after a crash, with the same
//! `message_id` (the event's id) for the gateway to deduplicate.

use std::sync::Arc;
use std::time::Duration;

use ledger_core::certificates::Event as CertificateEvent;
use ledger_store::RecordedEvent;
use ledger_store::follow::{Follow, Progress};
use secrets::KeyProvider;
use sqlx::PgConnection;
use tracing::{info, warn};

pub const NAME: &str = "sms_outbox";
const LOCK_KEY: i64 = 0x6c65_6467_6572_0300;
/// Positions of the log one step looks through for activations (`FollowConfig::page` of the
/// outbox: a whole window read means more is waiting).
pub const WINDOW: i64 = 10_000;
/// The one event type the outbox reads.
const ACTIVATED: &str = "CertificateActivated";

/// The default message; `{code}` and `{cvc}` are filled in.
pub const DEFAULT_TEXT: &str = "Gift certificate {code}: CVC {cvc}";

/// One message to the gateway. `text` holds the CVC: it is never logged or stored.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SmsMessage {
    pub message_id: uuid::Uuid,
    pub to: String,
    pub text: String,
}

impl std::fmt::Debug for SmsMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SmsMessage({}, to {}, text ***)", self.message_id, mask(&self.to))
    }
}

/// A phone number for logs: its last two digits.
pub fn mask(phone: &str) -> String {
    let tail: String = phone.chars().rev().take(2).collect::<Vec<_>>().into_iter().rev().collect();
    format!("***{tail}")
}

#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    #[error("the SMS gateway answered {0}")]
    Status(u16),
    /// Not reached, refused, timed out, an untrusted certificate, a bad URL (`outbound`).
    #[error("the SMS gateway: {0}")]
    Outbound(#[from] outbound::OutboundError),
    #[error("the SMS message cannot be encoded: {0}")]
    Encode(String),
}

/// Where messages go: the gateway of an SMS provider, behind its own adapter.
pub trait SmsGateway: Send + Sync {
    fn send(&self, message: &SmsMessage) -> impl std::future::Future<Output = Result<(), SmsError>> + Send;
}

/// A gateway over HTTP (`POST {url}` with the JSON message; any 2xx is delivery) through the
/// engine's outbound client: `https://` with a verified certificate, or `http://` when the
/// client allows it (the loopback simulator, a relay on the same host).
#[derive(Clone, Debug)]
pub struct HttpGateway {
    client: outbound::Client,
    url: String,
}

impl HttpGateway {
    /// Checks `url` as `client` will call it.
    pub fn new(url: &str, client: outbound::Client) -> Result<HttpGateway, SmsError> {
        client.check_url(url)?;
        Ok(HttpGateway { client, url: url.to_owned() })
    }
}

impl SmsGateway for HttpGateway {
    async fn send(&self, message: &SmsMessage) -> Result<(), SmsError> {
        let body = serde_json::to_vec(message).map_err(|e| SmsError::Encode(e.to_string()))?;
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
        let answer = self.client.post(&self.url, headers, body.into()).await?;
        if answer.status.is_success() { Ok(()) } else { Err(SmsError::Status(answer.status.as_u16())) }
    }
}

/// Retries of one message before it is dead-lettered.
#[derive(Clone, Copy, Debug)]
pub struct Retry {
    pub attempts: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry { attempts: 5, first_backoff: Duration::from_millis(500), max_backoff: Duration::from_secs(30) }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The SMS outbox as a follower of the log.
pub struct SmsOutbox<G> {
    gateway: G,
    keys: Arc<dyn KeyProvider>,
    text: String,
    retry: Retry,
}

impl<G: SmsGateway> SmsOutbox<G> {
    pub fn new(gateway: G, keys: Arc<dyn KeyProvider>, text: Option<String>, retry: Retry) -> SmsOutbox<G> {
        SmsOutbox { gateway, keys, text: text.unwrap_or_else(|| DEFAULT_TEXT.to_owned()), retry }
    }

    /// The message of an activation, or why it cannot be built (a key that is gone).
    fn message(&self, record: &RecordedEvent) -> Option<Result<(SmsMessage, String), String>> {
        let event = record.event().ok()?;
        let Some(CertificateEvent::Activated(e)) = event.certificates() else { return None };
        Some(match secrets::open_cvc(self.keys.as_ref(), &e.code, &e.cvc) {
            Ok(cvc) => Ok((
                SmsMessage {
                    message_id: record.event_id,
                    to: e.phone.clone(),
                    text: self.text.replace("{code}", &e.code).replace("{cvc}", cvc.reveal()),
                },
                e.code.clone(),
            )),
            Err(err) => Err(format!("{} (certificate {}, phone {})", err, e.code, mask(&e.phone))),
        })
    }

    /// Sends with back-off; the last error when every attempt failed.
    async fn deliver(&self, message: &SmsMessage) -> Result<u32, (u32, String)> {
        let mut backoff = self.retry.first_backoff;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.gateway.send(message).await {
                Ok(()) => return Ok(attempt),
                Err(e) if attempt >= self.retry.attempts => return Err((attempt, e.to_string())),
                Err(e) => {
                    warn!(message_id = %message.message_id, to = %mask(&message.to), attempt, error = %e, "SMS not sent; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.retry.max_backoff);
                }
            }
        }
    }
}

async fn dead_letter(
    conn: &mut PgConnection,
    record: &RecordedEvent,
    certificate: &str,
    to: &str,
    attempts: u32,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO sms_dead_letters (message_id, position, certificate, to_masked, attempts, reason) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (message_id) DO NOTHING",
    )
    .bind(record.event_id)
    .bind(record.position)
    .bind(certificate)
    .bind(mask(to))
    .bind(i32::try_from(attempts).unwrap_or(i32::MAX))
    .bind(reason)
    .execute(conn)
    .await
    .map(drop)
}

impl<G: SmsGateway> Follow for SmsOutbox<G> {
    type Error = OutboxError;

    fn name(&self) -> String {
        NAME.to_owned()
    }

    async fn prepare(&mut self, conn: &mut PgConnection) -> Result<bool, OutboxError> {
        sqlx::query("INSERT INTO projections (name, version) VALUES ($1, 1) ON CONFLICT (name) DO NOTHING")
            .bind(NAME)
            .execute(&mut *conn)
            .await?;
        // One sender at a time, for as long as this connection lives.
        Ok(sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(LOCK_KEY).fetch_one(&mut *conn).await?)
    }

    async fn step(&mut self, conn: &mut PgConnection) -> Result<Progress, OutboxError> {
        let after: i64 = sqlx::query_scalar("SELECT checkpoint FROM projections WHERE name = $1")
            .bind(NAME)
            .fetch_one(&mut *conn)
            .await?;
        // Only activations carry a CVC to send: the rest of the log is skipped in the query.
        let (page, last) = ledger_store::log::page_of(conn, after, WINDOW, &[ACTIVATED]).await?;
        if last == after {
            return Ok(Progress { read: 0, checkpoint: Some(after) });
        }
        for record in &page {
            match self.message(record) {
                None => {}
                Some(Ok((message, code))) => match self.deliver(&message).await {
                    Ok(attempts) => {
                        info!(message_id = %message.message_id, certificate = code, to = %mask(&message.to), attempts, "CVC sent")
                    }
                    Err((attempts, reason)) => {
                        warn!(message_id = %message.message_id, certificate = code, attempts, reason, "CVC not sent: dead-lettered");
                        dead_letter(conn, record, &code, &message.to, attempts, &reason).await?;
                    }
                },
                Some(Err(reason)) => {
                    warn!(position = record.position, reason, "CVC cannot be opened: dead-lettered");
                    dead_letter(conn, record, "", "", 0, &reason).await?;
                }
            }
        }
        sqlx::query("UPDATE projections SET checkpoint = $2, updated_at = now() WHERE name = $1")
            .bind(NAME)
            .bind(last)
            .execute(&mut *conn)
            .await?;
        // The window read: a whole one means more of the log is waiting.
        let read = usize::try_from(last - after).unwrap_or(usize::MAX);
        Ok(Progress { read, checkpoint: Some(last) })
    }
}
