//! The payer's side of a deposit: the page a deposit's `redirect_url` opens, with a button to
//! pay and one to decline, and the page the chosen button answers with. Pure text: every value
//! shown is escaped; a form's action carries the deposit's amount and currency in its query.

use ledger_core::CurrencyCode;
use rust_decimal::Decimal;
use uuid::Uuid;

use super::engine::{Answer, Kind};

/// `text` safe inside HTML text and double-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn document(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title></head>\n<body>\n{body}</body></html>\n",
        escape(title)
    )
}

/// Where the page's `outcome` button posts (`succeed` or `fail`). Decimal and currency
/// texts need no percent-encoding: digits, `.`, `-`, capital letters.
pub fn action(deposit: Uuid, outcome: &str, amount: Decimal, currency: &CurrencyCode) -> String {
    format!("/pay/{deposit}/{outcome}?amount={amount}&currency={}", currency.as_str())
}

/// The payment page of a deposit.
pub fn payment(provider: &str, deposit: Uuid, amount: Decimal, currency: &CurrencyCode) -> String {
    let form = |outcome: &str, label: &str| {
        format!(
            "<form method=\"post\" action=\"{}\"><button type=\"submit\" name=\"outcome\" value=\"{outcome}\">{label}</button></form>\n",
            escape(&action(deposit, outcome, amount, currency))
        )
    };
    let body = format!(
        "<h1>{} (simulated payment provider)</h1>\n<p>Deposit <code>{deposit}</code>: <strong>{} {}</strong></p>\n{}{}",
        escape(provider),
        escape(&amount.to_string()),
        escape(currency.as_str()),
        form("succeed", "Pay"),
        form("fail", "Decline"),
    );
    document("Pay", &body)
}

/// What the payer sees after pressing a button: the webhook sent and what the engine answered.
pub fn outcome(deposit: Uuid, kind: Kind, message_id: &str, answer: &Answer) -> String {
    let body = format!(
        "<h1>{}</h1>\n<p>Deposit <code>{deposit}</code>: webhook <code>{}</code> sent.</p>\n<p>The engine answered <strong id=\"status\">{}</strong>:</p>\n<pre id=\"answer\">{}</pre>\n",
        escape(kind.as_str()),
        escape(message_id),
        answer.status,
        escape(&answer.body.to_string()),
    );
    document(kind.as_str(), &body)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(page: &str, expect: &[&str], absent: &[&str]) {
        for e in expect {
            assert!(page.contains(e), "{e:?} in\n{page}");
        }
        for a in absent {
            assert!(!page.contains(a), "no {a:?} in\n{page}");
        }
    }

    #[test]
    fn the_payment_page_has_a_form_per_outcome_posting_to_the_simulator() {
        let id = Uuid::from_u128(42);
        let eur = CurrencyCode::parse("EUR").unwrap();
        let page = payment("psp", id, "100.00".parse().unwrap(), &eur);
        check(
            &page,
            &[
                &format!(r#"<form method="post" action="/pay/{id}/succeed?amount=100.00&amp;currency=EUR">"#),
                &format!(r#"<form method="post" action="/pay/{id}/fail?amount=100.00&amp;currency=EUR">"#),
                "<strong>100.00 EUR</strong>",
                "<h1>psp (simulated payment provider)</h1>",
            ],
            &["&currency"],
        );
        assert_eq!(page.matches("<form ").count(), 2);
        assert_eq!(action(id, "fail", "5".parse().unwrap(), &eur), format!("/pay/{id}/fail?amount=5&currency=EUR"));
    }

    #[test]
    fn what_the_page_shows_is_escaped() {
        assert_eq!(escape(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
        let page = payment("<b>", Uuid::nil(), Decimal::ONE, &CurrencyCode::parse("EUR").unwrap());
        check(&page, &["<h1>&lt;b&gt; (simulated"], &["<b>"]);
        let answer = Answer { status: 422, body: json!({"detail": "<script>alert(1)</script>"}) };
        let page = outcome(Uuid::nil(), Kind::DepositFailed, "msg_1", &answer);
        check(
            &page,
            &[
                r#"<strong id="status">422</strong>"#,
                "&lt;script&gt;alert(1)&lt;/script&gt;",
                "<h1>deposit.failed</h1>",
            ],
            &["<script>"],
        );
    }
}
