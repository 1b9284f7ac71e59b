//! The GraphQL query API (async-graphql over axum) at `/graphql`: queries over the read models,
//! subscriptions over WebSocket at `/graphql/ws`, GraphiQL in the browser. The same API keys as
//! the command API, with the `read` scope.

pub mod schema;

use std::sync::Arc;

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::{Data, EmptyMutation, Schema};
use async_graphql_axum::{GraphQLProtocol, GraphQLRequest, GraphQLResponse, GraphQLWebSocket};
use axum::Router;
use axum::extract::{State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use ledger_store::keys::{KeyError, KeyStore, Scope, bearer};
use sqlx::PgPool;
use uuid::Uuid;

use crate::schema::{Query, SubscriptionRoot};

pub type LedgerSchema = Schema<Query, EmptyMutation, SubscriptionRoot>;

/// Nesting and cost limits: a query past them is refused before it runs.
pub const MAX_DEPTH: usize = 10;
pub const MAX_COMPLEXITY: usize = 1000;

pub fn schema(pool: Option<PgPool>) -> LedgerSchema {
    let builder =
        Schema::build(Query, EmptyMutation, SubscriptionRoot).limit_depth(MAX_DEPTH).limit_complexity(MAX_COMPLEXITY);
    match pool {
        Some(pool) => builder.data(pool).finish(),
        None => builder.finish(),
    }
}

/// The SDL committed as `schemas/schema.graphql`.
pub fn sdl() -> String {
    schema(None).sdl()
}

#[derive(Clone)]
pub struct QueryState {
    schema: LedgerSchema,
    keys: Arc<KeyStore>,
    pool: PgPool,
}

impl QueryState {
    pub fn new(pool: PgPool) -> QueryState {
        QueryState { schema: schema(Some(pool.clone())), keys: Arc::new(KeyStore::new(pool.clone())), pool }
    }
}

pub fn router(state: QueryState) -> Router {
    Router::new().route("/graphql", get(graphiql).post(execute)).route("/graphql/ws", get(subscribe)).with_state(state)
}

fn problem(error: &KeyError) -> Response {
    let (status, code) = match error {
        KeyError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
        KeyError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
        KeyError::Database(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    };
    let request_id = Uuid::new_v4();
    if let KeyError::Database(e) = error {
        tracing::error!(%request_id, error = %e, "key lookup failed");
    }
    let body = serde_json::json!({
        "type": format!("/problems/{code}"),
        "title": "Authentication failed",
        "status": status.as_u16(),
        "code": code,
        "detail": if matches!(error, KeyError::Database(_)) { "internal error".to_owned() } else { error.to_string() },
        "request_id": request_id,
    });
    (status, [(header::CONTENT_TYPE, "application/problem+json")], body.to_string()).into_response()
}

/// Runs a query for a caller with the `read` scope; the response's `extensions.position` is the
/// log position every read model had reached when the query started.
async fn execute(State(state): State<QueryState>, headers: HeaderMap, request: GraphQLRequest) -> Response {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    if let Err(e) = state.keys.require(bearer(authorization), Scope::Read).await {
        return problem(&e);
    }
    let position = match state.pool.acquire().await {
        Ok(mut conn) => projections::read::reflected_position(&mut conn).await.unwrap_or(0),
        Err(_) => 0,
    };
    let mut response = state.schema.execute(request.into_inner()).await;
    response.extensions.insert("position".to_owned(), async_graphql::Value::from(position));
    GraphQLResponse::from(response).into_response()
}

/// WebSocket subscriptions (graphql-transport-ws or graphql-ws); the key goes in the
/// `connection_init` payload as `{"Authorization": "Bearer <key>"}`.
async fn subscribe(State(state): State<QueryState>, protocol: GraphQLProtocol, upgrade: WebSocketUpgrade) -> Response {
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| {
            let keys = state.keys.clone();
            GraphQLWebSocket::new(socket, state.schema.clone(), protocol)
                .on_connection_init(move |payload: serde_json::Value| {
                    let keys = keys.clone();
                    async move {
                        let authorization = payload
                            .get("Authorization")
                            .or_else(|| payload.get("authorization"))
                            .and_then(|v| v.as_str())
                            .map(str::to_owned);
                        keys.require(bearer(authorization.as_deref()), Scope::Read)
                            .await
                            .map_err(|e| async_graphql::Error::new(e.to_string()))?;
                        Ok(Data::default())
                    }
                })
                .serve()
        })
        .into_response()
}

/// GraphiQL, loaded from its public CDN by the browser.
async fn graphiql() -> Html<&'static str> {
    Html(GRAPHIQL)
}

const GRAPHIQL: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>ledger GraphQL</title>
<link rel="stylesheet" href="https://unpkg.com/graphiql@3/graphiql.min.css"></head>
<body style="margin:0"><div id="graphiql" style="height:100vh"></div>
<script src="https://unpkg.com/react@18/umd/react.production.min.js"></script>
<script src="https://unpkg.com/react-dom@18/umd/react-dom.production.min.js"></script>
<script src="https://unpkg.com/graphiql@3/graphiql.min.js"></script>
<script>
  const key = localStorage.getItem('ledgerKey') || prompt('API key (read scope)');
  localStorage.setItem('ledgerKey', key);
  const fetcher = GraphiQL.createFetcher({ url: '/graphql', subscriptionUrl: `ws://${location.host}/graphql/ws`,
    headers: { Authorization: `Bearer ${key}` }, wsConnectionParams: { Authorization: `Bearer ${key}` } });
  ReactDOM.createRoot(document.getElementById('graphiql')).render(React.createElement(GraphiQL, { fetcher }));
</script></body></html>
"#;
