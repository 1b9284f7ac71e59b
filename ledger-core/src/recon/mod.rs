//! Reconciliation: comparing a payment provider's statement lines with the ledger's transfers on
//! that provider's accounts. [`rule`] holds the operator-defined rules, checked whole, and
//! [`matching`] the pure engine that applies them; neither reads a clock or does any I/O.

pub mod matching;
pub mod rule;
