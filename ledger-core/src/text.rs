//! The rules every domain applies to free text it stores: references and reasons.
//!
//! Each rule has its JSON Schema twin next to it: a length in characters (`minLength`,
//! `maxLength` count Unicode code points, as `str::chars` does) and a `pattern` (ECMA 262, as
//! the OpenAPI document carries it). The HTTP API's document is built from these constants, and
//! the tests below check that rule and schema agree on every character and on a table of inputs.

/// The characters `char::is_control` refuses (Unicode's `Cc`: U+0000 to U+001F, U+007F and the
/// C1 controls U+0080 to U+009F), as the inside of a regex class.
macro_rules! controls {
    () => {
        "\\u0000-\\u001F\\u007F-\\u009F"
    };
}

/// The characters `char::is_whitespace` counts (Unicode's `White_Space`) that are not controls.
macro_rules! spaces {
    () => {
        "\\u0020\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000"
    };
}

/// Text without control characters, of any length: the pattern of [`valid_text`] and of every
/// other text the domains store as given (external references), whose lengths are stated apart.
pub const NO_CONTROLS_PATTERN: &str = concat!("^[^", controls!(), "]*$");

/// The most characters of a reference ([`valid_text`]).
pub const TEXT_MAX_CHARS: usize = 128;

/// An id or reference from another system (an operation, an order, a client): 1 to
/// [`TEXT_MAX_CHARS`] characters, no control characters ([`NO_CONTROLS_PATTERN`]).
pub fn valid_text(text: &str) -> bool {
    within(text, TEXT_MAX_CHARS)
}

/// 1 to `max_chars` characters, none of them a control character.
pub fn within(text: &str, max_chars: usize) -> bool {
    (1..=max_chars).contains(&text.chars().count()) && !text.chars().any(char::is_control)
}

/// The pattern of [`valid_reason`]: no control characters, and at least one that is not white
/// space.
pub const REASON_PATTERN: &str = concat!("^[^", controls!(), "]*[^", controls!(), spaces!(), "][^", controls!(), "]*$");

/// The most characters of a reason ([`valid_reason`]).
pub const REASON_MAX_CHARS: usize = 500;

/// A reason given by a person or a system: not blank, at most [`REASON_MAX_CHARS`] characters,
/// no control characters ([`REASON_PATTERN`]).
pub fn valid_reason(reason: &str) -> bool {
    !reason.trim().is_empty() && reason.chars().count() <= REASON_MAX_CHARS && !reason.chars().any(char::is_control)
}

/// The most characters of a URL a domain stores (a provider's base URL, a callback URL).
pub const URL_MAX_CHARS: usize = 2048;

/// A URL a domain stores to call later: 1 to [`URL_MAX_CHARS`] characters, no control or white
/// space characters (the outbound client checks its scheme and host when it calls).
pub fn valid_url(url: &str) -> bool {
    within(url, URL_MAX_CHARS) && !url.chars().any(char::is_whitespace)
}

/// The JSON Schema pattern of [`valid_id`]: the shape of a permission's scope.
pub const ID_PATTERN: &str = "^[A-Za-z0-9._-]{1,64}$";

/// The string ids a domain names its participants by (stores, traders, players, providers): 1
/// to 64 of `A-Z a-z 0-9 . _ -` ([`ID_PATTERN`]), so that an id is a permission scope and a
/// segment of an account code, and never holding what looks like a secret (`ldg_`, `whsec_`),
/// so that every audit entry naming it may be recorded.
pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && !crate::audit::decide::looks_secret(id)
}

/// The check that a rule and the schema the document states for it agree, for every domain's
/// rules on text.
#[cfg(test)]
pub(crate) mod agree {
    /// What the document says of a text: its pattern matches and it has 1 to `max_chars`
    /// characters.
    pub fn schema(pattern: &str, max_chars: usize) -> impl Fn(&str) -> bool {
        let regex = regex::Regex::new(pattern).expect("the pattern is a regex");
        move |text| (1..=max_chars).contains(&text.chars().count()) && regex.is_match(text)
    }

    /// `rule` and `schema` agree on `inputs`, and on every character below U+3100 (every
    /// control and white-space character is) and a sample of the rest, each alone, between
    /// letters and between spaces.
    pub fn check(rule: impl Fn(&str) -> bool, schema: impl Fn(&str) -> bool, inputs: &[&str]) {
        for input in inputs {
            assert_eq!(rule(input), schema(input), "{input:?}");
        }
        let sample = (0..0x3100).chain((0x3100..=0x10FFFF).step_by(0x101)).chain([0xFEFF, 0xFFFD, 0x10FFFF]);
        for c in sample.filter_map(char::from_u32) {
            for text in [c.to_string(), format!("a{c}b"), format!(" {c} ")] {
                assert_eq!(rule(&text), schema(&text), "{text:?}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::agree::{check, schema};
    use super::*;

    #[test]
    fn a_currency_code_and_its_schema_agree() {
        let parses = |code: &str| crate::money::CurrencyCode::parse(code).is_ok();
        let inputs = ["", "EU", "EUR", "eur", "1EU", "USDT", "X0000000000A", "X0000000000AB", "EU R"];
        check(parses, schema(crate::money::CURRENCY_PATTERN, 12), &inputs);
    }

    #[test]
    fn a_reference_and_its_schema_agree() {
        let long = "é".repeat(TEXT_MAX_CHARS);
        let too_long = "é".repeat(TEXT_MAX_CHARS + 1);
        let inputs =
            ["", " ", "order-1", "tab\there", "nul\0", "del\u{7f}", "c1\u{85}", "\u{a0}", "日本", &long, &too_long];
        check(valid_text, schema(NO_CONTROLS_PATTERN, TEXT_MAX_CHARS), &inputs);
        assert!(valid_text(&long) && !valid_text(&too_long));
        assert!(valid_text(" ") && !valid_text("a\u{9f}") && valid_text("a\u{a0}"));
    }

    #[test]
    fn a_reason_and_its_schema_agree() {
        let long = "ж".repeat(REASON_MAX_CHARS);
        let too_long = "ж".repeat(REASON_MAX_CHARS + 1);
        let inputs = [
            "",
            " ",
            "   ",
            "\u{a0}\u{3000}",
            " x ",
            "chargeback dispute 7731",
            "line\nbreak",
            "\u{85}",
            "\u{200b}",
            &long,
            &too_long,
        ];
        check(valid_reason, schema(REASON_PATTERN, REASON_MAX_CHARS), &inputs);
        // Characters, not bytes: 500 two-byte letters are a reason.
        assert!(valid_reason(&long) && !valid_reason(&too_long));
        assert!(!valid_reason("\u{2003}") && valid_reason("\u{200b}"));
    }
}
