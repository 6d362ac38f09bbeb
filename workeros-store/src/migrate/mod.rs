//! Migrations: how each workeros crate that owns tables declares them ([`Component`],
//! [`Migration`], [`ColumnKind`], [`col`], [`index`]), applies them at start-up ([`run`]), checks
//! a schema it may not change ([`check`]), and hands them to a host's own migration tool as SQL
//! ([`export`]).
//!
//! A [`Component`] (the store, `workeros-auth`, `workeros-events`) is the registry of its
//! [`SystemTable`]s and its ordered, versioned migrations; applied versions are recorded in the
//! namespace's `migrations` table (`component`, `version`). [`run`] applies the missing versions
//! inside one write transaction that first takes a lock (`pg_advisory_xact_lock` on PostgreSQL;
//! `BEGIN IMMEDIATE` on SQLite), so several processes starting at once apply each version exactly
//! once, then checks the result as [`check`] does. Every statement a migration runs is also what
//! [`export`] writes, so a schema made by a host's SQL runner is the schema `run` makes.

mod check;
mod export;

pub use check::{SchemaProblem, SchemaReport, check, report};
pub use export::{MigrationSql, export};

use crate::names::{Names, SystemTable};
use crate::{Db, StoreError, Tx};
use sea_query::{
    Alias, ColumnDef, Expr, ExprTrait, Index, IndexCreateStatement, PostgresQueryBuilder, Query,
    SchemaStatementBuilder, SqliteQueryBuilder, Table, TableCreateStatement,
};
use workeros_dsl::Dialect;

/// A column kind of a system table, with its storage type per dialect (for crates that own
/// tables: `workeros-auth`, `workeros-events`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// A UUID (`uuid` / `TEXT`).
    Uuid,
    /// Text (`text` / `TEXT`).
    Text,
    /// A boolean (`boolean` / `INTEGER` 0 or 1).
    Bool,
    /// JSON (`jsonb` / `TEXT`).
    Json,
    /// An instant (`timestamptz` / fixed-width RFC 3339 `TEXT`).
    Ts,
    /// A 64-bit integer.
    BigInt,
}

impl ColumnKind {
    /// The storage type in `d`.
    pub fn storage(self, d: Dialect) -> &'static str {
        match (d, self) {
            (Dialect::Postgres, ColumnKind::Uuid) => "uuid",
            (Dialect::Postgres, ColumnKind::Text) => "text",
            (Dialect::Postgres, ColumnKind::Bool) => "boolean",
            (Dialect::Postgres, ColumnKind::Json) => "jsonb",
            (Dialect::Postgres, ColumnKind::Ts) => "timestamptz",
            (Dialect::Postgres, ColumnKind::BigInt) => "bigint",
            (Dialect::Sqlite, ColumnKind::Bool | ColumnKind::BigInt) => "INTEGER",
            (Dialect::Sqlite, _) => "TEXT",
        }
    }
}

/// A column of a system table: `name` with the storage type of `kind` in `d`.
pub fn col(name: &str, kind: ColumnKind, d: Dialect) -> ColumnDef {
    let mut c = ColumnDef::new(Alias::new(name));
    c.custom(Alias::new(kind.storage(d)));
    c
}

/// An index `name` of system table `table` on `cols` (`IF NOT EXISTS`), unique or not, in
/// workeros's namespace: what a migration's `indexes` list.
pub fn index(
    names: &Names,
    name: &str,
    table: SystemTable,
    cols: &[&str],
    unique: bool,
) -> IndexCreateStatement {
    let mut i = Index::create();
    i.name(names.index(name))
        .table(names.table(table))
        .if_not_exists();
    for c in cols {
        i.col(Alias::new(*c));
    }
    if unique {
        i.unique();
    }
    i.to_owned()
}

/// A column a migration adds to a table an earlier version created.
#[derive(Debug, Clone)]
pub struct NewColumn {
    /// The table.
    pub table: SystemTable,
    /// The column (with its type, nullability and default).
    pub column: ColumnDef,
}

/// One migration of a component: what a version creates, each object named in workeros's
/// namespace through [`Names`]. Built with [`Migration::new`] and the methods that add what it
/// makes, in a `const`:
///
/// ```
/// use sea_query::{Table, TableCreateStatement};
/// use workeros_store::migrate::{col, ColumnKind, Component, Migration};
/// use workeros_store::{Names, SystemTable};
///
/// const NOTES: SystemTable = SystemTable::new("notes");
///
/// fn v1(names: &Names) -> Vec<TableCreateStatement> {
///     let d = names.dialect();
///     vec![Table::create()
///         .table(names.table(NOTES))
///         .if_not_exists()
///         .col(col("id", ColumnKind::Uuid, d).not_null().primary_key())
///         .to_owned()]
/// }
///
/// const SCHEMA: Component = Component::new("notes", &[NOTES], &[Migration::new(1).tables(v1)]);
/// assert_eq!(SCHEMA.latest(), 1);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    version: i64,
    tables: fn(&Names) -> Vec<TableCreateStatement>,
    columns: fn(&Names) -> Vec<NewColumn>,
    indexes: fn(&Names) -> Vec<IndexCreateStatement>,
    statements: fn(&Names) -> Vec<String>,
}

impl Migration {
    /// Version `version` (from 1, one more than the previous), creating nothing yet.
    pub const fn new(version: i64) -> Self {
        Self {
            version,
            tables: |_| Vec::new(),
            columns: |_| Vec::new(),
            indexes: |_| Vec::new(),
            statements: |_| Vec::new(),
        }
    }

    /// The tables it creates (`IF NOT EXISTS`), each named with [`Names::table`] after one of
    /// its component's [`SystemTable`]s.
    pub const fn tables(mut self, f: fn(&Names) -> Vec<TableCreateStatement>) -> Self {
        self.tables = f;
        self
    }

    /// The columns it adds to tables of earlier versions.
    pub const fn columns(mut self, f: fn(&Names) -> Vec<NewColumn>) -> Self {
        self.columns = f;
        self
    }

    /// The indexes it creates (`IF NOT EXISTS`), each made with [`index`].
    pub const fn indexes(mut self, f: fn(&Names) -> Vec<IndexCreateStatement>) -> Self {
        self.indexes = f;
        self
    }

    /// SQL it runs last, for what sea-query cannot build (PostgreSQL functions and triggers):
    /// constant text with, at most, the namespace (validated by
    /// [`Namespace::new`](crate::Namespace::new)) in it; never formatted from input.
    pub const fn statements(mut self, f: fn(&Names) -> Vec<String>) -> Self {
        self.statements = f;
        self
    }

    /// The version.
    pub fn version(&self) -> i64 {
        self.version
    }

    /// Every statement of this version in `names`, in order, each with the object it makes (for
    /// messages): what [`run`] executes and [`export`] writes.
    fn steps(&self, names: &Names, component: &Component) -> Vec<Step> {
        let d = names.dialect();
        let mut steps = Vec::new();
        for t in (self.tables)(names) {
            let object = component.created_by(names, &t).map_or_else(
                || "a table".to_owned(),
                |s| format!("table `{}`", names.shown(s)),
            );
            steps.push(Step::new(object, &t, d));
        }
        for c in (self.columns)(names) {
            let object = format!(
                "column `{}` of table `{}`",
                c.column.get_column_name(),
                names.shown(c.table)
            );
            let mut alter = Table::alter();
            alter.table(names.table(c.table));
            match d {
                // A version runs once; `IF NOT EXISTS` keeps an exported file re-runnable.
                Dialect::Postgres => alter.add_column_if_not_exists(c.column),
                Dialect::Sqlite => alter.add_column(c.column),
            };
            steps.push(Step::new(object, &alter, d));
        }
        for i in (self.indexes)(names) {
            let name = i
                .get_index_spec()
                .get_name()
                .unwrap_or("unnamed")
                .to_owned();
            steps.push(Step::new(format!("index `{name}`"), &i, d));
        }
        for sql in (self.statements)(names) {
            steps.push(Step {
                object: "a function or trigger".to_owned(),
                sql,
            });
        }
        steps
    }
}

/// One statement of a migration and the object it makes.
struct Step {
    object: String,
    sql: String,
}

impl Step {
    fn new<S: SchemaStatementBuilder>(object: String, stmt: &S, d: Dialect) -> Self {
        let sql = match d {
            Dialect::Postgres => stmt.to_string(PostgresQueryBuilder),
            Dialect::Sqlite => stmt.to_string(SqliteQueryBuilder),
        };
        Self { object, sql }
    }
}

/// A crate that owns tables, as the registry of its names and its migrations: the tables are the
/// only names its statements use ([`Names::table`]), the migrations the only thing that creates
/// them. The store's is [`crate::SCHEMA`]; `workeros-auth` and `workeros-events` have theirs.
#[derive(Debug, Clone, Copy)]
pub struct Component {
    name: &'static str,
    tables: &'static [SystemTable],
    migrations: &'static [Migration],
}

impl Component {
    /// Component `name` (`store`, `auth`, `events`: what its rows in `migrations` are recorded
    /// under), owning `tables`, made by `migrations` (versions 1, 2, … in order).
    pub const fn new(
        name: &'static str,
        tables: &'static [SystemTable],
        migrations: &'static [Migration],
    ) -> Self {
        Self {
            name,
            tables,
            migrations,
        }
    }

    /// The name its versions are recorded under.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Its system tables.
    pub fn tables(&self) -> &'static [SystemTable] {
        self.tables
    }

    /// Its migrations, in order.
    pub fn migrations(&self) -> &'static [Migration] {
        self.migrations
    }

    /// The version this build needs: the last migration's.
    pub fn latest(&self) -> i64 {
        self.migrations.last().map_or(0, |m| m.version)
    }

    /// Its table named `name`, if it has one.
    pub fn table(&self, name: &str) -> Option<SystemTable> {
        self.tables.iter().copied().find(|t| t.name() == name)
    }

    /// The system table that `t` creates, when it is one of this component's.
    fn created_by(&self, names: &Names, t: &TableCreateStatement) -> Option<SystemTable> {
        let name = t.get_table_name()?;
        self.tables
            .iter()
            .copied()
            .find(|s| *name == names.table(*s))
    }

    /// Whether its declarations hold together: versions 1, 2, … in order, every table a
    /// migration creates (or alters) is one of [`tables`](Self::tables), and every one of those is
    /// created by a migration. A component that fails this is a bug in its crate.
    pub fn validate(&self, names: &Names) -> Result<(), StoreError> {
        let bad = |what: String| {
            Err(StoreError::Schema(format!(
                "component `{}` is inconsistent: {what}",
                self.name
            )))
        };
        let mut created = Vec::new();
        for (i, m) in self.migrations.iter().enumerate() {
            if m.version != i as i64 + 1 {
                return bad(format!("migration {} is numbered {}", i + 1, m.version));
            }
            for t in (m.tables)(names) {
                match self.created_by(names, &t) {
                    Some(s) => created.push(s),
                    None => {
                        return bad(format!(
                            "version {} creates a table not among its system tables",
                            m.version
                        ));
                    }
                }
            }
            for c in (m.columns)(names) {
                if !created.contains(&c.table) {
                    return bad(format!(
                        "version {} adds a column to `{}` before any version creates it",
                        m.version, c.table
                    ));
                }
            }
        }
        if let Some(t) = self.tables.iter().find(|t| !created.contains(t)) {
            return bad(format!("no migration creates system table `{t}`"));
        }
        Ok(())
    }
}

/// The namespace's table of applied versions (`component`, `version`, `applied_at`), owned by the
/// mechanism rather than a component.
pub const MIGRATIONS: SystemTable = SystemTable::new("migrations");

/// The statements that make the namespace and its `migrations` table, before any version.
fn preamble(names: &Names) -> Vec<Step> {
    let d = names.dialect();
    let mut steps = Vec::new();
    if d == Dialect::Postgres {
        steps.push(Step {
            object: format!("schema `{}`", names.namespace()),
            sql: format!("CREATE SCHEMA IF NOT EXISTS {}", names.quoted_schema()),
        });
    }
    let table = Table::create()
        .table(names.table(MIGRATIONS))
        .if_not_exists()
        .col(col("component", ColumnKind::Text, d).not_null())
        .col(col("version", ColumnKind::BigInt, d).not_null())
        .col(col("applied_at", ColumnKind::Ts, d).not_null())
        .primary_key(
            Index::create()
                .col(Alias::new("component"))
                .col(Alias::new("version")),
        )
        .to_owned();
    steps.push(Step::new(
        format!("table `{}`", names.shown(MIGRATIONS)),
        &table,
        d,
    ));
    steps
}

/// The row that records `version` of `component` as applied at `at`.
fn record(
    names: &Names,
    component: &Component,
    version: i64,
    at: Expr,
) -> Result<sea_query::InsertStatement, StoreError> {
    Ok(Query::insert()
        .into_table(names.table(MIGRATIONS))
        .columns([
            Alias::new("component"),
            Alias::new("version"),
            Alias::new("applied_at"),
        ])
        .values([Expr::val(component.name), Expr::val(version), at])
        .map_err(StoreError::internal)?
        .to_owned())
}

/// The lock key the migrations of every component serialise on (PostgreSQL advisory lock).
const MIGRATION_LOCK: i64 = 0x776f_726b_6572_6f73; // "workeros"

/// Applies the missing migrations of `component`, in one transaction behind the same lock for
/// every component, so several processes starting at once apply each version exactly once; then
/// checks the result ([`check`]). Returns the versions it applied. A statement that fails is
/// reported with the object it makes and the version, never as a bare database error.
pub async fn run(db: &Db, component: &Component) -> Result<Vec<i64>, StoreError> {
    let names = db.names().clone();
    component.validate(&names)?;
    let mut tx = db.begin().await?;
    tx.lock(MIGRATION_LOCK).await?;
    for step in preamble(&names) {
        apply(&mut tx, &step, component, None).await?;
    }
    let applied = applied_versions(&mut tx, component.name).await?;
    if let Some(newer) = applied
        .iter()
        .copied()
        .filter(|v| *v > component.latest())
        .max()
    {
        return Err(StoreError::Schema(check::ahead(&names, component, newer)));
    }
    let mut done = Vec::new();
    for m in component.migrations {
        if applied.contains(&m.version) {
            continue;
        }
        for step in m.steps(&names, component) {
            apply(&mut tx, &step, component, Some(m.version)).await?;
        }
        let at = Expr::val(crate::value::now_value(names.dialect()));
        tx.execute(&record(&names, component, m.version, at)?)
            .await?;
        done.push(m.version);
    }
    // What `IF NOT EXISTS` skipped (a table of another shape already there) shows here, named,
    // and nothing of this run is kept.
    let report = check::report_in(&mut tx, component).await?;
    if !report.is_current() {
        return Err(StoreError::Schema(report.to_string()));
    }
    tx.commit().await?;
    if !done.is_empty() {
        tracing::info!(
            component = component.name,
            versions = ?done,
            namespace = %names.namespace(),
            "applied migrations"
        );
    }
    Ok(done)
}

/// Runs one step; a failure names the object, the version and what to do.
async fn apply(
    tx: &mut Tx,
    step: &Step,
    component: &Component,
    version: Option<i64>,
) -> Result<(), StoreError> {
    tx.fixed(step.sql.clone()).await.map_err(|e| {
        let cause = match &e {
            StoreError::Database(db) => db
                .as_database_error()
                .map_or_else(|| db.to_string(), |d| d.message().to_owned()),
            other => other.to_string(),
        };
        let at = version.map_or_else(String::new, |v| format!(" (version {v})"));
        StoreError::Schema(format!(
            "could not create {} for workeros component `{}`{at}: {cause}; the database user \
             needs the right to create it (on PostgreSQL: `CREATE` on the database, or an \
             existing schema `{}` it owns), or apply the exported migrations with a user that \
             has it",
            step.object,
            component.name,
            tx.names().namespace(),
        ))
    })
}

pub(super) async fn applied_versions(tx: &mut Tx, component: &str) -> Result<Vec<i64>, StoreError> {
    let migrations = tx.table(MIGRATIONS);
    let rows = tx
        .fetch_all(
            Query::select()
                .column(Alias::new("version"))
                .from(migrations)
                .and_where(Expr::col(Alias::new("component")).eq(component)),
        )
        .await?;
    crate::value::first_i64(&rows)
}
