//! `ledger bench-http`: a closed-loop HTTP load generator against a running `ledger up`. Each
//! connection sends one request at a time over keep-alive HTTP/1.1 and measures its latency.

use std::time::{Duration, Instant};

use anyhow::Context;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use uuid::Uuid;

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
    #[command(flatten)]
    mix: Mix,
}

struct Client {
    sender: SendRequest<Full<Bytes>>,
    authority: String,
    key: String,
}

impl Client {
    async fn connect(authority: &str, key: &str) -> anyhow::Result<Client> {
        let stream =
            tokio::net::TcpStream::connect(authority).await.with_context(|| format!("connecting to {authority}"))?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        Ok(Client { sender, authority: authority.to_owned(), key: key.to_owned() })
    }

    async fn post(&mut self, path: &str, body: String) -> anyhow::Result<(u16, Bytes)> {
        let request = hyper::Request::post(path)
            .header("host", &self.authority)
            .header("authorization", format!("Bearer {}", self.key))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))?;
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
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

pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.mix.accounts >= 2 && args.connections >= 1 && args.mix.batch >= 1,
        "need 2+ accounts, 1+ connections, batch 1+"
    );
    let authority = args.url.strip_prefix("http://").context("only http:// URLs")?.trim_end_matches('/').to_owned();
    let mut setup = Client::connect(&authority, &args.key).await?;
    for i in (0..args.mix.accounts).chain([u32::MAX]) {
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
        let (args, authority) = (args.clone(), authority.clone());
        tasks.push(tokio::spawn(async move {
            let mut client = Client::connect(&authority, &args.key).await?;
            let mut picker = Picker::new(c);
            let mut latencies = Vec::with_capacity(per_connection / args.mix.batch + 1);
            let (mut done, mut failed) = (0, 0);
            while done < per_connection {
                let n = args.mix.batch.min(per_connection - done);
                let (path, body) = if args.mix.batch == 1 {
                    ("/v1/transfers", transfer_json(&mut picker, args.mix.accounts, args.mix.hot))
                } else {
                    let items: Vec<String> =
                        (0..n).map(|_| transfer_json(&mut picker, args.mix.accounts, args.mix.hot)).collect();
                    ("/v1/transfers/batch", format!(r#"{{"transfers":[{}]}}"#, items.join(",")))
                };
                let sent = Instant::now();
                let (status, text) = client.post(path, body).await?;
                latencies.push(sent.elapsed());
                if !(status == 200 || status == 201) {
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
    let extra = serde_json::json!({"failed": failed, "connections": args.connections});
    println!("{}", report(&args.mix, total as u64, started.elapsed(), &mut latencies, extra));
    anyhow::ensure!(failed == 0, "{failed} transfers failed");
    Ok(())
}
