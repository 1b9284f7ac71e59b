//! Matching a provider's statement against the ledger (built beside this module).
