//! Outbound webhooks as rules, without I/O: which event types exist and what they are called,
//! which of them an endpoint asked for, what a message's body is, when a failed message is tried
//! again, and which receiver addresses are allowed. The store keeps endpoints and messages, the
//! delivery engine sends them; both ask here.
//!
//! A message type is `{domain}.{event}`: the domain's name and its event type in snake case
//! (`ledger.transfer_posted`, `certificates.certificate_activated`). Audit entries are named by
//! their level instead (`audit.info`, `audit.warning`, `audit.critical`), so that an alert
//! endpoint asks for `audit.critical` alone.

use std::net::IpAddr;

use serde_json::Value;

use crate::settings::{Kind, Segment, Setting, no_rule};

/// The event types an endpoint may ask for, at most.
pub const MAX_EVENT_TYPES: usize = 64;
/// The longest receiver URL.
pub const MAX_URL_LEN: usize = 2048;
/// What every event type matches.
pub const ALL: &str = "*";

/// The audit domain's name, whose entries are typed by level.
const AUDIT: &str = "audit";

/// `webhooks.retry_schedule`: the delays, in seconds, between a message's attempts.
pub const RETRY_SCHEDULE_KEY: &str = "webhooks.retry_schedule";
/// `webhooks.allow_private`: whether receivers on loopback or private addresses are allowed.
pub const ALLOW_PRIVATE_KEY: &str = "webhooks.allow_private";
/// The default schedule: one first attempt, then one after each delay (about 37 hours in all).
pub const DEFAULT_SCHEDULE: [u64; 7] = [5, 300, 1800, 7200, 18000, 36000, 36000];
/// A schedule has at most this many retries, each at most a day away.
pub const MAX_RETRIES: usize = 20;
pub const MAX_DELAY_SECS: i64 = 86_400;

/// The namespace of the ids of endpoints a domain entity owns.
const OWNED_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x1f6a_93c4_7e2b_4d58_b0c1_6a9e_d2f7_3b85);

/// The id of the endpoint `owner` (a domain entity, such as `orders:store:{id}`) receives its
/// callbacks at: derived, so the edge can seal the owner's secret for it before it exists (the
/// secret's context is `webhook-endpoint:{id}`, as for every endpoint).
pub fn owned_endpoint_id(owner: &str) -> uuid::Uuid {
    uuid::Uuid::new_v5(&OWNED_NAMESPACE, owner.as_bytes())
}

/// An endpoint a domain entity owns, as one of the entity's events changes it: a store's
/// callback endpoint, made by the store's creation, pointed elsewhere by its updates, re-keyed by
/// its secret's rotation. Never an operator's: it asks for no event types (no filter matches it),
/// and the operators' endpoint API neither lists nor changes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedEndpoint {
    /// `orders:store:{id}`; the endpoint's id is [`owned_endpoint_id`] of it.
    pub owner: String,
    pub change: EndpointChange,
}

/// What an owner's event does to its endpoint. The secret is the sealed JSON
/// `{"key_id","nonce","ciphertext"}` under `webhook-endpoint:{id}`, as every endpoint keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndpointChange {
    /// The endpoint is made, with its URL (none: only callbacks that name their own URL are
    /// sent) and its secret.
    Created { url: Option<String>, secret: Value },
    /// Its URL is now this one (none: only callbacks that name their own are sent).
    Url(Option<String>),
    /// Its secret is replaced; the one before signs beside it for a day from the event.
    Secret(Value),
}

/// A message an event makes for the endpoint of its entity's owner (an order's status change,
/// for its store), beside whatever operators' endpoints ask for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Callback {
    /// The owner whose endpoint sends it, with that endpoint's secret.
    pub owner: String,
    /// Where it goes instead of the endpoint's URL (an order's own callback URL).
    pub url: Option<String>,
    /// The entity it is about (an order's id): the delivery log is listed by it.
    pub subject: String,
    /// Its type (`orders.status_changed`).
    pub name: &'static str,
    pub data: Value,
}

/// The settings the delivery engine reads.
pub const SETTINGS: &[Setting] = &[
    Setting {
        name: RETRY_SCHEDULE_KEY,
        kind: Kind::IntegerList { min: 1, max: MAX_DELAY_SECS, max_len: MAX_RETRIES },
        segment: Segment::Word,
        default: || Value::from(DEFAULT_SCHEDULE.to_vec()),
        validate: no_rule,
        permission: crate::config::scope::WRITE,
        description: "Seconds between a webhook message's attempts: one first attempt, then one after each delay; \
                      after the last, the message is failed",
    },
    Setting {
        name: ALLOW_PRIVATE_KEY,
        kind: Kind::Bool,
        segment: Segment::Word,
        default: || Value::Bool(false),
        validate: no_rule,
        permission: crate::config::scope::WRITE,
        description: "Whether webhook endpoints may be on loopback, private or link-local addresses (and plain http://)",
    },
];

/// `TransferPosted` → `transfer_posted`.
pub fn snake(event_type: &str) -> String {
    let mut out = String::with_capacity(event_type.len() + 4);
    for (i, c) in event_type.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// One type of message an endpoint may ask for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventType {
    /// `ledger.transfer_posted`.
    pub name: String,
    /// The domain that writes it.
    pub domain: &'static str,
    /// The log's event type it comes from (`TransferPosted`).
    pub event_type: &'static str,
}

/// Every message type, by domain in the order the domains are declared.
pub fn catalog() -> Vec<EventType> {
    let mut all = Vec::new();
    for (domain, event_type) in crate::domain::event_types_by_domain() {
        if domain == AUDIT {
            for level in crate::audit::Level::ALL {
                all.push(EventType { name: format!("{AUDIT}.{}", level.as_str()), domain, event_type });
            }
        } else {
            all.push(EventType { name: format!("{domain}.{}", snake(event_type)), domain, event_type });
        }
    }
    all
}

/// The message type of a recorded event of `domain`: its catalog name (an audit entry's by the
/// level in its payload). `None`: an audit payload without a known level.
pub fn message_type(domain: &str, event_type: &str, payload: &Value) -> Option<String> {
    if domain == AUDIT {
        let level = payload.get("entry")?.get("level")?.as_str()?;
        let level = crate::audit::Level::parse(level)?;
        return Some(format!("{AUDIT}.{}", level.as_str()));
    }
    Some(format!("{domain}.{}", snake(event_type)))
}

/// Why an endpoint's list of event types is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("an endpoint asks for at least one event type (\"*\" for all)")]
    Empty,
    #[error("an endpoint asks for at most {MAX_EVENT_TYPES} event types")]
    TooMany,
    #[error("unknown event type {0:?}: GET /v1/webhooks/event-types lists them (or \"*\", or \"{{domain}}.*\")")]
    Unknown(String),
}

/// Checks what an endpoint asks for: `*`, `{domain}.*`, or names from the catalog, at most
/// `MAX_EVENT_TYPES` of them. Gives the list without repeats, in the order given.
pub fn check_filter(types: &[String]) -> Result<Vec<String>, FilterError> {
    if types.is_empty() {
        return Err(FilterError::Empty);
    }
    if types.len() > MAX_EVENT_TYPES {
        return Err(FilterError::TooMany);
    }
    let catalog = catalog();
    let mut out: Vec<String> = Vec::with_capacity(types.len());
    for t in types {
        let known = t == ALL
            || t.strip_suffix(".*").is_some_and(|domain| catalog.iter().any(|e| e.domain == domain))
            || catalog.iter().any(|e| e.name == *t);
        if !known {
            return Err(FilterError::Unknown(t.clone()));
        }
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    Ok(out)
}

/// Whether an endpoint that asked for `filter` receives messages of type `name`.
pub fn wants(filter: &[String], name: &str) -> bool {
    filter.iter().any(|f| {
        f == ALL
            || f == name
            || f.strip_suffix('*').is_some_and(|prefix| prefix.ends_with('.') && name.starts_with(prefix))
    })
}

/// A message's body: `{"type","timestamp","data","position"}`, the event's payload as `data`.
pub fn body(name: &str, timestamp_rfc3339: &str, data: Value, position: i64) -> Value {
    serde_json::json!({"type": name, "timestamp": timestamp_rfc3339, "data": data, "position": position})
}

/// The retry schedule in effect: the runtime setting's value, or the default where it is not a
/// list of delays (it always is: the setting is checked when set).
pub fn schedule(value: &Value) -> Vec<u64> {
    match value.as_array() {
        Some(items) => items.iter().filter_map(Value::as_u64).collect(),
        None => DEFAULT_SCHEDULE.to_vec(),
    }
}

/// After a failed attempt, with `retries_left` of the message's retries still unused: the delay
/// before the next attempt, or `None`: the message has failed. The delays are taken in order
/// from the schedule's end backwards by what is left, so a message enqueued with the whole
/// schedule waits `schedule[0]`, then `schedule[1]`, …; a schedule shortened meanwhile gives its
/// last delay.
pub fn next_delay(schedule: &[u64], retries_left: u32) -> Option<u64> {
    if retries_left == 0 {
        return None;
    }
    let left = retries_left as usize;
    let index = schedule.len().saturating_sub(left);
    schedule.get(index).or(schedule.last()).copied()
}

/// Why a receiver URL is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefused {
    #[error("the URL is longer than {MAX_URL_LEN} characters")]
    TooLong,
    #[error("not an absolute http(s) URL with a host")]
    Malformed,
    #[error("credentials in the URL are not allowed")]
    Credentials,
    #[error("plain http:// is allowed only with webhooks.allow_private (use https://)")]
    PlainHttp,
    #[error("{0} is a loopback, private or link-local address (allowed only with webhooks.allow_private)")]
    Private(String),
}

/// A receiver URL's parts that decide whether it is allowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub https: bool,
    /// The host as written, without brackets around an IPv6 address.
    pub host: String,
    pub port: u16,
}

/// Parses a receiver URL, refusing what is never allowed and, without `allow_private`, plain
/// http and literal private addresses (names are resolved by the caller and each address is
/// passed to [`check_address`]).
pub fn check_url(url: &str, allow_private: bool) -> Result<Target, UrlRefused> {
    if url.len() > MAX_URL_LEN {
        return Err(UrlRefused::TooLong);
    }
    let (https, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err(UrlRefused::Malformed);
    };
    if url.chars().any(|c| c.is_ascii_whitespace() || c.is_ascii_control()) {
        return Err(UrlRefused::Malformed);
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(UrlRefused::Credentials);
    }
    let (host, port) = split_authority(authority).ok_or(UrlRefused::Malformed)?;
    let port = port.unwrap_or(if https { 443 } else { 80 });
    if !allow_private {
        if !https {
            return Err(UrlRefused::PlainHttp);
        }
        if host.eq_ignore_ascii_case("localhost") || host.to_ascii_lowercase().ends_with(".localhost") {
            return Err(UrlRefused::Private(host));
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            check_address(ip, allow_private)?;
        }
    }
    Ok(Target { https, host, port })
}

/// `host[:port]`, `[v6][:port]`.
fn split_authority(authority: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        host.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (host, port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let valid_host = !host.is_empty()
        && host.len() <= 253
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b));
    if !valid_host {
        return None;
    }
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok().filter(|p| *p != 0)?),
        None => None,
    };
    Some((host.to_owned(), port))
}

/// Refuses an address a receiver may not have without `allow_private`.
pub fn check_address(ip: IpAddr, allow_private: bool) -> Result<(), UrlRefused> {
    if allow_private || is_public(ip) { Ok(()) } else { Err(UrlRefused::Private(ip.to_string())) }
}

/// Whether an address is reachable on the public internet: not loopback, private, link-local,
/// shared (CGNAT), unspecified, broadcast, documentation or multicast, nor an IPv6 address that
/// maps one of those (`::ffff:a.b.c.d`); NAT64 and 6to4 addresses are taken
/// as public.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            // `0.0.0.0/8` ("this network") holds the unspecified address, and `240.0.0.0/4`
            // (reserved) the broadcast address.
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_documentation()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn types_are_named_by_domain_and_event_in_snake_case() {
        assert_eq!(snake("TransferPosted"), "transfer_posted");
        assert_eq!(snake("AccountStatusChanged"), "account_status_changed");
        assert_eq!(snake("x"), "x");
        let catalog = catalog();
        let names: Vec<&str> = catalog.iter().map(|e| e.name.as_str()).collect();
        assert!(names.contains(&"ledger.transfer_posted"), "{names:?}");
        assert!(names.contains(&"certificates.certificate_activated"), "{names:?}");
        assert!(names.contains(&"config.config_changed"), "{names:?}");
        for level in ["info", "warning", "critical"] {
            assert!(names.contains(&format!("audit.{level}").as_str()), "{names:?}");
        }
        assert!(!names.iter().any(|n| n.starts_with("audit.audit")), "{names:?}");
        let posted = catalog.iter().find(|e| e.name == "ledger.transfer_posted").unwrap();
        assert_eq!((posted.domain, posted.event_type), ("ledger", "TransferPosted"));
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "every name once");
        for name in &names {
            assert!(name.len() <= 128 && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_'));
        }
    }

    #[test]
    fn a_message_is_typed_by_its_event_and_an_audit_entry_by_its_level() {
        assert_eq!(message_type("ledger", "TransferPosted", &json!({})).as_deref(), Some("ledger.transfer_posted"));
        let entry = |level: &str| json!({"entry": {"level": level}, "at": 1});
        assert_eq!(message_type("audit", "AuditRecorded", &entry("critical")).as_deref(), Some("audit.critical"));
        assert_eq!(message_type("audit", "AuditRecorded", &entry("info")).as_deref(), Some("audit.info"));
        assert_eq!(message_type("audit", "AuditRecorded", &entry("loud")), None);
        assert_eq!(message_type("audit", "AuditRecorded", &json!({"entry": {}})), None);
        assert_eq!(message_type("audit", "AuditRecorded", &json!({})), None);
    }

    #[test]
    fn a_filter_takes_known_names_domains_and_everything_once() {
        let ok = check_filter(&strings(&["ledger.transfer_posted", "audit.*", "ledger.transfer_posted"]));
        assert_eq!(ok, Ok(strings(&["ledger.transfer_posted", "audit.*"])));
        assert_eq!(check_filter(&strings(&["*"])), Ok(strings(&["*"])));
        assert_eq!(check_filter(&[]), Err(FilterError::Empty));
        assert_eq!(check_filter(&strings(&["transfer.posted"])), Err(FilterError::Unknown("transfer.posted".into())));
        assert_eq!(check_filter(&strings(&["nowhere.*"])), Err(FilterError::Unknown("nowhere.*".into())));
        assert_eq!(check_filter(&strings(&["ledger.*x"])), Err(FilterError::Unknown("ledger.*x".into())));
        let stars = |n: usize| vec!["*".to_owned(); n];
        assert_eq!(check_filter(&stars(MAX_EVENT_TYPES)), Ok(strings(&["*"])));
        assert_eq!(check_filter(&stars(MAX_EVENT_TYPES + 1)), Err(FilterError::TooMany));
    }

    #[test]
    fn an_endpoint_wants_its_names_its_domains_or_everything() {
        let filter = strings(&["ledger.transfer_posted", "audit.*"]);
        assert!(wants(&filter, "ledger.transfer_posted"));
        assert!(wants(&filter, "audit.critical"));
        assert!(!wants(&filter, "ledger.account_opened"));
        assert!(!wants(&filter, "auditx.critical"));
        assert!(wants(&strings(&["*"]), "payouts.payout_requested"));
        assert!(!wants(&[], "ledger.transfer_posted"));
        assert!(!wants(&strings(&["ledger*"]), "ledger.transfer_posted"));
    }

    #[test]
    fn a_body_carries_type_time_data_and_position() {
        let b = body("ledger.transfer_posted", "2026-12-06T00:00:00Z", json!({"id": "t"}), 42);
        assert_eq!(
            b,
            json!({"type": "ledger.transfer_posted", "timestamp": "2026-12-06T00:00:00Z", "data": {"id": "t"}, "position": 42})
        );
    }

    #[test]
    fn retries_follow_the_schedule_then_fail() {
        let s = DEFAULT_SCHEDULE.to_vec();
        let left = s.len() as u32;
        assert_eq!(next_delay(&s, left), Some(5));
        assert_eq!(next_delay(&s, left - 1), Some(300));
        assert_eq!(next_delay(&s, 1), Some(36000));
        assert_eq!(next_delay(&s, 0), None);
        // A schedule shortened after the message was enqueued: its first delay, never past it.
        assert_eq!(next_delay(&[7, 9], 5), Some(7));
        assert_eq!(next_delay(&[7, 9], 2), Some(7));
        assert_eq!(next_delay(&[7, 9], 1), Some(9));
        assert_eq!(next_delay(&[], 3), None);
        assert_eq!(schedule(&json!([1, 2, 3])), vec![1, 2, 3]);
        assert_eq!(schedule(&Value::Null), DEFAULT_SCHEDULE.to_vec());
        assert_eq!(SETTINGS[0].check(&json!(DEFAULT_SCHEDULE)), Ok(()));
        assert_eq!((SETTINGS[0].default)(), json!(DEFAULT_SCHEDULE));
        assert!(SETTINGS[0].check(&json!([0])).is_err());
        assert!(SETTINGS[0].check(&json!([86_401])).is_err());
        assert_eq!(SETTINGS[0].check(&json!([])), Ok(()));
        assert!(SETTINGS[0].check(&json!(vec![1; MAX_RETRIES + 1])).is_err());
        assert_eq!((SETTINGS[1].default)(), json!(false));
    }

    #[test]
    fn urls_are_refused_for_what_they_are() {
        let target = check_url("https://hooks.example.com/in?x=1", false).unwrap();
        assert_eq!(target, Target { https: true, host: "hooks.example.com".into(), port: 443 });
        assert_eq!(check_url("https://hooks.example.com:8443", false).unwrap().port, 8443);
        assert_eq!(check_url("http://127.0.0.1:9000/x", true).unwrap().port, 9000);
        assert_eq!(check_url("http://h.example/x", true).unwrap().port, 80);
        assert_eq!(check_url("http://hooks.example.com/", false), Err(UrlRefused::PlainHttp));
        assert_eq!(check_url("https://127.0.0.1/", false), Err(UrlRefused::Private("127.0.0.1".into())));
        assert_eq!(check_url("https://localhost:8080/", false), Err(UrlRefused::Private("localhost".into())));
        assert_eq!(check_url("https://a.localhost/", false), Err(UrlRefused::Private("a.localhost".into())));
        assert_eq!(check_url("https://[::1]:8443/", false), Err(UrlRefused::Private("::1".into())));
        assert_eq!(check_url("https://[::1]:8443/", true).unwrap().host, "::1");
        assert_eq!(check_url("https://10.1.2.3/", false), Err(UrlRefused::Private("10.1.2.3".into())));
        assert_eq!(check_url("https://8.8.8.8/", false).unwrap().host, "8.8.8.8");
        assert_eq!(check_url("https://user:pw@example.com/", true), Err(UrlRefused::Credentials));
        for bad in [
            "ftp://example.com",
            "https://",
            "https:///x",
            "https://a b.com/",
            "example.com",
            "https://h:0/",
            "https://h:99999/",
            "https://[zz]/",
            "https://[::1]x/",
            "https://example.com/a b",
            "https://example.com/\u{7f}",
            "https://exa!mple.com/",
        ] {
            assert_eq!(check_url(bad, true), Err(UrlRefused::Malformed), "{bad}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(check_url(&long, true), Err(UrlRefused::TooLong));
        let exact = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN - 20));
        assert_eq!(exact.len(), MAX_URL_LEN);
        assert!(check_url(&exact, false).is_ok());
        let host = |len: usize| format!("https://{}/", "h".repeat(len));
        assert_eq!(check_url(&host(253), false).unwrap().host.len(), 253);
        assert_eq!(check_url(&host(254), false), Err(UrlRefused::Malformed));
    }

    #[test]
    fn only_public_addresses_are_public() {
        let public = |s: &str| is_public(s.parse().unwrap());
        for ok in [
            "8.8.8.8",
            "1.1.1.1",
            "100.63.0.1",
            "100.128.0.1",
            "198.17.0.1",
            "198.20.0.1",
            "2606:4700::1111",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
        ] {
            assert!(public(ok), "{ok}");
        }
        for not in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "192.0.2.1",
            "224.0.0.1",
            "100.64.0.1",
            "100.127.255.255",
            "198.18.0.1",
            "198.19.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!public(not), "{not}");
        }
        assert_eq!(check_address("10.0.0.1".parse().unwrap(), true), Ok(()));
        assert_eq!(check_address("8.8.8.8".parse().unwrap(), false), Ok(()));
        assert_eq!(check_address("10.0.0.1".parse().unwrap(), false), Err(UrlRefused::Private("10.0.0.1".into())));
    }
}
