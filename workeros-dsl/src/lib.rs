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
//! Limits on untrusted input are in [`limits`]; every error carries a position ([`Loc`]).

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
