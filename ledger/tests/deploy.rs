//! The deployment artefacts (`deploy/`, `Dockerfile`) checked against the engine they deploy:
//! every metric the Grafana dashboard queries is one a live `ledger up` exports (with Kafka on,
//! librdkafka's mock cluster or `KAFKA_BROKERS`, so the publisher's and the consumers' metrics
//! are there too), with the labels the queries select and group by; the Helm chart's templates
//! use only values it declares and render to Kubernetes objects with the engine's probes; and
//! every setting the chart, the compose file and the image give the engine is one it reads.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use saphyr::{LoadableYamlNode, Scalar, Yaml};
use serde_json::{Value, json};
use support::{Api, Running, key, wait_for_line};
use test_support::fresh_database;
use uuid::Uuid;

/// Labels Prometheus adds to every series it scrapes: never in the engine's own exposition.
const TARGET_LABELS: &[&str] = &["instance", "job"];

/// Settings the chart passes that no release reads yet. Once the engine reads one, the test
/// fails until it leaves this list.
const NOT_READ_YET: &[&str] = &[];

const CVC_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

fn repo(path: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ---------------------------------------------------------------------------------------------
// PromQL: the selectors an expression names and the labels it groups by.

/// One vector selector: a metric name and its label matchers (label, operator, value).
#[derive(Debug, PartialEq)]
struct Selector {
    metric: String,
    matchers: Vec<(String, String, String)>,
}

/// What a PromQL expression reads: its selectors, and the labels named in `by`, `without`, `on`
/// and `ignoring` clauses. Grafana's `$variables` and the contents of `[…]` (ranges) are skipped.
#[derive(Debug, Default, PartialEq)]
struct Query {
    selectors: Vec<Selector>,
    grouping: Vec<String>,
}

const AGGREGATIONS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];
const GROUPING: &[&str] = &["by", "without", "on", "ignoring", "group_left", "group_right"];
const KEYWORDS: &[&str] = &["and", "or", "unless", "bool", "offset", "atan2"];

fn parse_promql(expr: &str) -> Query {
    let chars: Vec<char> = expr.chars().collect();
    let mut query = Query::default();
    let mut i = 0;
    let ident_start = |c: char| c.is_ascii_alphabetic() || c == '_' || c == ':';
    let ident_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let skip_ws = |i: &mut usize| {
        while *i < chars.len() && chars[*i].is_whitespace() {
            *i += 1;
        }
    };
    let ident = |i: &mut usize| {
        let start = *i;
        while *i < chars.len() && ident_char(chars[*i]) {
            *i += 1;
        }
        chars[start..*i].iter().collect::<String>()
    };
    let string = |i: &mut usize| {
        let quote = chars[*i];
        let mut out = String::new();
        *i += 1;
        while *i < chars.len() && chars[*i] != quote {
            if chars[*i] == '\\' && *i + 1 < chars.len() {
                *i += 1;
            }
            out.push(chars[*i]);
            *i += 1;
        }
        *i += 1;
        out
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            string(&mut i);
        } else if c == '[' {
            while i < chars.len() && chars[i] != ']' {
                i += 1;
            }
            i += 1;
        } else if c == '$' {
            i += 1;
            if i < chars.len() && chars[i] == '{' {
                while i < chars.len() && chars[i] != '}' {
                    i += 1;
                }
                i += 1;
            } else {
                ident(&mut i);
            }
        } else if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            // Numbers and durations (`5m`, `1e3`, `0.99`).
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if ident_start(c) {
            let name = ident(&mut i);
            let mut j = i;
            skip_ws(&mut j);
            let call = chars.get(j) == Some(&'(');
            if GROUPING.contains(&name.as_str()) {
                if call {
                    i = j + 1;
                    while i < chars.len() && chars[i] != ')' {
                        if ident_start(chars[i]) {
                            query.grouping.push(ident(&mut i));
                        } else {
                            i += 1;
                        }
                    }
                    i += 1;
                }
            } else if call || AGGREGATIONS.contains(&name.as_str()) || KEYWORDS.contains(&name.as_str()) {
                // A function, an aggregation (its `by` comes next) or an operator.
            } else {
                let mut matchers = Vec::new();
                if chars.get(j) == Some(&'{') {
                    i = j + 1;
                    loop {
                        skip_ws(&mut i);
                        match chars.get(i) {
                            None => break,
                            Some('}') => {
                                i += 1;
                                break;
                            }
                            Some(',') => i += 1,
                            Some(_) => {
                                let label = ident(&mut i);
                                skip_ws(&mut i);
                                let op_start = i;
                                while i < chars.len() && "=!~".contains(chars[i]) {
                                    i += 1;
                                }
                                let op: String = chars[op_start..i].iter().collect();
                                skip_ws(&mut i);
                                assert!(
                                    !label.is_empty() && !op.is_empty() && chars.get(i) == Some(&'"'),
                                    "a label matcher in {expr:?}"
                                );
                                let value = string(&mut i);
                                matchers.push((label, op, value));
                            }
                        }
                    }
                }
                query.selectors.push(Selector { metric: name, matchers });
            }
        } else {
            i += 1;
        }
    }
    query
}

#[test]
fn promql_selectors_and_grouping_are_found() {
    let q = parse_promql(
        r#"histogram_quantile(0.99, sum by (le) (rate(ledger_a_bucket{instance=~"$instance",x="y, z"}[$__rate_interval]))) / on(job) ledger_b offset 5m"#,
    );
    assert_eq!(
        q.selectors,
        vec![
            Selector {
                metric: "ledger_a_bucket".into(),
                matchers: vec![
                    ("instance".into(), "=~".into(), "$instance".into()),
                    ("x".into(), "=".into(), "y, z".into())
                ]
            },
            Selector { metric: "ledger_b".into(), matchers: vec![] },
        ]
    );
    assert_eq!(q.grouping, vec!["le", "job"]);
    let q = parse_promql(r#"max without (projection) (ledger_c{p!~"a|b"}) and sum(rate(ledger_d[5m]))"#);
    let names: Vec<&str> = q.selectors.iter().map(|s| s.metric.as_str()).collect();
    assert_eq!(names, ["ledger_c", "ledger_d"]);
    assert_eq!(q.grouping, ["projection"]);
}

/// Every PromQL expression of a dashboard: its panels' targets (rows' panels included) and its
/// query variables (`label_values(metric, label)`: the metric).
fn dashboard_queries(dashboard: &Value) -> Vec<String> {
    fn panels(list: &Value, out: &mut Vec<String>) {
        for panel in list.as_array().into_iter().flatten() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let expr = target["expr"].as_str().unwrap_or_else(|| panic!("a target without expr: {panel}"));
                out.push(expr.to_owned());
            }
            panels(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    panels(&dashboard["panels"], &mut out);
    for variable in dashboard["templating"]["list"].as_array().into_iter().flatten() {
        if variable["type"] == "query" {
            let query = variable["query"]["query"].as_str().or(variable["query"].as_str()).unwrap();
            let inner = query.strip_prefix("label_values(").and_then(|q| q.split(',').next()).unwrap_or(query);
            out.push(inner.to_owned());
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The exposition format: metric name → the label sets of its samples.

fn parse_scrape(text: &str) -> BTreeMap<String, Vec<BTreeMap<String, String>>> {
    let mut out: BTreeMap<String, Vec<BTreeMap<String, String>>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let mut labels = BTreeMap::new();
        if line[name_end..].starts_with('{') {
            let mut rest = &line[name_end + 1..];
            while let Some((label, tail)) = rest.split_once("=\"") {
                let mut value = String::new();
                let mut chars = tail.char_indices();
                let mut end = tail.len();
                while let Some((k, c)) = chars.next() {
                    match c {
                        '\\' => value.extend(chars.next().map(|(_, c)| c)),
                        '"' => {
                            end = k + 1;
                            break;
                        }
                        c => value.push(c),
                    }
                }
                labels.insert(label.trim_start_matches(',').trim().to_owned(), value);
                rest = &tail[end..];
                if rest.starts_with('}') {
                    break;
                }
            }
        }
        out.entry(line[..name_end].to_owned()).or_default().push(labels);
    }
    out
}

/// What the dashboard's queries name that the scrape lacks: metric names, labels selected or
/// grouped by on metrics that do not carry them, and `label="value"` selections no sample has.
fn missing(
    queries: &[String],
    scrape: &BTreeMap<String, Vec<BTreeMap<String, String>>>,
    not_yet_exported: &[&str],
) -> Vec<String> {
    let mut missing = Vec::new();
    for expr in queries {
        let query = parse_promql(expr);
        assert!(!query.selectors.is_empty(), "no metric in {expr:?}");
        let mut labels_here: BTreeSet<&str> = BTreeSet::new();
        let mut allowed_here = false;
        for selector in &query.selectors {
            if not_yet_exported.contains(&selector.metric.as_str()) {
                allowed_here = true;
                continue;
            }
            let Some(samples) = scrape.get(&selector.metric) else {
                missing.push(format!("metric {} (in {expr})", selector.metric));
                continue;
            };
            labels_here.extend(samples.iter().flat_map(|s| s.keys().map(String::as_str)));
            for (label, op, value) in &selector.matchers {
                if TARGET_LABELS.contains(&label.as_str()) {
                    continue;
                }
                if !samples.iter().any(|s| s.contains_key(label)) {
                    missing.push(format!("label {label} on {} (in {expr})", selector.metric));
                } else if op == "=" && !samples.iter().any(|s| s.get(label) == Some(value)) {
                    missing.push(format!("{}{{{label}=\"{value}\"}} (in {expr})", selector.metric));
                }
            }
        }
        if !allowed_here {
            for label in &query.grouping {
                if !TARGET_LABELS.contains(&label.as_str()) && !labels_here.contains(label.as_str()) {
                    missing.push(format!("label {label} to group by (in {expr})"));
                }
            }
        }
    }
    missing
}

#[test]
fn a_query_naming_what_the_scrape_lacks_is_caught() {
    let scrape = parse_scrape(
        "# TYPE ledger_x_seconds histogram\nledger_x_seconds_bucket{le=\"0.1\"} 1\nledger_x_seconds_count 1\n\
         ledger_lag{projection=\"journal\",other=\"a\\\"b\"} 0\n",
    );
    assert_eq!(scrape["ledger_lag"][0]["other"], "a\"b");
    let ok = |q: &str| missing(&[q.to_owned()], &scrape, &["ledger_future"]);
    assert!(ok("histogram_quantile(0.5, sum by (le) (rate(ledger_x_seconds_bucket[5m])))").is_empty());
    assert!(ok(r#"max by (projection) (ledger_lag{projection="journal",instance=~"$instance"})"#).is_empty());
    assert_eq!(ok("rate(ledger_x_seconds_sum[5m])").len(), 1, "a histogram's _sum it does not export");
    assert_eq!(ok("ledger_x_seconds").len(), 1, "a histogram's bare name is no series");
    assert_eq!(ok(r#"ledger_lag{projection="balances"}"#).len(), 1);
    assert_eq!(ok(r#"ledger_lag{model=~"j.*"}"#).len(), 1);
    assert_eq!(ok("sum by (model) (ledger_lag)").len(), 1);
    assert!(ok("sum by (consumer, topic) (ledger_future)").is_empty(), "allowed while not exported yet");
    assert_eq!(ok("ledger_elsewhere").len(), 1);
}

// ---------------------------------------------------------------------------------------------
// The dashboard against a live engine.

/// The settings file the chart mounts by default (its `config` value), for the engine to read.
fn chart_config() -> String {
    let values = Yaml::load_from_str(&repo("deploy/helm/ledger/values.yaml")).unwrap();
    values[0].as_mapping_get("config").and_then(Yaml::as_str).expect("values.yaml has config").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_queries_is_exported() {
    let dashboard: Value = serde_json::from_str(&repo("deploy/grafana/ledger.json")).unwrap();
    let queries = dashboard_queries(&dashboard);
    assert!(queries.len() >= 20, "the dashboard's queries: {queries:#?}");
    let mut ids = BTreeSet::new();
    let mut all = dashboard["panels"].as_array().unwrap().clone();
    while let Some(panel) = all.pop() {
        assert!(ids.insert(panel["id"].as_i64().unwrap()), "panel ids are unique: {panel}");
        assert!(panel["gridPos"]["w"].as_i64().is_some_and(|w| (1..=24).contains(&w)), "{panel}");
        all.extend(panel["panels"].as_array().cloned().unwrap_or_default());
    }

    // Kafka with every consumer on: the ledger's own transfer requests and each domain's topics,
    // named for this run (a real broker keeps other runs' topics).
    let run = Uuid::new_v4().simple().to_string();
    let t = |name: &str| format!("{name}-{run}");
    let prefix = format!("ledger{run}");
    let (requests, upload, orders, payments) =
        (t("transfer-requests"), t("GiftCertificateUpload"), t("All_SalesOrder"), t("All_Payments"));
    let (state, transaction, bi) = (t("GiftCertificateState"), t("GiftCertificateTransaction"), t("GiftCertificateBI"));
    let (erp, ard, oebs, status_dlq) = (t("erp"), t("status-ard"), t("status-oebs"), t("status-dlq"));
    let wallet = t("wallet.transactions");
    let config = std::env::temp_dir().join(format!("ledger-chart-{run}.toml"));
    std::fs::write(&config, chart_config()).unwrap();
    let statuses = format!("{ard},{oebs}");
    let kafka_env = [
        // The chart's settings file: the engine refuses one with a key it does not know.
        ("LEDGER_CONFIG", config.to_str().unwrap()),
        ("LEDGER_KAFKA_TOPIC_PREFIX", prefix.as_str()),
        ("LEDGER_KAFKA_TRANSFER_REQUESTS_TOPIC", requests.as_str()),
        ("LEDGER_CERTIFICATES_UPLOAD_TOPIC", upload.as_str()),
        ("LEDGER_CERTIFICATES_ORDERS_TOPIC", orders.as_str()),
        ("LEDGER_CERTIFICATES_PAYMENTS_TOPIC", payments.as_str()),
        ("LEDGER_CERTIFICATES_STATE_TOPIC", state.as_str()),
        ("LEDGER_CERTIFICATES_TRANSACTION_TOPIC", transaction.as_str()),
        ("LEDGER_CERTIFICATES_BI_TOPIC", bi.as_str()),
        ("LEDGER_PAYOUT_ERP_TOPIC", erp.as_str()),
        ("LEDGER_PAYOUT_STATUS_TOPICS", statuses.as_str()),
        ("LEDGER_PAYOUT_STATUS_DEAD_LETTER_TOPIC", status_dlq.as_str()),
        ("LEDGER_WALLET_TRANSACTIONS_TOPIC", wallet.as_str()),
    ];
    // Every topic `ledger kafka topics` names for these settings.
    let (_mock, brokers) = support::kafka_for(&kafka_env, &[]).await;

    let mut sms = Running(
        Command::new(env!("CARGO_BIN_EXE_ledger"))
            .args(["sms-simulator", "--listen", "127.0.0.1:0"])
            .env("LEDGER_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut sms_log = BufReader::new(sms.0.stderr.take().unwrap()).lines();
    let (sms_addr, _) = wait_for_line(&mut sms_log, "SMS simulator on http://");
    std::thread::spawn(move || sms_log.map_while(Result::ok).for_each(drop));

    let db = fresh_database().await;
    let admin = key(&db, "ops", "accounts:write,transfers:write,read");
    let mut up = Running(
        Command::new(env!("CARGO_BIN_EXE_ledger"))
            .arg("up")
            .env("DATABASE_URL", &db.url)
            .env("LEDGER_LISTEN", "127.0.0.1:0")
            .env("LEDGER_LOG", "info,rdkafka=warn")
            .env("KAFKA_BROKERS", &brokers)
            .envs(kafka_env)
            .env("LEDGER_SECRETS_KEY", CVC_KEY)
            .env("LEDGER_SMS_URL", format!("http://{sms_addr}/sms"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut log = BufReader::new(up.0.stderr.take().unwrap()).lines();
    let (addr, before) = wait_for_line(&mut log, "command API on http://");
    assert!(before.iter().any(|l| l.contains("Kafka publisher on")), "{before:#?}");
    std::thread::spawn(move || log.map_while(Result::ok).for_each(drop));
    let api = Api { addr };

    // Some traffic, so the request counters have series.
    let (status, body) = api.post(&admin, "/v1/accounts", json!({"code": "bank", "currency": "EUR", "kind": "asset"}));
    assert_eq!(status, 201, "{body}");

    // Followers create their checkpoints as they start: scrape until nothing is missing, or a
    // minute passed.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (scrape, gaps) = loop {
        let (status, _, text) = api.get(&admin, "/metrics", "text/plain");
        assert_eq!(status, 200, "{text}");
        let scrape = parse_scrape(&text);
        let gaps = missing(&queries, &scrape, &[]);
        if gaps.is_empty() || Instant::now() > deadline {
            break (scrape, gaps);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(gaps.is_empty(), "the dashboard names what /metrics lacks:\n{}\n\nscraped: {:#?}", gaps.join("\n"), scrape);
    let _ = std::fs::remove_file(&config);
}

// ---------------------------------------------------------------------------------------------
// The Helm chart, without helm: values, structure, a rendering under a minimal substitution.

fn values_get<'a>(values: &'a Yaml<'a>, path: &str) -> Option<&'a Yaml<'a>> {
    path.split('.').try_fold(values, |node, key| node.as_mapping_get(key))
}

/// The `{{ … }}` actions of a template, trimmed of `-` and spaces.
fn actions(template: &str) -> Vec<&str> {
    template
        .split("{{")
        .skip(1)
        .map(|a| a.split("}}").next().unwrap().trim_matches(|c: char| c == '-' || c.is_whitespace()))
        .collect()
}

/// The template with every line that holds only actions dropped (control flow, `include`s and
/// `toYaml`s under a key) and every other action replaced: a plain `.Values.x` or
/// `.Values.x | quote` by its value, anything else by `x`. Both branches of an `if` stay.
fn substitute(template: &str, values: &Yaml<'_>) -> String {
    let mut out = String::new();
    for line in template.lines() {
        let rest = line.trim();
        if rest.starts_with("{{") && rest.ends_with("}}") && rest.matches("{{").count() == 1 {
            continue;
        }
        let mut text = line.to_owned();
        while let Some(start) = text.find("{{") {
            let end = text[start..].find("}}").expect("an action is closed") + start + 2;
            let action = text[start + 2..end - 2].trim_matches(|c: char| c == '-' || c.is_whitespace());
            let (path, quote) = match action.strip_suffix("| quote") {
                Some(path) => (path.trim(), true),
                None => (action, false),
            };
            let value = path
                .strip_prefix(".Values.")
                .and_then(|p| values_get(values, p))
                .and_then(|v| match v {
                    Yaml::Value(Scalar::String(s)) => Some(s.to_string()),
                    Yaml::Value(Scalar::Integer(n)) => Some(n.to_string()),
                    Yaml::Value(Scalar::Boolean(b)) => Some(b.to_string()),
                    _ => None,
                })
                .unwrap_or_else(|| "x".to_owned());
            let value = if quote { format!("{value:?}") } else { value };
            text.replace_range(start..end, &value);
        }
        out.push_str(&text);
        out.push('\n');
    }
    out
}

fn chart_templates() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/helm/ledger/templates");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            (path.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

#[test]
fn the_chart_uses_only_its_values_and_renders_the_engine_with_its_probes() {
    let chart = Yaml::load_from_str(&repo("deploy/helm/ledger/Chart.yaml")).unwrap();
    let chart = &chart[0];
    assert_eq!(chart.as_mapping_get("apiVersion").and_then(Yaml::as_str), Some("v2"));
    assert_eq!(chart.as_mapping_get("name").and_then(Yaml::as_str), Some("ledger"));
    for field in ["version", "appVersion", "description"] {
        assert!(chart.as_mapping_get(field).and_then(Yaml::as_str).is_some_and(|v| !v.is_empty()), "{field}");
    }
    let values = Yaml::load_from_str(&repo("deploy/helm/ledger/values.yaml")).unwrap();
    let values = &values[0];

    let templates = chart_templates();
    let names: Vec<&str> = templates.iter().map(|(n, _)| n.as_str()).collect();
    for expected in ["deployment.yaml", "service.yaml", "configmap.yaml", "_helpers.tpl"] {
        assert!(names.contains(&expected), "templates/{expected}: {names:?}");
    }
    let mut kinds = BTreeMap::new();
    let mut rendered = Vec::new();
    for (name, template) in &templates {
        // Every `.Values.a.b` a template reads is declared in values.yaml.
        for (at, _) in template.match_indices(".Values.") {
            let path: String = template[at + ".Values.".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
                .collect();
            let path = path.trim_end_matches('.');
            assert!(values_get(values, path).is_some(), "{name} reads .Values.{path}, which values.yaml lacks");
        }
        // Blocks are closed.
        let opened = actions(template)
            .iter()
            .filter(|a| ["if ", "with ", "range ", "define "].iter().any(|k| a.starts_with(k)))
            .count();
        let closed = actions(template).iter().filter(|a| **a == "end").count();
        assert_eq!(opened, closed, "{name}: every if, with, range and define has its end");
        if name.ends_with(".yaml") {
            rendered.push((name.as_str(), substitute(template, values)));
        }
    }
    for (name, text) in &rendered {
        let docs = Yaml::load_from_str(text).unwrap_or_else(|e| panic!("{name} renders to YAML: {e}\n{text}"));
        for doc in docs {
            let kind = doc.as_mapping_get("kind").and_then(Yaml::as_str).unwrap_or_default().to_owned();
            assert!(doc.as_mapping_get("apiVersion").and_then(Yaml::as_str).is_some(), "{name}: apiVersion");
            assert!(values_get(&doc, "metadata.name").is_some(), "{name}: metadata.name");
            kinds.insert(kind, doc);
        }
    }
    assert_eq!(kinds.keys().map(String::as_str).collect::<Vec<_>>(), ["ConfigMap", "Deployment", "Service"]);

    let deployment = &kinds["Deployment"];
    let container = values_get(deployment, "spec.template.spec.containers").and_then(|c| c.as_sequence_get(0)).unwrap();
    let get = |path: &str| values_get(container, path).and_then(Yaml::as_str).map(str::to_owned);
    assert_eq!(container.as_mapping_get("args").and_then(|a| a.as_sequence_get(0)).and_then(Yaml::as_str), Some("up"));
    assert_eq!(get("readinessProbe.httpGet.path").as_deref(), Some("/readyz"));
    assert_eq!(get("livenessProbe.httpGet.path").as_deref(), Some("/healthz"));
    let env: Vec<String> = container
        .as_mapping_get("env")
        .and_then(Yaml::as_sequence)
        .unwrap()
        .iter()
        .filter_map(|e| e.as_mapping_get("name").and_then(Yaml::as_str).map(str::to_owned))
        .filter(|n| n != "x")
        .collect();
    for secret in ["DATABASE_URL", "LEDGER_SECRETS_KEY"] {
        assert!(env.iter().any(|e| e == secret), "the Deployment passes {secret}: {env:?}");
    }
    assert!(env.iter().any(|e| e == "LEDGER_CONFIG"), "the settings file is named: {env:?}");
    let mount = values_get(container, "volumeMounts").and_then(|m| m.as_sequence_get(0)).unwrap();
    assert_eq!(
        mount.as_mapping_get("mountPath").and_then(Yaml::as_str).map(|p| format!("{p}/ledger.toml")),
        env_value(container, "LEDGER_CONFIG"),
        "LEDGER_CONFIG names the ConfigMap's file where it is mounted"
    );
    let data = kinds["ConfigMap"].as_mapping_get("data");
    assert!(data.and_then(|d| d.as_mapping_get("ledger.toml")).is_some(), "the ConfigMap holds ledger.toml");
    check_settings_read("the chart", &env);
}

fn env_value(container: &Yaml<'_>, name: &str) -> Option<String> {
    container.as_mapping_get("env")?.as_sequence()?.iter().find_map(|e| {
        (e.as_mapping_get("name")?.as_str()? == name).then(|| e.as_mapping_get("value")?.as_str().map(str::to_owned))?
    })
}

// ---------------------------------------------------------------------------------------------
// Settings the deployment gives the engine are ones it reads.

/// The text of every file under `dir`, its folders' too.
fn sources_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(sources_under(&path));
        } else {
            out.push(std::fs::read_to_string(&path).unwrap());
        }
    }
    out
}

/// Fails naming each variable no source file of the binary reads (`"NAME"` in ledger/src).
fn check_settings_read(what: &str, names: &[String]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let sources = sources_under(&dir).join("\n");
    for name in names {
        let read = sources.contains(&format!("\"{name}\""));
        if NOT_READ_YET.contains(&name.as_str()) {
            assert!(!read, "the engine reads {name} now: take it off NOT_READ_YET");
        } else {
            assert!(read, "{what} sets {name}, which the engine does not read");
        }
    }
}

#[test]
fn the_compose_file_and_the_image_give_the_engine_settings_it_reads() {
    let compose = Yaml::load_from_str(&repo("deploy/compose.yaml")).unwrap();
    let services = compose[0].as_mapping_get("services").and_then(Yaml::as_mapping).unwrap();
    let mut engine = Vec::new();
    for (name, service) in services {
        let name = name.as_str().unwrap();
        // The engine's services take their image from the `x-ledger` block (a YAML merge key).
        let image = service.as_mapping_get("image").or_else(|| values_get(service, "<<.image"));
        if image.and_then(Yaml::as_str) != Some("ledger:dev") {
            continue;
        }
        engine.push(name.to_owned());
        let env = service.as_mapping_get("environment").and_then(Yaml::as_mapping);
        let names: Vec<String> = env.into_iter().flatten().map(|(k, _)| k.as_str().unwrap().to_owned()).collect();
        check_settings_read(&format!("compose service {name}"), &names);
    }
    assert_eq!(engine, ["setup", "sms", "ledger"], "the services running the engine's image");
    let ledger = services.iter().find(|(k, _)| k.as_str() == Some("ledger")).unwrap().1;
    for var in ["DATABASE_URL", "KAFKA_BROKERS", "LEDGER_CONFIG"] {
        assert!(values_get(ledger, &format!("environment.{var}")).is_some(), "the engine gets {var}");
    }

    let dockerfile = repo("Dockerfile");
    let env: Vec<String> = dockerfile
        .lines()
        .skip_while(|l| !l.starts_with("FROM debian"))
        .filter_map(|l| l.trim().trim_start_matches("ENV ").split_once('=').map(|(k, _)| k.trim().to_owned()))
        .filter(|k| k.starts_with("LEDGER_"))
        .collect();
    assert_eq!(env, ["LEDGER_LISTEN", "LEDGER_LOG"], "the image's settings");
    check_settings_read("the Dockerfile", &env);
    assert!(dockerfile.contains("ENTRYPOINT [\"/usr/local/bin/ledger\"]") && dockerfile.contains("CMD [\"up\"]"));
    assert!(dockerfile.contains("HEALTHCHECK") && dockerfile.contains("GET /healthz"), "the image checks /healthz");
    let rust_version = repo("Cargo.toml")
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = ").map(|v| v.trim_matches('"').to_owned()))
        .unwrap();
    assert!(
        dockerfile.contains(&format!("ARG RUST_VERSION={rust_version}\n")),
        "the image builds with the workspace's rust-version {rust_version}"
    );
}
