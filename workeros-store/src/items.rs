//! Reading items: the list query (filter, sort, limit, offset, fields, count) and one item by
//! key, with the subject's read permissions in the `WHERE` and fields masked per row.

use crate::access::{access_from, client_filter};
use crate::columns::{
    Col, Key, Role, decode_row, find_col, item_not_found, key_col, read_expr, schema_of, select_of,
    tenant_scope,
};
use crate::value::now;
use crate::{Store, StoreError};
use sea_query::{Alias, Expr, ExprTrait, Order, Query, SimpleExpr};
use serde_json::{Map, Value as Json};
use workeros_core::{Action, Subject};
use workeros_dsl::Tri;

/// Most rows one list returns.
pub const MAX_LIMIT: u64 = 1_000;

/// Most sort keys one list takes (each is a column of the `ORDER BY`).
pub const MAX_SORT_KEYS: usize = 8;

/// Rows a list returns when no limit is given.
pub const DEFAULT_LIMIT: u64 = 100;

/// A list request (`GET /api/items/:slug`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListQuery {
    /// The client's filter: a JSON-form object, or a string in the text or JSON form.
    pub filter: Option<Json>,
    /// Sort keys: a field (logical or wire name), descending when `desc`.
    pub sort: Vec<SortKey>,
    /// At most this many rows (default 100, at most 1,000).
    pub limit: Option<u64>,
    /// Rows to skip.
    pub offset: Option<u64>,
    /// The fields to return (`None`: every readable field).
    pub fields: Option<Vec<String>>,
    /// Whether to count every matching row (`meta=count`).
    pub count: bool,
}

/// One sort key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    /// The field, by logical or wire name.
    pub field: String,
    /// Descending.
    pub desc: bool,
}

impl SortKey {
    /// Parses `-created_at,title`.
    pub fn parse_list(s: &str) -> Vec<SortKey> {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| match p.strip_prefix('-') {
                Some(f) => SortKey {
                    field: f.to_owned(),
                    desc: true,
                },
                None => SortKey {
                    field: p.trim_start_matches('+').to_owned(),
                    desc: false,
                },
            })
            .collect()
    }
}

/// A page of items.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemsPage {
    /// The rows, in their wire form.
    pub data: Vec<Map<String, Json>>,
    /// How many rows match in all, when counted.
    pub count: Option<u64>,
}

impl Store {
    /// Lists items (`GET /api/items/:slug`): the subject's read permissions OR-ed next to the
    /// client's filter in SQL, fields masked per row, filter and sort on unreadable fields refused.
    pub async fn list_items(
        &self,
        subject: &Subject,
        slug: &str,
        q: &ListQuery,
    ) -> Result<ItemsPage, StoreError> {
        let d = self.db().dialect();
        let tenant = subject.tenant_id();
        let view = self.read_view(tenant, slug).await?;
        let info = &view.info;
        let at = now();
        let access = access_from(subject, &view.rules, info, Action::Read, at)?;
        let cols = &view.cols;
        let readable = |f: &str| access.may_filter(f);
        let schema = schema_of(info, self.db().names(), Some(&readable))?;
        let client = client_filter(&q.filter, &schema)?;
        let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
        if q.offset.is_some_and(|o| i64::try_from(o).is_err()) {
            return Err(StoreError::validation(
                "`offset` is too large",
                Some("offset"),
            ));
        }
        if limit > MAX_LIMIT {
            return Err(StoreError::validation(
                format!("`limit` is at most {MAX_LIMIT}"),
                Some("limit"),
            ));
        }
        let fields: Option<Vec<&Col>> = match &q.fields {
            None => None,
            Some(list) if list.iter().any(|f| f == "*") => None,
            Some(list) => Some(
                list.iter()
                    .map(|f| {
                        let c = find_col(cols, f).ok_or_else(|| {
                            StoreError::validation(
                                format!("unknown field `{f}` in `fields`"),
                                Some(f),
                            )
                        })?;
                        if !c.is_system() && !access.may_read(&c.name) {
                            return Err(StoreError::Forbidden(format!(
                                "you may not read field `{f}`"
                            )));
                        }
                        Ok(c)
                    })
                    .collect::<Result<_, _>>()?,
            ),
        };
        let mut where_: Vec<SimpleExpr> = tenant_scope(info, tenant).into_iter().collect();
        if let Some(c) = &client {
            let b = c.bind(subject, at);
            match b.constant() {
                Some(Tri::True) => {}
                Some(_) => where_.push(Expr::cust("1 = 0")),
                None => where_.push(b.compile(d)?.into_expr()),
            }
        }
        if let Some(cond) = access.condition(d)? {
            where_.push(cond);
        }
        let mut select = select_of(info, cols, self.db().names());
        for w in &where_ {
            select.and_where(w.clone());
        }
        if q.sort.len() > MAX_SORT_KEYS {
            return Err(StoreError::BadRequest(format!(
                "`sort` has {} keys; at most {MAX_SORT_KEYS} are allowed",
                q.sort.len()
            )));
        }
        for k in &q.sort {
            let c = find_col(cols, &k.field).ok_or_else(|| {
                StoreError::validation(
                    format!("unknown field `{}` in `sort`", k.field),
                    Some(&k.field),
                )
            })?;
            if !c.is_system() && !access.may_filter(&c.name) {
                return Err(StoreError::Forbidden(format!(
                    "you may not sort on field `{}`",
                    k.field
                )));
            }
            // Nulls sort as the smallest value on both databases (PostgreSQL's default puts
            // them last).
            let (order, nulls) = if k.desc {
                (Order::Desc, sea_query::NullOrdering::Last)
            } else {
                (Order::Asc, sea_query::NullOrdering::First)
            };
            if c.role == Role::OwnerSide {
                // Not a column of the table: the owner as the row reads it.
                select.order_by_expr_with_nulls(
                    read_expr(info, c, self.db().names()),
                    order,
                    nulls,
                );
            } else {
                select.order_by_with_nulls(Alias::new(c.column.as_str()), order, nulls);
            }
        }
        select.order_by(Alias::new(key_col(cols)?.column.as_str()), Order::Asc);
        let rows = self
            .db()
            .fetch_page(&select, limit, q.offset.unwrap_or(0))
            .await?;
        let mut data = Vec::with_capacity(rows.len());
        for r in rows.iter() {
            let row = access.mask(cols, decode_row(info, r, cols)?);
            data.push(project(row, fields.as_deref()));
        }
        let count = if q.count {
            let mut c = Query::select();
            c.expr(Expr::cust("COUNT(*)"))
                .from(info.table(self.db().names()));
            for w in where_ {
                c.and_where(w);
            }
            let n = crate::value::first_i64(&self.db().fetch_all(&c).await?)?;
            Some(u64::try_from(n.first().copied().unwrap_or(0)).unwrap_or(0))
        } else {
            None
        };
        Ok(ItemsPage { data, count })
    }

    /// One item (`GET /api/items/:slug/:id`, `id` the value of the collection's key): 404 when it
    /// does not exist or the subject may not read it (the same answer).
    pub async fn get_item(
        &self,
        subject: &Subject,
        slug: &str,
        id: &str,
        fields: Option<Vec<String>>,
    ) -> Result<Map<String, Json>, StoreError> {
        let view = self.read_view(subject.tenant_id(), slug).await?;
        let info = &view.info;
        let key = Key::parse(id, info.key_type(), self.db().dialect())
            .ok_or_else(|| item_not_found(slug, id))?;
        let mut filter = Map::new();
        // A text key that starts with `$` would read as a variable: `$$` keeps it literal.
        let literal = match &key.wire {
            Json::String(t) if t.starts_with('$') => Json::String(format!("${t}")),
            other => other.clone(),
        };
        filter.insert(
            info.key_field().to_owned(),
            serde_json::json!({ "_eq": literal }),
        );
        let q = ListQuery {
            filter: Some(Json::Object(filter)),
            limit: Some(1),
            fields,
            ..ListQuery::default()
        };
        let page = self.list_items(subject, slug, &q).await?;
        page.data
            .into_iter()
            .next()
            .ok_or_else(|| item_not_found(slug, id))
    }
}

impl Store {
    /// The rows of `slug` in `tenant` keyed by `keys` (item keys as events record them) as they
    /// are now, in their wire form and unmasked, by key; keys of rows that no longer exist (or
    /// that are not keys of the collection) are absent. No permission applies: for code that
    /// judges the rows itself (a realtime stream resuming shows what is there now).
    pub async fn rows_now(
        &self,
        tenant: &str,
        slug: &str,
        keys: &[String],
    ) -> Result<std::collections::HashMap<String, Map<String, Json>>, StoreError> {
        let view = self.read_view(tenant, slug).await?;
        let (info, cols) = (&view.info, &view.cols);
        let d = self.db().dialect();
        let key = key_col(cols)?;
        let mut out = std::collections::HashMap::with_capacity(keys.len());
        let parsed: Vec<Key> = keys
            .iter()
            .filter_map(|k| Key::parse(k, info.key_type(), d))
            .collect();
        for chunk in parsed.chunks(500) {
            let mut q = select_of(info, cols, self.db().names());
            q.and_where(
                Expr::col(Alias::new(key.column.as_str()))
                    .is_in(chunk.iter().map(|k| k.value.clone())),
            );
            if let Some(t) = tenant_scope(info, tenant) {
                q.and_where(t);
            }
            for r in self.db().fetch_all(&q).await?.iter() {
                let row = decode_row(info, r, cols)?;
                let text = match row.get(&key.key) {
                    Some(Json::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                    None => continue,
                };
                out.insert(text, row);
            }
        }
        Ok(out)
    }
}

fn project(row: Map<String, Json>, fields: Option<&[&Col]>) -> Map<String, Json> {
    let Some(fields) = fields else { return row };
    let mut out = Map::new();
    let mut row = row;
    for c in fields {
        if let Some(v) = row.remove(&c.key) {
            out.insert(c.key.clone(), v);
        }
    }
    out
}
