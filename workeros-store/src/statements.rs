//! Write statements sent to the database in one call — on SQLite a script, on PostgreSQL one
//! statement of data-modifying common table expressions — and the sqlx queries of sea-query
//! output.

#[cfg(feature = "postgres")]
use sea_query::PostgresQueryBuilder;
#[cfg(feature = "sqlite")]
use sea_query::SqliteQueryBuilder;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
use sea_query_sqlx::{SqlxBinder, SqlxValues};
#[cfg(any(feature = "postgres", feature = "sqlite"))]
use sqlx::AssertSqlSafe;
#[cfg(feature = "postgres")]
use sqlx::Postgres;
#[cfg(feature = "sqlite")]
use sqlx::Sqlite;

/// One statement of [`Tx::write_each`](crate::Tx::write_each) and
/// [`Tx::commit_with`](crate::Tx::commit_with).
#[derive(Debug, Clone)]
pub enum Write {
    /// An insert.
    Insert(sea_query::InsertStatement),
    /// An update.
    Update(sea_query::UpdateStatement),
    /// A delete.
    Delete(sea_query::DeleteStatement),
}

#[cfg(any(feature = "postgres", feature = "sqlite"))]
impl Write {
    fn build<B: sea_query::QueryBuilder>(&self, builder: B) -> (String, SqlxValues) {
        match self {
            Write::Insert(s) => s.build_sqlx(builder),
            Write::Update(s) => s.build_sqlx(builder),
            Write::Delete(s) => s.build_sqlx(builder),
        }
    }

    /// The statement as a part of a `WITH` statement.
    #[cfg(feature = "postgres")]
    fn sub(&self) -> sea_query::SubQueryStatement {
        match self {
            Write::Insert(s) => s.clone().into(),
            Write::Update(s) => s.clone().into(),
            Write::Delete(s) => s.clone().into(),
        }
    }
}

/// Write statements as one PostgreSQL statement: all but the last as data-modifying common
/// table expressions (`w0`, `w1`, …) of the last. PostgreSQL runs each exactly once and to
/// completion, read or not; the statement is all or nothing, its constraints (foreign keys
/// between its own rows included) are checked at its end, and its parts see one snapshot, so
/// none may read what another writes (none of workeros's do: an item's row and its journal
/// rows). `None` for no statements.
#[cfg(feature = "postgres")]
pub(crate) fn pg_statement(stmts: &[Write]) -> Option<(String, SqlxValues)> {
    let (last, rest) = stmts.split_last()?;
    if rest.is_empty() {
        return Some(last.build(PostgresQueryBuilder));
    }
    let mut with = sea_query::WithClause::new();
    for (i, stmt) in rest.iter().enumerate() {
        with.cte(
            sea_query::CommonTableExpression::new()
                .table_name(sea_query::Alias::new(format!("w{i}")))
                .query(stmt.sub())
                .to_owned(),
        );
    }
    Some(with.query(last.sub()).build_sqlx(PostgresQueryBuilder))
}

/// Write statements as one SQLite script: in order, their values numbered on from statement to
/// statement (sqlx binds a script's anonymous parameters so). `None` for no statements.
#[cfg(feature = "sqlite")]
pub(crate) fn sqlite_script(stmts: &[Write]) -> Option<(String, SqlxValues)> {
    if stmts.is_empty() {
        return None;
    }
    let mut sql = String::new();
    let mut values = Vec::new();
    for stmt in stmts {
        let (one, v) = stmt.build(SqliteQueryBuilder);
        if !sql.is_empty() {
            sql.push_str(";\n");
        }
        sql.push_str(&one);
        values.extend(v.0.0);
    }
    Some((sql, SqlxValues(sea_query::Values(values))))
}

/// A PostgreSQL query from sea-query output: the SQL text is built by sea-query from validated
/// identifiers, and every value is bound.
#[cfg(feature = "postgres")]
pub(crate) fn pg_query(
    sql: String,
    values: SqlxValues,
) -> sqlx::query::Query<'static, Postgres, SqlxValues> {
    sqlx::query_with(AssertSqlSafe(sql), values)
}

/// The SQLite counterpart of [`pg_query`].
#[cfg(feature = "sqlite")]
pub(crate) fn sqlite_query(
    sql: String,
    values: SqlxValues,
) -> sqlx::query::Query<'static, Sqlite, SqlxValues> {
    sqlx::query_with(AssertSqlSafe(sql), values)
}

#[cfg(all(test, feature = "postgres"))]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use sea_query::{Alias, Expr, ExprTrait, Query};

    fn insert(table: &str, v: i64) -> Write {
        let mut q = Query::insert();
        q.into_table(Alias::new(table)).columns([Alias::new("v")]);
        q.values([Expr::val(v)]).unwrap();
        Write::Insert(q)
    }

    #[test]
    fn statements_become_one_with_statement_with_every_value_bound() {
        assert!(pg_statement(&[]).is_none());
        let (one, _) = pg_statement(&[insert("a", 1)]).unwrap();
        assert_eq!(one, r#"INSERT INTO "a" ("v") VALUES ($1)"#);
        let mut delete = Query::delete();
        delete
            .from_table(Alias::new("c"))
            .and_where(Expr::col(Alias::new("v")).eq(3));
        let (sql, values) =
            pg_statement(&[insert("a", 1), insert("b", 2), Write::Delete(delete)]).unwrap();
        assert_eq!(
            sql,
            r#"WITH "w0" AS (INSERT INTO "a" ("v") VALUES ($1)) , "w1" AS (INSERT INTO "b" ("v") VALUES ($2)) DELETE FROM "c" WHERE "v" = $3"#
        );
        assert_eq!(values.0.0.len(), 3);
    }
}
