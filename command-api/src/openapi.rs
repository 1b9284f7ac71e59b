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
        doc.merge(crate::orders::Doc::openapi());
        doc.merge(crate::orders_list::Doc::openapi());
        doc.merge(crate::wallet::Doc::openapi());
        doc.merge(crate::recon::Doc::openapi());
        doc.merge(crate::audit::Doc::openapi());
        doc.merge(crate::admin::Doc::openapi());
        doc.merge(crate::config::Doc::openapi());
        doc.merge(crate::webhooks::Doc::openapi());
        BearerKey.modify(&mut doc);
        TextRules.modify(&mut doc);
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

/// One of the core's rules on a text the API takes. The document states each with the pattern
/// and lengths declared next to the rule (a test in the core checks the two agree), never a
/// copy of them.
#[derive(Clone, Copy, Debug)]
pub enum Text {
    /// An id or reference from another system: `ledger_core::text::valid_text`.
    Reference,
    /// A reason: `ledger_core::text::valid_reason`.
    Reason,
    /// A transfer's external reference: `valid_external_ref`.
    ExternalRef,
    /// An account's code (`valid_account_code`); where an account id or code is taken, an id is
    /// a UUID, which is also a code's shape.
    AccountCode,
    /// A certificate's code: `ledger_core::certificates::decide::valid_code`.
    CertificateCode,
    /// A phone number: `ledger_core::certificates::decide::valid_phone`.
    Phone,
    /// A currency's code: `CurrencyCode::parse`.
    Currency,
    /// A presented CVC's shape: `secrets::Cvc::well_formed`.
    Cvc,
    /// A store's, trader's or requisite's id: `ledger_core::orders::decide::valid_id`.
    Participant,
}

impl Text {
    /// The pattern, and the most characters when the pattern does not say.
    fn rule(self) -> (&'static str, Option<usize>) {
        use ledger_core::{certificates::decide as certificates, ledger::account, ledger::decide, text};
        match self {
            Text::Reference => (text::NO_CONTROLS_PATTERN, Some(text::TEXT_MAX_CHARS)),
            Text::Reason => (text::REASON_PATTERN, Some(text::REASON_MAX_CHARS)),
            Text::ExternalRef => (text::NO_CONTROLS_PATTERN, Some(decide::EXTERNAL_REF_MAX_CHARS)),
            Text::AccountCode => (account::ACCOUNT_CODE_PATTERN, None),
            Text::CertificateCode => (certificates::CODE_PATTERN, None),
            Text::Phone => (certificates::PHONE_PATTERN, None),
            Text::Currency => (ledger_core::money::CURRENCY_PATTERN, None),
            Text::Cvc => (secrets::CVC_PATTERN, None),
            Text::Participant => (ledger_core::orders::decide::ID_PATTERN, None),
        }
    }

    fn apply(self, object: &mut utoipa::openapi::schema::Object) {
        let (pattern, max_chars) = self.rule();
        object.pattern = Some(pattern.to_owned());
        if let Some(max) = max_chars {
            object.min_length = Some(1);
            object.max_length = Some(max);
        }
    }
}

/// Where a text the API takes sits in the document.
#[derive(Clone, Copy, Debug)]
pub enum At {
    /// A property of a component schema: (schema, property).
    Property(&'static str, &'static str),
    /// A parameter of an operation: (operation id, parameter).
    Parameter(&'static str, &'static str),
}

/// Every domain's table of the texts its requests carry.
fn texts() -> impl Iterator<Item = &'static (At, Text)> {
    crate::ledger::TEXTS
        .iter()
        .chain(crate::certificates::TEXTS)
        .chain(crate::payouts::TEXTS)
        .chain(crate::orders::TEXTS)
        .chain(crate::wallet::TEXTS)
        .chain(crate::recon::TEXTS)
        .chain(crate::orders_list::TEXTS)
        .chain(crate::config::TEXTS)
        .chain(crate::webhooks::TEXTS)
}

/// States the core's text rules on the properties and parameters that carry them.
struct TextRules;

impl Modify for TextRules {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::schema::Schema;
        for (at, text) in texts() {
            let object = match *at {
                At::Property(schema, property) => openapi
                    .components
                    .as_mut()
                    .and_then(|c| c.schemas.get_mut(schema))
                    .and_then(|s| match s {
                        RefOr::T(Schema::Object(o)) => o.properties.get_mut(property),
                        _ => None,
                    })
                    .and_then(|p| match p {
                        RefOr::T(Schema::Object(o)) => Some(o),
                        _ => None,
                    }),
                At::Parameter(operation, name) => openapi
                    .paths
                    .paths
                    .values_mut()
                    .flat_map(|item| [item.get.as_mut(), item.post.as_mut(), item.put.as_mut(), item.delete.as_mut()])
                    .flatten()
                    .find(|op| op.operation_id.as_deref() == Some(operation))
                    .and_then(|op| op.parameters.as_mut())
                    .and_then(|params| {
                        params.iter_mut().find_map(|p| match p {
                            RefOr::T(p) if p.name == name => p.schema.as_mut(),
                            _ => None,
                        })
                    })
                    .and_then(|s| match s {
                        RefOr::T(Schema::Object(o)) => Some(o),
                        _ => None,
                    }),
            };
            // A row naming nothing is a mistake in a domain's table.
            let object = object.unwrap_or_else(|| panic!("{at:?} is not a string in the document"));
            text.apply(object);
        }
    }
}
/// Where the endpoints that record no event live (keys, roles, webhook endpoints).
const ADMIN_PATHS: &[&str] = &["/v1/admin/", "/v1/webhooks/"];

/// What an operation can answer because of its shape, whatever its command.
struct ProblemResponses;

impl Modify for ProblemResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            // The admin endpoints write keys and roles, not events: no event headers, no writer
            // (they declare their own 400 and 413).
            let records_events = !ADMIN_PATHS.iter().any(|p| path.starts_with(p));
            if let Some(op) = item.get.as_mut() {
                shape(op, false);
                link(op);
            }
            for op in [item.post.as_mut(), item.put.as_mut(), item.delete.as_mut()].into_iter().flatten() {
                shape(op, records_events);
                link(op);
            }
            for op in [item.put.as_mut(), item.delete.as_mut()].into_iter().flatten() {
                shape(op, false);
            }
        }
    }
}

/// An OpenAPI link: what a successful answer of one operation gives another that can use it
/// (client generators and stateful testers follow them from a new account, transfer,
/// certificate or payout request to what can be done with it).
#[derive(Debug)]
pub struct Link {
    pub from: &'static str,
    pub to: &'static str,
    /// The target's parameters, each a runtime expression such as `$response.body#/id`.
    pub parameters: &'static [(&'static str, &'static str)],
    /// Fields of the target's body, each a runtime expression.
    pub body: &'static [(&'static str, &'static str)],
}

/// Every domain's links.
fn links() -> impl Iterator<Item = &'static Link> {
    crate::ledger::LINKS
        .iter()
        .chain(crate::certificates::LINKS)
        .chain(crate::payouts::LINKS)
        .chain(crate::orders::LINKS)
        .chain(crate::wallet::LINKS)
        .chain(crate::recon::LINKS)
        .chain(crate::admin::LINKS)
        .chain(crate::webhooks::LINKS)
}

fn link(op: &mut Operation) {
    let from = op.operation_id.as_deref();
    let targets: Vec<&Link> = links().filter(|l| from == Some(l.from)).collect();
    for (status, response) in op.responses.responses.iter_mut() {
        if let RefOr::T(response) = response
            && status.starts_with('2')
        {
            for target in &targets {
                let mut link = utoipa::openapi::link::LinkBuilder::new().operation_id(target.to);
                for (name, expression) in target.parameters {
                    link = link.parameter(*name, *expression);
                }
                if !target.body.is_empty() {
                    let body: serde_json::Map<String, serde_json::Value> =
                        target.body.iter().map(|(k, v)| ((*k).to_owned(), (*v).into())).collect();
                    link = link.request_body(Some(serde_json::Value::Object(body)));
                }
                response.links.insert(target.to.to_owned(), RefOr::T(link.build()));
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
        add("403", "forbidden: the key lacks the permission the detail names");
        add("429", "rate_limited: the key is over its quota; retry after Retry-After seconds");
    }
    if in_path {
        add("404", "account_not_found, transfer_not_found, key_not_found or not_found");
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
