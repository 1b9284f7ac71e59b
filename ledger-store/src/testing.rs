//! Test support: a fresh, migrated database per test on the Postgres that `DATABASE_URL` names.

use sqlx::{Connection, Executor, PgConnection};

/// A database created for one test; `drop_database` removes it.
pub struct TestDatabase {
    pub url: String,
    admin_url: String,
    name: String,
}

/// `DATABASE_URL` is required: tests run against a real Postgres (scripts/test starts one).
pub async fn fresh_database() -> TestDatabase {
    let admin_url =
        std::env::var("DATABASE_URL").expect("DATABASE_URL must name a Postgres server (scripts/test starts one)");
    let name = format!("ledger_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&admin_url).await.expect("connect to DATABASE_URL");
    admin.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).await.expect("create test database");
    let base = admin_url.split('?').next().unwrap_or(&admin_url);
    let url = format!("{}/{name}", base.rsplit_once('/').map_or(base, |(b, _)| b));
    crate::migrate(&url).await.expect("migrate test database");
    TestDatabase { url, admin_url, name }
}

impl TestDatabase {
    pub async fn connect(&self) -> PgConnection {
        PgConnection::connect(&self.url).await.expect("connect to test database")
    }

    pub async fn drop_database(self) {
        if let Ok(mut admin) = PgConnection::connect(&self.admin_url).await {
            let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
            let _ = admin.execute(sqlx::AssertSqlSafe(sql)).await;
        }
    }
}
