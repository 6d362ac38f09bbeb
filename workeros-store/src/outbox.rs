//! The event outbox: every write appends its [`Event`] to `events` in its own transaction; after
//! the commit the events go to every registered [`EventSink`]. A rolled-back write emits nothing.

use crate::schema::{EVENTS, OUTBOX_CURSORS};
use crate::value::{json_value, ts_value, uuid_value};
use crate::{StoreError, Tx};
use sea_query::{Alias, Expr, ExprTrait, Query};
use serde_json::Value as Json;
use time::OffsetDateTime;
use workeros_core::{Event, EventAction, Subject};

/// The insert of event `e` into the outbox.
pub(crate) fn event_insert(tx: &Tx, e: &Event) -> Result<sea_query::InsertStatement, StoreError> {
    let d = tx.dialect();
    let mut insert = Query::insert();
    insert
        .into_table(tx.table(EVENTS))
        // Every column but `seq`, which the database numbers.
        .columns(EVENT_COLUMNS.iter().skip(1).map(|c| Alias::new(*c)))
        .values([
            Expr::val(uuid_value(e.id, d)),
            Expr::val(e.tenant.as_str()),
            Expr::val(e.collection.as_str()),
            Expr::val(e.action.as_str()),
            Expr::val(e.item_id.as_str()),
            Expr::val(json_value(e.data.as_ref(), d)),
            Expr::val(json_value(e.previous.as_ref(), d)),
            Expr::val(e.actor.clone()),
            Expr::val(ts_value(e.at, d)),
            Expr::val(i64::from(e.depth)),
        ])
        .map_err(StoreError::internal)?;
    Ok(insert)
}

/// The event of a write to `item` of `collection` by `subject` (its depth from the task-local,
/// see [`with_event_depth`]).
pub(crate) fn event_of_write(
    subject: &Subject,
    collection: &str,
    action: EventAction,
    item: String,
    data: Option<Json>,
    previous: Option<Json>,
    at: OffsetDateTime,
) -> Event {
    Event {
        id: uuid::Uuid::now_v7(),
        tenant: subject.tenant_id().to_owned(),
        collection: collection.to_owned(),
        action,
        item_id: item,
        data,
        previous,
        actor: subject.user.as_ref().map(|u| u.id.clone()),
        at,
        depth: event_depth(),
    }
}

fn event_of(r: crate::value::RowRef<'_>) -> Result<Event, StoreError> {
    let id = r.uuid_text("id")?.unwrap_or_default();
    let action = r.text("action")?.unwrap_or_default();
    Ok(Event {
        id: uuid::Uuid::try_parse(&id).map_err(StoreError::internal)?,
        tenant: r.text("tenant_id")?.unwrap_or_default(),
        collection: r.text("collection")?.unwrap_or_default(),
        action: EventAction::from_name(&action)
            .ok_or_else(|| StoreError::internal(format!("an event with action `{action}`")))?,
        item_id: r.text("item_id")?.unwrap_or_default(),
        data: r.json("data")?,
        previous: r.json("previous")?,
        actor: r.text("actor")?,
        at: r.ts("created_at")?.unwrap_or(OffsetDateTime::UNIX_EPOCH),
        depth: r
            .int("depth")?
            .and_then(|d| u32::try_from(d).ok())
            .unwrap_or(0),
    })
}

const EVENT_COLUMNS: [&str; 11] = [
    "seq",
    "id",
    "tenant_id",
    "collection",
    "action",
    "item_id",
    "data",
    "previous",
    "actor",
    "created_at",
    "depth",
];

tokio::task_local! {
    static DEPTH: u32;
}

/// Runs `fut` so that the events of the writes it makes record `depth` ([`Event::depth`]): how
/// a flow run marks what it writes, whatever subject it writes as. Outside it, events record 0.
pub async fn with_event_depth<F: std::future::Future>(depth: u32, fut: F) -> F::Output {
    DEPTH.scope(depth, fut).await
}

/// The depth the current task's writes record (see [`with_event_depth`]).
pub fn event_depth() -> u32 {
    DEPTH.try_with(|d| *d).unwrap_or(0)
}

impl crate::Store {
    /// The committed events of `tenant` recorded after event `after`, in outbox order, of
    /// `collection` when one is given, at most `limit` (a realtime stream resuming from
    /// `Last-Event-ID`). `None` when `after` is not in the outbox: it never was, or it is older
    /// than what the outbox keeps.
    pub async fn events_after(
        &self,
        tenant: &str,
        collection: Option<&str>,
        after: uuid::Uuid,
        limit: u64,
    ) -> Result<Option<Vec<Event>>, StoreError> {
        let d = self.db().dialect();
        let rows = self
            .db()
            .fetch_all(
                Query::select()
                    .column(Alias::new("seq"))
                    .from(self.db().table(EVENTS))
                    .and_where(Expr::col(Alias::new("id")).eq(uuid_value(after, d)))
                    .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant)),
            )
            .await?;
        let Some(seq) = rows
            .iter()
            .next()
            .map(|r| r.int("seq"))
            .transpose()?
            .flatten()
        else {
            return Ok(None);
        };
        let mut q = Query::select();
        q.columns(EVENT_COLUMNS.map(Alias::new))
            .from(self.db().table(EVENTS))
            .and_where(Expr::col(Alias::new("seq")).gt(seq))
            .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
            .order_by(Alias::new("seq"), sea_query::Order::Asc);
        if let Some(c) = collection {
            q.and_where(Expr::col(Alias::new("collection")).eq(c));
        }
        let rows = self.db().fetch_page(&q, limit, 0).await?;
        rows.iter()
            .map(event_of)
            .collect::<Result<_, _>>()
            .map(Some)
    }

    /// The committed events with these ids (any tenant), in outbox order: what another
    /// instance's notification names.
    pub async fn events_by_id(&self, ids: &[uuid::Uuid]) -> Result<Vec<Event>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let d = self.db().dialect();
        let rows = self
            .db()
            .fetch_all(
                Query::select()
                    .columns(EVENT_COLUMNS.map(Alias::new))
                    .from(self.db().table(EVENTS))
                    .and_where(
                        Expr::col(Alias::new("id")).is_in(ids.iter().map(|i| uuid_value(*i, d))),
                    )
                    .order_by(Alias::new("seq"), sea_query::Order::Asc),
            )
            .await?;
        rows.iter().map(event_of).collect()
    }
}

/// The highest transaction id below every running transaction (PostgreSQL): the events of
/// transactions with a smaller id are all committed or gone, so none can still appear.
const PG_XMIN: &str = "(pg_snapshot_xmin(pg_current_snapshot())::text)::bigint";

/// A durable consumer's claim on the next committed events of the outbox (see
/// [`Store::claim_outbox`]). Write what the events cause through [`tx`](OutboxClaim::tx);
/// [`commit`](OutboxClaim::commit) commits those writes and the consumer's new position together,
/// so a crash either keeps both or neither. Dropped without a commit, nothing moves.
#[derive(Debug)]
pub struct OutboxClaim {
    tx: Tx,
    consumer: String,
    events: Vec<Event>,
    last: Option<(i64, i64)>,
}

impl OutboxClaim {
    /// The claimed events, in an order consistent with commit order.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// The claim's transaction, for the consumer's own writes.
    pub fn tx(&mut self) -> &mut Tx {
        &mut self.tx
    }

    /// Moves the consumer past the claimed events and commits with the consumer's writes.
    pub async fn commit(mut self) -> Result<(), StoreError> {
        if let Some((txid, seq)) = self.last {
            self.tx
                .execute(
                    Query::update()
                        .table(self.tx.table(OUTBOX_CURSORS))
                        .value(Alias::new("txid"), txid)
                        .value(Alias::new("seq"), seq)
                        .and_where(Expr::col(Alias::new("consumer")).eq(self.consumer.as_str())),
                )
                .await?;
        }
        self.tx.commit().await
    }
}

impl crate::Store {
    /// Claims up to `limit` committed events that `consumer` (a name such as `"webhooks"`) has
    /// not consumed yet, for at-least-once processing that survives crashes: the consumer's
    /// position is a row of `outbox_cursors`, moved in the same transaction as the consumer's
    /// own writes ([`OutboxClaim::commit`]).
    ///
    /// The consumer must be registered ([`register_consumer`](crate::register_consumer)); an
    /// unknown one gets `None`. On PostgreSQL the cursor row is locked
    /// with `FOR UPDATE SKIP LOCKED`: while one instance holds the claim, others get `None`
    /// (nothing to do) instead of waiting; and only events of transactions older than every
    /// running transaction are handed out, so an event whose transaction commits after a later
    /// one is not skipped. On SQLite the write lock serialises claims.
    pub async fn claim_outbox(
        &self,
        consumer: &str,
        limit: u64,
    ) -> Result<Option<OutboxClaim>, StoreError> {
        let db = self.db();
        let pg = db.dialect() == workeros_dsl::Dialect::Postgres;
        let mut tx = db.begin().await?;
        let mut cursor = Query::select();
        cursor
            .columns([Alias::new("txid"), Alias::new("seq")])
            .from(self.db().table(OUTBOX_CURSORS))
            .and_where(Expr::col(Alias::new("consumer")).eq(consumer));
        if pg {
            cursor.lock_with_behavior(
                sea_query::LockType::Update,
                sea_query::LockBehavior::SkipLocked,
            );
        }
        let rows = tx.fetch_all(&cursor).await?;
        let Some(row) = rows.iter().next() else {
            return Ok(None);
        };
        let (txid, seq) = (row.int("txid")?.unwrap_or(0), row.int("seq")?.unwrap_or(0));
        let mut q = Query::select();
        q.columns(EVENT_COLUMNS.map(Alias::new))
            .from(self.db().table(EVENTS))
            .limit(limit);
        if pg {
            q.column(Alias::new("txid"))
                .and_where(Expr::col(Alias::new("txid")).lt(Expr::cust(PG_XMIN)))
                .and_where(
                    Expr::col(Alias::new("txid"))
                        .gt(txid)
                        .or(Expr::col(Alias::new("txid"))
                            .eq(txid)
                            .and(Expr::col(Alias::new("seq")).gt(seq))),
                )
                .order_by(Alias::new("txid"), sea_query::Order::Asc);
        } else {
            q.and_where(Expr::col(Alias::new("seq")).gt(seq));
        }
        q.order_by(Alias::new("seq"), sea_query::Order::Asc);
        let rows = tx.fetch_all(&q).await?;
        let mut events = Vec::with_capacity(rows.len());
        let mut last = None;
        for r in rows.iter() {
            events.push(event_of(r)?);
            let s = r.int("seq")?.unwrap_or(0);
            let t = if pg { r.int("txid")?.unwrap_or(0) } else { 0 };
            last = Some((t, s));
        }
        Ok(Some(OutboxClaim {
            tx,
            consumer: consumer.to_owned(),
            events,
            last,
        }))
    }
}

/// Gives `consumer` a cursor at the end of the outbox unless it has one: every event committed
/// after this returns is handed to it by [`Store::claim_outbox`](crate::Store::claim_outbox).
/// Consumers register when they install (in their migrations), so no event slips between that
/// and their first claim.
pub async fn register_consumer(db: &crate::Db, consumer: &str) -> Result<(), StoreError> {
    let pg = db.dialect() == workeros_dsl::Dialect::Postgres;
    let (start_txid, start_seq) = if pg {
        (Expr::cust(format!("{PG_XMIN} - 1")), Expr::val(i64::MAX))
    } else {
        let newest = Query::select()
            .expr(Expr::col(Alias::new("seq")).max())
            .from(db.table(EVENTS))
            .to_owned();
        (
            Expr::val(0_i64),
            Expr::expr(sea_query::Func::coalesce([
                Expr::SubQuery(
                    None,
                    Box::new(sea_query::SubQueryStatement::SelectStatement(newest)),
                ),
                Expr::val(0_i64),
            ])),
        )
    };
    let mut start = Query::insert();
    start
        .into_table(db.table(OUTBOX_CURSORS))
        .columns([
            Alias::new("consumer"),
            Alias::new("txid"),
            Alias::new("seq"),
        ])
        .select_from(
            Query::select()
                .expr(Expr::val(consumer))
                .expr(start_txid)
                .expr(start_seq)
                .to_owned(),
        )
        .map_err(StoreError::internal)?
        .on_conflict(
            sea_query::OnConflict::column(Alias::new("consumer"))
                .do_nothing()
                .to_owned(),
        );
    db.execute(&start).await?;
    Ok(())
}

/// How long the outbox keeps events every consumer has read, and how often the store prunes it
/// ([`Store::start`](crate::Store::start)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxConfig {
    /// Events younger than this stay, read or not: the realtime resume window
    /// (`Last-Event-ID`). Seven days by default.
    pub retention: std::time::Duration,
    /// How often pruning runs. An hour by default.
    pub prune_every: std::time::Duration,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            retention: std::time::Duration::from_secs(7 * 24 * 3600),
            prune_every: std::time::Duration::from_secs(3600),
        }
    }
}

impl crate::Store {
    /// Starts the store's own background work: pruning the outbox every
    /// [`OutboxConfig::prune_every`] of the events older than [`OutboxConfig::retention`] that
    /// every consumer has read, whatever engines run (a host without webhooks or flows still
    /// has an outbox that grows). Stop it with [`Workers::shutdown`](crate::workers::Workers).
    pub fn start(&self, config: OutboxConfig) -> crate::workers::Workers {
        let store = self.clone();
        crate::workers::Workers::spawn(vec![Box::new(move |stop| {
            Box::pin(async move {
                crate::workers::every(stop, config.prune_every, "outbox pruning", || {
                    store.prune_outbox(crate::value::now() - config.retention)
                })
                .await;
            })
        })])
    }

    /// Deletes the outbox events created before `before` that every registered consumer has
    /// passed (an event a consumer still has to read stays, however old); returns how many. Keep
    /// `before` older than the realtime resume window you want (`Last-Event-ID` of a deleted
    /// event answers with a `reset`).
    pub async fn prune_outbox(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let d = self.db().dialect();
        // The outer table by its name (without the schema), the cursors under an alias.
        let events = self.db().names().physical(EVENTS);
        let ev = |c: &str| Expr::col((Alias::new(events.as_str()), Alias::new(c)));
        let cur = |c: &str| Expr::col((Alias::new("c"), Alias::new(c)));
        // A consumer that has not passed the event: its cursor is before it.
        let ahead = if d == workeros_dsl::Dialect::Postgres {
            ev("txid")
                .gt(cur("txid"))
                .or(ev("txid").eq(cur("txid")).and(ev("seq").gt(cur("seq"))))
        } else {
            ev("seq").gt(cur("seq"))
        };
        self.db()
            .execute(
                Query::delete()
                    .from_table(self.db().table(EVENTS))
                    .and_where(Expr::col(Alias::new("created_at")).lt(ts_value(before, d)))
                    .and_where(
                        Expr::exists(
                            Query::select()
                                .expr(Expr::val(1))
                                .from_as(self.db().table(OUTBOX_CURSORS), Alias::new("c"))
                                .and_where(ahead)
                                .to_owned(),
                        )
                        .not(),
                    ),
            )
            .await
    }

    /// Removes consumer `consumer`'s cursor (a webhook dispatcher, flow engine or function that
    /// is gone for good), so it no longer holds back [`prune_outbox`](Self::prune_outbox).
    pub async fn drop_consumer(&self, consumer: &str) -> Result<bool, StoreError> {
        let n = self
            .db()
            .execute(
                Query::delete()
                    .from_table(self.db().table(OUTBOX_CURSORS))
                    .and_where(Expr::col(Alias::new("consumer")).eq(consumer)),
            )
            .await?;
        Ok(n > 0)
    }
}
