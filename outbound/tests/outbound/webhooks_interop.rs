//! Standard Webhooks against the reference library (PyPI `standardwebhooks`): every message of
//! `webhooks/vectors.json` (signed by it; the command is in `webhooks/vectors.py`) verifies
//! here, and our `sign` gives each the library's signature. The messages signed here are written
//! to `$CARGO_TARGET_TMPDIR/webhooks-rust-signed.json`, which `scripts/webhooks-interop` has the
//! library verify.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;
use outbound::webhooks::{self, Verifier, VerifyError, WebhookSecret};

const VECTORS: &str = include_str!("webhooks/vectors.json");

fn headers(id: &str, timestamp: i64, signature: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(webhooks::HEADER_ID, id.parse().unwrap());
    h.insert(webhooks::HEADER_TIMESTAMP, timestamp.to_string().parse().unwrap());
    h.insert(webhooks::HEADER_SIGNATURE, signature.parse().unwrap());
    h
}

#[test]
fn messages_signed_by_the_reference_library_verify_and_sign_alike() {
    let vectors: serde_json::Value = serde_json::from_str(VECTORS).unwrap();
    let cases = vectors["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 5);
    let mut ours = Vec::new();
    for case in cases {
        let secret = WebhookSecret::parse(case["secret"].as_str().unwrap()).unwrap();
        let id = case["id"].as_str().unwrap();
        let timestamp = case["timestamp"].as_i64().unwrap();
        let body = STANDARD.decode(case["body_base64"].as_str().unwrap()).unwrap();
        let signature = case["signature"].as_str().unwrap();
        assert_eq!(webhooks::sign(&secret, id, timestamp, &body), signature, "{id}");
        let verifier = Verifier::new(secret.clone());
        assert!(verifier.verify(&headers(id, timestamp, signature), &body, timestamp + 299).is_ok(), "{id}");
        let mut altered = body.clone();
        altered.push(b' ');
        assert_eq!(
            verifier.verify(&headers(id, timestamp, signature), &altered, timestamp),
            Err(VerifyError::BadSignature)
        );
        // A message of our own, with a fresh secret, for the library to verify.
        let fresh = WebhookSecret::generate().unwrap();
        let own_id = format!("{id}_rust");
        ours.push(serde_json::json!({
            "secret": fresh.expose(),
            "id": own_id,
            "timestamp": timestamp,
            "body_base64": STANDARD.encode(&body),
            "signature": webhooks::sign(&fresh, &own_id, timestamp, &body),
        }));
    }
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("webhooks-rust-signed.json");
    std::fs::write(&out, serde_json::to_string_pretty(&serde_json::json!({ "cases": ours })).unwrap()).unwrap();
}
