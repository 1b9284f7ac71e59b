//! How a GraphQL request is read and which schema runs it.
//!
//! Ordinary queries run on the schema with the depth and complexity limits. The introspection
//! query that GraphiQL, Apollo and `gql` send on connect nests `ofType` eight or nine times to
//! unwrap types such as `[String!]!`, deeper than any ordinary query may go. `ofType` is a
//! chain, not a fan-out (each type wraps at most one other), so a document whose operations
//! select only `__schema`, `__type` and `__typename` is measured without counting `ofType`
//! and, within the ordinary depth by that measure, runs on a schema that answers introspection
//! and nothing else.

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};

use crate::MAX_DEPTH;

/// The introspection schema's own nesting limit: a backstop behind [`route`]'s measure.
pub const MAX_INTROSPECTION_DEPTH: usize = 64;

/// Which schema runs a document.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// The ordinary schema, with its limits.
    Ordinary,
    /// The introspection-only schema.
    Introspection,
}

/// Picks the schema for a parsed document. An introspection document nested deeper than
/// [`MAX_DEPTH`] (not counting `ofType`) is refused with the ordinary schema's message.
pub fn route(document: &ExecutableDocument) -> Result<Route, &'static str> {
    let introspection = document.operations.iter().all(|(_, op)| {
        top_level_fields(document, &op.node.selection_set.node, 0).iter().all(|name| name.starts_with("__"))
    });
    if !introspection {
        return Ok(Route::Ordinary);
    }
    let deepest =
        document.operations.iter().map(|(_, op)| depth(document, &op.node.selection_set.node, 0)).max().unwrap_or(0);
    if deepest > MAX_DEPTH { Err("Query is nested too deep.") } else { Ok(Route::Introspection) }
}

/// Fragments nest at most this deep when looked through (a cycle is refused by validation;
/// here it only has to end).
const MAX_FRAGMENT_NESTING: usize = 32;

/// The names of the fields a selection set selects at its own level, through fragments.
fn top_level_fields<'a>(document: &'a ExecutableDocument, set: &'a SelectionSet, nesting: usize) -> Vec<&'a str> {
    let mut names = Vec::new();
    if nesting > MAX_FRAGMENT_NESTING {
        // Not ours to judge: the ordinary schema's validation refuses it.
        names.push("");
        return names;
    }
    for item in &set.items {
        match &item.node {
            Selection::Field(f) => names.push(f.node.name.node.as_str()),
            Selection::InlineFragment(f) => {
                names.extend(top_level_fields(document, &f.node.selection_set.node, nesting + 1))
            }
            Selection::FragmentSpread(s) => match document.fragments.get(&s.node.fragment_name.node) {
                Some(fragment) => {
                    names.extend(top_level_fields(document, &fragment.node.selection_set.node, nesting + 1))
                }
                None => names.push(""),
            },
        }
    }
    names
}

/// The deepest field nesting under a selection set, fragments inlined, `ofType` not counted.
fn depth(document: &ExecutableDocument, set: &SelectionSet, nesting: usize) -> usize {
    if nesting > MAX_FRAGMENT_NESTING + MAX_INTROSPECTION_DEPTH {
        return usize::MAX;
    }
    set.items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(f) => {
                let own = usize::from(f.node.name.node.as_str() != "ofType");
                own.saturating_add(depth(document, &f.node.selection_set.node, nesting + 1))
            }
            Selection::InlineFragment(f) => depth(document, &f.node.selection_set.node, nesting + 1),
            Selection::FragmentSpread(s) => document
                .fragments
                .get(&s.node.fragment_name.node)
                .map_or(0, |fragment| depth(document, &fragment.node.selection_set.node, nesting + 1)),
        })
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(query: &str, expect: Result<Route, &str>) {
        let document = async_graphql::parser::parse_query(query).expect("parses");
        assert_eq!(route(&document), expect, "{query}");
    }

    /// graphql-js 16's `getIntrospectionQuery` with every option on, as GraphiQL sends it.
    const STANDARD: &str = include_str!("../tests/introspection.graphql");

    #[test]
    fn introspection_goes_to_its_own_schema_and_ordinary_queries_do_not() {
        check(STANDARD, Ok(Route::Introspection));
        check("{ __typename }", Ok(Route::Introspection));
        check(
            "query A { __type(name: \"Account\") { name } } query B { __schema { queryType { name } } }",
            Ok(Route::Introspection),
        );
        check("{ ... on Query { __schema { types { name } } } }", Ok(Route::Introspection));
        check("{ __schema { types { name } } projections { name } }", Ok(Route::Ordinary));
        check("{ projections { name } }", Ok(Route::Ordinary));
        check("query A { __typename } query B { projections { name } }", Ok(Route::Ordinary));
        check("{ ...F } fragment F on Query { projections { name } }", Ok(Route::Ordinary));
        check("{ ...Missing }", Ok(Route::Ordinary));
    }

    #[test]
    fn introspection_is_still_bounded_except_along_of_type() {
        let fan_out = "{ __schema { types { fields { type { fields { type { fields { type { fields { type { fields { name } } } } } } } } } } } }";
        check(fan_out, Err("Query is nested too deep."));
        let chain = format!("{{ __type(name: \"Account\") {{ {} name {} }} }}", "ofType {".repeat(40), "}".repeat(40));
        check(&chain, Ok(Route::Introspection));
        // A fragment cycle is the ordinary schema's to refuse.
        check("{ ...F } fragment F on Query { ...F }", Ok(Route::Ordinary));
    }
}
