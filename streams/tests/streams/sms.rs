//! The SMS outbox against a real writer, Postgres, and a gateway speaking real HTTP on loopback:
//! retried until delivered, or dead-lettered without the CVC.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use ledger_core::certificates::Command;
use ledger_core::certificates::command::{Activate, Issue};
use ledger_core::{CurrencyCode, Timestamp};
use ledger_store::follow::Follow;
use ledger_store::{EventMeta, Writer, WriterConfig};
use rust_decimal::Decimal;
use secrets::{Cvc, KeyProvider, LocalKeys};
use sqlx::Connection;
use streams::sms::{HttpGateway, Retry, SmsMessage, SmsOutbox};
use test_support::fresh_database;

/// A gateway that fails its first `fail` requests with 503, then takes messages.
#[derive(Clone, Default)]
struct Gateway {
    fail: Arc<Mutex<u32>>,
    received: Arc<Mutex<Vec<SmsMessage>>>,
}

async fn receive(State(g): State<Gateway>, Json(message): Json<SmsMessage>) -> StatusCode {
    let mut fail = g.fail.lock().unwrap();
    if *fail > 0 {
        *fail -= 1;
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    g.received.lock().unwrap().push(message);
    StatusCode::OK
}

async fn gateway(fail: u32) -> (Gateway, String) {
    let g = Gateway { fail: Arc::new(Mutex::new(fail)), ..Gateway::default() };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/sms", listener.local_addr().unwrap());
    let app = Router::new().route("/sms", post(receive)).with_state(g.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (g, url)
}

/// The client of the loopback gateway: plain HTTP allowed, as `ledger up` allows it for the SMS
/// simulator.
fn plain() -> outbound::Client {
    outbound::Client::new(outbound::ClientConfig { allow_http: true, ..Default::default() }).unwrap()
}

const KEY: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

#[tokio::test]
async fn an_activation_sends_its_cvc_once_retrying_and_dead_letters_what_never_goes() {
    let logs = test_support::CapturedLogs::start();
    let db = fresh_database().await;
    let (ledger, task) = Writer::start(&db.url, WriterConfig::default()).await.unwrap();
    let keys: Arc<dyn KeyProvider> = Arc::new(LocalKeys::new("k1", KEY).unwrap());
    let mut cvcs = Vec::new();
    for code in ["GC-1", "GC-2"] {
        let issue = Issue {
            code: code.into(),
            nominal: Decimal::new(10_000, 2),
            currency: CurrencyCode::parse("EUR").unwrap(),
            expires_at: Some(Timestamp(i64::MAX / 2)),
            campaign: None,
            phone: Some("+79990001122".into()),
        };
        ledger.submit(Command::Issue(Box::new(issue)), EventMeta::default()).await.unwrap().unwrap();
        let cvc = Cvc::generate().unwrap();
        let activate = Activate {
            code: code.into(),
            order_id: format!("o-{code}"),
            payment_id: format!("p-{code}"),
            phone: None,
            client_id: None,
            paid: None,
            cvc: secrets::seal_cvc(keys.as_ref(), code, &cvc).unwrap(),
        };
        ledger.submit(Command::Activate(Box::new(activate)), EventMeta::default()).await.unwrap().unwrap();
        cvcs.push(cvc.reveal().to_owned());
    }
    drop(ledger);
    task.await.unwrap();

    // Two failures, then delivered: each CVC once, to the upload row's phone.
    let (g, url) = gateway(2).await;
    let retry = Retry { attempts: 3, first_backoff: Duration::from_millis(5), max_backoff: Duration::from_millis(20) };
    let mut outbox = SmsOutbox::new(HttpGateway::new(&url, plain()).unwrap(), keys.clone(), None, retry);
    let mut conn = sqlx::PgConnection::connect(&db.url).await.unwrap();
    assert!(outbox.prepare(&mut conn).await.unwrap());
    let progress = outbox.step(&mut conn).await.unwrap();
    assert_eq!(progress.checkpoint, Some(10), "GC-1: three accounts, issue, posting, activation; GC-2: four more");
    let received = g.received.lock().unwrap().clone();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].text, format!("Gift certificate GC-1: CVC {}", cvcs[0]));
    assert_eq!(received[1].text, format!("Gift certificate GC-2: CVC {}", cvcs[1]));
    assert_eq!(received[0].to, "+79990001122");
    assert_ne!(received[0].message_id, received[1].message_id);
    assert!(format!("{:?}", received[0]).ends_with("text ***)"), "the message never prints its text");
    // Caught up: nothing is sent again.
    assert_eq!(outbox.step(&mut conn).await.unwrap().read, 0);
    assert_eq!(g.received.lock().unwrap().len(), 2);

    // A gateway that never takes them: dead letters, without the CVC, and the outbox goes on.
    sqlx::query("UPDATE projections SET checkpoint = 0 WHERE name = 'sms_outbox'").execute(&mut conn).await.unwrap();
    let (g, url) = gateway(u32::MAX).await;
    let mut outbox = SmsOutbox::new(HttpGateway::new(&url, plain()).unwrap(), keys, Some("{code}/{cvc}".into()), retry);
    assert_eq!(outbox.step(&mut conn).await.unwrap().checkpoint, Some(10));
    assert!(g.received.lock().unwrap().is_empty());
    let letters: Vec<(String, String, i32, String)> =
        sqlx::query_as("SELECT certificate, to_masked, attempts, reason FROM sms_dead_letters ORDER BY position")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert_eq!(letters.len(), 2);
    assert_eq!((letters[0].0.as_str(), letters[0].1.as_str(), letters[0].2), ("GC-1", "***22", 3));
    assert!(letters[0].3.contains("503"), "{}", letters[0].3);
    // No table holds a CVC in clear: not the log, not the dead letters.
    let everything: String = sqlx::query_scalar(
        "SELECT string_agg(payload::text, ' ') || (SELECT string_agg(reason, ' ') FROM sms_dead_letters) FROM events",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    for cvc in &cvcs {
        assert!(!everything.contains(&format!("CVC {cvc}")) && !everything.contains(&format!("/{cvc}")));
    }
    assert!(!everything.contains("\"cvc\":\""), "a CVC field holding a plain string");
    // Nor any log line, at any level, of the writer, the outbox or the gateway client.
    let logged = logs.text();
    assert!(logged.contains("CVC sent") && logged.contains("dead-lettered"), "the logs were captured");
    for cvc in &cvcs {
        assert!(!logged.contains(&format!("CVC {cvc}")) && !logged.contains(&format!("/{cvc}")), "{logged}");
    }
    assert!(!logged.contains("+79990001122"), "phones are masked in logs");
    db.drop_database().await;
}

/// A TLS gateway on loopback with a certificate of a test CA: the CA pem, the port, and the
/// requests it read. It answers 200 to each.
async fn tls_gateway() -> (String, u16, Arc<Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &rcgen::Issuer::new(ca, ca_key))
        .unwrap();
    #[allow(deprecated)] // ring, as the outbound client (outbound/src/client.rs)
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = Arc::new(Mutex::new(Vec::new()));
    let record = received.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let Ok(mut tls) = acceptor.accept(tcp).await else { continue };
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !String::from_utf8_lossy(&request).contains("}") {
                match tls.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            record.lock().unwrap().push(String::from_utf8_lossy(&request).into_owned());
            let _ = tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").await;
            let _ = tls.shutdown().await;
        }
    });
    (ca_cert.pem(), port, received)
}

#[tokio::test]
async fn an_https_gateway_receives_when_its_certificate_is_trusted_and_nothing_otherwise() {
    use streams::sms::{SmsError, SmsGateway};
    let (ca_pem, port, received) = tls_gateway().await;
    let url = format!("https://localhost:{port}/sms");
    let message = SmsMessage { message_id: uuid::Uuid::now_v7(), to: "+79990001122".into(), text: "CVC 123".into() };
    let untrusted = HttpGateway::new(&url, outbound::Client::new(outbound::ClientConfig::default()).unwrap()).unwrap();
    let refused = untrusted.send(&message).await.unwrap_err();
    assert!(matches!(refused, SmsError::Outbound(outbound::OutboundError::UntrustedCertificate { .. })), "{refused:?}");
    assert!(refused.to_string().contains("not trusted"), "{refused}");
    assert!(received.lock().unwrap().is_empty(), "nothing reached the gateway");
    let config = outbound::ClientConfig { extra_root_ca_pem: Some(ca_pem.into_bytes()), ..Default::default() };
    let trusted = HttpGateway::new(&url, outbound::Client::new(config).unwrap()).unwrap();
    trusted.send(&message).await.unwrap();
    let received = received.lock().unwrap();
    assert_eq!(received.len(), 1);
    assert!(received[0].starts_with("POST /sms HTTP/1.1\r\n"), "{}", received[0]);
    assert!(received[0].contains("\"text\":\"CVC 123\""), "{}", received[0]);
    // The default client refuses a plain http:// gateway at construction.
    let plain_url = format!("http://localhost:{port}/sms");
    let error =
        HttpGateway::new(&plain_url, outbound::Client::new(outbound::ClientConfig::default()).unwrap()).unwrap_err();
    assert!(matches!(error, SmsError::Outbound(outbound::OutboundError::PlainHttpRefused { .. })), "{error:?}");
}
