//! The write side of the audit trail: an activity row and an item's revision, written inside the
//! transaction of the change they record ([`activity`](crate::activity) reads them).

use crate::schema::{ACTIVITY, REVISIONS};
use crate::value::{now, ts_value, uuid_value};
use crate::{StoreError, Tx};
use sea_query::{Alias, Expr, Query};
use serde_json::Value as Json;
use workeros_core::Subject;

/// An activity row inside the write's transaction.
pub(crate) async fn record_activity(
    tx: &mut Tx,
    subject: &Subject,
    action: &str,
    collection: Option<&str>,
    item: Option<&str>,
) -> Result<uuid::Uuid, StoreError> {
    let d = tx.dialect();
    let id = uuid::Uuid::now_v7();
    tx.execute(
        Query::insert()
            .into_table(tx.table(ACTIVITY))
            .columns(
                [
                    "id",
                    "tenant_id",
                    "actor",
                    "action",
                    "collection",
                    "item_id",
                    "created_at",
                ]
                .map(Alias::new),
            )
            .values([
                Expr::val(uuid_value(id, d)),
                Expr::val(subject.tenant_id()),
                Expr::val(subject.user.as_ref().map(|u| u.id.clone())),
                Expr::val(action),
                Expr::val(collection.map(str::to_owned)),
                Expr::val(item.map(str::to_owned)),
                Expr::val(ts_value(now(), d)),
            ])
            .map_err(StoreError::internal)?,
    )
    .await?;
    Ok(id)
}

/// A revision row: the item after the change and what changed.
pub(crate) async fn record_revision(
    tx: &mut Tx,
    subject: &Subject,
    activity: uuid::Uuid,
    slug: &str,
    item: &str,
    data: Option<&Json>,
    delta: Option<&Json>,
) -> Result<(), StoreError> {
    use crate::value::{json_value, ts_value, uuid_value};
    let d = tx.dialect();
    tx.execute(
        Query::insert()
            .into_table(tx.table(REVISIONS))
            .columns(
                [
                    "id",
                    "tenant_id",
                    "activity_id",
                    "collection",
                    "item_id",
                    "data",
                    "delta",
                    "created_at",
                ]
                .map(Alias::new),
            )
            .values([
                Expr::val(uuid_value(uuid::Uuid::now_v7(), d)),
                Expr::val(subject.tenant_id()),
                Expr::val(uuid_value(activity, d)),
                Expr::val(slug),
                Expr::val(item),
                Expr::val(json_value(data, d)),
                Expr::val(json_value(delta, d)),
                Expr::val(ts_value(now(), d)),
            ])
            .map_err(StoreError::internal)?,
    )
    .await?;
    Ok(())
}

/// Takes a dropped field's values out of the collection's revisions (their `data` and `delta`),
/// in the drop's transaction: a field dropped to purge it is gone from history too, and a field
/// added later under the same name does not show the old one's values.
pub(crate) async fn forget_field_history(
    tx: &mut Tx,
    tenant: &str,
    slug: &str,
    field: &str,
) -> Result<(), StoreError> {
    use sea_query::ExprTrait;
    let d = tx.dialect();
    // The key is bound, never written into the SQL (it is a validated field name as well).
    let without = |column: &str| match d {
        workeros_dsl::Dialect::Postgres => {
            Expr::cust_with_values(format!("\"{column}\" - $1"), [field.to_owned()])
        }
        workeros_dsl::Dialect::Sqlite => Expr::cust_with_values(
            format!("json_remove(\"{column}\", ?)"),
            [format!("$.\"{field}\"")],
        ),
    };
    tx.execute(
        Query::update()
            .table(tx.table(REVISIONS))
            .value(Alias::new("data"), without("data"))
            .value(Alias::new("delta"), without("delta"))
            .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
            .and_where(Expr::col(Alias::new("collection")).eq(slug)),
    )
    .await?;
    Ok(())
}
