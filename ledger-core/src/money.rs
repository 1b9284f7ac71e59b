//! Money: exact decimal amounts at a currency's scale. No floats, checked arithmetic only.

use std::collections::BTreeMap;
use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Largest number of decimals any asset may declare (rust_decimal holds 28).
pub const MAX_SCALE: u32 = 18;

/// Largest amount a single posting may carry: 10^24, far inside rust_decimal's range,
/// so that sums of many postings are still representable before the checked add refuses.
pub fn max_amount() -> Decimal {
    Decimal::from_i128_with_scale(1_000_000_000_000_000_000_000_000, 0)
}

/// Largest running total an account may reach: 10^27, below rust_decimal's maximum (~7.9 * 10^28).
pub fn max_total() -> Decimal {
    Decimal::from_i128_with_scale(1_000_000_000_000_000_000_000_000_000, 0)
}

/// An ISO 4217 code or a configured asset code: 3 to 12 characters `A-Z0-9`, starting with a letter.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CurrencyCode(String);

/// The JSON Schema pattern of the codes [`CurrencyCode::parse`] takes.
pub const CURRENCY_PATTERN: &str = "^[A-Z][A-Z0-9]{2,11}$";

impl CurrencyCode {
    /// 3 to 12 uppercase letters and digits, a letter first ([`CURRENCY_PATTERN`]).
    pub fn parse(code: &str) -> Result<CurrencyCode, AmountError> {
        let ok = (3..=12).contains(&code.len())
            && code.as_bytes()[0].is_ascii_uppercase()
            && code.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if ok { Ok(CurrencyCode(code.to_owned())) } else { Err(AmountError::UnknownCurrency) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl schemars::JsonSchema for CurrencyCode {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "CurrencyCode".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[A-Z][A-Z0-9]{2,11}$",
            "description": "An ISO 4217 code or a configured asset code."
        })
    }
}

impl TryFrom<String> for CurrencyCode {
    type Error = AmountError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        CurrencyCode::parse(&value)
    }
}

impl From<CurrencyCode> for String {
    fn from(value: CurrencyCode) -> String {
        value.0
    }
}

impl fmt::Display for CurrencyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why an amount was refused. Each maps to a rejection code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("amount must be greater than zero")]
    NotPositive,
    #[error("amount has more decimals than the currency's scale")]
    Scale,
    #[error("amount is too large")]
    Overflow,
    #[error("currency is not configured")]
    UnknownCurrency,
}

/// The currencies a ledger accepts, each with its scale (number of decimals).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Currencies {
    scales: BTreeMap<CurrencyCode, u32>,
}

/// ISO 4217 exponents of the fiat currencies the ledger knows out of the box.
const ISO_4217: &[(&str, u32)] = &[
    ("AED", 2),
    ("AMD", 2),
    ("ARS", 2),
    ("AUD", 2),
    ("AZN", 2),
    ("BHD", 3),
    ("BRL", 2),
    ("BYN", 2),
    ("CAD", 2),
    ("CHF", 2),
    ("CLP", 0),
    ("CNY", 2),
    ("CZK", 2),
    ("DKK", 2),
    ("EGP", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("GEL", 2),
    ("HKD", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("IQD", 3),
    ("ISK", 0),
    ("JOD", 3),
    ("JPY", 0),
    ("KES", 2),
    ("KGS", 2),
    ("KRW", 0),
    ("KWD", 3),
    ("KZT", 2),
    ("LYD", 3),
    ("MDL", 2),
    ("MXN", 2),
    ("MYR", 2),
    ("NGN", 2),
    ("NOK", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PHP", 2),
    ("PKR", 2),
    ("PLN", 2),
    ("RON", 2),
    ("RSD", 2),
    ("RUB", 2),
    ("SAR", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("THB", 2),
    ("TJS", 2),
    ("TND", 3),
    ("TRY", 2),
    ("TWD", 2),
    ("UAH", 2),
    ("USD", 2),
    ("UZS", 2),
    ("VND", 0),
    ("XAF", 0),
    ("XOF", 0),
    ("ZAR", 2),
];

impl Currencies {
    /// The ISO 4217 fiat currencies plus the common crypto assets `USDT` (6) and `BTC` (8).
    pub fn standard() -> Currencies {
        let mut scales = BTreeMap::new();
        for (code, scale) in ISO_4217.iter().chain([("USDT", 6), ("BTC", 8)].iter()) {
            scales.insert(CurrencyCode(code.to_string()), *scale);
        }
        Currencies { scales }
    }

    /// Adds or redefines an asset. Redefining the scale of an asset that already has accounts
    /// is the operator's responsibility; the ledger refuses amounts beyond the scale in force.
    pub fn with_asset(mut self, code: CurrencyCode, scale: u32) -> Result<Currencies, AmountError> {
        if scale > MAX_SCALE {
            return Err(AmountError::Scale);
        }
        self.scales.insert(code, scale);
        Ok(self)
    }

    pub fn scale(&self, code: &CurrencyCode) -> Option<u32> {
        self.scales.get(code).copied()
    }
}

/// Checks a positive amount against a scale and returns it rescaled to exactly that scale
/// (`10.5` EUR becomes `10.50`), so that equal amounts always serialize alike.
pub fn checked_amount(amount: Decimal, scale: u32) -> Result<Decimal, AmountError> {
    if amount <= Decimal::ZERO {
        return Err(AmountError::NotPositive);
    }
    if amount > max_amount() {
        return Err(AmountError::Overflow);
    }
    let normalized = amount.normalize();
    if normalized.scale() > scale {
        return Err(AmountError::Scale);
    }
    let mut rescaled = normalized;
    rescaled.rescale(scale);
    Ok(rescaled)
}

/// An amount with its currency, valid by construction: positive and within the currency's scale.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    amount: Decimal,
    currency: CurrencyCode,
}

impl Money {
    pub fn new(amount: Decimal, currency: CurrencyCode, currencies: &Currencies) -> Result<Money, AmountError> {
        let scale = currencies.scale(&currency).ok_or(AmountError::UnknownCurrency)?;
        Ok(Money { amount: checked_amount(amount, scale)?, currency })
    }

    pub fn amount(&self) -> Decimal {
        self.amount
    }

    pub fn currency(&self) -> &CurrencyCode {
        &self.currency
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn check(amount: &str, currency: &str, expect: Result<&str, AmountError>) {
        let currencies = Currencies::standard();
        let got = CurrencyCode::parse(currency)
            .and_then(|c| Money::new(Decimal::from_str(amount).unwrap(), c, &currencies))
            .map(|m| m.amount().to_string());
        assert_eq!(got.as_deref().map_err(|e| *e), expect, "{amount} {currency}");
    }

    #[test]
    fn amounts_are_checked_against_the_currency_scale() {
        check("10.5", "EUR", Ok("10.50"));
        check("10.50", "EUR", Ok("10.50"));
        check("10.500", "EUR", Ok("10.50"));
        check("10.505", "EUR", Err(AmountError::Scale));
        check("100", "JPY", Ok("100"));
        check("100.5", "JPY", Err(AmountError::Scale));
        check("1.000001", "USDT", Ok("1.000001"));
        check("1.0000001", "USDT", Err(AmountError::Scale));
        check("0", "EUR", Err(AmountError::NotPositive));
        check("-1", "EUR", Err(AmountError::NotPositive));
        check("1000000000000000000000001", "EUR", Err(AmountError::Overflow));
        check("1", "XXX", Err(AmountError::UnknownCurrency));
        check("1", "eur", Err(AmountError::UnknownCurrency));
        // The largest amount there is, and one unit less than it in a currency with decimals.
        check("1000000000000000000000000", "JPY", Ok("1000000000000000000000000"));
        check("1000000000000000000000000", "EUR", Ok("1000000000000000000000000.00"));
        check("1000000000000000000000000.01", "EUR", Err(AmountError::Overflow));
    }

    #[test]
    fn currency_codes_are_3_to_12_capitals_and_digits_starting_with_a_capital() {
        for ok in ["EUR", "USDT", "EU1", "ABCDEFGHIJKL"] {
            assert_eq!(CurrencyCode::parse(ok).map(|c| c.as_str().to_owned()), Ok(ok.to_owned()));
        }
        for bad in ["", "EU", "E", "ABCDEFGHIJKLM", "1EUR", "EU-R", "EUr", "éUR"] {
            assert_eq!(CurrencyCode::parse(bad), Err(AmountError::UnknownCurrency), "{bad}");
        }
        // Its published schema says the same.
        let schema = schemars::SchemaGenerator::default().into_root_schema_for::<CurrencyCode>().to_value();
        assert_eq!(schema["type"], "string");
        assert_eq!(schema["pattern"], "^[A-Z][A-Z0-9]{2,11}$");
    }

    #[test]
    fn configured_assets_get_their_scale() {
        let currencies = Currencies::standard().with_asset(CurrencyCode::parse("GOLD").unwrap(), 3).unwrap();
        assert_eq!(currencies.scale(&CurrencyCode::parse("GOLD").unwrap()), Some(3));
        assert!(Currencies::standard().with_asset(CurrencyCode::parse("BIG").unwrap(), 19).is_err());
        let widest = Currencies::standard().with_asset(CurrencyCode::parse("BIG").unwrap(), MAX_SCALE).unwrap();
        assert_eq!(widest.scale(&CurrencyCode::parse("BIG").unwrap()), Some(18));
    }
}
