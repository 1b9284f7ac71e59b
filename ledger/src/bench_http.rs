//! `ledger bench-http`: a closed-loop HTTP load generator against a running `ledger up`. Each
//! connection sends one request at a time over keep-alive HTTP/1.1 and measures its latency.

use std::time::{Duration, Instant};

use anyhow::Context;
use uuid::Uuid;

use crate::http_client::Client;
use crate::load::{Mix, Picker, report};

#[derive(clap::Args, Clone)]
pub struct Args {
    /// Base URL of the command API.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// An API key with accounts:write and transfers:write (also LEDGER_KEY).
    #[arg(long, env = "LEDGER_KEY", hide_env_values = true)]
    key: String,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Gift certificates instead of transfers: `--accounts` certificates are uploaded and
    /// activated, then each unit of load is an authorization and its capture (two commands) on
    /// one of them. The CVCs are read from the SMS simulator at this URL (the key needs
    /// certificates:upload, certificates:activate and certificates:redeem).
    #[arg(long)]
    certificates_sms: Option<String>,
    /// Payouts instead of transfers: `--accounts` clients each get a funded payout account,
    /// each unit of load is a payout request (the intake), and then the gates are run over
    /// the command API until every payout is sent (run `ledger up` with
    /// LEDGER_PAYOUT_GATES=false; the key needs accounts:write, transfers:write, read,
    /// payouts:request and payouts:gate).
    #[arg(long)]
    payouts: bool,
    /// Holds instead of transfers: each unit of load is a pending transfer and its posting (two
    /// commands through `/v1/transfers`), the ledger's own counterpart of a certificate's
    /// authorization and capture.
    #[arg(long)]
    holds: bool,
    /// P2P orders instead of transfers: one store and `--accounts` traders, each with a card
    /// requisite and a funded deposit, are set up; each unit of load is a pay-in order and its
    /// completion (two commands, four legs). `ledger up` needs LEDGER_SECRETS_KEY; the key needs
    /// accounts:write, transfers:write, config:write, orders:admin, orders:create and
    /// orders:complete.
    #[arg(long)]
    orders: bool,
    /// The gaming wallet instead of transfers: `--accounts` players, each funded by a deposit
    /// its payment provider's signed webhook settles, and a game provider are set up; each unit
    /// of load is a bet and its win closing the round (two seamless-wallet calls, each signed with
    /// the provider's secret). `ledger up` needs LEDGER_SECRETS_KEY; the key needs wallet:admin and wallet:pay.
    #[arg(long)]
    wallet: bool,
    #[command(flatten)]
    mix: Mix,
}

fn code(i: u32) -> String {
    if i == u32::MAX { "bench:fees".to_owned() } else { format!("bench:{i}") }
}

fn transfer_json(picker: &mut Picker, accounts: u32, hot: bool) -> String {
    let (debit, credit) = picker.pair(accounts);
    let id = Uuid::new_v4();
    if hot {
        format!(
            r#"{{"id":"{id}","postings":[{{"account":"{}","side":"debit","amount":"10.00"}},{{"account":"{}","side":"credit","amount":"9.90"}},{{"account":"{}","side":"credit","amount":"0.10"}}]}}"#,
            code(debit),
            code(credit),
            code(u32::MAX)
        )
    } else {
        format!(r#"{{"id":"{id}","debit":"{}","credit":"{}","amount":"10.00"}}"#, code(debit), code(credit))
    }
}

fn certificate(i: u32) -> String {
    format!("BENCH-{i}")
}

/// Uploads and activates `count` certificates of 1,000,000.00 EUR; returns each one's CVC, read
/// from the SMS simulator.
async fn certificates(setup: &mut Client, count: u32, sms: &str) -> anyhow::Result<Vec<String>> {
    for start in (0..count).step_by(1000) {
        let rows: Vec<String> = (start..count.min(start + 1000))
            .map(|i| {
                format!(
                    r#"{{"code":"{}","nominal":"1000000.00","currency":"EUR","phone":"+10000000000"}}"#,
                    certificate(i)
                )
            })
            .collect();
        let (status, text) =
            setup.post("/v1/certificates/upload/batch", format!(r#"{{"certificates":[{}]}}"#, rows.join(","))).await?;
        anyhow::ensure!(status == 200, "uploading: {status} {}", String::from_utf8_lossy(&text));
    }
    // The simulator keeps what earlier runs sent (the same codes, other CVCs): read only what
    // arrives from here on.
    let authority = sms.strip_prefix("http://").context("only http:// SMS URLs")?.split('/').next().unwrap_or_default();
    let mut simulator = Client::connect(authority, "").await?;
    let earlier = serde_json::from_slice::<Vec<streams::sms::SmsMessage>>(&simulator.get("/messages").await?.1)?.len();
    for i in 0..count {
        let body = format!(r#"{{"order_id":"bench-{i}","payment_id":"bench-{i}"}}"#);
        let (status, text) = setup.post(&format!("/v1/certificates/{}/activate", certificate(i)), body).await?;
        anyhow::ensure!(status == 200, "activating: {status} {}", String::from_utf8_lossy(&text));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, body) = simulator.get("/messages").await?;
        let messages: Vec<streams::sms::SmsMessage> = serde_json::from_slice(&body)?;
        let mut cvcs = vec![String::new(); count as usize];
        for m in messages.iter().skip(earlier) {
            // "Gift certificate BENCH-7: CVC 123"
            let Some((code, cvc)) = m.text.rsplit_once(": CVC ") else { continue };
            if let Some(i) = code.rsplit('-').next().and_then(|i| i.parse::<usize>().ok()).filter(|i| *i < cvcs.len()) {
                cvcs[i] = cvc.to_owned();
            }
        }
        if cvcs.iter().all(|c| !c.is_empty()) {
            return Ok(cvcs);
        }
        anyhow::ensure!(Instant::now() < deadline, "the CVCs did not all arrive at {sms}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.mix.accounts >= 2 && args.connections >= 1 && args.mix.batch >= 1,
        "need 2+ accounts, 1+ connections, batch 1+"
    );
    let authority = args.url.strip_prefix("http://").context("only http:// URLs")?.trim_end_matches('/').to_owned();
    let mut setup = Client::connect(&authority, &args.key).await?;
    let cvcs = match &args.certificates_sms {
        Some(sms) => std::sync::Arc::new(certificates(&mut setup, args.mix.accounts, sms).await?),
        None => std::sync::Arc::default(),
    };
    if args.payouts {
        payout_accounts(&mut setup, args.mix.accounts).await?;
    }
    if args.orders {
        order_participants(&mut setup, args.mix.accounts).await?;
    }
    if args.wallet {
        wallet_players(&mut setup, args.mix.accounts).await?;
    }
    let plain = args.certificates_sms.is_none() && !args.payouts && !args.orders && !args.wallet;
    for i in (0..args.mix.accounts).chain([u32::MAX]).filter(|_| plain) {
        let kind = if i == u32::MAX { "income" } else { "asset" };
        let body = format!(r#"{{"code":"{}","currency":"EUR","kind":"{kind}"}}"#, code(i));
        let (status, text) = setup.post("/v1/accounts", body).await?;
        // 409 account_code_exists: opened by an earlier run.
        anyhow::ensure!(
            matches!(status, 200 | 201 | 409),
            "opening {}: {status} {}",
            code(i),
            String::from_utf8_lossy(&text)
        );
    }

    let per_connection = args.mix.transfers.div_ceil(args.connections);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..args.connections {
        let (args, authority, cvcs) = (args.clone(), authority.clone(), cvcs.clone());
        tasks.push(tokio::spawn(async move {
            let mut client = Client::connect(&authority, &args.key).await?;
            let mut picker = Picker::new(c);
            let mut latencies = Vec::with_capacity(per_connection / args.mix.batch + 1);
            let (mut done, mut failed) = (0, 0);
            while done < per_connection {
                let n = args.mix.batch.min(per_connection - done);
                // Two commands, one unit: an authorization and its capture, or a hold and its
                // posting; the second is sent once the first answered 201.
                let steps = if !cvcs.is_empty() {
                    let (i, _) = picker.pair(args.mix.accounts);
                    let (code, op) = (certificate(i), Uuid::new_v4());
                    let body = format!(r#"{{"operation_id":"{op}","amount":"10.00","cvc":"{}"}}"#, cvcs[i as usize]);
                    Some((
                        (format!("/v1/certificates/{code}/authorize"), body),
                        (format!("/v1/certificates/{code}/capture"), format!(r#"{{"operation_id":"{op}"}}"#)),
                    ))
                } else if args.orders {
                    let id = Uuid::new_v4();
                    let body = format!(
                        r#"{{"id":"{id}","store_id":"bench-store","type":"pay_in","external_order_id":"{id}","amount":"1000.00","currency":"RUB"}}"#
                    );
                    Some((("/v1/orders".to_owned(), body), (format!("/v1/orders/{id}/complete"), "{}".to_owned())))
                } else if args.holds {
                    let (debit, credit) = picker.pair(args.mix.accounts);
                    let id = Uuid::new_v4();
                    let body = format!(
                        r#"{{"id":"{id}","debit":"{}","credit":"{}","amount":"10.00","pending":true}}"#,
                        code(debit),
                        code(credit)
                    );
                    Some((("/v1/transfers".to_owned(), body), (format!("/v1/transfers/{id}/post"), "{}".to_owned())))
                } else {
                    None
                };
                if args.wallet {
                    let (i, _) = picker.pair(args.mix.accounts);
                    let round = Uuid::new_v4();
                    let call = |amount: &str, closed: bool| {
                        format!(
                            r#"{{"request_uuid":"{}","transaction_uuid":"{}","player_id":"bench-p{i}","round":"{round}","amount":"{amount}","currency":"EUR","round_closed":{closed}}}"#,
                            Uuid::new_v4(),
                            Uuid::new_v4()
                        )
                    };
                    let sent = Instant::now();
                    let (status, text) = game(&mut client, "bet", call("1.00", false)).await?;
                    let (status, text) = if ok_call(status, &text) {
                        game(&mut client, "win", call("0.50", true)).await?
                    } else {
                        (status, text)
                    };
                    latencies.push(sent.elapsed());
                    if !ok_call(status, &text) {
                        failed += 1;
                        if failed <= 3 {
                            eprintln!("pair failed: {status} {}", String::from_utf8_lossy(&text));
                        }
                    }
                    done += 1;
                    continue;
                }
                if let Some(((first, first_body), (second, second_body))) = steps {
                    let sent = Instant::now();
                    let (status, text) = client.post(&first, first_body).await?;
                    let (status, text) =
                        if status == 201 { client.post(&second, second_body).await? } else { (status, text) };
                    latencies.push(sent.elapsed());
                    if status != 200 {
                        failed += 1;
                        if failed <= 3 {
                            eprintln!("pair failed: {status} {}", String::from_utf8_lossy(&text));
                        }
                    }
                    done += 1;
                    continue;
                }
                let (path, body) = if args.payouts {
                    let (i, _) = picker.pair(args.mix.accounts);
                    ("/v1/payouts/requests", format!(r#"{{"id":"{}","client_id":"bench-c{i}"}}"#, Uuid::new_v4()))
                } else if args.mix.batch == 1 {
                    ("/v1/transfers", transfer_json(&mut picker, args.mix.accounts, args.mix.hot))
                } else {
                    let items: Vec<String> =
                        (0..n).map(|_| transfer_json(&mut picker, args.mix.accounts, args.mix.hot)).collect();
                    ("/v1/transfers/batch", format!(r#"{{"transfers":[{}]}}"#, items.join(",")))
                };
                let sent = Instant::now();
                let (status, text) = client.post(path, body).await?;
                latencies.push(sent.elapsed());
                if !(status == 200 || status == 201 || status == 202) {
                    failed += n;
                    if failed <= 3 {
                        eprintln!("request failed: {status} {}", String::from_utf8_lossy(&text));
                    }
                }
                done += n;
            }
            anyhow::Ok((done, failed, latencies))
        }));
    }
    let (mut total, mut failed, mut latencies) = (0, 0, Vec::<Duration>::new());
    for task in tasks {
        let (n, f, l) = task.await??;
        total += n;
        failed += f;
        latencies.extend(l);
    }
    let unit = match (cvcs.is_empty(), args.payouts) {
        (_, true) => "payout request",
        (true, false) if args.holds => "hold+post pair",
        (true, false) if args.orders => "order create+complete pair",
        (true, false) if args.wallet => "bet+win pair",
        (true, false) => "transfer",
        (false, false) => "authorize+capture pair",
    };
    let mut extra = serde_json::json!({"failed": failed, "connections": args.connections, "unit": unit});
    let elapsed = started.elapsed();
    if args.payouts {
        extra["gates"] = gates(&mut setup, total, args.mix.accounts).await?;
    }
    println!("{}", report(&args.mix, total as u64, elapsed, &mut latencies, extra));
    anyhow::ensure!(failed == 0, "{failed} transfers failed");
    Ok(())
}

async fn put(client: &mut Client, path: String, body: String) -> anyhow::Result<()> {
    let (status, text) = client.send("PUT", &path, body).await?;
    anyhow::ensure!(matches!(status, 200 | 201), "PUT {path}: {status} {}", String::from_utf8_lossy(&text));
    Ok(())
}

/// The rate RUB/USDT, a store `bench-store` settled in USDT, and `count` traders of one priority,
/// each with a card requisite in RUB (limits far above the run) and a deposit of 1,000,000,000
/// USDT from one bank account.
async fn order_participants(setup: &mut Client, count: u32) -> anyhow::Result<()> {
    put(setup, "/v1/config/orders.rate.RUB%2FUSDT".into(), r#"{"value":"92.5"}"#.into()).await?;
    let store = r#"{"name":"Bench","fee":"0.035","settlement_currency":"USDT"}"#;
    put(setup, "/v1/orders/stores/bench-store".into(), store.into()).await?;
    let (status, text) =
        setup.post("/v1/accounts", r#"{"code":"bench:usdt-bank","currency":"USDT","kind":"asset"}"#.into()).await?;
    anyhow::ensure!(matches!(status, 201 | 409), "opening the bank: {status} {}", String::from_utf8_lossy(&text));
    for i in 0..count {
        let trader = r#"{"fee":"0.02","priority":1,"traffic_enabled":true,"currencies":["USDT"]}"#;
        put(setup, format!("/v1/orders/traders/bench-t{i}"), trader.into()).await?;
        let requisite = format!(
            r#"{{"method":"card","bank":"Bench","currency":"RUB","min_amount":"1.00","max_amount":"1000000.00","daily_limit":"1000000000000.00","enabled":true,"details":"4276 0000 0000 {i:04}"}}"#
        );
        put(setup, format!("/v1/orders/traders/bench-t{i}/requisites/card"), requisite).await?;
        let fund = format!(
            r#"{{"id":"{}","debit":"bench:usdt-bank","credit":"orders:trader:bench-t{i}:deposit:USDT","amount":"1000000000"}}"#,
            Uuid::new_v4()
        );
        let (status, text) = setup.post("/v1/transfers", fund).await?;
        anyhow::ensure!(status == 201, "funding a deposit: {status} {}", String::from_utf8_lossy(&text));
    }
    Ok(())
}

/// The secrets the wallet's benchmark providers sign with.
const BENCH_PSP_SECRET: &str = "whsec_YmVuY2ggcGF5bWVudCBwcm92aWRlciBzZWNyZXQ=";
const BENCH_GAMES_SECRET: &str = "whsec_YmVuY2ggZ2FtZSBwcm92aWRlciBzZWNyZXQhIQ==";

/// A seamless-wallet call of the benchmark's game provider, signed.
async fn game(client: &mut Client, action: &str, body: String) -> anyhow::Result<(u16, Vec<u8>)> {
    let secret = outbound::webhooks::WebhookSecret::parse(BENCH_GAMES_SECRET)?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let headers = outbound::webhooks::headers(&secret, &format!("call_{}", Uuid::new_v4()), now, body.as_bytes());
    let headers: Vec<(&str, String)> = headers.into_iter().collect();
    client.post_with(&format!("/v1/wallet/games/bench-games/{action}"), &headers, body).await
}

/// Whether a game call was answered `OK`.
fn ok_call(status: u16, body: &[u8]) -> bool {
    status == 200 && serde_json::from_slice::<serde_json::Value>(body).is_ok_and(|v| v["status"] == "OK")
}

/// A payment provider and a game provider, and `count` players (`bench-p{i}`, EUR), each with
/// 1,000,000.00 on main from a deposit its provider's signed webhook settled.
async fn wallet_players(setup: &mut Client, count: u32) -> anyhow::Result<()> {
    let psp = format!(r#"{{"kind":"payments","secret":"{BENCH_PSP_SECRET}"}}"#);
    put(setup, "/v1/wallet/providers/bench-psp".into(), psp).await?;
    let games = format!(r#"{{"kind":"games","secret":"{BENCH_GAMES_SECRET}"}}"#);
    put(setup, "/v1/wallet/providers/bench-games".into(), games).await?;
    let secret = outbound::webhooks::WebhookSecret::parse(BENCH_PSP_SECRET)?;
    for i in 0..count {
        put(setup, format!("/v1/wallet/players/bench-p{i}"), r#"{"currency":"EUR","kyc":"basic"}"#.into()).await?;
        let id = Uuid::new_v4();
        let intent = format!(
            r#"{{"id":"{id}","player_id":"bench-p{i}","amount":"1000000.00","currency":"EUR","provider":"bench-psp"}}"#
        );
        let (status, text) = setup.post("/v1/wallet/deposits", intent).await?;
        anyhow::ensure!(status == 201, "a deposit intent: {status} {}", String::from_utf8_lossy(&text));
        let webhook = format!(
            r#"{{"type":"deposit.succeeded","timestamp":"2026-01-01T00:00:00Z","data":{{"id":"{id}","amount":"1000000.00","currency":"EUR"}}}}"#
        );
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let headers = outbound::webhooks::headers(&secret, &format!("msg_{id}"), now, webhook.as_bytes());
        let headers: Vec<(&str, String)> = headers.into_iter().collect();
        let (status, text) = setup.post_with("/v1/wallet/webhooks/payments/bench-psp", &headers, webhook).await?;
        anyhow::ensure!(status == 200, "a deposit's webhook: {status} {}", String::from_utf8_lossy(&text));
    }
    Ok(())
}

/// A funded payout account for each of `count` clients (`bench-c{i}`), from one bank account.
async fn payout_accounts(setup: &mut Client, count: u32) -> anyhow::Result<()> {
    let (status, text) =
        setup.post("/v1/accounts", r#"{"code":"bench:bank","currency":"EUR","kind":"asset"}"#.into()).await?;
    anyhow::ensure!(matches!(status, 201 | 409), "opening the bank: {status} {}", String::from_utf8_lossy(&text));
    for i in 0..count {
        let body = format!(
            r#"{{"code":"bench-c{i}:payout","currency":"EUR","kind":"liability","metadata":{{"client_id":"bench-c{i}","account_type":"payout"}}}}"#
        );
        let (status, text) = setup.post("/v1/accounts", body).await?;
        anyhow::ensure!(
            matches!(status, 201 | 409),
            "opening a payout account: {status} {}",
            String::from_utf8_lossy(&text)
        );
    }
    for start in (0..count).step_by(1000) {
        let items: Vec<String> = (start..count.min(start + 1000))
            .map(|i| {
                format!(
                    r#"{{"id":"{}","debit":"bench:bank","credit":"bench-c{i}:payout","amount":"100.00"}}"#,
                    Uuid::new_v4()
                )
            })
            .collect();
        let (status, text) =
            setup.post("/v1/transfers/batch", format!(r#"{{"transfers":[{}]}}"#, items.join(","))).await?;
        anyhow::ensure!(status == 200, "funding: {status} {}", String::from_utf8_lossy(&text));
    }
    Ok(())
}

/// Runs the request gate, then the ERP gate, until each finds nothing to do: every request
/// planned (`requests` of them) and every payout sent (one per client: `accounts`). Returns
/// what each took.
async fn gates(client: &mut Client, requests: usize, accounts: u32) -> anyhow::Result<serde_json::Value> {
    let mut runs = serde_json::Map::new();
    for (gate, items, unit) in
        [("plan", requests as f64, "requests_per_second"), ("send", f64::from(accounts), "payouts_per_second")]
    {
        let begun = Instant::now();
        let mut n = 0;
        loop {
            let (status, body) = client.post(&format!("/v1/payouts/gates/{gate}"), r#"{"limit":1000}"#.into()).await?;
            anyhow::ensure!(status == 200, "gate {gate}: {status} {}", String::from_utf8_lossy(&body));
            let run: serde_json::Value = serde_json::from_slice(&body)?;
            if run["changed"] != true {
                break;
            }
            n += 1;
        }
        let seconds = begun.elapsed().as_secs_f64();
        runs.insert(gate.into(), serde_json::json!({"runs": n, "seconds": seconds, unit: (items / seconds).round()}));
    }
    Ok(serde_json::Value::Object(runs))
}
