//! The workeros permission DSL: one filter language with three execution paths that give the
//! same answer.
//!
//! | path | entry | output |
//! |---|---|---|
//! | REST filters and permission rules | [`BoundFilter::compile`] / [`CompileCache`] | a sea-query condition with bound values, for PostgreSQL or SQLite |
//! | realtime, flows, validation rules | [`BoundFilter::matches`] | `true` / `false` on a JSON row, in memory, without allocating |
//! | host code | both | |
//!
//! The pipeline has two stages in front (regex-syntax style): a surface form is parsed to a
//! [`Filter`] tree (text with [`parse`], JSON with [`from_json`]), and the tree is checked against
//! a [`Schema`] into a [`CheckedFilter`] (fields exist and are readable, operators fit types,
//! literals coerced). A checked filter is bound to a [`workeros_core::Subject`] and an instant
//! ([`CheckedFilter::bind`]), which substitutes variables and folds constants; the
//! [`BoundFilter`] then compiles to SQL or matches rows.
//!
//! Semantics are SQL's three-valued logic on every path: a comparison with null (a null column
//! or a missing variable) is *unknown*, unknown is never selected, and `not unknown` is unknown.
//!
//! ```
//! use workeros_core::{Subject, User};
//! use workeros_dsl::{Dialect, Schema, ValueKind, parse};
//!
//! let schema = Schema::of([
//!     ("owner_id", ValueKind::Text),
//!     ("status", ValueKind::Text),
//!     ("views", ValueKind::Integer),
//! ])?;
//! let filter = parse(r#"owner_id = $user.id && (status in ["draft", "published"] || views > 10)"#)?;
//! let checked = filter.check(&schema)?;
//!
//! let alice = Subject::user(User::new("alice"));
//! let bound = checked.bind(&alice, time::OffsetDateTime::now_utc());
//!
//! // In memory…
//! let row = serde_json::json!({"owner_id": "alice", "status": "draft", "views": 0});
//! assert!(bound.matches(row.as_object().unwrap()));
//!
//! // …and in SQL, with bound values.
//! let sql = bound.compile(Dialect::Sqlite)?.to_sql();
//! assert_eq!(
//!     sql.sql(),
//!     r#""owner_id" = ? AND ("status" IN (?, ?) OR "views" > ?)"#
//! );
//! # Ok::<(), workeros_dsl::DslError>(())
//! ```
//!
//! # Filters in your own queries
//!
//! A host can put a user's filter into a query of its own — its own tables, aliases and joins.
//! Each field of the [`Schema`] says where its value lives ([`Source::Column`] with a table or
//! alias to qualify it); the compiled condition is a sea-query expression with every value
//! bound, to `AND` into the host's statement. The same bound filter matches the joined row in
//! memory (`tests/tests/dsl_host_query.rs` runs both against SQLite and PostgreSQL).
//!
//! ```
//! use sea_query::{Alias, Expr, ExprTrait, JoinType, Query, SqliteQueryBuilder};
//! use workeros_core::{Subject, User};
//! use workeros_dsl::{Dialect, FieldSpec, Schema, Source, ValueKind, from_json_str, parse};
//!
//! // What a user may filter on, by the names the host shows: columns of `o` (orders) and `c`
//! // (customers).
//! let at = |table: &str, column: &str| Source::Column {
//!     table: Some(table.into()),
//!     column: column.into(),
//! };
//! let mut schema = Schema::new();
//! schema
//!     .add(FieldSpec::new("total", ValueKind::Number)?.source(at("o", "total")))?
//!     .add(FieldSpec::new("owner_id", ValueKind::Text)?.source(at("o", "owner")))?
//!     .add(FieldSpec::new("country", ValueKind::Text)?.source(at("c", "country")))?;
//!
//! let alice = Subject::user(User::new("alice"));
//! let now = time::OffsetDateTime::now_utc();
//! // The client's `?filter=` (Directus JSON) and the host's rule (text), checked and bound.
//! let filter = from_json_str(r#"{"country": {"_eq": "DE"}, "total": {"_gte": 50}}"#)?
//!     .check(&schema)?
//!     .bind(&alice, now);
//! let rule = parse("owner_id = $user.id")?.check(&schema)?.bind(&alice, now);
//!
//! let (o, c) = (Alias::new("o"), Alias::new("c"));
//! let query = Query::select()
//!     .column((o.clone(), Alias::new("id")))
//!     .from_as(Alias::new("orders"), o.clone())
//!     .join_as(
//!         JoinType::InnerJoin,
//!         Alias::new("customers"),
//!         c.clone(),
//!         Expr::col((o.clone(), Alias::new("customer_id"))).equals((c, Alias::new("id"))),
//!     )
//!     .and_where(filter.compile(Dialect::Sqlite)?.into_expr())
//!     .and_where(rule.compile(Dialect::Sqlite)?.into_expr())
//!     .to_owned();
//! let (sql, values) = query.build(SqliteQueryBuilder);
//! assert_eq!(
//!     sql,
//!     r#"SELECT "o"."id" FROM "orders" AS "o" INNER JOIN "customers" AS "c" ON "o"."customer_id" = "c"."id" WHERE "c"."country" = ? AND "o"."total" >= ? AND "o"."owner" = ?"#
//! );
//! assert_eq!(values.0.len(), 3); // "DE", 50, "alice": bound, never in the text
//!
//! // In memory, on the joined row keyed by field name: the same answer.
//! let row = serde_json::json!({"total": 120.0, "owner_id": "alice", "country": "DE"});
//! assert!(filter.matches(row.as_object().unwrap()) && rule.matches(row.as_object().unwrap()));
//! # Ok::<(), workeros_dsl::DslError>(())
//! ```
//!
//! Limits on untrusted input are in [`limits`]; every error carries a position ([`Loc`]).

#![cfg_attr(docsrs, feature(doc_cfg))]

mod ast;
mod bind;
mod check;
mod compile;
mod error;
mod index;
mod json;
pub mod limits;
mod matcher;
mod print;
mod schema;
mod text;
mod timefmt;

pub use ast::{
    Arity, Comparison, Filter, Ident, Op, Operand, RESERVED_WORDS, Shift, Unit, Value, Var,
};
pub use bind::{BoundFilter, Tri, variable_value};
pub use check::{CheckedFilter, Scalar, applies, check_json};
pub use compile::{CompileCache, Compiled, Dialect, Sql};
pub use error::{DslError, ErrorKind, Loc};
pub use index::{EqKey, Equality};
pub use json::{from_json, from_json_str, parse_any};
pub use schema::{FieldSpec, OwnerLookup, Row, Schema, Source, ValueKind};
pub use text::parse;
pub use timefmt::parse_timestamp;
