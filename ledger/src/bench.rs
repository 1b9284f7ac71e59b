//! `ledger bench-writer`: a closed-loop load generator that drives the writer in-process.
//! Also the load of the crash test (`--print-acks` prints each acknowledged transfer).

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Context;
use ledger_core::ledger::Command;
use ledger_core::{
    AccountId, AccountKind, AccountRef, BalanceLimit, BatchMode, CreateTransfer, CurrencyCode, OpenAccount,
    PostingRequest, Side, TransferId,
};
use ledger_store::{EventMeta, LedgerHandle, Writer, WriterConfig};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::load::{Mix, Picker, report};

#[derive(clap::Args, Clone)]
pub struct Args {
    /// Concurrent submitters, each waiting for its answer before the next request.
    #[arg(long, default_value_t = 64)]
    tasks: usize,
    #[command(flatten)]
    mix: Mix,
    /// Print `ack <transfer id> <position>` for every acknowledged transfer.
    #[arg(long)]
    print_acks: bool,
}

fn account_id(i: u32) -> AccountId {
    AccountId(Uuid::from_u128(0xbe7c_0000_0000_0000_0000_0000_0000_0000 + u128::from(i)))
}
const FEES: u32 = u32::MAX;

async fn open_accounts(ledger: &LedgerHandle, n: u32) -> anyhow::Result<()> {
    for i in (0..n).chain([FEES]) {
        let (code, kind) = if i == FEES {
            ("bench:fees".to_owned(), AccountKind::Income)
        } else {
            (format!("bench:{i}"), AccountKind::Asset)
        };
        let command = Command::OpenAccount(OpenAccount {
            id: account_id(i),
            code,
            currency: CurrencyCode::parse("EUR").expect("EUR is valid"),
            kind,
            limit: BalanceLimit::None,
            metadata: serde_json::json!({}),
        });
        ledger.submit(command, EventMeta::default()).await?.map_err(|r| anyhow::anyhow!("opening account {i}: {r}"))?;
    }
    Ok(())
}

fn next_transfer(picker: &mut Picker, accounts: u32, hot: bool) -> CreateTransfer {
    let (debit, credit) = picker.pair(accounts);
    let posting =
        |i: u32, side: Side, amount: Decimal| PostingRequest { account: AccountRef::Id(account_id(i)), side, amount };
    let mut postings = vec![posting(debit, Side::Debit, Decimal::new(1000, 2))];
    if hot {
        postings.push(posting(credit, Side::Credit, Decimal::new(990, 2)));
        postings.push(posting(FEES, Side::Credit, Decimal::new(10, 2)));
    } else {
        postings.push(posting(credit, Side::Credit, Decimal::new(1000, 2)));
    }
    CreateTransfer {
        id: TransferId(Uuid::new_v4()),
        postings,
        pending: false,
        timeout_seconds: None,
        external_ref: None,
        metadata: serde_json::Value::Null,
    }
}

pub async fn run(url: &str, args: Args, config: WriterConfig) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.mix.accounts >= 2 && args.tasks >= 1 && args.mix.batch >= 1,
        "need 2+ accounts, 1+ tasks, batch 1+"
    );
    let (ledger, writer_task) = Writer::start(url, config).await.context("starting the writer")?;
    open_accounts(&ledger, args.mix.accounts).await?;

    let per_task = args.mix.transfers.div_ceil(args.tasks);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..args.tasks {
        let (ledger, args) = (ledger.clone(), args.clone());
        tasks.push(tokio::spawn(async move {
            let mut picker = Picker::new(t);
            let mut latencies = Vec::with_capacity(per_task / args.mix.batch + 1);
            let mut done = 0;
            let stdout = std::io::stdout();
            while done < per_task {
                let n = args.mix.batch.min(per_task - done);
                let items: Vec<CreateTransfer> =
                    (0..n).map(|_| next_transfer(&mut picker, args.mix.accounts, args.mix.hot)).collect();
                let ids: Vec<Uuid> = items.iter().map(|t| t.id.0).collect();
                let sent = Instant::now();
                let decisions = if n == 1 {
                    let item = items.into_iter().next().expect("one item");
                    vec![ledger.submit(Command::CreateTransfer(item), EventMeta::default()).await?]
                } else {
                    let batch = ledger.submit_batch(items, BatchMode::Independent, EventMeta::default()).await?;
                    batch.map_err(|r| anyhow::anyhow!("batch refused: {r}"))?
                };
                latencies.push(sent.elapsed());
                if args.print_acks {
                    let mut out = stdout.lock();
                    for (id, decision) in ids.iter().zip(&decisions) {
                        if let Ok(committed) = decision {
                            writeln!(out, "ack {id} {}", committed.position)?;
                        }
                    }
                    out.flush()?;
                }
                for decision in decisions {
                    decision.map_err(|r| anyhow::anyhow!("transfer rejected: {r}"))?;
                }
                done += n;
            }
            anyhow::Ok((done, latencies))
        }));
    }
    let mut total = 0;
    let mut latencies: Vec<Duration> = Vec::new();
    for task in tasks {
        let (n, l) = task.await??;
        total += n;
        latencies.extend(l);
    }
    let elapsed = started.elapsed();
    let m = ledger.metrics();
    let get = ledger_store::metrics::WriterMetrics::get;
    let (groups, commands) = (get(&m.groups).max(1), get(&m.commands));
    let writer_ms = |micros: u64| (micros as f64 / 1000.0).round();
    let writer = serde_json::json!({
        "groups": groups,
        "commands_per_group": commands / groups,
        "prefetch_ms": writer_ms(get(&m.prefetch_micros)),
        "decide_ms": writer_ms(get(&m.decide_micros)),
        "commit_ms": writer_ms(get(&m.commit_micros)),
    });
    drop(ledger);
    writer_task.await?;

    let extra = serde_json::json!({"tasks": args.tasks, "writer": writer});
    println!("{}", report(&args.mix, total as u64, elapsed, &mut latencies, extra));
    Ok(())
}
