//! Identifiers and time. Ids are UUIDs; every id is also an idempotency key.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($name:ident, $prefix:literal) => {
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
        )]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// The event stream this entity's events belong to, e.g. `account-<uuid>`.
            pub fn stream(&self) -> String {
                format!(concat!($prefix, "-{}"), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

uuid_id!(AccountId, "account");
uuid_id!(TransferId, "transfer");
uuid_id!(CertificateId, "certificate");
uuid_id!(PayoutRequestId, "payout_request");
uuid_id!(PayoutId, "payout");
uuid_id!(OrderId, "order");

/// A point in time in microseconds since the Unix epoch. The core never reads a clock:
/// callers pass `now`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(transparent)]
#[schemars(description = "Microseconds since the Unix epoch (UTC).")]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub const MICROS_PER_SECOND: i64 = 1_000_000;

    pub fn micros(self) -> i64 {
        self.0
    }

    pub fn plus_seconds(self, seconds: u32) -> Timestamp {
        Timestamp(self.0.saturating_add(i64::from(seconds) * Self::MICROS_PER_SECOND))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timestamp_is_microseconds_and_adds_seconds_without_overflowing() {
        assert_eq!(Timestamp(1_700_000_000_123_456).micros(), 1_700_000_000_123_456);
        assert_eq!(Timestamp(5).plus_seconds(2).micros(), 2_000_005);
        assert_eq!(Timestamp(i64::MAX - 1).plus_seconds(1), Timestamp(i64::MAX));
    }
}
