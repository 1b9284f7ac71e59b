//! `ledger webhook-receiver`: a stand-in webhook receiver on loopback, for development, the
//! README's walk-through and the benchmark. `POST /hook` takes a message, verifies its
//! signature when a secret is given (401 when it does not verify), counts it once per
//! `webhook-id` and answers 204; `GET /stats` tells how many arrived and when the first and the
//! last did; `GET /messages` lists the last 100 bodies.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use outbound::webhooks::{Verifier, WebhookSecret};

#[derive(clap::Args)]
pub struct Args {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8091")]
    listen: String,
    /// The endpoint's secret (`whsec_…`): messages whose signature does not verify are refused.
    #[arg(long, env = "LEDGER_WEBHOOK_SECRET")]
    secret: Option<String>,
}

#[derive(Default)]
struct Inbox {
    seen: HashSet<String>,
    last: VecDeque<serde_json::Value>,
    received: u64,
    refused: u64,
    first: Option<Instant>,
    latest: Option<Instant>,
}

struct Receiver {
    inbox: Mutex<Inbox>,
    verifier: Option<Verifier>,
    started: Instant,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let verifier = match &args.secret {
        Some(secret) => {
            Some(Verifier::new(WebhookSecret::parse(secret).map_err(|e| anyhow::anyhow!("--secret: {e}"))?))
        }
        None => None,
    };
    let receiver = Arc::new(Receiver { inbox: Mutex::default(), verifier, started: Instant::now() });
    let app = Router::new()
        .route("/hook", post(receive))
        .route("/stats", get(stats))
        .route("/messages", get(messages))
        .with_state(receiver);
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    tracing::info!("webhook receiver on http://{}/hook (counts at /stats)", listener.local_addr()?);
    axum::serve(listener, app).with_graceful_shutdown(crate::up::shutdown_signal()).await?;
    Ok(())
}

async fn receive(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: axum::body::Bytes) -> StatusCode {
    let now = Instant::now();
    let verified = match &r.verifier {
        Some(verifier) => verifier.verify(&headers, &body, time::OffsetDateTime::now_utc().unix_timestamp()).is_ok(),
        None => true,
    };
    let mut inbox = r.inbox.lock().unwrap_or_else(|e| e.into_inner());
    if !verified {
        inbox.refused += 1;
        return StatusCode::UNAUTHORIZED;
    }
    let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    if inbox.seen.insert(id) {
        inbox.received += 1;
        inbox.first.get_or_insert(now);
        inbox.latest = Some(now);
        if inbox.last.len() == 100 {
            inbox.last.pop_front();
        }
        inbox.last.push_back(serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null));
    }
    StatusCode::NO_CONTENT
}

async fn stats(State(r): State<Arc<Receiver>>) -> Json<serde_json::Value> {
    let inbox = r.inbox.lock().unwrap_or_else(|e| e.into_inner());
    let ms = |t: Option<Instant>| t.map(|t| t.duration_since(r.started).as_secs_f64() * 1000.0);
    Json(serde_json::json!({
        "received": inbox.received,
        "refused": inbox.refused,
        "first_ms": ms(inbox.first),
        "last_ms": ms(inbox.latest),
    }))
}

async fn messages(State(r): State<Arc<Receiver>>) -> Json<Vec<serde_json::Value>> {
    Json(r.inbox.lock().unwrap_or_else(|e| e.into_inner()).last.iter().cloned().collect())
}
