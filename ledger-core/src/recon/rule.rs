//! Reconciliation rules (built beside this module).
