//! Standard Webhooks (<https://www.standardwebhooks.com>, spec v1): signing what the engine sends
//! and verifying what providers send. The signature of a message is
//! `v1,<base64 HMAC-SHA256(secret, "{webhook-id}.{webhook-timestamp}.{body}")>`; the secret is
//! `whsec_<base64 of 24 to 64 bytes>`. `sign` and `Verifier::verify` are pure: the caller passes
//! `now` (seconds since the Unix epoch); deduplication by message id is a port (`SeenMessages`).
//!
//! Why not the `standardwebhooks` crate: its `verify` reads the clock itself, its `sign` refuses
//! bodies that are not UTF-8, and it brings base64 0.21 beside our 0.22 plus `hmac-sha256`; ring
//! (already here for TLS) gives HMAC-SHA256 with a constant-time verify.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;
use ring::hmac;

pub const HEADER_ID: &str = "webhook-id";
pub const HEADER_TIMESTAMP: &str = "webhook-timestamp";
pub const HEADER_SIGNATURE: &str = "webhook-signature";
/// How far a message's timestamp may be from `now`, either way.
pub const TOLERANCE_SECS: i64 = 5 * 60;
const PREFIX: &str = "whsec_";
/// Bytes of a generated secret (the spec asks for 24 to 64).
const GENERATED_BYTES: usize = 32;
const MIN_BYTES: usize = 24;
const MAX_BYTES: usize = 64;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("a webhook secret is whsec_ followed by the base64 of 24 to 64 bytes")]
    Malformed,
    #[error("the operating system's random source failed")]
    Random,
}

/// A signing secret. `Debug` and `Display` are masked; `expose` gives the `whsec_…` text, for
/// sealing it or showing it once to the endpoint's owner.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl WebhookSecret {
    /// 32 bytes from the operating system's CSPRNG.
    pub fn generate() -> Result<WebhookSecret, SecretError> {
        use ring::rand::SecureRandom;
        let mut bytes = vec![0u8; GENERATED_BYTES];
        ring::rand::SystemRandom::new().fill(&mut bytes).map_err(|_| SecretError::Random)?;
        Ok(WebhookSecret(bytes))
    }

    /// `whsec_<base64>` (the prefix may be left out, as the reference libraries allow).
    pub fn parse(text: &str) -> Result<WebhookSecret, SecretError> {
        let encoded = text.strip_prefix(PREFIX).unwrap_or(text);
        let bytes = STANDARD.decode(encoded).map_err(|_| SecretError::Malformed)?;
        if !(MIN_BYTES..=MAX_BYTES).contains(&bytes.len()) {
            return Err(SecretError::Malformed);
        }
        Ok(WebhookSecret(bytes))
    }

    /// The secret in clear, `whsec_<base64>`.
    pub fn expose(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(&self.0))
    }

    fn key(&self) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, &self.0)
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(whsec_***)")
    }
}

impl fmt::Display for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("whsec_***")
    }
}

fn signed_content(msg_id: &str, timestamp_secs: i64, body: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(msg_id.len() + body.len() + 24);
    content.extend_from_slice(msg_id.as_bytes());
    content.push(b'.');
    content.extend_from_slice(timestamp_secs.to_string().as_bytes());
    content.push(b'.');
    content.extend_from_slice(body);
    content
}

/// The `webhook-signature` value of a message: `v1,<base64 HMAC-SHA256>`.
pub fn sign(secret: &WebhookSecret, msg_id: &str, timestamp_secs: i64, body: &[u8]) -> String {
    let tag = hmac::sign(&secret.key(), &signed_content(msg_id, timestamp_secs, body));
    format!("v1,{}", STANDARD.encode(tag.as_ref()))
}

/// The three headers of a signed message, for a request that sends it.
pub fn headers(secret: &WebhookSecret, msg_id: &str, timestamp_secs: i64, body: &[u8]) -> Vec<(&'static str, String)> {
    vec![
        (HEADER_ID, msg_id.to_owned()),
        (HEADER_TIMESTAMP, timestamp_secs.to_string()),
        (HEADER_SIGNATURE, sign(secret, msg_id, timestamp_secs, body)),
    ]
}

/// Why an incoming webhook is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("the {0} header is missing")]
    MissingHeader(&'static str),
    #[error("the {0} header is malformed")]
    InvalidHeader(&'static str),
    #[error("the webhook timestamp {timestamp} is more than {TOLERANCE_SECS} s from now ({now})")]
    StaleTimestamp { timestamp: i64, now: i64 },
    #[error("no v1 signature of the message matches")]
    BadSignature,
    #[error("message {0} was already received")]
    Replay(String),
    #[error("the record of received messages failed: {0}")]
    Seen(String),
}

/// A message that passed verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub id: String,
    pub timestamp_secs: i64,
}

/// Verifies incoming messages signed with one of its secrets (several during a rotation).
#[derive(Debug, Clone)]
pub struct Verifier {
    secrets: Vec<WebhookSecret>,
}

impl Verifier {
    pub fn new(secret: WebhookSecret) -> Verifier {
        Verifier { secrets: vec![secret] }
    }

    /// Also accepts messages signed with `secret` (the one being replaced).
    pub fn with_previous(mut self, secret: WebhookSecret) -> Verifier {
        self.secrets.push(secret);
        self
    }

    /// Checks, in this order: the id, the timestamp (within `TOLERANCE_SECS` of `now_secs`),
    /// the signature (any of the space-separated `v1,…` ones, compared in constant time).
    pub fn verify(&self, headers: &HeaderMap, body: &[u8], now_secs: i64) -> Result<Verified, VerifyError> {
        let header = |name: &'static str| -> Result<&str, VerifyError> {
            headers
                .get(name)
                .ok_or(VerifyError::MissingHeader(name))?
                .to_str()
                .map_err(|_| VerifyError::InvalidHeader(name))
        };
        let id = header(HEADER_ID)?;
        if id.is_empty() {
            return Err(VerifyError::InvalidHeader(HEADER_ID));
        }
        let timestamp: i64 =
            header(HEADER_TIMESTAMP)?.parse().map_err(|_| VerifyError::InvalidHeader(HEADER_TIMESTAMP))?;
        // A timestamp so far off that the difference overflows is stale too.
        if now_secs.checked_sub(timestamp).is_none_or(|d| d.unsigned_abs() > TOLERANCE_SECS.unsigned_abs()) {
            return Err(VerifyError::StaleTimestamp { timestamp, now: now_secs });
        }
        let signatures = header(HEADER_SIGNATURE)?;
        let content = signed_content(id, timestamp, body);
        let matches = signatures
            .split(' ')
            .filter_map(|s| s.split_once(','))
            .filter(|(version, _)| *version == "v1")
            .filter_map(|(_, encoded)| STANDARD.decode(encoded).ok())
            .any(|tag| self.secrets.iter().any(|secret| hmac::verify(&secret.key(), &content, &tag).is_ok()));
        if !matches {
            return Err(VerifyError::BadSignature);
        }
        Ok(Verified { id: id.to_owned(), timestamp_secs: timestamp })
    }

    /// `verify`, then refuses a message id already seen.
    pub async fn verify_once<S: SeenMessages>(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now_secs: i64,
        seen: &S,
    ) -> Result<Verified, VerifyError> {
        let verified = self.verify(headers, body, now_secs)?;
        match seen.first_sight(&verified.id, now_secs).await {
            Ok(true) => Ok(verified),
            Ok(false) => Err(VerifyError::Replay(verified.id)),
            Err(e) => Err(VerifyError::Seen(e.to_string())),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SeenError {
    #[error("{0} message ids are remembered already")]
    Full(usize),
    #[error("{0}")]
    Store(String),
}

/// The ids of messages received: a message is accepted once. An id only has to be remembered
/// for twice `TOLERANCE_SECS`: a later copy is refused for its timestamp.
pub trait SeenMessages: Send + Sync {
    /// Records `id`; false when it was recorded before.
    fn first_sight(&self, id: &str, now_secs: i64) -> impl Future<Output = Result<bool, SeenError>> + Send;
}

/// In memory, at most `limit` ids at once (ids older than the tolerance are forgotten first).
pub struct MemorySeen {
    limit: usize,
    seen: Mutex<HashMap<String, i64>>,
}

impl MemorySeen {
    pub fn new(limit: usize) -> MemorySeen {
        MemorySeen { limit, seen: Mutex::new(HashMap::new()) }
    }
}

impl SeenMessages for MemorySeen {
    async fn first_sight(&self, id: &str, now_secs: i64) -> Result<bool, SeenError> {
        let mut seen = self.seen.lock().map_err(|_| SeenError::Store("poisoned".into()))?;
        if seen.contains_key(id) {
            return Ok(false);
        }
        if seen.len() >= self.limit {
            seen.retain(|_, at| now_secs - *at <= 2 * TOLERANCE_SECS);
            if seen.len() >= self.limit {
                return Err(SeenError::Full(self.limit));
            }
        }
        seen.insert(id.to_owned(), now_secs);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the specification and of every reference library.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn headers_of(id: &str, timestamp: &str, signature: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in [(HEADER_ID, id), (HEADER_TIMESTAMP, timestamp), (HEADER_SIGNATURE, signature)] {
            h.insert(name, value.parse().unwrap());
        }
        h
    }

    fn check(headers: &HeaderMap, body: &[u8], now: i64, expect: Result<(), VerifyError>) {
        let verifier = Verifier::new(WebhookSecret::parse(SECRET).unwrap());
        assert_eq!(verifier.verify(headers, body, now).map(drop), expect, "now {now}");
    }

    #[test]
    fn signs_the_specification_example() {
        let secret = WebhookSecret::parse(SECRET).unwrap();
        assert_eq!(sign(&secret, ID, TIMESTAMP, BODY), SIGNATURE);
        assert_eq!(secret.expose(), SECRET);
    }

    #[test]
    fn verifies_in_order_id_timestamp_signature() {
        let ok = headers_of(ID, &TIMESTAMP.to_string(), SIGNATURE);
        check(&ok, BODY, TIMESTAMP, Ok(()));
        check(&ok, BODY, TIMESTAMP + TOLERANCE_SECS, Ok(()));
        check(&ok, BODY, TIMESTAMP - TOLERANCE_SECS, Ok(()));
        check(
            &ok,
            BODY,
            TIMESTAMP + TOLERANCE_SECS + 1,
            Err(VerifyError::StaleTimestamp { timestamp: TIMESTAMP, now: TIMESTAMP + 301 }),
        );
        check(
            &ok,
            BODY,
            TIMESTAMP - TOLERANCE_SECS - 1,
            Err(VerifyError::StaleTimestamp { timestamp: TIMESTAMP, now: TIMESTAMP - 301 }),
        );
        // A timestamp at the end of the range is stale, not an overflow.
        for far in [i64::MIN, i64::MAX] {
            let at_the_end = headers_of(ID, &far.to_string(), SIGNATURE);
            check(&at_the_end, BODY, TIMESTAMP, Err(VerifyError::StaleTimestamp { timestamp: far, now: TIMESTAMP }));
        }
        check(&ok, br#"{"test": 2432232315}"#, TIMESTAMP, Err(VerifyError::BadSignature));
        // Several signatures: one matching is enough; other versions are ignored.
        let several = format!("v1,bm9wZQ== v2,{} {SIGNATURE}", &SIGNATURE[3..]);
        check(&headers_of(ID, &TIMESTAMP.to_string(), &several), BODY, TIMESTAMP, Ok(()));
        check(
            &headers_of(ID, &TIMESTAMP.to_string(), &format!("v2,{}", &SIGNATURE[3..])),
            BODY,
            TIMESTAMP,
            Err(VerifyError::BadSignature),
        );
        check(
            &headers_of("msg_other", &TIMESTAMP.to_string(), SIGNATURE),
            BODY,
            TIMESTAMP,
            Err(VerifyError::BadSignature),
        );
        check(
            &headers_of(ID, &(TIMESTAMP + 1).to_string(), SIGNATURE),
            BODY,
            TIMESTAMP,
            Err(VerifyError::BadSignature),
        );
        check(&headers_of(ID, "soon", SIGNATURE), BODY, TIMESTAMP, Err(VerifyError::InvalidHeader(HEADER_TIMESTAMP)));
        for missing in [HEADER_ID, HEADER_TIMESTAMP, HEADER_SIGNATURE] {
            let mut h = ok.clone();
            h.remove(missing);
            check(&h, BODY, TIMESTAMP, Err(VerifyError::MissingHeader(missing)));
        }
        // Another secret's signature does not verify; during a rotation both do.
        let other = WebhookSecret::generate().unwrap();
        let by_other = sign(&other, ID, TIMESTAMP, BODY);
        check(&headers_of(ID, &TIMESTAMP.to_string(), &by_other), BODY, TIMESTAMP, Err(VerifyError::BadSignature));
        let rotating = Verifier::new(WebhookSecret::parse(SECRET).unwrap()).with_previous(other);
        assert!(rotating.verify(&headers_of(ID, &TIMESTAMP.to_string(), &by_other), BODY, TIMESTAMP).is_ok());
    }

    #[tokio::test]
    async fn a_message_is_accepted_once() {
        let verifier = Verifier::new(WebhookSecret::parse(SECRET).unwrap());
        let seen = MemorySeen::new(2);
        let h = headers_of(ID, &TIMESTAMP.to_string(), SIGNATURE);
        assert!(verifier.verify_once(&h, BODY, TIMESTAMP, &seen).await.is_ok());
        assert_eq!(verifier.verify_once(&h, BODY, TIMESTAMP + 1, &seen).await, Err(VerifyError::Replay(ID.into())));
        // A forged copy is refused for its signature before it is recorded.
        assert_eq!(verifier.verify_once(&h, b"{}", TIMESTAMP, &seen).await, Err(VerifyError::BadSignature));
        assert_eq!(seen.first_sight("b", TIMESTAMP).await, Ok(true));
        assert_eq!(seen.first_sight("c", TIMESTAMP).await, Err(SeenError::Full(2)));
        // Ids past twice the tolerance are forgotten to make room.
        assert_eq!(seen.first_sight("c", TIMESTAMP + 2 * TOLERANCE_SECS + 1).await, Ok(true));
    }

    #[test]
    fn secrets_are_random_well_formed_and_never_print() {
        let (a, b) = (WebhookSecret::generate().unwrap(), WebhookSecret::generate().unwrap());
        assert_ne!(a, b);
        assert_eq!(WebhookSecret::parse(&a.expose()).unwrap(), a);
        assert!(a.expose().starts_with("whsec_") && a.expose().len() == 6 + 44);
        assert_eq!(format!("{a} {a:?}"), "whsec_*** WebhookSecret(whsec_***)");
        assert!(!format!("{:?}", Verifier::new(a.clone())).contains(&a.expose()[6..]));
        assert_eq!(WebhookSecret::parse("whsec_c2hvcnQ="), Err(SecretError::Malformed), "5 bytes");
        assert_eq!(WebhookSecret::parse("whsec_%%%"), Err(SecretError::Malformed));
    }
}
