//! The certificates domain over Kafka: the three topics it publishes (state, transactions, BI),
//! derived from the log by the publisher, and the topics it consumes (uploads, sales orders and
//! payments) through the consumer framework.

pub mod sales;
pub mod topics;
pub mod upload;

pub use sales::Sales;
pub use topics::CertificateTopics;
pub use upload::Uploads;

use rust_decimal::Decimal;

/// An amount as another system sends it: a decimal string, or a JSON number read exactly (its
/// text, never through a float).
pub(crate) fn amount(value: &serde_json::Value, field: &str) -> Result<Decimal, String> {
    let text = match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => return Err(format!("{field} must be a decimal string or number")),
    };
    Decimal::from_str_exact(&text).map_err(|e| format!("{field}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn amounts_are_read_exactly_from_strings_and_numbers() {
        assert_eq!(amount(&json!("10.50"), "a").unwrap().to_string(), "10.50");
        assert_eq!(amount(&json!(10.5), "a").unwrap().to_string(), "10.5");
        assert_eq!(amount(&json!(7), "a").unwrap().to_string(), "7");
        assert!(amount(&json!("1e3"), "a").is_err());
        assert!(amount(&json!(null), "a").unwrap_err().contains("a must be"));
    }
}
