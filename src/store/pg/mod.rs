//! The PostgreSQL backend: every record of the store in one database, shared by any number of
//! replicas.
//!
//! - Connections come from a pool (`deadpool-postgres`); TLS through rustls as `sslmode` asks
//!   ([`url`]).
//! - The schema is migrated at connection time, inside one transaction under an advisory lock, so
//!   replicas starting together migrate once ([`migrate`]). A database whose schema is newer than
//!   this binary's is refused.
//! - Caches elsewhere in the daemon (the API key cache) follow the store's auth epoch. Here it
//!   moves on every local change that can take access away, and on every `NOTIFY` of another
//!   replica's change, received on a connection of its own ([`listen`]). While that connection is
//!   down, the epoch moves on every read, so nothing is answered from a cache that might have
//!   missed a change; after a reconnect it moves once (the full check).
//! - A commit is durable: [`PgStore::flush`] has nothing left to do.

mod cluster;
pub(crate) mod listen;
pub(crate) mod migrate;
mod ops;
pub(crate) mod url;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};

use super::StoreError;
pub use url::DatabaseUrl;

/// Connections kept open at most by one replica.
const POOL_SIZE: usize = 16;
/// How long a request waits for a connection (or for one to be made) before it answers 503.
const POOL_WAIT: Duration = Duration::from_secs(5);
/// The channel every change that can take access away is announced on.
pub(crate) const AUTH_CHANNEL: &str = "coderflow_auth";

/// The PostgreSQL store. Cloning it is one reference count.
#[derive(Clone)]
pub(crate) struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    /// See the module doc.
    auth_epoch: AtomicU64,
    /// Whether the `LISTEN` connection is up.
    listening: AtomicBool,
}

impl PgStore {
    /// Connects to `url`, migrates the schema (see [`migrate`]) and starts listening for other
    /// replicas' changes. Needs a Tokio runtime.
    ///
    /// Fails when the database cannot be reached or migrated, or its schema is newer than this
    /// binary's.
    pub(crate) async fn connect(url: &DatabaseUrl) -> Result<PgStore, StoreError> {
        let store = PgStore::connect_without_listening(url).await?;
        tokio::spawn(listen::run(Arc::downgrade(&store.inner), url.clone()));
        Ok(store)
    }

    /// [`PgStore::connect`] without the listener: for commands that run one operation and exit.
    pub(crate) async fn connect_without_listening(
        url: &DatabaseUrl,
    ) -> Result<PgStore, StoreError> {
        let manager = Manager::from_config(
            url.config().clone(),
            url.tls()?,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(POOL_WAIT))
            .recycle_timeout(Some(POOL_WAIT))
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let store = PgStore {
            inner: Arc::new(Inner {
                pool,
                auth_epoch: AtomicU64::new(0),
                listening: AtomicBool::new(false),
            }),
        };
        let mut client = store.client().await?;
        migrate::migrate(&mut client).await?;
        Ok(store)
    }

    /// Migrates the schema of `url`'s database and disconnects.
    pub(crate) async fn migrate_only(url: &DatabaseUrl) -> Result<migrate::Migrated, StoreError> {
        let (mut client, connection) = url.config().connect(url.tls()?).await?;
        let driver = tokio::spawn(connection);
        let migrated = migrate::migrate(&mut client).await;
        drop(client);
        let _ = driver.await;
        migrated
    }

    /// A pooled connection (for transactions; single statements use [`PgStore::execute`] and
    /// the query helpers).
    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.inner.pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Backend(e) => StoreError::Postgres(e),
            other => StoreError::Unavailable(other.to_string()),
        })
    }

    /// One statement on a pooled connection, prepared once per connection: rows changed.
    async fn execute(&self, sql: &str, params: Params<'_>) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await?;
        Ok(client.execute(&statement, params).await?)
    }

    /// [`PgStore::execute`] answering the rows.
    async fn query(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Vec<tokio_postgres::Row>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await?;
        Ok(client.query(&statement, params).await?)
    }

    /// [`PgStore::execute`] answering at most one row.
    async fn query_opt(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Option<tokio_postgres::Row>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await?;
        Ok(client.query_opt(&statement, params).await?)
    }

    /// [`PgStore::execute`] answering exactly one row.
    async fn query_one(
        &self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<tokio_postgres::Row, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await?;
        Ok(client.query_one(&statement, params).await?)
    }

    /// See the module doc.
    pub(crate) fn auth_epoch(&self) -> u64 {
        if self.inner.listening.load(Ordering::Acquire) {
            self.inner.auth_epoch.load(Ordering::Acquire)
        } else {
            self.bump_auth_epoch()
        }
    }

    fn bump_auth_epoch(&self) -> u64 {
        self.inner.auth_epoch.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Commits are durable: nothing to do.
    pub(crate) async fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Whether the database answers now (and other replicas' changes reach this one).
    pub(crate) async fn ready(&self) -> bool {
        if !self.inner.listening.load(Ordering::Acquire) {
            return false;
        }
        let ping = async {
            let client = self.client().await?;
            client.simple_query("SELECT 1").await?;
            Ok::<_, StoreError>(())
        };
        matches!(
            tokio::time::timeout(Duration::from_secs(2), ping).await,
            Ok(Ok(()))
        )
    }
}

impl Inner {
    fn set_listening(&self, up: bool) {
        self.listening.store(up, Ordering::Release);
        self.auth_epoch.fetch_add(1, Ordering::AcqRel);
    }

    fn changed_elsewhere(&self) {
        self.auth_epoch.fetch_add(1, Ordering::AcqRel);
    }
}

/// A statement's parameters.
type Params<'a> = &'a [&'a (dyn tokio_postgres::types::ToSql + Sync)];
