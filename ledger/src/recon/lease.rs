//! One reconciliation runner per database: the runner that holds a session-level advisory lock
//! on its own connection runs the movements, the runs and the schedules; the others wait. When
//! the holder dies its connection closes and the lock is free, so another engine takes over on
//! its next interval. (The core refuses a step done twice in any case: the lock keeps engines
//! from calling a provider twice for the same step, and from counting one failure twice.)

use sqlx::{Connection, PgConnection};
use tracing::{info, warn};

/// The advisory lock's key: "recon" in ASCII.
const KEY: i64 = 0x0072_6563_6f6e;

pub(super) struct Lease {
    url: String,
    held: Option<PgConnection>,
}

impl Lease {
    pub fn new(url: &str) -> Lease {
        Lease { url: url.to_owned(), held: None }
    }

    /// Whether this runner holds the lock now: taken if free, kept while its connection lives.
    pub async fn hold(&mut self) -> bool {
        if let Some(conn) = &mut self.held {
            if conn.ping().await.is_ok() {
                return true;
            }
            warn!("reconciliation runner lost its lock's connection");
            self.held = None;
        }
        let mut conn = match PgConnection::connect(&self.url).await {
            Ok(conn) => conn,
            Err(e) => {
                warn!(error = %e, "reconciliation runner cannot reach the database");
                return false;
            }
        };
        match sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1)").bind(KEY).fetch_one(&mut conn).await {
            Ok(true) => {
                info!("reconciliation runner holds the lock: it runs movements, runs and schedules");
                self.held = Some(conn);
                true
            }
            Ok(false) => false,
            Err(e) => {
                warn!(error = %e, "reconciliation runner could not ask for the lock");
                false
            }
        }
    }
}
