//! The certificates domain's part of the GraphQL schema: certificates by code, state and
//! campaign, each with its operations and audit trail, and the audit trail of every
//! certificate by time.

use async_graphql::connection::Connection;
use async_graphql::{ComplexObject, Context, Enum, Object, Result, SimpleObject};
use projections::Model;
use projections::certificates::{self as rm, AuditRow, CertificateFilter, CertificateRow, OperationRow};
use uuid::Uuid;

use crate::resolve::{
    Reads, bad_input, internal, money, page, page_size, parse_cursor, parse_time, pool, rfc3339, wait_for,
};

/// A certificate's state.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(rename_items = "snake_case")]
pub enum CertificateState {
    Issued,
    Active,
    PartiallyRedeemed,
    Redeemed,
    Refunded,
    Cancelled,
    Expired,
}

impl CertificateState {
    fn as_str(self) -> &'static str {
        match self {
            CertificateState::Issued => "issued",
            CertificateState::Active => "active",
            CertificateState::PartiallyRedeemed => "partially_redeemed",
            CertificateState::Redeemed => "redeemed",
            CertificateState::Refunded => "refunded",
            CertificateState::Cancelled => "cancelled",
            CertificateState::Expired => "expired",
        }
    }
}

#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Certificate {
    #[graphql(skip)]
    uuid: Uuid,
    pub id: String,
    pub code: String,
    /// issued, active, partially_redeemed, redeemed, refunded, cancelled or expired.
    pub state: String,
    pub currency: String,
    pub nominal: String,
    /// Posted balance of the certificate's liability account.
    pub balance: String,
    /// Balance less open authorizations.
    pub available: String,
    pub campaign: Option<String>,
    pub order_id: Option<String>,
    pub payment_id: Option<String>,
    pub client_id: Option<String>,
    pub expires_at: Option<String>,
    pub issued_at: String,
    /// Position of the last event that changed it.
    pub position: i64,
    pub updated_at: String,
}

impl From<CertificateRow> for Certificate {
    fn from(r: CertificateRow) -> Certificate {
        Certificate {
            uuid: r.id,
            id: r.id.to_string(),
            code: r.code,
            state: r.state,
            currency: r.currency,
            nominal: money(r.nominal),
            balance: money(r.balance),
            available: money(r.available),
            campaign: r.campaign,
            order_id: r.order_id,
            payment_id: r.payment_id,
            client_id: r.client_id,
            expires_at: r.expires_at.map(rfc3339),
            issued_at: rfc3339(r.issued_at),
            position: r.position,
            updated_at: rfc3339(r.updated_at),
        }
    }
}

/// An operation on a certificate, by its `operation_id`.
#[derive(SimpleObject)]
pub struct CertificateOperation {
    pub operation_id: String,
    /// authorization, refund or cancellation.
    pub kind: String,
    /// open, captured, voided, capture_voided (authorizations) or done.
    pub status: String,
    /// Held, refunded or written off.
    pub amount: String,
    /// What a capture posted.
    pub captured: Option<String>,
    pub reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub position: i64,
}

impl From<OperationRow> for CertificateOperation {
    fn from(r: OperationRow) -> CertificateOperation {
        CertificateOperation {
            operation_id: r.operation_id,
            kind: r.kind,
            status: r.status,
            amount: money(r.amount),
            captured: r.captured.map(money),
            reason: r.reason,
            created_at: rfc3339(r.created_at),
            updated_at: rfc3339(r.updated_at),
            position: r.position,
        }
    }
}

/// One audited action on a certificate: one per certificate event.
#[derive(SimpleObject)]
pub struct CertificateAuditEntry {
    pub position: i64,
    pub code: String,
    /// issued, activated, cvc_refused, authorized, captured, authorization_voided,
    /// capture_voided, refunded, cancelled or expired.
    pub action: String,
    pub operation_id: Option<String>,
    pub amount: Option<String>,
    pub channel: Option<String>,
    /// The `X-Initiator` of the request.
    pub initiator: Option<String>,
    /// The API key that authenticated the command.
    pub key_id: Option<String>,
    /// http, topic, job, or internal.
    pub source: String,
    pub source_topic: Option<String>,
    pub source_partition: Option<i32>,
    pub source_offset: Option<i64>,
    pub at: String,
    pub balance_before: String,
    pub balance_after: String,
    pub available_after: String,
    pub state: String,
}

impl From<AuditRow> for CertificateAuditEntry {
    fn from(r: AuditRow) -> CertificateAuditEntry {
        CertificateAuditEntry {
            position: r.position,
            code: r.code,
            action: r.action,
            operation_id: r.operation_id,
            amount: r.amount.map(money),
            channel: r.channel,
            initiator: r.initiator,
            key_id: r.key_id.map(|k| k.to_string()),
            source: r.source,
            source_topic: r.source_topic,
            source_partition: r.source_partition,
            source_offset: r.source_offset,
            at: rfc3339(r.at),
            balance_before: money(r.balance_before),
            balance_after: money(r.balance_after),
            available_after: money(r.available_after),
            state: r.state,
        }
    }
}

#[ComplexObject]
impl Certificate {
    /// Its operations, in the order they were opened.
    async fn operations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, CertificateOperation>> {
        let limit = page_size(first)?;
        let after_position = parse_cursor(after)?;
        let mut conn = pool(ctx).acquire().await.map_err(internal)?;
        let rows = rm::operations(&mut conn, self.uuid, after_position, limit + 1).await.map_err(internal)?;
        Ok(page(rows, limit, after_position.is_some(), |r| (r.created_position.to_string(), r.into())))
    }

    /// Its audit trail, in log order.
    async fn audit(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, CertificateAuditEntry>> {
        let limit = page_size(first)?;
        let after_position = parse_cursor(after)?;
        let mut conn = pool(ctx).acquire().await.map_err(internal)?;
        let rows =
            rm::audit(&mut conn, Some(self.uuid), None, None, after_position, limit + 1).await.map_err(internal)?;
        Ok(page(rows, limit, after_position.is_some(), |r| (r.position.to_string(), r.into())))
    }
}

/// Gift certificates.
#[derive(Default)]
pub struct CertificatesQuery;

#[Object]
impl CertificatesQuery {
    /// One certificate by its code.
    #[graphql(guard = "Reads(ledger_core::certificates::scope::READ)")]
    async fn certificate(
        &self,
        ctx: &Context<'_>,
        code: String,
        min_position: Option<i64>,
    ) -> Result<Option<Certificate>> {
        wait_for(pool(ctx), Model::Certificates, min_position).await?;
        let mut conn = pool(ctx).acquire().await.map_err(internal)?;
        Ok(rm::certificate(&mut conn, &code).await.map_err(internal)?.map(Certificate::from))
    }

    /// Certificates in code order, by state and campaign.
    #[graphql(guard = "Reads(ledger_core::certificates::scope::READ)")]
    async fn certificates(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        state: Option<CertificateState>,
        campaign: Option<String>,
        min_position: Option<i64>,
    ) -> Result<Connection<String, Certificate>> {
        let limit = page_size(first)?;
        wait_for(pool(ctx), Model::Certificates, min_position).await?;
        let mut conn = pool(ctx).acquire().await.map_err(internal)?;
        let filter = CertificateFilter { state: state.map(|s| s.as_str().to_owned()), campaign };
        let rows = rm::certificates(&mut conn, &filter, after.as_deref(), limit + 1).await.map_err(internal)?;
        Ok(page(rows, limit, after.is_some(), |r| (r.code.clone(), r.into())))
    }

    /// The audit trail of every certificate in log order, by time (`from` inclusive, `to`
    /// exclusive, RFC 3339).
    #[graphql(guard = "Reads(ledger_core::certificates::scope::READ)")]
    async fn certificate_audit(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        from: Option<String>,
        to: Option<String>,
        min_position: Option<i64>,
    ) -> Result<Connection<String, CertificateAuditEntry>> {
        let limit = page_size(first)?;
        let after_position = parse_cursor(after)?;
        let (from, to) = (parse_time("from", from)?, parse_time("to", to)?);
        if let (Some(from), Some(to)) = (from, to)
            && from > to
        {
            return Err(bad_input("from must not be after to"));
        }
        wait_for(pool(ctx), Model::Certificates, min_position).await?;
        let mut conn = pool(ctx).acquire().await.map_err(internal)?;
        let rows = rm::audit(&mut conn, None, from, to, after_position, limit + 1).await.map_err(internal)?;
        Ok(page(rows, limit, after_position.is_some(), |r| (r.position.to_string(), r.into())))
    }
}
