//! `ledger sms-simulator`: a stand-in SMS gateway on loopback, for development and the README's
//! walk-through. `POST /sms` takes `{"message_id","to","text"}` (the same `message_id` twice is
//! delivered once); `GET /messages` lists what the simulated phones received.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use streams::sms::SmsMessage;

#[derive(clap::Args)]
pub struct Args {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8090")]
    listen: String,
}

type Inbox = Arc<Mutex<Vec<SmsMessage>>>;

pub async fn run(args: Args) -> anyhow::Result<()> {
    let inbox: Inbox = Arc::default();
    let app = Router::new().route("/sms", post(receive)).route("/messages", get(list)).with_state(inbox);
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    tracing::info!("SMS simulator on http://{}/sms (received messages at /messages)", listener.local_addr()?);
    axum::serve(listener, app).with_graceful_shutdown(crate::up::shutdown_signal()).await?;
    Ok(())
}

async fn receive(State(inbox): State<Inbox>, Json(message): Json<SmsMessage>) -> StatusCode {
    let mut inbox = inbox.lock().unwrap_or_else(|e| e.into_inner());
    if !inbox.iter().any(|m| m.message_id == message.message_id) {
        inbox.push(message);
    }
    StatusCode::OK
}

async fn list(State(inbox): State<Inbox>) -> Json<Vec<SmsMessage>> {
    Json(inbox.lock().unwrap_or_else(|e| e.into_inner()).clone())
}
