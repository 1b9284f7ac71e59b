//! The rules every domain applies to free text it stores: references and reasons.

/// An id or reference from another system (an operation, an order, a client): 1 to 128
/// characters, no control characters.
pub fn valid_text(text: &str) -> bool {
    (1..=128).contains(&text.chars().count()) && !text.chars().any(char::is_control)
}

/// A reason given by a person or a system: not blank, at most 500 bytes, no control characters.
pub fn valid_reason(reason: &str) -> bool {
    !reason.trim().is_empty() && reason.len() <= 500 && !reason.chars().any(char::is_control)
}
