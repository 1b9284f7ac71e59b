//! A secret as the core holds it: sealed by the edge that has the key.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A secret as stored: AES-256-GCM ciphertext with its nonce and the id of the key that sealed
/// it (hex). The core never sees a secret in clear (a store's callback secret, a requisite's card
/// or account details, a provider's webhook secret): the edge that holds the key seals them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Sealed {
    pub key_id: String,
    pub nonce: String,
    pub ciphertext: String,
}

impl Sealed {
    /// As the webhooks keep an endpoint's secret: `{"key_id","nonce","ciphertext"}`.
    pub fn to_json(&self) -> Value {
        serde_json::json!({"key_id": self.key_id, "nonce": self.nonce, "ciphertext": self.ciphertext})
    }
}
