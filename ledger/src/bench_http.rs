//! `ledger bench-http`: a closed-loop HTTP load generator against a running `ledger up`. Each
//! connection sends one request at a time over keep-alive HTTP/1.1 and measures its latency.

use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
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
    /// Gift certificates instead of transfers: `--accounts` certificates are uploaded and
    /// activated, then each unit of load is an authorization and its capture (two commands) on
    /// one of them. The CVCs are read from the SMS simulator at this URL (the key needs
    /// certificates:upload, certificates:activate and certificates:redeem).
    #[arg(long)]
    certificates_sms: Option<String>,
    #[command(flatten)]
    mix: Mix,
}

/// A minimal keep-alive HTTP/1.1 client (as wrk or pgbench are minimal clients): it writes
/// each request in one piece and reads one `Content-Length` response, so the load generator
/// takes as little of the machine from the engine as it can.
struct Client {
    stream: TcpStream,
    authority: String,
    key: String,
    out: Vec<u8>,
    buf: Vec<u8>,
}

impl Client {
    async fn connect(authority: &str, key: &str) -> anyhow::Result<Client> {
        let stream = TcpStream::connect(authority).await.with_context(|| format!("connecting to {authority}"))?;
        stream.set_nodelay(true)?;
        let (authority, key) = (authority.to_owned(), key.to_owned());
        Ok(Client { stream, authority, key, out: Vec::with_capacity(1024), buf: Vec::with_capacity(4096) })
    }

    async fn post(&mut self, path: &str, body: String) -> anyhow::Result<(u16, Vec<u8>)> {
        use std::io::Write;
        self.out.clear();
        write!(
            self.out,
            "POST {path} HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            self.authority,
            self.key,
            body.len()
        )?;
        self.out.extend_from_slice(body.as_bytes());
        self.stream.write_all(&self.out).await?;
        self.read_response().await
    }

    async fn get(&mut self, path: &str) -> anyhow::Result<(u16, Vec<u8>)> {
        use std::io::Write;
        self.out.clear();
        write!(
            self.out,
            "GET {path} HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {}\r\n\r\n",
            self.authority, self.key
        )?;
        self.stream.write_all(&self.out).await?;
        self.read_response().await
    }

    async fn read_response(&mut self) -> anyhow::Result<(u16, Vec<u8>)> {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = std::str::from_utf8(&self.buf[..end]).context("response head is not UTF-8")?;
                let status: u16 = head.get(9..12).and_then(|s| s.parse().ok()).context("no status in the response")?;
                let length: usize = head
                    .lines()
                    .find_map(|l| l.split_once(':').filter(|(n, _)| n.eq_ignore_ascii_case("content-length")))
                    .and_then(|(_, v)| v.trim().parse().ok())
                    .context("responses without Content-Length are not supported")?;
                let total = end + 4 + length;
                while self.buf.len() < total {
                    self.fill().await?;
                }
                let body = self.buf[end + 4..total].to_vec();
                self.buf.drain(..total);
                return Ok((status, body));
            }
            self.fill().await?;
        }
    }

    async fn fill(&mut self) -> anyhow::Result<()> {
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "the server closed the connection");
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
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
    for i in 0..count {
        let body = format!(r#"{{"order_id":"bench-{i}","payment_id":"bench-{i}"}}"#);
        let (status, text) = setup.post(&format!("/v1/certificates/{}/activate", certificate(i)), body).await?;
        anyhow::ensure!(status == 200, "activating: {status} {}", String::from_utf8_lossy(&text));
    }
    let authority = sms.strip_prefix("http://").context("only http:// SMS URLs")?.split('/').next().unwrap_or_default();
    let mut simulator = Client::connect(authority, "").await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, body) = simulator.get("/messages").await?;
        let messages: Vec<streams::sms::SmsMessage> = serde_json::from_slice(&body)?;
        let mut cvcs = vec![String::new(); count as usize];
        for m in &messages {
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
    for i in (0..args.mix.accounts).chain([u32::MAX]).filter(|_| args.certificates_sms.is_none()) {
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
                if !cvcs.is_empty() {
                    // One authorization and its capture: two commands, one unit.
                    let (i, _) = picker.pair(args.mix.accounts);
                    let (code, op) = (certificate(i), Uuid::new_v4());
                    let sent = Instant::now();
                    let body = format!(r#"{{"operation_id":"{op}","amount":"10.00","cvc":"{}"}}"#, cvcs[i as usize]);
                    let (status, text) = client.post(&format!("/v1/certificates/{code}/authorize"), body).await?;
                    let captured = if status == 201 {
                        let body = format!(r#"{{"operation_id":"{op}"}}"#);
                        client.post(&format!("/v1/certificates/{code}/capture"), body).await?
                    } else {
                        (status, text)
                    };
                    latencies.push(sent.elapsed());
                    if captured.0 != 200 {
                        failed += 1;
                        if failed <= 3 {
                            eprintln!("pair failed: {} {}", captured.0, String::from_utf8_lossy(&captured.1));
                        }
                    }
                    done += 1;
                    continue;
                }
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
    let unit = if cvcs.is_empty() { "transfer" } else { "authorize+capture pair" };
    let extra = serde_json::json!({"failed": failed, "connections": args.connections, "unit": unit});
    println!("{}", report(&args.mix, total as u64, started.elapsed(), &mut latencies, extra));
    anyhow::ensure!(failed == 0, "{failed} transfers failed");
    Ok(())
}
