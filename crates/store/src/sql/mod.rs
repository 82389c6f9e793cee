//! What both SQL backends share: the store over one sqlx database ([`SqlStore`]), its write
//! transactions, and the [`Dialect`] each backend implements with what truly differs (how
//! arguments and lists are bound, and the few statements written differently). The store's
//! traits are implemented here once, for every dialect: `world.rs`, `credentials.rs`,
//! `report.rs`, `portal.rs`, `operations.rs`, `outbox.rs`; the settlement engine's transactions are in
//! `crate::settlement`, and migrations in `migrate.rs`.
//!
//! Queries are written with numbered parameters (`$1`), which SQLite and PostgreSQL both read.

mod credentials;
pub(crate) mod events;
pub(crate) mod migrate;
mod notifications;
pub(crate) mod operations;
mod outbox;
mod portal;
pub(crate) mod report;
mod requests;
pub(crate) mod webhooks;
mod world;

use crate::{Actor, Result, StoreError};
use ledgerport_core::clock::Clock;
use ledgerport_core::entry::wire_time;
use sqlx::{Database, Pool, SqlSafeStr, SqlStr, Transaction};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{Mutex, Notify, OwnedMutexGuard};

/// One bound parameter. Nulls carry their type: PostgreSQL infers a parameter's type from it.
#[derive(Debug, Clone)]
pub enum Arg {
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
    NullInt,
    NullText,
    /// A list, for [`Dialect::in_list`].
    List(List),
}

/// A list parameter: a JSON array on SQLite, an array on PostgreSQL ([`Dialect::add_list`]).
#[derive(Debug, Clone)]
pub enum List {
    Texts(Vec<String>),
    Ints(Vec<i64>),
    /// A column of a multi-row INSERT bound as one array ([`Dialect::INSERT_BY_COLUMNS`]).
    NullableTexts(Vec<Option<String>>),
    NullableInts(Vec<Option<i64>>),
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}

impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(v.to_owned())
    }
}

impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(v)
    }
}

impl From<&String> for Arg {
    fn from(v: &String) -> Self {
        Arg::Text(v.clone())
    }
}

impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        v.map_or(Arg::NullInt, Arg::Int)
    }
}

impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        v.map_or(Arg::NullText, Arg::Text)
    }
}

impl From<Option<&str>> for Arg {
    fn from(v: Option<&str>) -> Self {
        v.map_or(Arg::NullText, |s| Arg::Text(s.to_owned()))
    }
}

impl From<&[u8]> for Arg {
    fn from(v: &[u8]) -> Self {
        Arg::Blob(v.to_vec())
    }
}

/// The arguments of one statement: `args![a, b, c]`.
macro_rules! args {
    ($($a:expr),* $(,)?) => { vec![$($crate::sql::Arg::from($a)),*] };
}
pub(crate) use args;

/// A row type both backends decode (every `#[derive(sqlx::FromRow)]` and tuple is one).
pub trait FromRows:
    for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
    + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
    + Send
    + Unpin
{
}

impl<T> FromRows for T where
    T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
        + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
        + Send
        + Unpin
{
}

/// What differs between the SQL backends, implemented for `sqlx::Sqlite` and `sqlx::Postgres`.
pub trait Dialect: Database<Connection: sqlx::migrate::Migrate> {
    /// The migrations of this backend: version, description, SQL ([`migrate`]).
    const MIGRATIONS: &'static [(i64, &'static str, &'static str)];
    /// How many tables are called `$1` (0 or 1).
    const TABLE_EXISTS: &'static str;
    /// The function that makes a JSON array of its arguments.
    const JSON_ROW: &'static str;
    /// What ends a locking subquery so that rows other transactions hold locked are passed
    /// over rather than waited for (`sql/outbox.rs`): empty where there is one writer.
    const SKIP_LOCKED: &'static str;
    /// The access log's table as statements name it: on SQLite in the database attached as
    /// `log` (`sqlite::access_log`).
    const ACCESS_LOG: &'static str;

    /// The JSON array (as text, `[]` when there are no rows) of `item` over the rows of a
    /// query, in `order` order.
    fn json_list(item: &str, order: &str) -> String;

    /// The entries of one page of a date, in seq order (what [`report::date_page`] makes one
    /// JSON array of): `$1` ledger, `$2` topic, `$3` date, `$4` after seq, `$5` limit.
    const DATE_PAGE_ROWS: &'static str;

    /// The `balance_after` of the last entry of the latest ledger date before `$3` on ledger
    /// `$1`, topic `$2`; no row when there is none ([`crate::ReportStore::balance_before_date`]).
    const BALANCE_BEFORE_DATE: &'static str;

    /// Whether a multi-row INSERT binds one array per column (`SELECT * FROM unnest($1::text[],
    /// …)`: one statement, the same text whatever the number of rows) rather than one parameter
    /// per value ([`WriteTx::insert_rows`]).
    const INSERT_BY_COLUMNS: bool = false;

    /// Appends the placeholder of the `n`th parameter (from 1) of a statement whose parameters are
    /// all used once, in order (the multi-row INSERTs).
    fn push_parameter(sql: &mut String, n: usize);

    /// `column` is one of the list bound as parameter `param` (an [`Arg::List`]).
    fn in_list(column: &str, param: &str) -> String;

    /// Binds a list parameter.
    fn add_list(
        out: &mut Self::Arguments,
        list: List,
    ) -> std::result::Result<(), sqlx::error::BoxDynError>;

    fn fetch_all<'c, T: FromRows>(
        c: &'c mut Self::Connection,
        sql: SqlStr,
        args: Vec<Arg>,
    ) -> impl Future<Output = Result<Vec<T>>> + Send + 'c;

    fn fetch_optional<'c, T: FromRows>(
        c: &'c mut Self::Connection,
        sql: SqlStr,
        args: Vec<Arg>,
    ) -> impl Future<Output = Result<Option<T>>> + Send + 'c;

    /// Runs a statement; returns the rows it affected.
    fn execute<'c>(
        c: &'c mut Self::Connection,
        sql: SqlStr,
        args: Vec<Arg>,
    ) -> impl Future<Output = Result<u64>> + Send + 'c;
}

/// The arguments of a statement, as `DB` takes them.
pub(crate) fn arguments<DB>(args: Vec<Arg>) -> Result<DB::Arguments>
where
    DB: Dialect,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Vec<u8>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    use sqlx::Arguments;
    let mut out = DB::Arguments::default();
    for a in args {
        let added = match a {
            Arg::Int(v) => out.add(v),
            Arg::Text(v) => out.add(v),
            Arg::Blob(v) => out.add(v),
            Arg::NullInt => out.add(None::<i64>),
            Arg::NullText => out.add(None::<String>),
            Arg::List(list) => DB::add_list(&mut out, list),
        };
        added.map_err(sqlx::Error::Encode)?;
    }
    Ok(out)
}

/// The three ways a dialect runs a statement, the same for every backend; expanded in each
/// backend's `impl Dialect`, where the database's types are known.
macro_rules! dialect_execution {
    () => {
        fn fetch_all<'c, T: $crate::sql::FromRows>(
            c: &'c mut Self::Connection,
            sql: sqlx::SqlStr,
            args: Vec<$crate::sql::Arg>,
        ) -> impl std::future::Future<Output = $crate::Result<Vec<T>>> + Send + 'c {
            async move {
                Ok(
                    sqlx::query_as_with::<Self, T, _>(sql, $crate::sql::arguments::<Self>(args)?)
                        .fetch_all(c)
                        .await?,
                )
            }
        }

        fn fetch_optional<'c, T: $crate::sql::FromRows>(
            c: &'c mut Self::Connection,
            sql: sqlx::SqlStr,
            args: Vec<$crate::sql::Arg>,
        ) -> impl std::future::Future<Output = $crate::Result<Option<T>>> + Send + 'c {
            async move {
                Ok(
                    sqlx::query_as_with::<Self, T, _>(sql, $crate::sql::arguments::<Self>(args)?)
                        .fetch_optional(c)
                        .await?,
                )
            }
        }

        fn execute<'c>(
            c: &'c mut Self::Connection,
            sql: sqlx::SqlStr,
            args: Vec<$crate::sql::Arg>,
        ) -> impl std::future::Future<Output = $crate::Result<u64>> + Send + 'c {
            async move {
                Ok(
                    sqlx::query_with::<Self, _>(sql, $crate::sql::arguments::<Self>(args)?)
                        .execute(c)
                        .await?
                        .rows_affected(),
                )
            }
        }
    };
}
pub(crate) use dialect_execution;

/// A store on one SQL database; `SqliteStore` and `PostgresStore` are its two kinds.
pub struct SqlStore<DB: Database> {
    /// Readers.
    pub(crate) read: Pool<DB>,
    /// What write transactions use. On SQLite one connection, always the same, so its page
    /// cache stays valid from one write to the next; on PostgreSQL the one pool.
    pub(crate) write: Pool<DB>,
    /// SQLite has one writer: this process's write transactions take turns here instead of
    /// colliding. `None` on PostgreSQL, where row locks order the writers of a ledger.
    pub(crate) turn: Option<Arc<Mutex<()>>>,
    /// Writers waiting for the turn that go before the settlement engine's: the access log's,
    /// whose rows every Report API request waits for ([`SqlStore::begin_first`]).
    pub(crate) first: Arc<AtomicUsize>,
    /// Where the access log is written when it has a writer of its own (a SQLite file: its own
    /// database file, connection and turn, `sqlite::access_log`); `None` when it is written
    /// like everything else ([`SqlStore::begin_access_log`]).
    pub(crate) access_log: Option<(Pool<DB>, Arc<Mutex<()>>)>,
    pub(crate) clock: Arc<dyn Clock>,
    /// Statements made of the dialect's parts, made once.
    pub(crate) statements: Statements,
    /// Whether closing writes completeness proofs and booking keeps the dates' digest states:
    /// always, but for the one measurement of what they cost
    /// ([`SqlStore::measure_closing_without_proofs`]).
    pub(crate) proofs: bool,
    /// Told when a transaction that wrote a domain event has committed, so this process's
    /// webhook sender starts at once instead of at its next poll
    /// ([`crate::WebhookStore::webhook_events_written`]).
    pub(crate) events_written: Arc<Notify>,
    /// The simulator's fault injection (`crate::faults`), counting every write statement.
    #[cfg(feature = "fault-injection")]
    pub(crate) faults: Arc<crate::faults::FaultPlan>,
    /// On a SQLite file, the hot reads stepped on the caller's thread instead of through sqlx's
    /// worker (`crate::sqlite::direct`); `None` in memory and on PostgreSQL.
    pub(crate) direct: Option<Arc<crate::sqlite::direct::DirectReads>>,
    /// On a SQLite file, the access log's rows written by a thread of its own
    /// (`crate::sqlite::log_writer`); `None` in memory and on PostgreSQL.
    pub(crate) log_writer: Option<crate::sqlite::log_writer::LogWriter>,
    /// On a SQLite file, the settlement engine's transactions stepped on the caller's thread
    /// (`crate::sqlite::direct_settle`); `None` in memory and on PostgreSQL.
    pub(crate) direct_settle: Option<crate::sqlite::direct_settle::DirectSettle>,
}

/// The statements the store composes from its dialect's parts, kept so that the reads every
/// Report API request makes do not compose them again.
pub(crate) struct Statements {
    pub(crate) ledger_with_units: Arc<str>,
    pub(crate) feed_page: Arc<str>,
    pub(crate) feed_page_in_period: Arc<str>,
    pub(crate) date_page: Arc<str>,
    /// [`report::feed_page_wire`]: indexed by `[in a period]`.
    pub(crate) feed_page_wire: [Arc<str>; 2],
    /// [`report::date_page_wire`].
    pub(crate) date_page_wire: Arc<str>,
}

/// A write transaction, holding the store's write turn (if it has one) until it ends.
pub struct WriteTx<DB: Database> {
    tx: Transaction<'static, DB>,
    /// The store's [`SqlStore::events_written`], told on commit when `wrote_event`.
    events_written: Arc<Notify>,
    pub(crate) wrote_event: bool,
    #[cfg(feature = "fault-injection")]
    faults: Arc<crate::faults::FaultPlan>,
    // Declared after `tx`, so it is released after the transaction has ended.
    _turn: Option<OwnedMutexGuard<()>>,
}

impl<DB: Dialect> SqlStore<DB> {
    /// A store on these pools (see the fields), its schema brought up to date.
    pub(crate) async fn start(
        read: Pool<DB>,
        write: Pool<DB>,
        turn: Option<Arc<Mutex<()>>>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        let store = SqlStore {
            read,
            write,
            turn,
            first: Arc::new(AtomicUsize::new(0)),
            access_log: None,
            clock,
            statements: Statements {
                ledger_with_units: world::ledger_with_units::<DB>().into(),
                feed_page: report::feed_page::<DB>().into(),
                feed_page_in_period: report::feed_page_in_period::<DB>().into(),
                date_page: report::date_page::<DB>().into(),
                feed_page_wire: [false, true].map(|period| report::feed_page_wire(period).into()),
                date_page_wire: report::date_page_wire::<DB>().into(),
            },
            proofs: true,
            events_written: Arc::new(Notify::new()),
            #[cfg(feature = "fault-injection")]
            faults: Arc::default(),
            direct: None,
            log_writer: None,
            direct_settle: None,
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Makes this store close periods as it did before completeness proofs existed (no proofs,
    /// the period's sums in SQL, no digest states kept while booking), so `ledgerport-bench
    /// close` can measure what proofs add to closing in one run, on a database of its own. Nothing else calls it: a store that closes
    /// without proofs leaves closed dates that `verify` and clients find unproved.
    #[doc(hidden)]
    pub fn measure_closing_without_proofs(&mut self) {
        self.proofs = false;
    }

    /// The simulator's fault injection on this store handle (`crate::faults`).
    #[cfg(feature = "fault-injection")]
    pub fn fault_plan(&self) -> Arc<crate::faults::FaultPlan> {
        self.faults.clone()
    }

    /// The time now as the store writes it.
    pub(crate) fn now(&self) -> String {
        wire_time(self.clock.now())
    }

    pub(crate) async fn take_turn(&self) -> Option<OwnedMutexGuard<()>> {
        match &self.turn {
            Some(m) => Some(m.clone().lock_owned().await),
            None => None,
        }
    }

    /// Begins a write transaction.
    pub(crate) async fn begin(&self) -> Result<WriteTx<DB>> {
        let turn = self.take_turn().await;
        Ok(WriteTx {
            tx: self.write.begin().await?,
            events_written: self.events_written.clone(),
            wrote_event: false,
            #[cfg(feature = "fault-injection")]
            faults: self.faults.clone(),
            _turn: turn,
        })
    }

    /// Begins a write transaction that goes before the settlement engine's: a settlement
    /// transaction (an ingestion batch, a close) that gets the turn while such a writer waits
    /// lets it go first. So the access log waits at most for the one batch being written,
    /// never for batches queued before it.
    pub(crate) async fn begin_first(&self) -> Result<WriteTx<DB>> {
        self.first.fetch_add(1, Ordering::SeqCst);
        let turn = self.take_turn().await;
        self.first.fetch_sub(1, Ordering::SeqCst);
        Ok(WriteTx {
            tx: self.write.begin().await?,
            events_written: self.events_written.clone(),
            wrote_event: false,
            #[cfg(feature = "fault-injection")]
            faults: self.faults.clone(),
            _turn: turn,
        })
    }

    /// Begins a write transaction of the access log: on its own connection and turn where it has
    /// them ([`SqlStore::access_log`]), so that it never waits for the ledger database's writer;
    /// otherwise as [`SqlStore::begin_first`].
    pub(crate) async fn begin_access_log(&self) -> Result<WriteTx<DB>> {
        let Some((pool, turn)) = &self.access_log else {
            return self.begin_first().await;
        };
        let turn = turn.clone().lock_owned().await;
        Ok(WriteTx {
            tx: pool.begin().await?,
            events_written: self.events_written.clone(),
            wrote_event: false,
            #[cfg(feature = "fault-injection")]
            faults: self.faults.clone(),
            _turn: Some(turn),
        })
    }

    /// Begins a transaction of the settlement engine through sqlx (on a SQLite file the engine's
    /// batches and closings go through [`SqlStore::direct_settle`] instead), with the turn of
    /// [`SqlStore::settling_turn`].
    pub(crate) async fn begin_settling(&self) -> Result<WriteTx<DB>> {
        let turn = self.settling_turn().await;
        Ok(WriteTx {
            tx: self.write.begin().await?,
            events_written: self.events_written.clone(),
            wrote_event: false,
            #[cfg(feature = "fault-injection")]
            faults: self.faults.clone(),
            _turn: turn,
        })
    }

    /// The write turn of a settlement transaction: taken after any writer that goes first
    /// ([`SqlStore::begin_first`]) waiting when it got the turn, by giving it back once and
    /// queueing again, behind them.
    pub(crate) async fn settling_turn(&self) -> Option<OwnedMutexGuard<()>> {
        let turn = self.take_turn().await;
        if turn.is_some() && self.first.load(Ordering::SeqCst) > 0 {
            drop(turn);
            return self.take_turn().await;
        }
        turn
    }

    /// One statement written on its own (its own transaction); returns the rows it affected.
    pub(crate) async fn write_one(&self, sql: impl SqlSafeStr, args: Vec<Arg>) -> Result<u64> {
        let _turn = self.take_turn().await;
        let mut c = self.write.acquire().await?;
        let sql = sql.into_sql_str();
        #[cfg(feature = "fault-injection")]
        let fail_after = self.faults.before(sql.as_str())?;
        #[cfg(feature = "fault-injection")]
        let text = sql.clone();
        let out = DB::execute(&mut c, sql, args).await;
        #[cfg(feature = "fault-injection")]
        if fail_after {
            return Err(self.faults.after(text.as_str()));
        }
        out
    }

    /// One statement written on its own that returns a row.
    pub(crate) async fn write_opt<T: FromRows>(
        &self,
        sql: impl SqlSafeStr,
        args: Vec<Arg>,
    ) -> Result<Option<T>> {
        let _turn = self.take_turn().await;
        let mut c = self.write.acquire().await?;
        let sql = sql.into_sql_str();
        #[cfg(feature = "fault-injection")]
        let fail_after = self.faults.before(sql.as_str())?;
        #[cfg(feature = "fault-injection")]
        let text = sql.clone();
        let out = DB::fetch_optional(&mut c, sql, args).await;
        #[cfg(feature = "fault-injection")]
        if fail_after {
            return Err(self.faults.after(text.as_str()));
        }
        out
    }

    pub(crate) async fn all<T: FromRows>(
        &self,
        sql: impl SqlSafeStr,
        args: Vec<Arg>,
    ) -> Result<Vec<T>> {
        let mut c = self.read.acquire().await?;
        DB::fetch_all(&mut c, sql.into_sql_str(), args).await
    }

    pub(crate) async fn opt<T: FromRows>(
        &self,
        sql: impl SqlSafeStr,
        args: Vec<Arg>,
    ) -> Result<Option<T>> {
        let mut c = self.read.acquire().await?;
        DB::fetch_optional(&mut c, sql.into_sql_str(), args).await
    }

    pub(crate) async fn one<T: FromRows>(&self, sql: impl SqlSafeStr, args: Vec<Arg>) -> Result<T> {
        self.opt(sql, args)
            .await?
            .ok_or_else(|| StoreError::Corrupt("a query that returns one row returned none".into()))
    }
}

impl<DB: Dialect> WriteTx<DB> {
    pub(crate) async fn all<T: FromRows>(
        &mut self,
        sql: impl SqlSafeStr,
        args: Vec<Arg>,
    ) -> Result<Vec<T>> {
        let sql = sql.into_sql_str();
        #[cfg(feature = "fault-injection")]
        let fail_after = self.faults.before(sql.as_str())?;
        #[cfg(feature = "fault-injection")]
        let text = sql.clone();
        let out = DB::fetch_all(&mut self.tx, sql, args).await;
        #[cfg(feature = "fault-injection")]
        if fail_after {
            return Err(self.faults.after(text.as_str()));
        }
        out
    }

    pub(crate) async fn opt<T: FromRows>(
        &mut self,
        sql: impl SqlSafeStr,
        args: Vec<Arg>,
    ) -> Result<Option<T>> {
        let sql = sql.into_sql_str();
        #[cfg(feature = "fault-injection")]
        let fail_after = self.faults.before(sql.as_str())?;
        #[cfg(feature = "fault-injection")]
        let text = sql.clone();
        let out = DB::fetch_optional(&mut self.tx, sql, args).await;
        #[cfg(feature = "fault-injection")]
        if fail_after {
            return Err(self.faults.after(text.as_str()));
        }
        out
    }

    pub(crate) async fn one<T: FromRows>(
        &mut self,
        sql: impl SqlSafeStr,
        args: Vec<Arg>,
    ) -> Result<T> {
        self.opt(sql, args)
            .await?
            .ok_or_else(|| StoreError::Corrupt("a query that returns one row returned none".into()))
    }

    pub(crate) async fn execute(&mut self, sql: impl SqlSafeStr, args: Vec<Arg>) -> Result<u64> {
        let sql = sql.into_sql_str();
        #[cfg(feature = "fault-injection")]
        let fail_after = self.faults.before(sql.as_str())?;
        #[cfg(feature = "fault-injection")]
        let text = sql.clone();
        let out = DB::execute(&mut self.tx, sql, args).await;
        #[cfg(feature = "fault-injection")]
        if fail_after {
            return Err(self.faults.after(text.as_str()));
        }
        out
    }

    pub(crate) async fn commit(self) -> Result<()> {
        #[cfg(feature = "fault-injection")]
        let (faults, fail_after) = {
            let fail_after = self.faults.before("COMMIT")?;
            (self.faults.clone(), fail_after)
        };
        let (events_written, wrote_event) = (self.events_written.clone(), self.wrote_event);
        self.tx.commit().await?;
        if wrote_event {
            // A permit is kept if the sender is busy, so it looks again when it is done.
            events_written.notify_one();
        }
        #[cfg(feature = "fault-injection")]
        if fail_after {
            return Err(faults.after("COMMIT"));
        }
        Ok(())
    }

    /// Writes an audit record of a change made in this transaction.
    pub(crate) async fn audit(
        &mut self,
        at: &str,
        by: &Actor,
        action: &str,
        subject: &str,
        detail: &str,
    ) -> Result<()> {
        self.execute(
            "INSERT INTO audit_log (at, actor, action, subject, detail) VALUES ($1, $2, $3, $4, $5)",
            args![at, &by.0, action, subject, detail],
        )
        .await?;
        Ok(())
    }
}

/// A row type the settlement engine reads: decoded by sqlx on either backend, and from a rusqlite
/// row on a SQLite file's settlement connection (`crate::sqlite::direct_settle`).
pub trait TxRow: FromRows + crate::sqlite::direct_settle::FromDirect {}

impl<T: FromRows + crate::sqlite::direct_settle::FromDirect> TxRow for T {}

/// What a write transaction steps its statements on: sqlx's transaction ([`WriteTx`]) or, for
/// the settlement engine on a SQLite file, a rusqlite connection stepped on the caller's thread
/// (`crate::sqlite::direct_settle::DirectTx`). The engine's code is written once over this; what
/// is built from statements (multi-row inserts, domain events) is written once here.
pub trait Tx<DB: Dialect>: Send {
    fn all<T: TxRow>(
        &mut self,
        sql: &str,
        args: Vec<Arg>,
    ) -> impl Future<Output = Result<Vec<T>>> + Send;

    fn opt<T: TxRow>(
        &mut self,
        sql: &str,
        args: Vec<Arg>,
    ) -> impl Future<Output = Result<Option<T>>> + Send;

    /// Runs one statement; returns the rows it changed.
    fn execute(&mut self, sql: &str, args: Vec<Arg>) -> impl Future<Output = Result<u64>> + Send;

    fn commit(self) -> impl Future<Output = Result<()>> + Send;

    /// Marks the transaction as one that wrote a domain event: its commit wakes the webhook
    /// sender ([`SqlStore::events_written`]).
    fn wrote_event(&mut self);

    fn one<T: TxRow>(
        &mut self,
        sql: &str,
        args: Vec<Arg>,
    ) -> impl Future<Output = Result<T>> + Send {
        async move {
            self.opt(sql, args).await?.ok_or_else(|| {
                StoreError::Corrupt("a query that returns one row returned none".into())
            })
        }
    }

    /// Writes a domain event in this transaction ([`webhooks::record_event`]).
    fn record_event(
        &mut self,
        at: &str,
        event: webhooks::NewEvent,
    ) -> impl Future<Output = Result<ledgerport_core::world::RowId>> + Send
    where
        Self: Sized,
    {
        webhooks::record_event(self, at, event)
    }

    /// Inserts `rows` of `columns` values each: `head` is `INSERT ... INTO table (columns)`,
    /// `tail` what follows the values (an `ON CONFLICT` clause, or nothing). Statements come in
    /// a few fixed sizes only, so the connection's prepared-statement cache holds them all:
    /// preparing a statement of hundreds of rows anew for every odd batch size costs more than
    /// the extra executions of smaller ones. Where the dialect binds columns as arrays
    /// ([`Dialect::INSERT_BY_COLUMNS`]) it is one statement of one array per column instead.
    fn insert_rows(
        &mut self,
        head: &str,
        columns: usize,
        tail: &str,
        rows: Vec<Vec<Arg>>,
    ) -> impl Future<Output = Result<()>> + Send {
        async move {
            if rows.is_empty() {
                return Ok(());
            }
            let rows = if DB::INSERT_BY_COLUMNS {
                match by_columns(columns, rows) {
                    Ok(arrays) => {
                        let mut sql = String::with_capacity(head.len() + columns * 16 + tail.len());
                        sql.push_str(head);
                        sql.push_str(" SELECT * FROM unnest(");
                        for (i, a) in arrays.iter().enumerate() {
                            if i > 0 {
                                sql.push_str(", ");
                            }
                            DB::push_parameter(&mut sql, i + 1);
                            sql.push_str(match a {
                                List::NullableInts(_) | List::Ints(_) => "::bigint[]",
                                List::NullableTexts(_) | List::Texts(_) => "::text[]",
                            });
                        }
                        sql.push(')');
                        sql.push_str(tail);
                        let args = arrays.into_iter().map(Arg::List).collect();
                        self.execute(&sql, args).await?;
                        return Ok(());
                    }
                    // A column of another type (bytes): a parameter per value, as below.
                    Err(rows) => rows,
                }
            } else {
                rows
            };
            // SQLite allows 32766 parameters per statement and PostgreSQL 65535; stay well below.
            let largest = (8_000 / columns).max(1);
            let mut rows = rows.into_iter().peekable();
            let mut left = rows.len();
            while rows.peek().is_some() {
                let size = [largest, 64, 16, 4, 1]
                    .into_iter()
                    .find(|&n| n <= left)
                    .unwrap_or(1);
                left -= size;
                let sql = values_statement::<DB>(head, size, columns, tail);
                let args: Vec<Arg> = rows.by_ref().take(size).flatten().collect();
                self.execute(&sql, args).await?;
            }
            Ok(())
        }
    }
}

impl<DB: Dialect> Tx<DB> for WriteTx<DB> {
    async fn all<T: TxRow>(&mut self, sql: &str, args: Vec<Arg>) -> Result<Vec<T>> {
        WriteTx::all(self, sqlx::AssertSqlSafe(sql), args).await
    }

    async fn opt<T: TxRow>(&mut self, sql: &str, args: Vec<Arg>) -> Result<Option<T>> {
        WriteTx::opt(self, sqlx::AssertSqlSafe(sql), args).await
    }

    async fn execute(&mut self, sql: &str, args: Vec<Arg>) -> Result<u64> {
        WriteTx::execute(self, sqlx::AssertSqlSafe(sql), args).await
    }

    async fn commit(self) -> Result<()> {
        WriteTx::commit(self).await
    }

    fn wrote_event(&mut self) {
        self.wrote_event = true;
    }
}

/// `head VALUES ($1, …), (…) tail` for `rows` rows of `columns` parameters each.
pub(crate) fn values_statement<DB: Dialect>(
    head: &str,
    rows: usize,
    columns: usize,
    tail: &str,
) -> String {
    let mut sql = String::with_capacity(head.len() + rows * columns * 6 + tail.len());
    sql.push_str(head);
    sql.push_str(" VALUES ");
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..columns {
            if c > 0 {
                sql.push_str(", ");
            }
            DB::push_parameter(&mut sql, r * columns + c + 1);
        }
        sql.push(')');
    }
    sql.push_str(tail);
    sql
}

/// The rows as one array per column, each of integers or of texts (nulls allowed); the rows
/// back unchanged when a column holds anything else or mixes the two.
fn by_columns(
    columns: usize,
    rows: Vec<Vec<Arg>>,
) -> std::result::Result<Vec<List>, Vec<Vec<Arg>>> {
    let ints: Vec<bool> = match rows.first() {
        Some(first) if first.len() == columns => first
            .iter()
            .map(|a| matches!(a, Arg::Int(_) | Arg::NullInt))
            .collect(),
        _ => return Err(rows),
    };
    let fits = rows.iter().all(|r| {
        r.len() == columns
            && r.iter().zip(&ints).all(|(a, &int)| match a {
                Arg::Int(_) | Arg::NullInt => int,
                Arg::Text(_) | Arg::NullText => !int,
                Arg::Blob(_) | Arg::List(_) => false,
            })
    });
    if !fits {
        return Err(rows);
    }
    let mut arrays: Vec<List> = ints
        .iter()
        .map(|&int| {
            if int {
                List::NullableInts(Vec::with_capacity(rows.len()))
            } else {
                List::NullableTexts(Vec::with_capacity(rows.len()))
            }
        })
        .collect();
    for row in rows {
        for (a, array) in row.into_iter().zip(arrays.iter_mut()) {
            match (array, a) {
                (List::NullableInts(v), Arg::Int(i)) => v.push(Some(i)),
                (List::NullableInts(v), _) => v.push(None),
                (List::NullableTexts(v), Arg::Text(t)) => v.push(Some(t)),
                (List::NullableTexts(v), _) => v.push(None),
                // Not made above.
                (List::Texts(_) | List::Ints(_), _) => {}
            }
        }
    }
    Ok(arrays)
}

/// Maps a constraint failure to the domain's words; anything else stays as it was.
pub(crate) fn constraint(e: StoreError, what: impl Fn() -> String) -> StoreError {
    if let StoreError::Database(db) = &e
        && let Some(sqlx::Error::Database(d)) = db.0.downcast_ref::<sqlx::Error>()
    {
        if d.is_unique_violation() {
            return StoreError::Conflict(what());
        }
        if d.is_foreign_key_violation() {
            return StoreError::NotFound(format!("something {} refers to", what()));
        }
    }
    e
}

/// The strings as one list argument.
pub(crate) fn texts<S: AsRef<str>>(items: &[S]) -> Arg {
    Arg::List(List::Texts(
        items.iter().map(|s| s.as_ref().to_owned()).collect(),
    ))
}

impl From<ledgerport_core::changes::Refusal> for StoreError {
    fn from(r: ledgerport_core::changes::Refusal) -> Self {
        match r {
            ledgerport_core::changes::Refusal::NotFound(what) => StoreError::NotFound(what),
            ledgerport_core::changes::Refusal::Invalid(why) => StoreError::Invalid(why),
        }
    }
}
