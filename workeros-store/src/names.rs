//! Where workeros keeps what it creates in a database, and the one place that turns a system
//! name (`collections`, `users`, `webhooks`, …) into the name in the database: on PostgreSQL
//! every object lives in one schema ([`Namespace`], `workeros` by default); on SQLite, which has
//! no schemas, every table and index name carries the namespace as a prefix (`workeros_`). The
//! host's own tables — adopted ones included — are read where they are, in the host schema.

use crate::StoreError;
use sea_query::{Alias, TableRef};
use workeros_dsl::Dialect;

/// The namespace of a workeros deployment in a database: a PostgreSQL schema, or on SQLite the
/// prefix of its table names (the namespace and `_`). Two namespaces in one database are two
/// deployments that know nothing of each other.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Namespace(String);

impl Namespace {
    /// The namespace of a deployment that does not choose one.
    pub const DEFAULT: &'static str = "workeros";

    /// A namespace named `name`: 1 to 48 of `a-z`, `0-9` and `_`, starting with a letter (it
    /// becomes a schema name or a table-name prefix, so nothing else is taken).
    pub fn new(name: impl Into<String>) -> Result<Self, StoreError> {
        let name = name.into();
        let ok = (1..=48).contains(&name.len())
            && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if ok {
            Ok(Self(name))
        } else {
            Err(StoreError::Config(format!(
                "`{}` cannot name a workeros namespace: use 1 to 48 of a-z, 0-9 and _, starting \
                 with a letter",
                name.chars().take(60).collect::<String>()
            )))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Namespace {
    fn default() -> Self {
        Self(Self::DEFAULT.to_owned())
    }
}

impl std::fmt::Display for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A system table: a table one workeros component's migrations create ([`Component`]), named
/// once, as a constant in that component's schema module, and turned into the name in the
/// database by [`Names::table`]. Statements name system tables only through these constants, so
/// no crate hard-codes a table name, and the tables a start-up check expects are exactly the ones
/// the migrations declare.
///
/// [`Component`]: crate::migrate::Component
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SystemTable(&'static str);

impl SystemTable {
    /// System table `name` (lowercase `a-z`, `_`): for a component's schema module, which lists
    /// it in its [`Component::tables`](crate::migrate::Component::tables).
    pub const fn new(name: &'static str) -> Self {
        Self(name)
    }

    /// The name, without namespace.
    pub const fn name(self) -> &'static str {
        self.0
    }
}

impl std::fmt::Display for SystemTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// The names of one database: the dialect, workeros's namespace in it, and the host schema where
/// adopted tables are read (PostgreSQL; `None` on SQLite). Every statement names its tables
/// through it, so none relies on `search_path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    dialect: Dialect,
    namespace: Namespace,
    host: Option<String>,
}

impl Names {
    /// The names of a database of `dialect` with workeros in `namespace` and the host's tables
    /// in `host` (its schema; ignored on SQLite).
    pub fn new(dialect: Dialect, namespace: Namespace, host: Option<String>) -> Self {
        let host = match dialect {
            Dialect::Postgres => host,
            Dialect::Sqlite => None,
        };
        Self {
            dialect,
            namespace,
            host,
        }
    }

    /// The dialect.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// workeros's namespace.
    pub fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    /// The host schema (PostgreSQL), where adopted tables are.
    pub fn host_schema(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// System table `table`, as statements name it: `"workeros"."users"` on PostgreSQL,
    /// `"workeros_users"` on SQLite.
    pub fn table(&self, table: SystemTable) -> TableRef {
        self.in_namespace(table.name())
    }

    /// The name of system table `table` in the database, without its schema: `users` on
    /// PostgreSQL (in the namespace's schema), `workeros_users` on SQLite.
    pub fn physical(&self, table: SystemTable) -> String {
        self.prefixed(table.name())
    }

    /// System table `table` as messages show it: `workeros.users`, `workeros_users`.
    pub fn shown(&self, table: SystemTable) -> String {
        self.shown_name(table.name())
    }

    /// Managed collection table `name` (a name the store made, `c_<id>_<slug>`), in workeros's
    /// namespace as system tables are.
    pub fn collection_table(&self, name: &str) -> TableRef {
        self.in_namespace(name)
    }

    /// The name of managed collection table `name` in the database, without its schema.
    pub fn collection_physical(&self, name: &str) -> String {
        self.prefixed(name)
    }

    /// A table of the namespace as messages show it (a system table's or a managed one's name).
    pub(crate) fn shown_name(&self, name: &str) -> String {
        match self.dialect {
            Dialect::Postgres => format!("{}.{name}", self.namespace.as_str()),
            Dialect::Sqlite => self.prefixed(name),
        }
    }

    fn in_namespace(&self, name: &str) -> TableRef {
        match self.dialect {
            Dialect::Postgres => (Alias::new(self.namespace.as_str()), Alias::new(name)).into(),
            Dialect::Sqlite => Alias::new(self.prefixed(name)).into(),
        }
    }

    fn prefixed(&self, name: &str) -> String {
        match self.dialect {
            Dialect::Postgres => name.to_owned(),
            Dialect::Sqlite => format!("{}_{name}", self.namespace.as_str()),
        }
    }

    /// Index `name` of a system table: schema-scoped on PostgreSQL, prefixed on SQLite (where
    /// index names are global to the database).
    pub fn index(&self, name: &str) -> String {
        self.prefixed(name)
    }

    /// A host table (an adopted one), where it is: in the host schema on PostgreSQL, as it is on
    /// SQLite.
    pub fn host_table(&self, name: &str) -> TableRef {
        match &self.host {
            Some(schema) => (Alias::new(schema.as_str()), Alias::new(name)).into(),
            None => Alias::new(name).into(),
        }
    }

    /// Whether a table of the database (as the catalog names it, in the host schema on
    /// PostgreSQL) belongs to workeros: on SQLite, every table with the namespace's prefix; on
    /// PostgreSQL none (workeros's tables are in their own schema).
    pub fn is_ours(&self, table: &str) -> bool {
        match self.dialect {
            Dialect::Postgres => false,
            Dialect::Sqlite => table
                .strip_prefix(self.namespace.as_str())
                .is_some_and(|rest| rest.starts_with('_')),
        }
    }

    /// The PostgreSQL notification channel on which the outbox announces committed events.
    pub fn events_channel(&self) -> String {
        format!("{}_events", self.namespace.as_str())
    }

    /// The PostgreSQL notification channel on which workeros-auth announces credential changes
    /// (a logout, a revocation, a role change), so that other instances forget what they cached.
    pub fn auth_channel(&self) -> String {
        format!("{}_auth", self.namespace.as_str())
    }

    /// The namespace as a quoted SQL identifier (PostgreSQL), for the few statements sea-query
    /// cannot build (a schema, a function, a trigger). The name is validated by
    /// [`Namespace::new`]: `[a-z][a-z0-9_]*`.
    pub(crate) fn quoted_schema(&self) -> String {
        format!("\"{}\"", self.namespace.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_query::{PostgresQueryBuilder, Query, SqliteQueryBuilder};

    const USERS: SystemTable = SystemTable::new("users");

    #[test]
    fn names_in_each_dialect() {
        let ns = Namespace::new("shop_cms").unwrap();
        let pg = Names::new(Dialect::Postgres, ns.clone(), Some("public".into()));
        let lite = Names::new(Dialect::Sqlite, ns, Some("public".into()));
        let sql = |n: &Names, pg: bool| {
            let mut q = Query::select();
            q.expr(sea_query::Expr::cust("1")).from(n.table(USERS));
            if pg {
                q.to_string(PostgresQueryBuilder)
            } else {
                q.to_string(SqliteQueryBuilder)
            }
        };
        assert_eq!(sql(&pg, true), r#"SELECT 1 FROM "shop_cms"."users""#);
        assert_eq!(sql(&lite, false), r#"SELECT 1 FROM "shop_cms_users""#);
        assert_eq!(lite.host_schema(), None);
        assert!(lite.is_ours("shop_cms_users") && !lite.is_ours("users"));
        assert!(!lite.is_ours("shop_cmsx_users") && !pg.is_ours("shop_cms_users"));
        assert_eq!(pg.shown(USERS), "shop_cms.users");
        assert_eq!(lite.physical(USERS), "shop_cms_users");
        assert_eq!(pg.physical(USERS), "users");
        assert_eq!(pg.events_channel(), "shop_cms_events");
        assert_eq!(pg.auth_channel(), "shop_cms_auth");
        for bad in ["", "Shop", "1x", "a-b", "a\"b", &"a".repeat(49)] {
            assert!(Namespace::new(bad).is_err(), "{bad}");
        }
    }
}
