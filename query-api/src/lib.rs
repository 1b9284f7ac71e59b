//! The GraphQL query API (async-graphql over axum) at `/graphql`: queries over the read models,
//! subscriptions over WebSocket at `/graphql/ws`, GraphiQL in the browser. The same API keys as
//! the command API: a key with some read permission (`accounts:read`, `*:read`, the old `read`)
//! passes the endpoint, and each root field asks for its resource's (`resolve::Reads`). Each of
//! those refusals is an `access.denied` audit entry, as the command API's 403s are, when the
//! API has an `Auditor` (`QueryState::with_auditor`; `ledger up` gives it the command API's).

pub mod audit;
pub mod certificates;
mod graphiql;
pub mod ledger;
mod operations;
pub mod orders;
pub mod payouts;
pub mod recon;
pub mod request;
mod resolve;
pub mod schema;
pub mod wallet;
pub mod webhooks;

use std::sync::Arc;

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::{Data, EmptyMutation, Schema};
use async_graphql_axum::{GraphQLProtocol, GraphQLResponse, GraphQLWebSocket};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ledger_store::audit::Auditor;
use ledger_store::keys::{KeyError, KeyStore, Principal, bearer};
use sqlx::PgPool;
use uuid::Uuid;

use crate::request::{MAX_INTROSPECTION_DEPTH, Route};
use crate::schema::{Query, SubscriptionRoot};

pub type LedgerSchema = Schema<Query, EmptyMutation, SubscriptionRoot>;

/// Nesting and cost limits: a query past them is refused before it runs.
pub const MAX_DEPTH: usize = 10;
pub const MAX_COMPLEXITY: usize = 1000;

/// Where the API reads: the log (events, API keys) and the read models with their checkpoints,
/// the same database unless the read models have one of their own.
#[derive(Clone)]
pub struct Databases {
    pub log: PgPool,
    /// The read models' own database; `None`: the log's.
    pub read: Option<PgPool>,
}

impl Databases {
    /// The log and the read models in one database.
    pub fn one(pool: PgPool) -> Databases {
        Databases { log: pool, read: None }
    }

    pub fn read(&self) -> &PgPool {
        self.read.as_ref().unwrap_or(&self.log)
    }
}

pub fn schema(databases: Option<Databases>) -> LedgerSchema {
    let builder = Schema::build(Query::default(), EmptyMutation, SubscriptionRoot::default())
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY);
    match databases {
        Some(databases) => builder.data(databases).finish(),
        None => builder.finish(),
    }
}

/// The schema that answers introspection and nothing else: what [`request::route`] sends the
/// introspection query to (it measures depth without counting `ofType`).
pub fn introspection_schema() -> LedgerSchema {
    Schema::build(Query::default(), EmptyMutation, SubscriptionRoot::default())
        .introspection_only()
        .limit_depth(MAX_INTROSPECTION_DEPTH)
        .limit_complexity(MAX_INTROSPECTION_COMPLEXITY)
        .finish()
}

/// The introspection schema's cost limit: graphql-js's full introspection query costs about
/// 200; introspection has no list that grows with the data.
pub const MAX_INTROSPECTION_COMPLEXITY: usize = 5000;

/// The SDL committed as `schemas/schema.graphql`.
pub fn sdl() -> String {
    schema(None).sdl()
}

#[derive(Clone)]
pub struct QueryState {
    schema: LedgerSchema,
    introspection: LedgerSchema,
    keys: Arc<KeyStore>,
    read: PgPool,
    /// Records the refusals; `None`: they are only answered.
    auditor: Option<Auditor>,
}

impl QueryState {
    /// The log and the read models in one database.
    pub fn new(pool: PgPool) -> QueryState {
        QueryState::with(Databases::one(pool))
    }

    pub fn with(databases: Databases) -> QueryState {
        QueryState {
            keys: Arc::new(KeyStore::new(databases.log.clone())),
            read: databases.read().clone(),
            schema: schema(Some(databases)),
            introspection: introspection_schema(),
            auditor: None,
        }
    }

    /// Records each refusal of a key through `auditor` (the process's, so `/metrics` counts
    /// them with the command API's).
    pub fn with_auditor(mut self, auditor: Auditor) -> QueryState {
        self.auditor = Some(auditor);
        self
    }
}

pub fn router(state: QueryState) -> Router {
    Router::new()
        .route("/graphql", get(graphiql::page).post(execute))
        .route("/graphql/assets/{name}", get(graphiql::asset))
        .route("/graphql/ws", get(subscribe))
        .with_state(state)
}

/// A key refusal, as the command API answers it (the same code table and problem document).
fn problem(error: &KeyError) -> Response {
    api_common::Problem::for_key(error, Uuid::new_v4()).into_response()
}

/// The caller, if its key grants some read: each root field then checks its own resource. A
/// key that reads nothing is audited as refused `{resource}:read`, the permission its answer
/// names, before it is answered.
async fn reader(
    keys: &KeyStore,
    auditor: Option<&Auditor>,
    authorization: Option<&str>,
) -> Result<Principal, KeyError> {
    let who = keys.authenticate(bearer(authorization)).await?;
    if who.permissions.reads_anything() {
        return Ok(who);
    }
    let permission = "{resource}:read";
    if let Some(auditor) = auditor {
        auditor.denied(&who, permission).await;
    }
    Err(KeyError::Forbidden(permission.to_owned()))
}

/// Runs a query for a caller with some read permission; the response's `extensions.position` is the
/// log position every read model had reached when the query started.
/// A body that is not a GraphQL request (`{"query", "operationName"?, "variables"?}` as JSON)
/// is answered 400 with a GraphQL error response.
async fn execute(State(state): State<QueryState>, headers: HeaderMap, body: Bytes) -> Response {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let who = match reader(&state.keys, state.auditor.as_ref(), authorization).await {
        Ok(who) => who,
        Err(e) => return problem(&e),
    };
    let mut request = match serde_json::from_slice::<async_graphql::Request>(&body) {
        Ok(request) if request.query.trim().is_empty() => return bad_request("the request has no query"),
        Ok(request) => request,
        Err(e) => return bad_request(&format!("the body is not a GraphQL request in JSON: {e}")),
    };
    let schema = match request.parsed_query().map(request::route) {
        Ok(Ok(Route::Introspection)) => {
            request = request.only_introspection();
            &state.introspection
        }
        Ok(Err(message)) => {
            return GraphQLResponse::from(async_graphql::Response::from_errors(vec![async_graphql::ServerError::new(
                message, None,
            )]))
            .into_response();
        }
        // A syntax error is the ordinary schema's to report.
        Ok(Ok(Route::Ordinary)) | Err(_) => &state.schema,
    };
    let position = match state.read.acquire().await {
        Ok(mut conn) => projections::read::reflected_position(&mut conn).await.unwrap_or(0),
        Err(_) => 0,
    };
    if let Some(auditor) = &state.auditor {
        request = request.data(auditor.clone());
    }
    let mut response = schema.execute(request.data(who)).await;
    response.extensions.insert("position".to_owned(), async_graphql::Value::from(position));
    GraphQLResponse::from(response).into_response()
}

/// 400 with `{"errors":[{"message"}]}`, as GraphQL over HTTP answers a request it cannot parse.
fn bad_request(message: &str) -> Response {
    let body = serde_json::json!({ "errors": [{ "message": message }] });
    (StatusCode::BAD_REQUEST, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// WebSocket subscriptions (graphql-transport-ws or graphql-ws); the key goes in the
/// `connection_init` payload as `{"Authorization": "Bearer <key>"}`.
async fn subscribe(State(state): State<QueryState>, protocol: GraphQLProtocol, upgrade: WebSocketUpgrade) -> Response {
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| {
            let (keys, auditor) = (state.keys.clone(), state.auditor.clone());
            GraphQLWebSocket::new(socket, state.schema.clone(), protocol)
                .on_connection_init(move |payload: serde_json::Value| {
                    let (keys, auditor) = (keys.clone(), auditor.clone());
                    async move {
                        let authorization = payload
                            .get("Authorization")
                            .or_else(|| payload.get("authorization"))
                            .and_then(|v| v.as_str())
                            .map(str::to_owned);
                        let who = reader(&keys, auditor.as_ref(), authorization.as_deref())
                            .await
                            .map_err(|e| async_graphql::Error::new(e.to_string()))?;
                        let mut data = Data::default();
                        data.insert(who);
                        if let Some(auditor) = auditor {
                            data.insert(auditor);
                        }
                        Ok(data)
                    }
                })
                .serve()
        })
        .into_response()
}
