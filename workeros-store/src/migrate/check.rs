//! The start-up check: whether a component's schema in the namespace is what this build needs,
//! read from the catalog without changing anything, and reported by object name with what to do.

use super::{Component, MIGRATIONS};
use crate::names::{Names, SystemTable};
use crate::{Db, StoreError, Tx};
use std::collections::{BTreeMap, BTreeSet};
use workeros_dsl::Dialect;

/// One thing wrong with a component's schema.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SchemaProblem {
    /// PostgreSQL: the namespace's schema does not exist.
    MissingNamespace,
    /// No version of the component has been applied in the namespace.
    NotInstalled,
    /// The applied versions end before the one this build needs.
    Behind,
    /// The database holds a version newer than this build knows.
    Ahead,
    /// A table this build needs is missing (its name as the database shows it).
    MissingTable(String),
    /// A table this build needs lacks a column.
    MissingColumn {
        /// The table, as the database shows it.
        table: String,
        /// The column.
        column: String,
    },
    /// An index this build needs is missing.
    MissingIndex(String),
}

impl std::fmt::Display for SchemaProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::MissingNamespace => f.write_str("the schema does not exist"),
            Self::NotInstalled => f.write_str("no version is installed"),
            Self::Behind => f.write_str("the schema is behind this build"),
            Self::Ahead => f.write_str("the schema is newer than this build"),
            Self::MissingTable(t) => write!(f, "table `{t}` does not exist"),
            Self::MissingColumn { table, column } => {
                write!(f, "table `{table}` has no column `{column}`")
            }
            Self::MissingIndex(i) => write!(f, "index `{i}` does not exist"),
        }
    }
}

/// What [`report`] found: the component, the version the database is at and the one this build
/// needs, and every problem. Its `Display` is the start-up message: the objects, the versions and
/// what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaReport {
    /// The component (`store`, `auth`, `events`).
    pub component: &'static str,
    /// The namespace, as the database shows it (`workeros`).
    pub namespace: String,
    /// The highest applied version, if any.
    pub at: Option<i64>,
    /// The version this build needs.
    pub needs: i64,
    /// What is wrong; empty when the schema is current.
    pub problems: Vec<SchemaProblem>,
}

impl SchemaReport {
    /// Whether the schema is what this build needs.
    pub fn is_current(&self) -> bool {
        self.problems.is_empty()
    }
}

/// How many missing objects a message names before it counts the rest.
const SHOWN: usize = 3;

impl std::fmt::Display for SchemaReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = self.component;
        let ns = &self.namespace;
        let objects: Vec<String> = self
            .problems
            .iter()
            .filter(|p| {
                matches!(
                    p,
                    SchemaProblem::MissingTable(_)
                        | SchemaProblem::MissingColumn { .. }
                        | SchemaProblem::MissingIndex(_)
                )
            })
            .map(ToString::to_string)
            .collect();
        let has = |p: &SchemaProblem| self.problems.contains(p);
        let run = format!(
            "run its migrations at start-up (`workeros_{c}::migrate(&db)`), or apply the \
             exported SQL (`workeros_store::migrate::export`, files `workeros_{c}_v*.sql`) \
             with your migration tool"
        );
        if has(&SchemaProblem::MissingNamespace) {
            return write!(
                f,
                "schema `{ns}` does not exist, so workeros component `{c}` is not installed \
                 (this build needs version {}): {run}",
                self.needs
            );
        }
        if has(&SchemaProblem::NotInstalled) {
            return write!(
                f,
                "workeros component `{c}` is not installed in namespace `{ns}` (this build needs \
                 version {}): {run}",
                self.needs
            );
        }
        if has(&SchemaProblem::Ahead) {
            return write!(
                f,
                "the `{c}` schema in namespace `{ns}` is at version {}, newer than this build \
                 knows ({}): deploy a build of workeros that knows it, or use another namespace",
                self.at.unwrap_or_default(),
                self.needs
            );
        }
        let mut head = objects
            .iter()
            .take(SHOWN)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if objects.len() > SHOWN {
            head.push_str(&format!(" and {} more", objects.len() - SHOWN));
        }
        let at = self.at.unwrap_or_default();
        if has(&SchemaProblem::Behind) {
            let head = if head.is_empty() {
                String::new()
            } else {
                format!("{head}: ")
            };
            return write!(
                f,
                "{head}the `{c}` schema in namespace `{ns}` is at version {at}, this build needs \
                 {}; {run} (versions {} to {})",
                self.needs,
                at + 1,
                self.needs
            );
        }
        if head.is_empty() {
            return write!(f, "the `{c}` schema in namespace `{ns}` is at version {at}");
        }
        write!(
            f,
            "{head}, although the `{c}` schema in namespace `{ns}` is at version {at} as this \
             build needs: the namespace holds tables workeros did not make, or was changed by \
             hand; restore what is missing (the exported SQL of each version creates it, `IF NOT \
             EXISTS`) or install workeros into a new namespace"
        )
    }
}

/// The message for a database whose `component` is at `newer`, after this build's latest.
pub(super) fn ahead(names: &Names, component: &Component, newer: i64) -> String {
    SchemaReport {
        component: component.name(),
        namespace: names.namespace().to_string(),
        at: Some(newer),
        needs: component.latest(),
        problems: vec![SchemaProblem::Ahead],
    }
    .to_string()
}

/// Reads, without changing anything, whether `component`'s schema in `db`'s namespace is what
/// this build needs: the applied versions, and every table, column and index its migrations
/// make.
pub async fn report(db: &Db, component: &Component) -> Result<SchemaReport, StoreError> {
    component.validate(db.names())?;
    let mut tx = db.begin_read().await?;
    let report = report_in(&mut tx, component).await;
    // Read only: nothing to keep.
    drop(tx);
    report
}

/// [`report`] in `tx`, for a `component` already validated (by [`report`] or `run`).
pub(super) async fn report_in(
    tx: &mut Tx,
    component: &Component,
) -> Result<SchemaReport, StoreError> {
    let names = tx.names().clone();
    let names = &names;
    let mut report = SchemaReport {
        component: component.name(),
        namespace: names.namespace().to_string(),
        at: None,
        needs: component.latest(),
        problems: Vec::new(),
    };
    let catalog = Catalog::read(tx).await?;
    if !catalog.namespace {
        report.problems.push(SchemaProblem::MissingNamespace);
        return Ok(report);
    }
    let versions = if catalog.columns.contains_key(&names.physical(MIGRATIONS)) {
        super::applied_versions(tx, component.name()).await?
    } else {
        Vec::new()
    };
    report.at = versions.iter().copied().max();
    match report.at {
        None => {
            report.problems.push(SchemaProblem::NotInstalled);
            return Ok(report);
        }
        Some(at) if at > report.needs => {
            report.problems.push(SchemaProblem::Ahead);
            return Ok(report);
        }
        Some(at) if at < report.needs => report.problems.push(SchemaProblem::Behind),
        Some(_) => {}
    }
    let (tables, indexes) = expected(names, component);
    for (table, columns) in &tables {
        let physical = names.physical(*table);
        let Some(have) = catalog.columns.get(&physical) else {
            report
                .problems
                .push(SchemaProblem::MissingTable(names.shown(*table)));
            continue;
        };
        for c in columns {
            if !have.contains(c) {
                report.problems.push(SchemaProblem::MissingColumn {
                    table: names.shown(*table),
                    column: c.clone(),
                });
            }
        }
    }
    for i in indexes {
        if !catalog.indexes.contains(&i) {
            report.problems.push(SchemaProblem::MissingIndex(i));
        }
    }
    Ok(report)
}

/// [`report`], as an error when the schema is not what this build needs: a
/// [`StoreError::Schema`] whose message names the objects and what to do, for example "table
/// `workeros.users` has no column `email_lower`: the `auth` schema in namespace `workeros` is at
/// version 2, this build needs 3; run its migrations at start-up … (versions 3 to 3)".
pub async fn check(db: &Db, component: &Component) -> Result<(), StoreError> {
    let report = report(db, component).await?;
    if report.is_current() {
        Ok(())
    } else {
        Err(StoreError::Schema(report.to_string()))
    }
}

/// The tables (with their columns) and the indexes the migrations of `component` make.
#[allow(clippy::type_complexity)]
fn expected(
    names: &Names,
    component: &Component,
) -> (Vec<(SystemTable, Vec<String>)>, Vec<String>) {
    let mut tables: Vec<(SystemTable, Vec<String>)> = Vec::new();
    let mut indexes = Vec::new();
    for m in component.migrations() {
        for t in (m.tables)(names) {
            if let Some(s) = component.created_by(names, &t) {
                tables.push((
                    s,
                    t.get_columns()
                        .iter()
                        .map(|c| c.get_column_name())
                        .collect(),
                ));
            }
        }
        for c in (m.columns)(names) {
            if let Some((_, cols)) = tables.iter_mut().find(|(t, _)| *t == c.table) {
                cols.push(c.column.get_column_name());
            }
        }
        for i in (m.indexes)(names) {
            if let Some(name) = i.get_index_spec().get_name() {
                indexes.push(name.to_owned());
            }
        }
    }
    (tables, indexes)
}

/// What the catalog holds in the namespace: whether it exists (always on SQLite), each table's
/// columns by physical name, and the index names.
pub(super) struct Catalog {
    namespace: bool,
    columns: BTreeMap<String, BTreeSet<String>>,
    indexes: BTreeSet<String>,
}

impl Catalog {
    /// Reads it in `tx` (so a migration checks what it is about to commit).
    pub(super) async fn read(tx: &mut Tx) -> Result<Self, StoreError> {
        let names = tx.names().clone();
        let mut columns: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let (namespace, pairs, indexes) = match names.dialect() {
            Dialect::Postgres => {
                let ns = names.namespace().as_str();
                let exists = tx
                    .catalog(
                        "SELECT nspname::text FROM pg_catalog.pg_namespace WHERE nspname = $1",
                        &[ns],
                    )
                    .await?;
                let pairs = tx
                    .catalog(
                        "SELECT table_name::text, column_name::text \
                         FROM information_schema.columns WHERE table_schema = $1",
                        &[ns],
                    )
                    .await?;
                let indexes = tx
                    .catalog(
                        "SELECT indexname::text FROM pg_catalog.pg_indexes WHERE schemaname = $1",
                        &[ns],
                    )
                    .await?;
                (!exists.is_empty(), pairs, indexes)
            }
            Dialect::Sqlite => {
                let pairs = tx
                    .catalog(
                        "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p \
                         WHERE m.type = 'table'",
                        &[],
                    )
                    .await?;
                let indexes = tx
                    .catalog("SELECT name FROM sqlite_master WHERE type = 'index'", &[])
                    .await?;
                (true, pairs, indexes)
            }
        };
        for row in pairs {
            if let [t, c] = row.as_slice()
                && (names.dialect() == Dialect::Postgres || names.is_ours(t))
            {
                columns.entry(t.clone()).or_default().insert(c.clone());
            }
        }
        Ok(Self {
            namespace,
            columns,
            indexes: indexes.into_iter().flatten().collect(),
        })
    }
}
