//! Secrets at rest. Every domain secret (a certificate's CVC, a webhook endpoint's secret, a
//! provider's credentials) is sealed by one function, `seal(keys, context, plaintext)`, with
//! AES-256-GCM under a key named by id (the id is stored beside the ciphertext, so keys can
//! rotate), and bound to its context (`"certificate:GC-1"`, `"webhook-endpoint:<id>"`): a
//! ciphertext copied to another context does not open. Keys come from a `KeyProvider`:
//! `LocalKeys` reads them from configuration (`LEDGER_SECRETS_KEY` in `ledger up`); a KMS
//! adapter can replace it. A CVC is generated here from the operating system's CSPRNG and opened
//! only to compare it with a presented CVC or to send it once. Nothing here logs, and `Cvc`
//! never prints its digits.

use std::collections::HashMap;
use std::fmt;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use ledger_core::certificates::command::SealedCvc;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("no key with id {0:?}")]
    UnknownKey(String),
    #[error("a key is 64 hex characters (32 bytes)")]
    BadKey,
    #[error("the sealed value does not open with its key (tampered, or sealed for another certificate)")]
    Tampered,
    #[error("the operating system's random source failed")]
    Random,
    #[error("a sealing context is `kind:id` (kind: lowercase letters and dashes)")]
    BadContext,
}

/// Where the sealing keys come from.
pub trait KeyProvider: Send + Sync {
    /// The id of the key new secrets are sealed with.
    fn current(&self) -> &str;
    /// A key by id, for sealing (the current one) or opening (any still known).
    fn key(&self, id: &str) -> Option<&[u8; 32]>;
}

/// Keys given in configuration: `id` → 32 bytes.
pub struct LocalKeys {
    current: String,
    keys: HashMap<String, [u8; 32]>,
}

impl LocalKeys {
    /// One key, current, from 64 hex characters.
    pub fn new(id: &str, hex_key: &str) -> Result<LocalKeys, SecretError> {
        let bytes = hex::decode(hex_key.trim()).map_err(|_| SecretError::BadKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| SecretError::BadKey)?;
        Ok(LocalKeys { current: id.to_owned(), keys: HashMap::from([(id.to_owned(), key)]) })
    }

    /// A fresh random key (tests, and a one-off `ledger` run on a scratch database).
    pub fn random(id: &str) -> Result<LocalKeys, SecretError> {
        let key = Aes256Gcm::generate_key(&mut OsRng);
        Ok(LocalKeys { current: id.to_owned(), keys: HashMap::from([(id.to_owned(), key.into())]) })
    }

    /// Keeps an older key for opening what it sealed.
    pub fn with_previous(mut self, id: &str, hex_key: &str) -> Result<LocalKeys, SecretError> {
        let older = LocalKeys::new(id, hex_key)?;
        self.keys.extend(older.keys);
        Ok(self)
    }
}

impl KeyProvider for LocalKeys {
    fn current(&self) -> &str {
        &self.current
    }

    fn key(&self, id: &str) -> Option<&[u8; 32]> {
        self.keys.get(id)
    }
}

/// The JSON Schema pattern of a CVC's shape ([`Cvc::well_formed`]).
pub const CVC_PATTERN: &str = "^[0-9]{3}$";

/// A CVC in clear: three digits. Its `Debug` and `Display` are masked.
#[derive(Clone, PartialEq, Eq)]
pub struct Cvc(String);

impl Cvc {
    /// Three digits, uniform, from the operating system's CSPRNG.
    pub fn generate() -> Result<Cvc, SecretError> {
        loop {
            let mut bytes = [0u8; 2];
            getrandom(&mut bytes)?;
            let n = u16::from_be_bytes(bytes);
            // Rejection sampling: 65000 is a multiple of 1000, so every CVC is equally likely.
            if n < 65_000 {
                return Ok(Cvc(format!("{:03}", n % 1000)));
            }
        }
    }

    /// A CVC presented by a caller (any text: a wrong one simply does not match).
    pub fn presented(text: &str) -> Cvc {
        Cvc(text.to_owned())
    }

    /// Whether a presented text has a CVC's shape, three digits ([`CVC_PATTERN`]).
    pub fn well_formed(text: &str) -> bool {
        text.len() == 3 && text.bytes().all(|b| b.is_ascii_digit())
    }

    /// The digits, for the one place that must show them: the message to the customer.
    pub fn reveal(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison.
    pub fn matches(&self, other: &Cvc) -> bool {
        let (a, b) = (self.0.as_bytes(), other.0.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl fmt::Debug for Cvc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cvc(***)")
    }
}

impl fmt::Display for Cvc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

fn getrandom(out: &mut [u8]) -> Result<(), SecretError> {
    use aes_gcm::aead::rand_core::RngCore;
    OsRng.try_fill_bytes(out).map_err(|_| SecretError::Random)
}

/// A sealed secret: the key's id, the nonce and the ciphertext (with its tag), in hex.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    pub nonce: String,
    pub ciphertext: String,
}

/// What a ciphertext is bound to: a version tag and the context, so that no context of this
/// format equals the bare certificate codes sealed before it (see `open_cvc`).
fn associated_data(context: &str) -> Result<Vec<u8>, SecretError> {
    let (kind, id) = context.split_once(':').ok_or(SecretError::BadContext)?;
    if kind.is_empty() || id.is_empty() || !kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'-') {
        return Err(SecretError::BadContext);
    }
    Ok([b"ledger-sealed/v1\0".as_slice(), context.as_bytes()].concat())
}

/// Seals `plaintext` under the current key, bound to `context` (`kind:id`).
pub fn seal(keys: &dyn KeyProvider, context: &str, plaintext: &[u8]) -> Result<Sealed, SecretError> {
    seal_with(keys, &associated_data(context)?, plaintext)
}

/// Opens what `seal` sealed for `context`.
pub fn open(keys: &dyn KeyProvider, context: &str, sealed: &Sealed) -> Result<Vec<u8>, SecretError> {
    open_with(keys, &associated_data(context)?, sealed)
}

fn seal_with(keys: &dyn KeyProvider, aad: &[u8], plaintext: &[u8]) -> Result<Sealed, SecretError> {
    let id = keys.current();
    let key = keys.key(id).ok_or_else(|| SecretError::UnknownKey(id.to_owned()))?;
    let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key));
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let ciphertext = cipher.encrypt(&nonce, Payload { msg: plaintext, aad }).map_err(|_| SecretError::Tampered)?;
    Ok(Sealed { key_id: id.to_owned(), nonce: hex::encode(nonce), ciphertext: hex::encode(ciphertext) })
}

fn open_with(keys: &dyn KeyProvider, aad: &[u8], sealed: &Sealed) -> Result<Vec<u8>, SecretError> {
    let key = keys.key(&sealed.key_id).ok_or_else(|| SecretError::UnknownKey(sealed.key_id.clone()))?;
    let cipher = Aes256Gcm::new(&Key::<Aes256Gcm>::from(*key));
    let nonce: [u8; 12] =
        hex::decode(&sealed.nonce).ok().and_then(|n| n.try_into().ok()).ok_or(SecretError::Tampered)?;
    let ciphertext = hex::decode(&sealed.ciphertext).map_err(|_| SecretError::Tampered)?;
    cipher.decrypt(&Nonce::from(nonce), Payload { msg: &ciphertext, aad }).map_err(|_| SecretError::Tampered)
}

/// The context of a certificate's CVC.
pub fn certificate_context(code: &str) -> String {
    format!("certificate:{code}")
}

/// Seals a certificate's CVC (context `certificate:{code}`).
pub fn seal_cvc(keys: &dyn KeyProvider, code: &str, cvc: &Cvc) -> Result<SealedCvc, SecretError> {
    let sealed = seal(keys, &certificate_context(code), cvc.0.as_bytes())?;
    Ok(SealedCvc { key_id: sealed.key_id, nonce: sealed.nonce, ciphertext: sealed.ciphertext })
}

/// Opens a sealed CVC of the certificate `code`: sealed by `seal_cvc`, or by the engine before
/// sealing was general (bound to the bare code), which stays in the log.
pub fn open_cvc(keys: &dyn KeyProvider, code: &str, sealed: &SealedCvc) -> Result<Cvc, SecretError> {
    let sealed =
        Sealed { key_id: sealed.key_id.clone(), nonce: sealed.nonce.clone(), ciphertext: sealed.ciphertext.clone() };
    let clear = match open(keys, &certificate_context(code), &sealed) {
        Err(SecretError::Tampered) => open_with(keys, code.as_bytes(), &sealed)?,
        other => other?,
    };
    String::from_utf8(clear).map(Cvc).map_err(|_| SecretError::Tampered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_generated_cvc_is_well_formed_and_nothing_else_is() {
        assert!((0..200).all(|_| Cvc::well_formed(Cvc::generate().unwrap().reveal())));
        for text in ["", "12", "1234", "12a", " 12", "１２３", "-12"] {
            assert!(!Cvc::well_formed(text), "{text:?}");
        }
        assert!(Cvc::well_formed("000") && Cvc::well_formed("999"));
    }

    const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn a_sealed_cvc_opens_only_for_its_certificate_and_key() {
        let keys = LocalKeys::new("k1", KEY).unwrap();
        let cvc = Cvc::generate().unwrap();
        let sealed = seal_cvc(&keys, "GC-1", &cvc).unwrap();
        assert_eq!(sealed.key_id, "k1");
        assert_eq!(
            (sealed.nonce.len(), sealed.ciphertext.len()),
            (24, 38),
            "12-byte nonce; 3 digits and a 16-byte tag"
        );
        assert_eq!(open_cvc(&keys, "GC-1", &sealed).unwrap(), cvc);
        assert_eq!(open_cvc(&keys, "GC-2", &sealed), Err(SecretError::Tampered));
        let mut flipped = sealed.clone();
        flipped.ciphertext.replace_range(0..2, if &flipped.ciphertext[0..2] == "00" { "01" } else { "00" });
        assert_eq!(open_cvc(&keys, "GC-1", &flipped), Err(SecretError::Tampered));
        let other = LocalKeys::random("k2").unwrap();
        assert_eq!(open_cvc(&other, "GC-1", &sealed), Err(SecretError::UnknownKey("k1".into())));
        // A rotated provider still opens what the older key sealed.
        let rotated = LocalKeys::random("k2").unwrap().with_previous("k1", KEY).unwrap();
        assert_eq!(open_cvc(&rotated, "GC-1", &sealed).unwrap(), cvc);
        assert_eq!(seal_cvc(&rotated, "GC-1", &cvc).unwrap().key_id, "k2");
        // Two seals of one CVC differ (fresh nonce).
        assert_ne!(seal_cvc(&keys, "GC-1", &cvc).unwrap(), sealed);
    }

    #[test]
    fn a_cvc_sealed_before_sealing_was_general_still_opens() {
        // Sealed by `secrets::seal(&keys, "GC-LEGACY-1", &Cvc::presented("407"))` at cfef304,
        // when a CVC was bound to its bare certificate code.
        let legacy = SealedCvc {
            key_id: "local-1".into(),
            nonce: "bf46598fae167b16b677cf78".into(),
            ciphertext: "c8dc2be37353f0f9ebf438c922c461d2097cb8".into(),
        };
        let keys = LocalKeys::new("local-1", KEY).unwrap();
        assert_eq!(open_cvc(&keys, "GC-LEGACY-1", &legacy).unwrap().reveal(), "407");
        assert_eq!(open_cvc(&keys, "GC-LEGACY-2", &legacy), Err(SecretError::Tampered));
        // Not through the general opening, under any context.
        let general = Sealed { key_id: legacy.key_id, nonce: legacy.nonce, ciphertext: legacy.ciphertext };
        assert_eq!(open(&keys, "certificate:GC-LEGACY-1", &general), Err(SecretError::Tampered));
    }

    #[test]
    fn every_domain_seals_with_one_function_bound_to_its_context() {
        let keys = LocalKeys::new("k1", KEY).unwrap();
        let sealed = seal(&keys, "webhook-endpoint:ep_1", b"whsec_abc").unwrap();
        assert_eq!(open(&keys, "webhook-endpoint:ep_1", &sealed).unwrap(), b"whsec_abc");
        assert_eq!(open(&keys, "webhook-endpoint:ep_2", &sealed), Err(SecretError::Tampered));
        assert_eq!(open(&keys, "provider:ep_1", &sealed), Err(SecretError::Tampered));
        // A CVC is the same sealing, under its certificate's context.
        let cvc = seal_cvc(&keys, "GC-1", &Cvc::presented("123")).unwrap();
        let general = Sealed { key_id: cvc.key_id, nonce: cvc.nonce, ciphertext: cvc.ciphertext };
        assert_eq!(open(&keys, "certificate:GC-1", &general).unwrap(), b"123");
        for bad in ["", "GC-1", ":x", "kind:", "Kind:x", "k1nd:x"] {
            assert_eq!(seal(&keys, bad, b"x").err(), Some(SecretError::BadContext), "{bad:?}");
        }
    }

    #[test]
    fn cvcs_are_three_digits_and_never_print() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..2000 {
            let cvc = Cvc::generate().unwrap();
            assert!(cvc.reveal().len() == 3 && cvc.reveal().bytes().all(|b| b.is_ascii_digit()));
            assert_eq!(format!("{cvc} {cvc:?}"), "*** Cvc(***)");
            seen.insert(cvc.reveal().to_owned());
        }
        assert!(seen.len() > 800, "{} distinct CVCs in 2000", seen.len());
        assert!(Cvc::presented("123").matches(&Cvc::presented("123")));
        assert!(!Cvc::presented("123").matches(&Cvc::presented("124")));
        assert!(!Cvc::presented("123").matches(&Cvc::presented("1234")));
        assert_eq!(LocalKeys::new("k", "abc").err(), Some(SecretError::BadKey));
        assert_eq!(LocalKeys::new("k", &KEY[..62]).err(), Some(SecretError::BadKey));
    }
}
