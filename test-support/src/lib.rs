//! Test support, kept out of the production crates: a fresh, migrated database per test on
//! the Postgres that `DATABASE_URL` names, dropped when the test ends (passed or panicked).

use sqlx::{Connection, Executor, PgConnection};

/// A database created for one test. It is dropped by [`TestDatabase::drop_database`], or, if a
/// test ends without calling it (a failed assertion included), when the value is dropped.
pub struct TestDatabase {
    pub url: String,
    admin_url: String,
    name: String,
    dropped: bool,
}

/// `DATABASE_URL` is required: tests run against a real Postgres (scripts/test starts one).
pub async fn fresh_database() -> TestDatabase {
    let db = create("DATABASE_URL").await;
    ledger_store::migrate(&db.url).await.expect("migrate test database");
    db
}

/// A database for read models kept apart from the log, on the second Postgres cluster that
/// `READ_DATABASE_URL` names (scripts/test starts one); empty, as an operator would hand it
/// over: the projection runner creates what it needs there.
pub async fn fresh_read_database() -> TestDatabase {
    create("READ_DATABASE_URL").await
}

async fn create(variable: &str) -> TestDatabase {
    let admin_url = std::env::var(variable)
        .unwrap_or_else(|_| panic!("{variable} must name a Postgres server (scripts/test starts one)"));
    let name = format!("ledger_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&admin_url).await.expect("connect to DATABASE_URL");
    admin.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).await.expect("create test database");
    let base = admin_url.split('?').next().unwrap_or(&admin_url);
    let url = format!("{}/{name}", base.rsplit_once('/').map_or(base, |(b, _)| b));
    // From here on the guard owns the database, so a failed migration does not leak it.
    TestDatabase { url, admin_url, name, dropped: false }
}

async fn drop_named(admin_url: &str, name: &str) {
    if let Ok(mut admin) = PgConnection::connect(admin_url).await {
        let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        let _ = admin.execute(sqlx::AssertSqlSafe(sql)).await;
    }
}

impl TestDatabase {
    pub async fn connect(&self) -> PgConnection {
        PgConnection::connect(&self.url).await.expect("connect to test database")
    }

    pub async fn drop_database(mut self) {
        drop_named(&self.admin_url, &self.name).await;
        self.dropped = true;
    }
}

impl Drop for TestDatabase {
    /// A test that ended early: drop the database on a thread of its own (this may run inside
    /// the test's runtime, which must not be blocked on itself).
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let dropping = std::thread::spawn(move || {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                runtime.block_on(drop_named(&admin_url, &name));
            }
        });
        let _ = dropping.join();
    }
}

/// Every log line of the test binary, at every level, from every thread (the writer's, the
/// followers', the handlers'): for tests that prove a secret never reaches the logs. One
/// process-wide subscriber, installed by the first `start`, so no log line escapes it.
pub struct CapturedLogs {
    lines: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLogs {
    pub fn start() -> CapturedLogs {
        static LINES: std::sync::OnceLock<std::sync::Arc<std::sync::Mutex<Vec<u8>>>> = std::sync::OnceLock::new();
        let lines = LINES
            .get_or_init(|| {
                let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
                let writer = lines.clone();
                let subscriber = tracing_subscriber::fmt()
                    .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
                    .with_ansi(false)
                    .with_writer(move || Sink(writer.clone()))
                    .finish();
                // Another global subscriber already installed would leave this one unused: say so.
                tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber");
                lines
            })
            .clone();
        CapturedLogs { lines }
    }

    /// Everything logged so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.lines.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn exists(admin_url: &str, name: &str) -> bool {
        let mut admin = PgConnection::connect(admin_url).await.unwrap();
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&mut admin)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_database_is_dropped_when_its_test_ends_whether_or_not_it_says_so() {
        let db = fresh_database().await;
        let (admin_url, name) = (db.admin_url.clone(), db.name.clone());
        assert!(exists(&admin_url, &name).await);
        db.drop_database().await;
        assert!(!exists(&admin_url, &name).await, "dropped when asked");

        let db = fresh_database().await;
        let name = db.name.clone();
        let _connection = db.connect().await;
        // A test that panics drops its values while unwinding: the same path as this drop.
        drop(db);
        assert!(!exists(&admin_url, &name).await, "dropped by the guard, open connections and all");
    }
}
