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
uuid_id!(DepositId, "wallet_deposit");
uuid_id!(WithdrawalId, "wallet_withdrawal");
uuid_id!(BonusId, "wallet_bonus");
uuid_id!(MovementId, "recon_movement");
uuid_id!(RunId, "recon_run");

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

    /// The UTC day, in days since the epoch.
    pub fn day(self) -> i64 {
        self.0.div_euclid(86_400 * Self::MICROS_PER_SECOND)
    }

    /// The UTC date: year, month 1-12, day 1-31.
    pub fn date(self) -> (i64, i64, i64) {
        civil(self.day())
    }

    /// As RFC 3339 in UTC: `2026-12-06T10:00:00Z`, with the microseconds when there are some
    /// (`…:00.25Z`, trailing zeros left out). Years are written with at least four digits.
    pub fn rfc3339(self) -> String {
        let seconds = self.0.div_euclid(Self::MICROS_PER_SECOND);
        let micros = self.0.rem_euclid(Self::MICROS_PER_SECOND);
        let (days, second_of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
        let (year, month, day) = civil(days);
        let (h, m, s) = (second_of_day / 3600, second_of_day % 3600 / 60, second_of_day % 60);
        let mut out = format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}");
        if micros != 0 {
            let fraction = format!("{micros:06}");
            out.push('.');
            out.push_str(fraction.trim_end_matches('0'));
        }
        out.push('Z');
        out
    }
}

/// The proleptic Gregorian date of a day counted from 1970-01-01 (H. Hinnant's
/// `civil_from_days`): year, month 1-12, day 1-31.
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months counted from March, so the leap day is the year's last.
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
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

    #[test]
    fn a_timestamp_is_written_as_rfc_3339_in_utc() {
        let at = |s: i64, micros: i64| Timestamp(s * Timestamp::MICROS_PER_SECOND + micros).rfc3339();
        assert_eq!(at(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(at(1_700_000_000, 123_456), "2023-11-14T22:13:20.123456Z");
        assert_eq!(at(1_700_000_000, 500_000), "2023-11-14T22:13:20.5Z");
        assert_eq!(at(1_700_000_000, 10), "2023-11-14T22:13:20.00001Z");
        assert_eq!(at(0, -1), "1969-12-31T23:59:59.999999Z");
        assert_eq!(at(951_782_400, 0), "2000-02-29T00:00:00Z");
        assert_eq!(at(951_868_800, 0), "2000-03-01T00:00:00Z");
        assert_eq!(at(1_709_164_800, 0), "2024-02-29T00:00:00Z");
        assert_eq!(at(4_107_542_399, 0), "2100-02-28T23:59:59Z");
        assert_eq!(at(4_107_542_400, 0), "2100-03-01T00:00:00Z");
        assert_eq!(at(946_684_799, 0), "1999-12-31T23:59:59Z");
        assert_eq!(at(-62_135_596_800, 0), "0001-01-01T00:00:00Z");
    }

    proptest::proptest! {
        /// Every instant from year 1 to 9999 is written as the `time` crate writes it.
        #[test]
        fn rfc_3339_agrees_with_the_time_crate(micros in -62_135_596_800_000_000i64..253_402_300_799_999_999) {
            let expected = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
                .unwrap()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap();
            proptest::prop_assert_eq!(Timestamp(micros).rfc3339(), expected);
        }
    }
}
