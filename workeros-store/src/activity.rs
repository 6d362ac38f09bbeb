//! Reading the audit trail: `activity` (every write and admin change) and `revisions` (an item's
//! history). Admins see their tenant's whole activity; anyone else only their own rows.

use crate::access::{Access, access};
use crate::catalog::load_active;
use crate::columns::{columns, item_not_found, item_text};
use crate::schema::{ACTIVITY, REVISIONS};
use crate::value::{RowRef, ts_value};
use crate::{Store, StoreError};
use sea_query::{Alias, Expr, ExprTrait, Func, Order, Query};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use time::OffsetDateTime;
use workeros_core::instant::rfc3339;
use workeros_core::{Action, Subject};

/// Most activity rows one request returns.
pub const MAX_ACTIVITY_LIMIT: u64 = 200;

/// An activity query (`GET /api/activity`); every part optional, all AND-ed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivityQuery {
    /// An action prefix: `item` matches `item.create`, `item.update`, …
    #[serde(default)]
    pub action: Option<String>,
    /// From this instant (epoch milliseconds, inclusive).
    #[serde(default)]
    pub from: Option<i64>,
    /// Up to this instant (epoch milliseconds, inclusive).
    #[serde(default)]
    pub to: Option<i64>,
    /// One collection.
    #[serde(default)]
    pub collection: Option<String>,
    /// One item.
    #[serde(default)]
    pub item_id: Option<String>,
    /// At most this many rows (default and maximum 200).
    #[serde(default)]
    pub limit: Option<u64>,
    /// Rows to skip.
    #[serde(default)]
    pub offset: Option<u64>,
    /// Count every matching row (`meta=count`).
    #[serde(default)]
    pub meta: Option<String>,
}

/// One activity row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivityEntry {
    /// Its id.
    pub id: String,
    /// Who acted (`None`: anonymous).
    pub actor: Option<String>,
    /// What (`item.create`, `collection.drop_field`, …).
    pub action: String,
    /// On which collection.
    pub collection: Option<String>,
    /// On which item (or field, for field changes).
    pub item_id: Option<String>,
    /// From where.
    pub ip: Option<String>,
    /// With what client.
    pub user_agent: Option<String>,
    /// When (RFC 3339).
    pub created_at: String,
}

/// One revision of an item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Revision {
    /// Its id.
    pub id: String,
    /// The activity row of the change.
    pub activity_id: Option<String>,
    /// The item after the change, as the subject may read it.
    pub data: Option<Json>,
    /// What the change set, as the subject may read it.
    pub delta: Option<Json>,
    /// When (RFC 3339).
    pub created_at: String,
}

fn ms(t: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(t) * 1_000_000).map_err(|_| {
        StoreError::validation(
            format!("`{t}` is not an instant in epoch milliseconds"),
            None,
        )
    })
}

fn entry_of(r: RowRef<'_>) -> Result<ActivityEntry, StoreError> {
    Ok(ActivityEntry {
        id: r.uuid_text("id")?.unwrap_or_default(),
        actor: r.text("actor")?,
        action: r.text("action")?.unwrap_or_default(),
        collection: r.text("collection")?,
        item_id: r.text("item_id")?,
        ip: r.text("ip")?,
        user_agent: r.text("user_agent")?,
        created_at: r.ts("created_at")?.map(rfc3339).unwrap_or_default(),
    })
}

impl Store {
    /// Reads activity (`GET /api/activity`): newest first; admins see their tenant's rows, a
    /// signed-in subject only its own, the anonymous subject nothing (403).
    pub async fn activity(
        &self,
        subject: &Subject,
        q: &ActivityQuery,
    ) -> Result<(Vec<ActivityEntry>, Option<u64>), StoreError> {
        let Some(user) = &subject.user else {
            return Err(StoreError::Forbidden("sign in to read activity".into()));
        };
        let limit = q.limit.unwrap_or(MAX_ACTIVITY_LIMIT);
        if limit > MAX_ACTIVITY_LIMIT {
            return Err(StoreError::validation(
                format!("`limit` is at most {MAX_ACTIVITY_LIMIT}"),
                Some("limit"),
            ));
        }
        if q.offset.is_some_and(|o| i64::try_from(o).is_err()) {
            return Err(StoreError::validation(
                "`offset` is too large",
                Some("offset"),
            ));
        }
        let d = self.db().dialect();
        let mut conds = vec![Expr::col(Alias::new("tenant_id")).eq(subject.tenant_id())];
        if !subject.is_admin() {
            conds.push(Expr::col(Alias::new("actor")).eq(user.id.as_str()));
        }
        if let Some(prefix) = q.action.as_deref().filter(|p| !p.is_empty()) {
            // A prefix compared as a prefix (no LIKE: its wildcards and case rules differ).
            // `substr(text, int, int)`: PostgreSQL has no bigint overload, so the bounds are i32.
            let n = i32::try_from(prefix.chars().count()).unwrap_or(i32::MAX);
            conds.push(
                Expr::expr(
                    Func::cust(Alias::new("substr"))
                        .arg(Expr::col(Alias::new("action")))
                        .arg(1_i32)
                        .arg(n),
                )
                .eq(prefix),
            );
        }
        if let Some(from) = q.from {
            conds.push(Expr::col(Alias::new("created_at")).gte(ts_value(ms(from)?, d)));
        }
        if let Some(to) = q.to {
            conds.push(Expr::col(Alias::new("created_at")).lte(ts_value(ms(to)?, d)));
        }
        if let Some(c) = &q.collection {
            conds.push(Expr::col(Alias::new("collection")).eq(c.as_str()));
        }
        if let Some(i) = &q.item_id {
            conds.push(Expr::col(Alias::new("item_id")).eq(i.as_str()));
        }
        let mut select = Query::select();
        select
            .columns(
                [
                    "id",
                    "actor",
                    "action",
                    "collection",
                    "item_id",
                    "ip",
                    "user_agent",
                    "created_at",
                ]
                .map(Alias::new),
            )
            .from(self.db().table(ACTIVITY));
        for c in &conds {
            select.and_where(c.clone());
        }
        select
            .order_by(Alias::new("created_at"), Order::Desc)
            .order_by(Alias::new("id"), Order::Desc);
        let rows = self
            .db()
            .fetch_page(&select, limit, q.offset.unwrap_or(0))
            .await?;
        let list = rows.iter().map(entry_of).collect::<Result<Vec<_>, _>>()?;
        let count = if q
            .meta
            .as_deref()
            .is_some_and(|m| m.split(',').any(|p| p == "count" || p == "*"))
        {
            let mut c = Query::select();
            c.expr(Expr::cust("COUNT(*)"))
                .from(self.db().table(ACTIVITY));
            for cond in conds {
                c.and_where(cond);
            }
            let n = crate::value::first_i64(&self.db().fetch_all(&c).await?)?;
            Some(u64::try_from(n.first().copied().unwrap_or(0)).unwrap_or(0))
        } else {
            None
        };
        Ok((list, count))
    }

    /// An item's history (`GET /api/revisions?collection=&item=`), oldest first. Anyone who may
    /// read the item now sees it, masked by the fields they may read; others get 404.
    pub async fn revisions(
        &self,
        subject: &Subject,
        collection: &str,
        item: &str,
    ) -> Result<Vec<Revision>, StoreError> {
        // Readable now, or 404 exactly like the item itself.
        self.get_item(subject, collection, item, None).await?;
        let tenant = subject.tenant_id();
        let mut tx = self.db().begin_read().await?;
        let info = load_active(&mut tx, tenant, collection).await?;
        let item =
            item_text(&info, item, tx.dialect()).ok_or_else(|| item_not_found(collection, item))?;
        let read = access(&mut tx, subject, &info, Action::Read, crate::value::now()).await?;
        let cols = columns(&info);
        let rows = tx
            .fetch_all(
                Query::select()
                    .columns(["id", "activity_id", "data", "delta", "created_at"].map(Alias::new))
                    .from(self.db().table(REVISIONS))
                    .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
                    .and_where(Expr::col(Alias::new("collection")).eq(collection))
                    .and_where(Expr::col(Alias::new("item_id")).eq(item.as_str()))
                    .order_by(Alias::new("created_at"), Order::Asc)
                    .order_by(Alias::new("id"), Order::Asc),
            )
            .await?;
        tx.commit().await?;
        let mut out = Vec::new();
        for r in rows.iter() {
            let data = r.json("data")?;
            let delta = r.json("delta")?;
            // Each snapshot is shown as the subject could read that state of the row: a state no
            // read permission matches is left out, and fields are masked by the ones that do.
            let (data, delta) = match (&read, data) {
                (Access::All, data) => (data, delta),
                (_, Some(Json::Object(snapshot))) => {
                    if !read.matches_any(&snapshot) {
                        continue;
                    }
                    let keys: Vec<&str> = cols
                        .iter()
                        .filter(|c| read.allows_for(&snapshot, c))
                        .map(|c| c.key.as_str())
                        .collect();
                    let keep = |m: Map<String, Json>| -> Json {
                        Json::Object(
                            m.into_iter()
                                .filter(|(k, _)| keys.contains(&k.as_str()))
                                .collect(),
                        )
                    };
                    let delta = match delta {
                        Some(Json::Object(m)) => Some(keep(m)),
                        other => other,
                    };
                    (Some(keep(snapshot)), delta)
                }
                // A revision without a snapshot shows nothing of the row.
                (_, _) => (None, None),
            };
            out.push(Revision {
                id: r.uuid_text("id")?.unwrap_or_default(),
                activity_id: r.uuid_text("activity_id")?,
                data,
                delta,
                created_at: r.ts("created_at")?.map(rfc3339).unwrap_or_default(),
            });
        }
        Ok(out)
    }
}
