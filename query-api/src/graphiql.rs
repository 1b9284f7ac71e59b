//! GraphiQL, served from the binary: the page, its script and the vendored bundles under
//! `query-api/assets/graphiql/` (see the README there). Nothing is loaded from another origin,
//! and the page's Content-Security-Policy says so to the browser.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Only this origin's scripts, styles and connections (plus inline styles and the data: fonts
/// GraphiQL's stylesheet carries).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; font-src 'self' data:; \
                   img-src 'self' data:; connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The files under `/graphql/assets/`: name, content type, bytes. Versioned names, so they
/// may be cached for good.
pub const ASSETS: &[(&str, &str, &[u8])] = &[
    ("init.js", "text/javascript; charset=utf-8", include_bytes!("../assets/graphiql/init.js")),
    (
        "graphiql-3.8.3.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/graphiql/graphiql-3.8.3.min.js"),
    ),
    ("graphiql-3.8.3.min.css", "text/css; charset=utf-8", include_bytes!("../assets/graphiql/graphiql-3.8.3.min.css")),
    (
        "react-18.3.1.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/graphiql/react-18.3.1.production.min.js"),
    ),
    (
        "react-dom-18.3.1.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/graphiql/react-dom-18.3.1.production.min.js"),
    ),
];

const PAGE: &str = include_str!("../assets/graphiql/index.html");

/// `GET /graphql`: the page.
pub async fn page() -> Response {
    let mut response = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response();
    response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// `GET /graphql/assets/{name}`.
pub async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((name, content_type, bytes)) => {
            // init.js is not versioned: revalidate it; the bundles never change under their names.
            let cache = if *name == "init.js" { "no-cache" } else { "public, max-age=31536000, immutable" };
            ([(header::CONTENT_TYPE, *content_type), (header::CACHE_CONTROL, cache)], *bytes).into_response()
        }
        None => (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain")], "no such asset").into_response(),
    }
}
