//! The GraphQL schema's roots: the merge of each part's queries and subscriptions (the
//! ledger's, each domain's, the operations'). Every list is a Relay connection with a maximum
//! page size; every root field may wait for `minPosition` (see `resolve`).

use async_graphql::{MergedObject, MergedSubscription};

pub use crate::resolve::{MAX_PAGE, MIN_POSITION_TIMEOUT};

// The query root: the merge of each part's fields. A domain adds its part here, one line.
#[derive(MergedObject, Default)]
pub struct Query(
    crate::ledger::LedgerQuery,
    crate::certificates::CertificatesQuery,
    crate::payouts::PayoutsQuery,
    crate::orders::OrdersQuery,
    crate::wallet::WalletQuery,
    crate::recon::ReconQuery,
    crate::audit::AuditQuery,
    crate::webhooks::WebhooksQuery,
    crate::operations::OperationsQuery,
);

// The subscription root: the merge of each part's subscriptions.
#[derive(MergedSubscription, Default)]
pub struct SubscriptionRoot(crate::ledger::LedgerSubscription);
