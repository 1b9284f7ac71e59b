//! The OpenAPI 3 document, generated from the handlers and wire types. A copy is kept in
//! `schemas/openapi.json`; a test fails when the two drift.
//!
//! Handlers list their own answers (the success, and the rejections their command can meet);
//! [`ProblemResponses`] then adds what every operation of its shape can answer (a missing key, a
//! malformed body, an overloaded writer, ...), and serves every error as
//! `application/problem+json`. An endpoint added later inherits the same rules.

use utoipa::openapi::path::{Operation, Parameter, ParameterIn};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, ObjectBuilder, Ref, RefOr, Required, Type};
use utoipa::{Modify, OpenApi};

use crate::error::Problem;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ledger command API",
        description = "Accounts, transfers, holds and reversals for payment channels. \
        Amounts are decimal strings; every write answers with the log position it produced. Every error is an \
        `application/problem+json` document with a stable `code`."
    ),
    components(schemas(Problem))
)]
struct Root;

/// The whole document: the root, every domain's part merged in, then the shared rules.
pub struct ApiDoc;

impl ApiDoc {
    pub fn openapi() -> utoipa::openapi::OpenApi {
        let mut doc = Root::openapi();
        doc.merge(crate::ledger::Doc::openapi());
        doc.merge(crate::certificates::Doc::openapi());
        doc.merge(crate::payouts::Doc::openapi());
        doc.merge(crate::config::Doc::openapi());
        BearerKey.modify(&mut doc);
        ProblemResponses.modify(&mut doc);
        doc
    }
}

struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("api_key", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

pub use api_common::PROBLEM_JSON;

/// What an operation can answer because of its shape, whatever its command.
struct ProblemResponses;

impl Modify for ProblemResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            if let Some(op) = item.get.as_mut() {
                shape(op, false);
                link(op);
            }
            for op in [item.post.as_mut(), item.put.as_mut(), item.delete.as_mut()].into_iter().flatten() {
                shape(op, true);
                link(op);
            }
        }
    }
}

/// Which operations take the `id` a successful answer carries (OpenAPI links: client
/// generators and stateful testers follow them from a new account or transfer to what can be
/// done with it), from every domain's table.
fn links() -> impl Iterator<Item = &'static (&'static str, &'static [&'static str])> {
    crate::ledger::LINKS.iter()
}

fn link(op: &mut Operation) {
    let Some((_, targets)) = links().find(|(from, _)| op.operation_id.as_deref() == Some(*from)) else {
        return;
    };
    for (status, response) in op.responses.responses.iter_mut() {
        if let RefOr::T(response) = response
            && status.starts_with('2')
        {
            for target in *targets {
                let link = utoipa::openapi::link::LinkBuilder::new()
                    .operation_id(*target)
                    .parameter("id", "$response.body#/id")
                    .build();
                response.links.insert((*target).to_owned(), RefOr::T(link));
            }
        }
    }
}

fn shape(op: &mut Operation, write: bool) {
    let params = op.parameters.get_or_insert_with(Vec::new);
    let has = |params: &Vec<RefOr<Parameter>>, place: ParameterIn| {
        params.iter().any(|p| matches!(p, RefOr::T(p) if p.parameter_in == place))
    };
    let (in_path, in_query) = (has(params, ParameterIn::Path), has(params, ParameterIn::Query));
    if write {
        params.extend(write_headers().into_iter().map(RefOr::T));
    }
    let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
    let mut add = |status: &str, description: &str| {
        op.responses.responses.entry(status.to_owned()).or_insert_with(|| RefOr::T(problem(description)));
    };
    if write || in_query {
        add(
            "400",
            "invalid_body (not JSON, a field of the wrong type or an unknown field), invalid_amount, invalid_query, \
             or a header that is not valid",
        );
    }
    if secured {
        add("401", "unauthorized: no key, or a key that is unknown or revoked");
        add("403", "forbidden: the key lacks the scope");
        add("429", "rate_limited: the key is over its quota; retry after Retry-After seconds");
    }
    if in_path {
        add("404", "account_not_found, transfer_not_found or not_found");
    }
    if write {
        add("413", "payload_too_large");
        add("503", "overloaded or unavailable: retry with the same id");
    }
    add("500", "internal: quote the request id to the operator");
    for response in op.responses.responses.values_mut() {
        if let RefOr::T(response) = response {
            response.headers.entry("x-request-id".to_owned()).or_insert_with(|| {
                RefOr::T(
                    HeaderBuilder::new()
                        .schema(Some(ObjectBuilder::new().schema_type(Type::String).format(Some(uuid_format()))))
                        .description(Some("The request's id, also in every problem and in the server's logs"))
                        .build(),
                )
            });
        }
    }
    // Every error is a problem document, whatever its handler declared.
    for (status, response) in op.responses.responses.iter_mut() {
        if let RefOr::T(response) = response
            && !status.starts_with('2')
        {
            response.content.clear();
            response.content.insert(
                PROBLEM_JSON.to_owned(),
                ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build().into(),
            );
        }
    }
}

fn uuid_format() -> utoipa::openapi::SchemaFormat {
    utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Uuid)
}

fn problem(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(PROBLEM_JSON, ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build())
        .build()
}

/// The optional headers every write reads into its events' metadata.
fn write_headers() -> Vec<Parameter> {
    let header = |name: &str, description: &str, schema: ObjectBuilder| {
        let mut p = Parameter::new(name);
        p.parameter_in = ParameterIn::Header;
        p.required = Required::False;
        p.description = Some(description.to_owned());
        p.schema = Some(RefOr::T(schema.build().into()));
        p
    };
    let uuid = || ObjectBuilder::new().schema_type(Type::String).format(Some(uuid_format()));
    vec![
        header("x-correlation-id", "Correlation id of the events written (default: the request id)", uuid()),
        header("x-causation-id", "The id of what caused this request", uuid()),
        header(
            "x-initiator",
            "Who asked for it (an operator or a service), 1 to 128 visible ASCII characters",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(128))
                .pattern(Some("^[!-~]([ -~]*[!-~])?$")),
        ),
    ]
}

/// The document as committed under `schemas/`.
pub fn json() -> String {
    let mut text = ApiDoc::openapi().to_pretty_json().unwrap_or_default();
    text.push('\n');
    text
}
