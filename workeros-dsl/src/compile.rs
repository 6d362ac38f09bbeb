//! Compiling a bound filter to a sea-query condition with bound values, for PostgreSQL or SQLite,
//! and the compile cache.
//!
//! How the three paths are kept identical:
//!
//! | difference | how it is closed |
//! |---|---|
//! | text ordering by locale on PostgreSQL | `COLLATE "C"` (byte order, as SQLite's BINARY and the matcher) |
//! | SQLite's `LIKE` folds ASCII case | case-sensitive operators use `GLOB` on SQLite (wildcards escaped as `[*]`, `[?]`, `[[]`) |
//! | `ILIKE` / `lower()` fold non-ASCII on PostgreSQL | `translate(col, 'A..Z', 'a..z') LIKE` with the needle lowercased (ASCII only) |
//! | `%`, `_` in user values | escaped with `!` and `ESCAPE '!'` |
//! | `NOT IN` with nulls | lists are bound without nulls and with an explicit `OR NULL` (SQL's own rule, made explicit) |
//! | many list items | one array bind on PostgreSQL (`= ANY(CAST($1 AS type[]))`) |
//! | typed parameters | uuid, timestamptz, jsonb and array parameters carry an explicit `CAST` on PostgreSQL |
//! | integer vs float | literals are coerced to the column's type when checked |
//! | timestamps stored as text on SQLite | fixed-width RFC 3339 UTC text, compared as text |

use crate::ast::Op;
use crate::bind::{BArg, BCmp, BNode, BVal, BoundFilter, Origin, Tri};
use crate::check::{CheckedFilter, Scalar};
use crate::error::{DslError, ErrorKind, Loc};
use crate::schema::{FieldSpec, Source, ValueKind};
use crate::timefmt;
use sea_query::extension::postgres::PgFunc;
use sea_query::{
    Alias, ArrayType, BinOper, Expr, ExprTrait, Func, LikeExpr, PostgresQueryBuilder, QueryBuilder,
    SqlWriterValues, SqliteQueryBuilder, Value, Values,
};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use time::OffsetDateTime;
use workeros_core::Subject;

/// The SQL dialect to compile for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// PostgreSQL 15+.
    Postgres,
    /// SQLite 3.35+.
    Sqlite,
}

/// The compiled condition: a sea-query expression to put in a `WHERE`.
#[derive(Debug, Clone)]
pub struct Compiled {
    expr: Expr,
    dialect: Dialect,
    origins: Vec<Origin>,
}

impl Compiled {
    /// The condition.
    pub fn expr(&self) -> &Expr {
        &self.expr
    }

    /// The condition, by value.
    pub fn into_expr(self) -> Expr {
        self.expr
    }

    /// The dialect it was compiled for.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The condition as SQL text with placeholders (`$1, $2, …` on PostgreSQL, `?` on SQLite) and
    /// the values to bind, in order.
    pub fn to_sql(&self) -> Sql {
        let (sql, values) = render(&self.expr, self.dialect);
        Sql {
            sql: sql.into(),
            values,
            dialect: self.dialect,
        }
    }
}

/// A condition as SQL text and its bound values.
#[derive(Debug, Clone, PartialEq)]
pub struct Sql {
    sql: Arc<str>,
    values: Values,
    dialect: Dialect,
}

impl Sql {
    /// The boolean SQL expression; columns are named by their quoted names.
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The values to bind, in placeholder order.
    pub fn values(&self) -> &Values {
        &self.values
    }

    /// The condition as a sea-query expression, to combine with other conditions in a query
    /// built for the same dialect; placeholders are renumbered there.
    pub fn to_expr(&self) -> Expr {
        Expr::cust_with_values(self.sql.to_string(), self.values.0.iter().cloned())
    }

    /// The values as JSON: timestamps as RFC 3339 strings, uuids as strings, a PostgreSQL array as
    /// a JSON array.
    pub fn values_json(&self) -> Vec<serde_json::Value> {
        self.values.0.iter().map(value_json).collect()
    }

    /// The dialect.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }
}

fn value_json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Bool(Some(b)) => J::Bool(*b),
        Value::BigInt(Some(i)) => J::from(*i),
        Value::Int(Some(i)) => J::from(*i),
        Value::Double(Some(x)) => serde_json::Number::from_f64(*x).map_or(J::Null, J::Number),
        Value::String(Some(s)) => J::String(s.clone()),
        Value::Uuid(Some(u)) => J::String(u.hyphenated().to_string()),
        Value::TimeDateTimeWithTimeZone(Some(t)) => J::String(
            timefmt::to_micros(*t)
                .map(timefmt::canonical)
                .unwrap_or_default(),
        ),
        Value::Json(Some(j)) => (**j).clone(),
        Value::Array(_, Some(items)) => J::Array(items.iter().map(value_json).collect()),
        _ => J::Null,
    }
}

fn render(expr: &Expr, dialect: Dialect) -> (String, Values) {
    match dialect {
        Dialect::Postgres => {
            let mut w = SqlWriterValues::new("$", true);
            PostgresQueryBuilder.prepare_expr(expr, &mut w);
            w.into_parts()
        }
        Dialect::Sqlite => {
            let mut w = SqlWriterValues::new("?", false);
            SqliteQueryBuilder.prepare_expr(expr, &mut w);
            w.into_parts()
        }
    }
}

impl BoundFilter {
    /// Compiles to a condition for `dialect`. Fails only for `matches` (`_regex`), which runs in
    /// memory alone.
    ///
    /// ```
    /// use workeros_core::{Subject, User};
    /// use workeros_dsl::{Dialect, Schema, ValueKind, parse};
    /// let schema = Schema::of([("owner_id", ValueKind::Text), ("title", ValueKind::Text)])?;
    /// let f = parse(r#"owner_id = $user.id && title contains "50%""#)?.check(&schema)?;
    /// let bound = f.bind(&Subject::user(User::new("u1")), time::OffsetDateTime::now_utc());
    /// let sql = bound.compile(Dialect::Postgres)?.to_sql();
    /// assert_eq!(sql.sql(), r#""owner_id" = $1 AND "title" LIKE $2 ESCAPE '!'"#);
    /// assert_eq!(sql.values_json(), vec![serde_json::json!("u1"), serde_json::json!("%50!%%")]);
    /// # Ok::<(), workeros_dsl::DslError>(())
    /// ```
    pub fn compile(&self, dialect: Dialect) -> Result<Compiled, DslError> {
        if self.has_regex {
            return Err(DslError::new(
                ErrorKind::Unsupported,
                "`matches` (`_regex`) runs only in memory and cannot be compiled to SQL",
                Loc::None,
            )
            .with_help(
                "use it in validation rules, or use contains / starts_with / ends_with in filters",
            ));
        }
        let mut e = Emitter {
            dialect,
            origins: Vec::new(),
        };
        let expr = e.node(&self.root);
        Ok(Compiled {
            expr,
            dialect,
            origins: e.origins,
        })
    }
}

struct Emitter {
    dialect: Dialect,
    /// One entry per bound value, in the order the values appear in the SQL text.
    origins: Vec<Origin>,
}

/// Escapes `%`, `_` and `!` for `LIKE … ESCAPE '!'`.
pub(crate) fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '%' | '_' | '!') {
            out.push('!');
        }
        out.push(c);
    }
    out
}

/// Escapes `*`, `?` and `[` for SQLite's `GLOB`.
pub(crate) fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        match c {
            '*' => out.push_str("[*]"),
            '?' => out.push_str("[?]"),
            '[' => out.push_str("[[]"),
            c => out.push(c),
        }
    }
    out
}

impl Emitter {
    fn value(&mut self, v: Value, origin: Origin) -> Expr {
        self.origins.push(origin);
        Expr::val(v)
    }

    fn scalar(&self, s: &Scalar) -> Value {
        let pg = self.dialect == Dialect::Postgres;
        match s {
            Scalar::Text(t) => Value::String(Some(t.to_string())),
            Scalar::Int(i) => Value::BigInt(Some(*i)),
            Scalar::Float(x) => Value::Double(Some(*x)),
            Scalar::Bool(b) if pg => Value::Bool(Some(*b)),
            Scalar::Bool(b) => Value::BigInt(Some(i64::from(*b))),
            Scalar::Ts(m) if pg => Value::TimeDateTimeWithTimeZone(timefmt::from_micros(*m)),
            Scalar::Ts(m) => Value::String(Some(timefmt::canonical(*m))),
            Scalar::Uuid(u) if pg => Value::Uuid(Some(*u)),
            Scalar::Uuid(u) => Value::String(Some(u.hyphenated().to_string())),
        }
    }

    fn bval(&mut self, b: &BVal) -> Expr {
        let v = self.scalar(&b.v);
        let e = self.value(v, b.origin);
        match (&b.v, self.dialect) {
            (Scalar::Ts(_), Dialect::Postgres) => cast(e, "timestamptz"),
            (Scalar::Uuid(_), Dialect::Postgres) => cast(e, "uuid"),
            _ => e,
        }
    }

    fn node(&mut self, n: &BNode) -> Expr {
        match n {
            BNode::Const(Tri::True) => Expr::cust("TRUE"),
            BNode::Const(Tri::False) => Expr::cust("FALSE"),
            BNode::Const(Tri::Unknown) => Expr::cust("CAST(NULL AS BOOLEAN)"),
            BNode::And(items) | BNode::Or(items) => {
                let and = matches!(n, BNode::And(_));
                let mut acc: Option<Expr> = None;
                for i in items {
                    let e = self.node(i);
                    acc = Some(match acc {
                        None => e,
                        Some(a) if and => a.and(e),
                        Some(a) => a.or(e),
                    });
                }
                acc.unwrap_or_else(|| Expr::cust(if and { "TRUE" } else { "FALSE" }))
            }
            BNode::Not(inner) => self.node(inner).not(),
            BNode::Cmp(c) => self.cmp(c),
        }
    }

    fn column(&mut self, f: &FieldSpec) -> Expr {
        match &f.source {
            Source::Column {
                table: None,
                column,
            } => Expr::col(Alias::new(column)),
            Source::Column {
                table: Some(t),
                column,
            } => Expr::col((Alias::new(t), Alias::new(column))),
            Source::Owner(o) => {
                // Values recorded in the order they appear in the statement.
                let scope = o
                    .scope
                    .as_ref()
                    .map(|(_, v)| self.value(Value::String(Some(v.clone())), Origin::Fixed));
                let collection =
                    self.value(Value::String(Some(o.collection.clone())), Origin::Fixed);
                o.subquery_with(scope, collection)
            }
        }
    }

    /// `column op value` for an ordering operator, in byte order: on PostgreSQL text the column
    /// is compared under `COLLATE "C"` (as SQLite's BINARY collation and the matcher do).
    fn ordered(&mut self, f: &FieldSpec, op: Op, b: &BVal) -> Expr {
        let col = self.column(f);
        let v = self.bval(b);
        if self.dialect == Dialect::Postgres && f.kind == ValueKind::Text {
            let bin = match op {
                Op::Lt => r#"COLLATE "C" <"#,
                Op::Lte => r#"COLLATE "C" <="#,
                Op::Gt => r#"COLLATE "C" >"#,
                _ => r#"COLLATE "C" >="#,
            };
            return col.binary(BinOper::Custom(bin), v);
        }
        match op {
            Op::Lt => col.lt(v),
            Op::Lte => col.lte(v),
            Op::Gt => col.gt(v),
            _ => col.gte(v),
        }
    }

    fn cmp(&mut self, c: &BCmp) -> Expr {
        let f = &*c.field;
        let pg = self.dialect == Dialect::Postgres;
        match (&c.arg, c.op) {
            (BArg::None, Op::Null) => self.column(f).is_null(),
            (BArg::None, Op::NNull) => self.column(f).is_not_null(),
            (BArg::None, Op::Empty) => self.empty(f),
            (BArg::None, Op::NEmpty) => self.empty(f).not(),
            (BArg::One(b), Op::Eq) => {
                let col = self.column(f);
                col.eq(self.bval(b))
            }
            (BArg::One(b), Op::Neq) => {
                let col = self.column(f);
                col.ne(self.bval(b))
            }
            (BArg::One(b), op @ (Op::Lt | Op::Lte | Op::Gt | Op::Gte)) => self.ordered(f, op, b),
            (BArg::Two(a, b), op @ (Op::Between | Op::NBetween)) => {
                let lo = self.ordered(f, Op::Gte, a);
                let both = lo.and(self.ordered(f, Op::Lte, b));
                if op == Op::NBetween { both.not() } else { both }
            }
            (BArg::List(items), _) => {
                let col = self.column(f);
                if pg {
                    let ty = array_type(f.kind);
                    let vals: Vec<Value> = items.iter().map(|s| self.scalar(s)).collect();
                    let arr = self.value(Value::Array(ty, Some(Box::new(vals))), Origin::Fixed);
                    col.eq(PgFunc::any(cast(arr, array_cast(f.kind))))
                } else {
                    let vals: Vec<Expr> = items
                        .iter()
                        .map(|s| {
                            let v = self.scalar(s);
                            self.value(v, Origin::Fixed)
                        })
                        .collect();
                    col.is_in(vals)
                }
            }
            (BArg::One(b), op) if op.is_substring() => {
                let Scalar::Text(needle) = &b.v else {
                    return Expr::cust("CAST(NULL AS BOOLEAN)");
                };
                let positive = op.positive().unwrap_or(op);
                let (pre, post) = match positive {
                    Op::Contains | Op::IContains => (true, true),
                    Op::StartsWith | Op::IStartsWith => (false, true),
                    _ => (true, false),
                };
                let col = self.column(f);
                let e = if !pg && !op.is_case_insensitive() {
                    let mut pat = String::with_capacity(needle.len() + 2);
                    if pre {
                        pat.push('*');
                    }
                    pat.push_str(&glob_escape(needle));
                    if post {
                        pat.push('*');
                    }
                    let v = self.value(Value::String(Some(pat)), b.origin);
                    col.binary(BinOper::Custom("GLOB"), v)
                } else {
                    let mut pat = String::with_capacity(needle.len() + 2);
                    if pre {
                        pat.push('%');
                    }
                    pat.push_str(&like_escape(needle));
                    if post {
                        pat.push('%');
                    }
                    let target = if pg && op.is_case_insensitive() {
                        Expr::from(
                            Func::cust("translate")
                                .arg(col)
                                .arg(Expr::Constant("ABCDEFGHIJKLMNOPQRSTUVWXYZ".into()))
                                .arg(Expr::Constant("abcdefghijklmnopqrstuvwxyz".into())),
                        )
                    } else {
                        col
                    };
                    self.origins.push(b.origin);
                    target.like(LikeExpr::new(pat).escape('!'))
                };
                if op.positive().is_some() { e.not() } else { e }
            }
            _ => Expr::cust("CAST(NULL AS BOOLEAN)"),
        }
    }

    fn empty(&mut self, f: &FieldSpec) -> Expr {
        let pg = self.dialect == Dialect::Postgres;
        let null = self.column(f).is_null();
        match f.kind {
            ValueKind::Text => {
                let col = self.column(f);
                let blank = self.value(Value::String(Some(String::new())), Origin::Fixed);
                null.or(col.eq(blank))
            }
            ValueKind::Json => {
                let col = self.column(f);
                let empties = [
                    serde_json::json!(""),
                    serde_json::json!([]),
                    serde_json::json!({}),
                ];
                let vals: Vec<Expr> = empties
                    .into_iter()
                    .map(|j| {
                        if pg {
                            // JSON text cast to jsonb: the value list then holds only scalars and
                            // `in` arrays, so a JSON array there always means an array bind.
                            let v = self.value(Value::String(Some(j.to_string())), Origin::Fixed);
                            cast(v, "jsonb")
                        } else {
                            self.value(Value::String(Some(j.to_string())), Origin::Fixed)
                        }
                    })
                    .collect();
                null.or(col.is_in(vals))
            }
            _ => null,
        }
    }
}

/// `CAST(e AS ty)` with `ty` a fixed SQL type name.
fn cast(e: Expr, ty: &'static str) -> Expr {
    Func::cast_as(e, Alias::new(ty)).into()
}

/// The array type of `col = ANY(CAST(array AS type[]))`: the cast makes the SQL run the same when
/// a client binds the array as text items (as the JSON of `Sql::values_json` suggests).
fn array_cast(kind: ValueKind) -> &'static str {
    match kind {
        ValueKind::Integer => "bigint[]",
        ValueKind::Number => "double precision[]",
        ValueKind::Boolean => "boolean[]",
        ValueKind::Timestamp => "timestamptz[]",
        ValueKind::Uuid => "uuid[]",
        ValueKind::Text | ValueKind::Json => "text[]",
    }
}

fn array_type(kind: ValueKind) -> ArrayType {
    match kind {
        ValueKind::Integer => ArrayType::BigInt,
        ValueKind::Number => ArrayType::Double,
        ValueKind::Boolean => ArrayType::Bool,
        ValueKind::Timestamp => ArrayType::TimeDateTimeWithTimeZone,
        ValueKind::Uuid => ArrayType::Uuid,
        ValueKind::Text | ValueKind::Json => ArrayType::String,
    }
}

/// A cache of compiled conditions, keyed by the checked filter, the dialect and the values of the
/// subject variables the filter reads. `$now` is not part of the key: its values are recomputed
/// on every hit, so a filter with `$now` is compiled once per subject, not once per request.
///
/// ```
/// use workeros_core::{Subject, User};
/// use workeros_dsl::{CompileCache, Dialect, Schema, ValueKind, parse};
/// let schema = Schema::of([("owner_id", ValueKind::Text), ("at", ValueKind::Timestamp)])?;
/// let f = parse("owner_id = $user.id && at > $now(-1 day)")?.check(&schema)?;
/// let cache = CompileCache::new(10_000);
/// let alice = Subject::user(User::new("alice"));
/// let a = cache.compile(&f, &alice, time::OffsetDateTime::now_utc(), Dialect::Sqlite)?;
/// let b = cache.compile(&f, &alice, time::OffsetDateTime::now_utc(), Dialect::Sqlite)?;
/// assert_eq!(a.sql(), b.sql());
/// assert_eq!(cache.len(), 1);
/// # Ok::<(), workeros_dsl::DslError>(())
/// ```
#[derive(Debug)]
pub struct CompileCache {
    map: RwLock<HashMap<CacheKey, Arc<Template>>>,
    capacity: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    id: u64,
    dialect: Dialect,
    vars: String,
}

#[derive(Debug)]
struct Template {
    sql: Arc<str>,
    values: Vec<Value>,
    now_slots: Vec<(usize, Option<crate::ast::Shift>)>,
}

impl Default for CompileCache {
    fn default() -> Self {
        Self::new(10_000)
    }
}

impl CompileCache {
    /// A cache holding at most `capacity` entries (it is emptied when full).
    pub fn new(capacity: usize) -> Self {
        Self {
            map: RwLock::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// How many entries it holds.
    pub fn len(&self) -> usize {
        self.map.read().map_or(0, |m| m.len())
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Binds `filter` to `subject` at `now` and compiles it for `dialect`, from the cache when it
    /// can.
    pub fn compile(
        &self,
        filter: &CheckedFilter,
        subject: &Subject,
        now: OffsetDateTime,
        dialect: Dialect,
    ) -> Result<Sql, DslError> {
        let mut vars = String::new();
        for v in &filter.vars {
            write_var_key(&mut vars, subject, v);
        }
        let key = CacheKey {
            id: filter.id,
            dialect,
            vars,
        };
        let now_micros = timefmt::to_micros(now);
        let hit = self.map.read().ok().and_then(|m| m.get(&key).cloned());
        if let Some(sql) = hit.and_then(|t| instantiate(&t, now_micros, dialect)) {
            return Ok(sql);
        }
        let compiled = filter.bind(subject, now).compile(dialect)?;
        let (sql, values) = render(&compiled.expr, dialect);
        let sql: Arc<str> = sql.into();
        let now_slots: Vec<_> = compiled
            .origins
            .iter()
            .enumerate()
            .filter_map(|(i, o)| match o {
                Origin::Now(shift) => Some((i, *shift)),
                Origin::Fixed => None,
            })
            .collect();
        // Every `$now` must have become a value we can find again, or the entry is not reusable.
        // A `$now` folded away (shifted out of years 1..=9999) left no slot: that SQL depends
        // on the instant, so it is not stored.
        let reusable = compiled.origins.len() == values.0.len()
            && now_micros.is_some()
            && now_slots.len() == filter.now_uses;
        if reusable && let Ok(mut m) = self.map.write() {
            {
                if m.len() >= self.capacity {
                    m.clear();
                }
                m.insert(
                    key,
                    Arc::new(Template {
                        sql: sql.clone(),
                        values: values.0.clone(),
                        now_slots,
                    }),
                );
            }
        }
        Ok(Sql {
            sql,
            values,
            dialect,
        })
    }
}

/// Appends the value of `var` for `subject` to a cache key, unambiguously: strings are
/// length-prefixed, attributes are their JSON text, a missing value is `-`.
fn write_var_key(key: &mut String, subject: &Subject, var: &crate::ast::Var) {
    use crate::ast::Var;
    fn text(key: &mut String, s: Option<&str>) {
        match s {
            Some(s) => {
                // Length-prefixed: no value can imitate a separator.
                key.push_str(itoa::Buffer::new().format(s.len()));
                key.push(':');
                key.push_str(s);
            }
            None => key.push('-'),
        }
        key.push(';');
    }
    let user = subject.user.as_ref();
    match var {
        Var::UserId => text(key, user.map(|u| u.id.as_str())),
        Var::UserEmail => text(key, user.and_then(|u| u.email.as_deref())),
        Var::TenantId => text(key, subject.tenant.as_deref()),
        Var::UserRoles => match user {
            Some(u) => {
                key.push_str(itoa::Buffer::new().format(u.roles.len()));
                key.push('[');
                for r in &u.roles {
                    text(key, Some(r));
                }
            }
            None => text(key, None),
        },
        Var::UserAttr(a) => match user.and_then(|u| u.attrs.get(a.as_str())) {
            Some(j) => text(key, Some(&j.to_string())),
            None => text(key, None),
        },
        Var::Now(_) => {}
    }
}

fn instantiate(t: &Template, now: Option<i64>, dialect: Dialect) -> Option<Sql> {
    let mut values = t.values.clone();
    for (i, shift) in &t.now_slots {
        let m = timefmt::shifted(now?, *shift)?;
        let v = match dialect {
            Dialect::Postgres => Value::TimeDateTimeWithTimeZone(Some(timefmt::from_micros(m)?)),
            Dialect::Sqlite => Value::String(Some(timefmt::canonical(m))),
        };
        *values.get_mut(*i)? = v;
    }
    Some(Sql {
        sql: t.sql.clone(),
        values: Values(values),
        dialect,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Schema, parse};
    use workeros_core::User;

    fn checked(src: &str) -> CheckedFilter {
        let schema = Schema::of([
            ("owner", ValueKind::Text),
            ("at", ValueKind::Timestamp),
            ("tag", ValueKind::Text),
        ])
        .unwrap();
        parse(src).unwrap().check(&schema).unwrap()
    }

    fn at(s: &str) -> OffsetDateTime {
        OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap()
    }

    #[test]
    fn hits_recompute_now_and_match_a_fresh_compile() {
        let f = checked("owner = $user.id && at > $now(-1 day) && tag in $user.roles");
        let cache = CompileCache::new(16);
        let alice = Subject::user(User::new("alice").with_roles(["x", "y"]));
        for (n, now) in ["2024-01-01T00:00:00Z", "2024-06-01T12:30:00.5Z"]
            .iter()
            .enumerate()
        {
            for d in [Dialect::Postgres, Dialect::Sqlite] {
                let cached = cache.compile(&f, &alice, at(now), d).unwrap();
                let fresh = f.bind(&alice, at(now)).compile(d).unwrap().to_sql();
                assert_eq!(cached.sql(), fresh.sql());
                assert_eq!(cached.values_json(), fresh.values_json(), "{now} {d:?}");
            }
            assert_eq!(cache.len(), 2, "round {n}: one entry per dialect");
        }
    }

    #[test]
    fn subjects_do_not_share_entries() {
        let f = checked("owner = $user.id");
        let cache = CompileCache::new(16);
        let now = at("2024-01-01T00:00:00Z");
        let a = cache
            .compile(&f, &Subject::user(User::new("a")), now, Dialect::Sqlite)
            .unwrap();
        let b = cache
            .compile(&f, &Subject::user(User::new("b")), now, Dialect::Sqlite)
            .unwrap();
        assert_eq!(a.values_json(), vec![serde_json::json!("a")]);
        assert_eq!(b.values_json(), vec![serde_json::json!("b")]);
        // The anonymous subject folds to unknown: another SQL shape, another entry.
        let anon = cache
            .compile(&f, &Subject::anonymous(), now, Dialect::Sqlite)
            .unwrap();
        assert_eq!(anon.sql(), "CAST(NULL AS BOOLEAN)");
        // Values that could imitate the key's separators stay distinct.
        let tricky = cache
            .compile(&f, &Subject::user(User::new("1:a;")), now, Dialect::Sqlite)
            .unwrap();
        assert_eq!(tricky.values_json(), vec![serde_json::json!("1:a;")]);
        assert_eq!(cache.len(), 4);
        // Variables the filter does not read are not in the key.
        let a2 = Subject::user(User::new("a").with_email("other@example.com"));
        cache.compile(&f, &a2, now, Dialect::Sqlite).unwrap();
        assert_eq!(cache.len(), 4);
    }

    #[test]
    fn now_out_of_range_is_not_cached() {
        let f = checked("at > $now(-2024 years)");
        let cache = CompileCache::new(4);
        let early = cache
            .compile(
                &f,
                &Subject::anonymous(),
                at("2024-06-01T00:00:00Z"),
                Dialect::Sqlite,
            )
            .unwrap();
        assert_eq!(early.sql(), "CAST(NULL AS BOOLEAN)");
        assert!(cache.is_empty());
        let later = cache
            .compile(
                &f,
                &Subject::anonymous(),
                at("2025-06-01T00:00:00Z"),
                Dialect::Sqlite,
            )
            .unwrap();
        assert_eq!(later.sql(), r#""at" > ?"#);
        assert_eq!(
            later.values_json(),
            vec![serde_json::json!("0001-06-01T00:00:00.000000Z")]
        );
    }

    #[test]
    fn capacity_bounds_the_cache() {
        let f = checked("owner = $user.id");
        let cache = CompileCache::new(3);
        let now = at("2024-01-01T00:00:00Z");
        for i in 0..10 {
            cache
                .compile(
                    &f,
                    &Subject::user(User::new(i.to_string())),
                    now,
                    Dialect::Sqlite,
                )
                .unwrap();
            assert!(cache.len() <= 3);
        }
    }

    #[test]
    fn regex_does_not_compile() {
        let f = checked("tag matches '^a'");
        let e = cache_err(&f);
        assert_eq!(e.kind(), ErrorKind::Unsupported);
    }

    fn cache_err(f: &CheckedFilter) -> DslError {
        CompileCache::new(4)
            .compile(
                f,
                &Subject::anonymous(),
                OffsetDateTime::UNIX_EPOCH,
                Dialect::Postgres,
            )
            .unwrap_err()
    }
}
