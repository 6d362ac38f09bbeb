//! The write side of the audit trail: an activity row and an item's revision, written inside the
//! transaction of the change they record ([`activity`](crate::activity) reads them).

use crate::schema::{ACTIVITY, REVISIONS};
use crate::value::{now, ts_value, uuid_value};
use crate::{StoreError, Tx, Write};
use sea_query::{Alias, Expr, InsertStatement, Query};
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
    let (id, insert) = activity_insert(tx, subject, action, collection, item)?;
    tx.execute(&insert).await?;
    Ok(id)
}

/// The insert of an activity row, and its id.
fn activity_insert(
    tx: &Tx,
    subject: &Subject,
    action: &str,
    collection: Option<&str>,
    item: Option<&str>,
) -> Result<(uuid::Uuid, InsertStatement), StoreError> {
    let d = tx.dialect();
    let id = uuid::Uuid::now_v7();
    let mut insert = Query::insert();
    insert
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
        .map_err(StoreError::internal)?;
    Ok((id, insert))
}

/// The insert of a revision row: the item after the change and what changed.
fn revision_insert(
    tx: &Tx,
    subject: &Subject,
    activity: uuid::Uuid,
    slug: &str,
    item: &str,
    data: Option<&Json>,
    delta: Option<&Json>,
) -> Result<InsertStatement, StoreError> {
    use crate::value::json_value;
    let d = tx.dialect();
    let mut insert = Query::insert();
    insert
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
        .map_err(StoreError::internal)?;
    Ok(insert)
}

/// Whether an item write leaves a revision, and with which delta.
pub(crate) enum Revision<'a> {
    /// None (a delete).
    None,
    /// The whole item is the delta (a create).
    Whole,
    /// What changed (an update).
    Delta(&'a Json),
}

/// What one item write leaves behind, in its transaction: the statements of the activity row
/// (`item.<action>`), the revision (the item after the change, `data`, and the delta `revision`
/// names) and the outbox event, after the item's own statement `first` when the caller has one
/// to send with them — for the caller to send in one call ([`Tx::write_each`], or
/// [`Tx::commit_with`] when they are its last). Returns the event and the statements.
#[allow(clippy::too_many_arguments)]
pub(crate) fn item_write_journal(
    tx: &Tx,
    first: Option<Write>,
    subject: &Subject,
    slug: &str,
    action: workeros_core::EventAction,
    item: String,
    revision: Revision<'_>,
    data: Option<Json>,
    previous: Option<Json>,
    at: time::OffsetDateTime,
) -> Result<(workeros_core::Event, Vec<Write>), StoreError> {
    let name = format!("item.{}", action.as_str());
    let (activity, activity_row) = activity_insert(tx, subject, &name, Some(slug), Some(&item))?;
    let mut inserts = Vec::with_capacity(4);
    inserts.extend(first);
    inserts.push(Write::Insert(activity_row));
    let delta = match revision {
        Revision::None => None,
        Revision::Whole => Some(data.as_ref()),
        Revision::Delta(d) => Some(Some(d)),
    };
    if let Some(delta) = delta {
        inserts.push(Write::Insert(revision_insert(
            tx,
            subject,
            activity,
            slug,
            &item,
            data.as_ref(),
            delta,
        )?));
    }
    let event = crate::outbox::event_of_write(subject, slug, action, item, data, previous, at);
    inserts.push(Write::Insert(crate::outbox::event_insert(tx, &event)?));
    Ok((event, inserts))
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
