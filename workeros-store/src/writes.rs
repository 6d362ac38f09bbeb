//! Writes of items through the permission pipeline: create (one or many), update and delete,
//! each one transaction with its activity, revision and outbox event; a write is accepted by a
//! grant that takes the row as it will be stored, and answered with what the subject may read.

use crate::access::{Access, Grant, ReadView, access, write_and_read_access};
use crate::catalog::{CollectionInfo, load_in};
use crate::columns::{
    Col, Key, Role, decode_row, find_col, item_not_found, key_col, select_of, tenant_scope,
};
use crate::convert::{Converted, convert, instant_value, instant_wire, owner_value};
use crate::items::MAX_LIMIT;
use crate::journal::{Revision, item_write_journal};
use crate::schema::ITEM_OWNERSHIP;
use crate::value::now;
use crate::{Store, StoreError, Tx, Write};
use sea_query::{Alias, Expr, ExprTrait, Query, SimpleExpr};
use serde_json::{Map, Value as Json};
use time::OffsetDateTime;
use workeros_core::{Action, FieldType, Subject};
use workeros_dsl::Dialect;

/// The body of a create: one object or an array of them.
#[derive(Debug, Clone, PartialEq)]
pub enum NewItems {
    /// One item.
    One(Map<String, Json>),
    /// Several items, written in one transaction (all or none).
    Many(Vec<Map<String, Json>>),
}

impl NewItems {
    /// From a request body.
    pub fn from_json(v: Json) -> Result<Self, StoreError> {
        match v {
            Json::Object(m) => Ok(NewItems::One(m)),
            Json::Array(items) => items
                .into_iter()
                .map(|i| match i {
                    Json::Object(m) => Ok(m),
                    _ => Err(StoreError::BadRequest(
                        "every item must be an object".into(),
                    )),
                })
                .collect::<Result<_, _>>()
                .map(NewItems::Many),
            _ => Err(StoreError::BadRequest(
                "the body must be an item object or an array of them".into(),
            )),
        }
    }
}

/// What a write returns: the item(s) as the subject may read them.
#[derive(Debug, Clone, PartialEq)]
pub enum Written {
    /// One item.
    One(Map<String, Json>),
    /// Several.
    Many(Vec<Map<String, Json>>),
}

impl Store {
    /// Creates items (`POST /api/items/:slug`). For a subject that is not admin, some create
    /// permission must accept each item: its fields, its presets (written over client input), its
    /// filter and validation rule, checked in memory on the row as it will be stored. `owner_id`
    /// and `tenant_id` come from the subject; relations must name existing items. On an adopted
    /// table the body carries the primary key unless it is a uuid `id` (then generated when
    /// absent), and the row is read back after the insert (the table's defaults included).
    pub async fn create_items(
        &self,
        subject: &Subject,
        slug: &str,
        items: NewItems,
    ) -> Result<Written, StoreError> {
        let (many, bodies) = match items {
            NewItems::One(m) => (false, vec![m]),
            NewItems::Many(v) => (true, v),
        };
        if bodies.len() > MAX_LIMIT as usize {
            return Err(StoreError::validation(
                format!("at most {MAX_LIMIT} items per request"),
                None,
            ));
        }
        let tenant = subject.tenant_id();
        // The metadata and rules come from the store's view of the collection (`read_view`:
        // cached, forgotten at once on a change through this store), before the writer's turn.
        let view = self.read_view(tenant, slug).await?;
        let (info, cols) = (&view.info, &view.cols[..]);
        let at = now();
        let (access_c, read) = write_and_read_access(subject, &view, Action::Create, at)?;
        let access_c = access_c?;
        let mut tx = self.db().begin().await?;
        let d = tx.dialect();
        let key_c = key_col(cols)?.clone();
        let mut rows = Vec::with_capacity(bodies.len());
        let mut events = Vec::with_capacity(bodies.len());
        // Relation targets and their read conditions, loaded once for the whole batch.
        let mut targets = Targets::new();
        // The last item's statements go with the commit (on PostgreSQL one statement, without
        // a transaction when nothing came before them); the others' run in turn, so a later item
        // may refer to an earlier one.
        let mut last = Vec::new();
        let count = bodies.len();
        for (i, mut body) in bodies.into_iter().enumerate() {
            let key = new_key(info, &key_c, &mut body, d)?;
            let (sets, row) =
                self.accept_create(subject, info, cols, &access_c, &body, &key, at, d)?;
            self.check_relations(&mut tx, subject, info, &sets, &mut targets)
                .await?;
            let mut names: Vec<Alias> = Vec::new();
            let mut values: Vec<SimpleExpr> = Vec::new();
            for c in cols {
                let v = match c.role {
                    Role::Key => key.value.clone(),
                    Role::CreatedAt | Role::UpdatedAt => instant_value(c.ty, at, d),
                    Role::Owner => owner_value(c, subject, d)?,
                    Role::OwnerSide | Role::Field => continue,
                };
                names.push(Alias::new(c.column.as_str()));
                values.push(Expr::val(v));
            }
            if !info.adopted {
                names.push(Alias::new("tenant_id"));
                values.push(Expr::val(tenant));
            }
            for (_, column, conv) in &sets {
                names.push(Alias::new(column.as_str()));
                values.push(Expr::val(conv.value.clone()));
            }
            let mut insert = Query::insert();
            insert
                .into_table(info.table(self.db().names()))
                .columns(names);
            insert.values(values).map_err(StoreError::internal)?;
            let item = key.text();
            let side_owner = cols.iter().any(|c| c.role == Role::OwnerSide);
            // The insert goes with the item's journal rows in one call, unless something must
            // run between them (the owner's side table, an adopted table's read-back).
            let mut first = Some(insert);
            if (info.adopted || side_owner)
                && let Some(insert) = first.take()
            {
                tx.execute(&insert).await?;
            }
            if side_owner && let Some(u) = &subject.user {
                set_side_owner(&mut tx, info, &item, Some(&u.id)).await?;
            }
            // An adopted table may fill columns itself (defaults, triggers): what it stored is
            // the row, and what the permission accepted must still hold for it.
            let row = if info.adopted {
                let stored = row_by_key(&mut tx, info, cols, tenant, &key, false)
                    .await?
                    .ok_or_else(|| StoreError::internal("an inserted row is not there"))?;
                let accepted = match &access_c {
                    Access::All => true,
                    Access::Grants(g) => {
                        g.iter().any(|g| g.matches(&stored))
                            && sql_matches(&mut tx, info, cols, &key, Some(&access_c)).await?
                    }
                };
                if !accepted {
                    return Err(StoreError::Forbidden(format!(
                        "you may not create this item of `{slug}`"
                    )));
                }
                stored
            } else {
                row
            };
            let (event, writes) = item_write_journal(
                &tx,
                first.map(Write::Insert),
                subject,
                slug,
                workeros_core::EventAction::Create,
                item,
                Revision::Whole,
                Some(Json::Object(row.clone())),
                None,
                at,
            )?;
            if i + 1 == count {
                last = writes;
            } else {
                tx.write_each(&writes).await?;
            }
            events.push(event);
            rows.push(row);
        }
        tx.commit_with(&last).await?;
        self.deliver(&events).await;
        let shown: Vec<_> = rows
            .into_iter()
            .map(|r| visible(read.as_ref(), cols, r))
            .collect();
        Ok(if many {
            Written::Many(shown)
        } else {
            Written::One(shown.into_iter().next().unwrap_or_default())
        })
    }

    /// Finds a create grant that accepts `body`; returns the column values and the stored row.
    #[allow(clippy::too_many_arguments)]
    fn accept_create(
        &self,
        subject: &Subject,
        info: &CollectionInfo,
        cols: &[Col],
        access: &Access,
        body: &Map<String, Json>,
        key: &Key,
        at: OffsetDateTime,
        d: Dialect,
    ) -> Result<(Sets, Map<String, Json>), StoreError> {
        // Unknown and system keys are refused whoever asks.
        for k in body.keys() {
            body_col(cols, k)?;
        }
        let build = |presets: &Map<String, Json>| -> Result<(Sets, Map<String, Json>), StoreError> {
            let sets = sets_of(cols, body, presets, d)?;
            let mut row = Map::new();
            for c in cols {
                let v = match c.role {
                    Role::Key => key.wire.clone(),
                    Role::CreatedAt | Role::UpdatedAt => instant_wire(c.ty, at),
                    Role::Owner | Role::OwnerSide => subject
                        .user
                        .as_ref()
                        .map_or(Json::Null, |u| Json::String(u.id.clone())),
                    Role::Field => sets
                        .iter()
                        .find(|(k, _, _)| *k == c.key)
                        .map_or(Json::Null, |(_, _, conv)| conv.wire.clone()),
                };
                row.insert(c.key.clone(), v);
            }
            for f in info.fields.iter().filter(|f| f.required) {
                if row.get(f.name.as_str()).is_none_or(Json::is_null) {
                    return Err(StoreError::validation(
                        format!("field `{}` is required", f.name.as_str()),
                        Some(f.name.as_str()),
                    ));
                }
            }
            Ok((sets, row))
        };
        let grants = match access {
            Access::All => return build(&Map::new()),
            Access::Grants(g) => g,
        };
        first_accepting(
            grants.iter(),
            body,
            cols,
            subject,
            at,
            info.slug.as_str(),
            Action::Create,
            build,
        )
    }
}

/// The key of a new item: a fresh UUIDv7 for managed collections; for an adopted table the
/// body's primary key (taken out of the body), generated only for a uuid `id` left out.
fn new_key(
    info: &CollectionInfo,
    key_c: &Col,
    body: &mut Map<String, Json>,
    d: Dialect,
) -> Result<Key, StoreError> {
    if !info.adopted {
        return Ok(Key::uuid(uuid::Uuid::now_v7(), d));
    }
    let given = body.remove(&key_c.key).filter(|v| !v.is_null());
    match given {
        Some(v) => {
            let c = convert(key_c, key_c.ty, &v, d)?;
            Ok(Key {
                value: c.value,
                wire: c.wire,
            })
        }
        None if key_c.name == "id" && key_c.ty == FieldType::Uuid => {
            Ok(Key::uuid(uuid::Uuid::now_v7(), d))
        }
        None => Err(StoreError::validation(
            format!("primary key `{}` is required in the body", key_c.key),
            Some(&key_c.key),
        )),
    }
}

impl Store {
    /// The row an update or delete acts on: 404 when it is missing or the subject may not read it
    /// (the same answer), 403 when it may read it but no `action` permission matches it.
    #[allow(clippy::too_many_arguments)]
    async fn target(
        &self,
        tx: &mut Tx,
        subject: &Subject,
        view: &ReadView,
        id: &str,
        action: Action,
        at: OffsetDateTime,
    ) -> Result<(Key, Map<String, Json>, Access, Option<Access>), StoreError> {
        let (info, cols) = (&view.info, &view.cols[..]);
        let slug = info.slug.as_str();
        let key = Key::parse(id, info.key_type(), tx.dialect())
            .ok_or_else(|| item_not_found(slug, id))?;
        let tenant = subject.tenant_id();
        let row = row_by_key(tx, info, cols, tenant, &key, true)
            .await?
            .ok_or_else(|| item_not_found(slug, id))?;
        let (act, read) = write_and_read_access(subject, view, action, at)?;
        let readable = match &read {
            Some(Access::All) => true,
            Some(Access::Grants(g)) => g.iter().any(|g| g.matches(&row)),
            None => false,
        };
        // An adopted table's row may hold what its fields do not decode (read as null): the
        // grants must also hold in SQL, on the stored values, as they do for lists.
        if !readable || !sql_matches(tx, info, cols, &key, read.as_ref()).await? {
            return Err(item_not_found(slug, id));
        }
        let act = act?;
        let acts = match &act {
            Access::All => true,
            Access::Grants(g) => g.iter().any(|g| g.matches(&row)),
        };
        if !acts || !sql_matches(tx, info, cols, &key, Some(&act)).await? {
            return Err(StoreError::Forbidden(format!(
                "you may not {} this item of `{slug}`",
                action.as_str()
            )));
        }
        Ok((key, row, act, read))
    }

    /// Updates an item (`PATCH /api/items/:slug/:id`). The row must be readable (else 404) and
    /// match an update permission (else 403); the changed row must still match that permission's
    /// filter (no moving a row out of the subject's scope) and pass its validation rule.
    pub async fn update_item(
        &self,
        subject: &Subject,
        slug: &str,
        id: &str,
        patch: Map<String, Json>,
    ) -> Result<Map<String, Json>, StoreError> {
        let tenant = subject.tenant_id();
        let view = self.read_view(tenant, slug).await?;
        let (info, cols) = (&view.info, &view.cols[..]);
        let at = now();
        let mut tx = self.db().begin().await?;
        let d = tx.dialect();
        let (key, old, act, read) = self
            .target(&mut tx, subject, &view, id, Action::Update, at)
            .await?;
        let updated = cols.iter().find(|c| c.role == Role::UpdatedAt);
        for k in patch.keys() {
            body_col(cols, k)?;
        }
        let apply = |presets: &Map<String, Json>| -> Result<(Sets, Map<String, Json>), StoreError> {
            let sets = sets_of(cols, &patch, presets, d)?;
            let mut row = old.clone();
            for (key, _, conv) in &sets {
                row.insert(key.clone(), conv.wire.clone());
            }
            if let Some(c) = updated {
                row.insert(c.key.clone(), instant_wire(c.ty, at));
            }
            for f in info.fields.iter().filter(|f| f.required) {
                if row.get(f.name.as_str()).is_none_or(Json::is_null) {
                    return Err(StoreError::validation(
                        format!("field `{}` is required", f.name.as_str()),
                        Some(f.name.as_str()),
                    ));
                }
            }
            Ok((sets, row))
        };
        let (sets, new) = match &act {
            Access::All => apply(&Map::new())?,
            Access::Grants(grants) => first_accepting(
                grants.iter().filter(|g| g.matches(&old)),
                &patch,
                cols,
                subject,
                at,
                slug,
                Action::Update,
                apply,
            )?,
        };
        self.check_relations(&mut tx, subject, info, &sets, &mut Targets::new())
            .await?;
        let mut update = Query::update();
        update.table(info.table(self.db().names()));
        if let Some(c) = updated {
            update.value(Alias::new(c.column.as_str()), instant_value(c.ty, at, d));
        }
        for (_, column, conv) in &sets {
            update.value(Alias::new(column.as_str()), conv.value.clone());
        }
        update.and_where(key.condition(cols)?);
        if let Some(t) = tenant_scope(info, tenant) {
            update.and_where(t);
        }
        let item = key.text();
        // The update goes with the item's journal rows in one call, unless an adopted table's
        // row must be read back after it.
        let mut first = None;
        let new = if sets.is_empty() && updated.is_none() {
            new
        } else if info.adopted {
            tx.execute(&update).await?;
            row_by_key(&mut tx, info, cols, tenant, &key, false)
                .await?
                .ok_or_else(|| StoreError::internal("an updated row is not there"))?
        } else {
            first = Some(Write::Update(update));
            new
        };
        let delta: Map<String, Json> = sets
            .iter()
            .map(|(k, _, conv)| (k.clone(), conv.wire.clone()))
            .collect();
        let delta = Json::Object(delta);
        let (event, writes) = item_write_journal(
            &tx,
            first,
            subject,
            slug,
            workeros_core::EventAction::Update,
            item,
            Revision::Delta(&delta),
            Some(Json::Object(new.clone())),
            Some(Json::Object(old)),
            at,
        )?;
        tx.commit_with(&writes).await?;
        self.deliver(std::slice::from_ref(&event)).await;
        Ok(visible(read.as_ref(), cols, new))
    }

    /// Deletes an item (`DELETE /api/items/:slug/:id`): 404 when missing or unreadable, 403 when
    /// readable but no delete permission matches it.
    pub async fn delete_item(
        &self,
        subject: &Subject,
        slug: &str,
        id: &str,
    ) -> Result<(), StoreError> {
        let tenant = subject.tenant_id();
        let view = self.read_view(tenant, slug).await?;
        let (info, cols) = (&view.info, &view.cols[..]);
        let at = now();
        let mut tx = self.db().begin().await?;
        let (key, old, _, _) = self
            .target(&mut tx, subject, &view, id, Action::Delete, at)
            .await?;
        let mut delete = Query::delete();
        delete
            .from_table(info.table(self.db().names()))
            .and_where(key.condition(cols)?);
        if let Some(t) = tenant_scope(info, tenant) {
            delete.and_where(t);
        }
        let item = key.text();
        // The delete goes with the item's journal rows in one call, unless the owner's side
        // table must follow it.
        let first = if cols.iter().any(|c| c.role == Role::OwnerSide) {
            tx.execute(&delete).await?;
            set_side_owner(&mut tx, info, &item, None).await?;
            None
        } else {
            Some(Write::Delete(delete))
        };
        let (event, writes) = item_write_journal(
            &tx,
            first,
            subject,
            slug,
            workeros_core::EventAction::Delete,
            item,
            Revision::None,
            None,
            Some(Json::Object(old)),
            at,
        )?;
        tx.commit_with(&writes).await?;
        self.deliver(std::slice::from_ref(&event)).await;
        Ok(())
    }
}

/// The wire key of a body key (logical or wire name of a column).
fn body_col<'c>(cols: &'c [Col], key: &str) -> Result<&'c Col, StoreError> {
    let c = find_col(cols, key)
        .ok_or_else(|| StoreError::validation(format!("unknown field `{key}`"), Some(key)))?;
    if c.role == Role::Key && c.name != "id" {
        return Err(StoreError::validation(
            format!("primary key `{key}` cannot be changed"),
            Some(key),
        ));
    }
    if c.is_system() {
        return Err(StoreError::Forbidden(format!(
            "field `{key}` is set by the server and cannot be written"
        )));
    }
    Ok(c)
}

/// A grant's presets as client-style values (variables resolved).
fn presets_of(g: &Grant, subject: &Subject, at: OffsetDateTime) -> Map<String, Json> {
    let mut out = Map::new();
    for (k, v) in g.presets.iter().flatten() {
        let v = match v {
            Json::String(s) if s.starts_with('$') => {
                workeros_dsl::variable_value(s, subject, at).unwrap_or_else(|| v.clone())
            }
            other => other.clone(),
        };
        out.insert(k.clone(), v);
    }
    out
}

/// The first grant that accepts a write: the body's fields are in its allow-list, and the row
/// built with its presets matches its filter and passes its validation rule. `build` makes the
/// row (and its column values) from a grant's presets.
#[allow(clippy::too_many_arguments)]
fn first_accepting<'g>(
    grants: impl Iterator<Item = &'g Grant>,
    body: &Map<String, Json>,
    cols: &[Col],
    subject: &Subject,
    at: OffsetDateTime,
    slug: &str,
    action: Action,
    build: impl Fn(&Map<String, Json>) -> Result<(Sets, Map<String, Json>), StoreError>,
) -> Result<(Sets, Map<String, Json>), StoreError> {
    let (mut fields_failed, mut validation_failed) = (false, false);
    let mut build_error = None;
    for g in grants {
        if !body
            .keys()
            .all(|k| find_col(cols, k).is_some_and(|c| g.fields.allows(&c.name)))
        {
            fields_failed = true;
            continue;
        }
        // A row this grant cannot build (a required field its presets do not fill, a preset that
        // no longer fits) fails this grant only; another may accept the write.
        let (sets, row) = match build(&presets_of(g, subject, at)) {
            Ok(built) => built,
            Err(e) => {
                build_error.get_or_insert(e);
                continue;
            }
        };
        // For an update this is the changed row: it must stay in the grant's scope.
        if !g.matches(&row) {
            continue;
        }
        if g.validation.as_ref().is_some_and(|v| !v.matches(&row)) {
            validation_failed = true;
            continue;
        }
        return Ok((sets, row));
    }
    match build_error {
        Some(e) if !validation_failed => Err(e),
        _ => Err(refusal(fields_failed, validation_failed, slug, action)),
    }
}

/// Why a grant refused a write, worst first: the error to report when none accepts.
fn refusal(fields: bool, validation: bool, slug: &str, action: Action) -> StoreError {
    if validation {
        StoreError::validation(
            "the item does not pass the collection's validation rule",
            None,
        )
    } else if fields {
        StoreError::Forbidden(format!(
            "you may not write some of these fields of `{slug}`"
        ))
    } else {
        StoreError::Forbidden(format!(
            "you may not {} this item of `{slug}`",
            action.as_str()
        ))
    }
}

/// The values a write sets, converted: wire key → (column, converted value).
type Sets = Vec<(String, String, Converted)>;

/// Converts `body` (client keys) plus `presets` (over them) into column values.
fn sets_of(
    cols: &[Col],
    body: &Map<String, Json>,
    presets: &Map<String, Json>,
    d: Dialect,
) -> Result<Sets, StoreError> {
    let mut out: Sets = Vec::new();
    for (k, v) in body.iter().chain(presets.iter()) {
        let c = body_col(cols, k)?;
        let conv = convert(c, c.ty, v, d)?;
        match out.iter_mut().find(|(key, _, _)| *key == c.key) {
            Some(slot) => slot.2 = conv,
            None => out.push((c.key.clone(), c.column.clone(), conv)),
        }
    }
    Ok(out)
}

impl Store {
    /// Checks that every relation value of `sets` names an item of its target collection in the
    /// same tenant that `subject` may read: a 422 otherwise, the same answer whether the item is
    /// missing or only hidden from the subject, so that a write is no oracle for rows it cannot
    /// see and a subject cannot link to what it cannot read. Values were converted to the
    /// target's key type; each field costs one query per 500 keys (and, once per write, the
    /// target's metadata and read rules, kept in `targets`).
    async fn check_relations(
        &self,
        tx: &mut Tx,
        subject: &Subject,
        info: &CollectionInfo,
        sets: &Sets,
        targets: &mut Targets,
    ) -> Result<(), StoreError> {
        let d = tx.dialect();
        let tenant = subject.tenant_id();
        for f in &info.fields {
            let Some(to) = &f.to else { continue };
            let Some((_, _, conv)) = sets.iter().find(|(k, _, _)| k == f.name.as_str()) else {
                continue;
            };
            let keys: Vec<sea_query::Value> = match &conv.wire {
                Json::Null => continue,
                Json::Array(a) => {
                    let distinct: std::collections::BTreeSet<uuid::Uuid> = a
                        .iter()
                        .filter_map(Json::as_str)
                        .filter_map(|s| uuid::Uuid::try_parse(s).ok())
                        .collect();
                    distinct
                        .into_iter()
                        .map(|u| crate::value::uuid_value(u, d))
                        .collect()
                }
                _ => vec![conv.value.clone()],
            };
            if keys.is_empty() {
                continue;
            }
            if !targets.contains_key(to.as_str()) {
                let loaded = self.readable_target(tx, subject, info, to.as_str()).await?;
                targets.insert(to.as_str().to_owned(), loaded);
            }
            let Some(Some((target, readable))) = targets.get(to.as_str()) else {
                return Err(dangling(f.name.as_str(), to.as_str()));
            };
            for chunk in keys.chunks(500) {
                let mut q = Query::select();
                q.expr(Expr::cust("1"))
                    .from(target.table(self.db().names()))
                    .and_where(Expr::col(Alias::new(target.key_field())).is_in(chunk.to_vec()));
                if let Some(t) = tenant_scope(target, tenant) {
                    q.and_where(t);
                }
                if let Some(c) = readable {
                    q.and_where(c.clone());
                }
                if tx.fetch_all(&q).await?.len() < chunk.len() {
                    return Err(dangling(f.name.as_str(), to.as_str()));
                }
            }
        }
        Ok(())
    }
}

impl Store {
    /// Relation target `to` and the condition on its rows the subject may read (`None` inside:
    /// every row); `None` when it is missing, archived, or the subject may read none of it.
    async fn readable_target(
        &self,
        tx: &mut Tx,
        subject: &Subject,
        info: &CollectionInfo,
        to: &str,
    ) -> Result<Option<(CollectionInfo, Option<SimpleExpr>)>, StoreError> {
        let target = if to == info.slug.as_str() {
            Some(info.clone())
        } else {
            load_in(tx, subject.tenant_id(), to)
                .await?
                .filter(|t| t.status == crate::CollectionStatus::Active)
        };
        let Some(target) = target else {
            return Ok(None);
        };
        match access(tx, subject, &target, Action::Read, now()).await {
            Ok(read) => {
                let readable = read.condition(tx.dialect())?;
                Ok(Some((target, readable)))
            }
            Err(StoreError::Forbidden(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Relation targets of one write, by slug (see [`Store::readable_target`]).
type Targets = std::collections::HashMap<String, Option<(CollectionInfo, Option<SimpleExpr>)>>;

fn dangling(field: &str, to: &str) -> StoreError {
    StoreError::validation(
        format!(
            "field `{field}` names an item of `{to}` that does not exist or that you may not read"
        ),
        Some(field),
    )
}

/// Records (or with `None` forgets) the owner of an adopted item in `item_ownership`.
async fn set_side_owner(
    tx: &mut Tx,
    info: &CollectionInfo,
    item: &str,
    owner: Option<&str>,
) -> Result<(), StoreError> {
    let scope = |q: &mut sea_query::DeleteStatement| {
        q.from_table(tx.table(ITEM_OWNERSHIP))
            .and_where(Expr::col(Alias::new("tenant_id")).eq(workeros_core::DEFAULT_TENANT))
            .and_where(Expr::col(Alias::new("collection")).eq(info.slug.as_str()))
            .and_where(Expr::col(Alias::new("item_id")).eq(item));
    };
    let mut del = Query::delete();
    scope(&mut del);
    tx.execute(&del).await?;
    if let Some(owner) = owner {
        tx.execute(
            Query::insert()
                .into_table(tx.table(ITEM_OWNERSHIP))
                .columns(["tenant_id", "collection", "item_id", "owner_id"].map(Alias::new))
                .values([
                    Expr::val(workeros_core::DEFAULT_TENANT),
                    Expr::val(info.slug.as_str()),
                    Expr::val(item),
                    Expr::val(owner),
                ])
                .map_err(StoreError::internal)?,
        )
        .await?;
    }
    Ok(())
}

/// A written row as the subject may read it: masked by its read grants, or only its key when it
/// may not read the row.
fn visible(read: Option<&Access>, cols: &[Col], row: Map<String, Json>) -> Map<String, Json> {
    match read {
        Some(Access::All) => row,
        Some(a @ Access::Grants(g)) if g.iter().any(|g| g.matches(&row)) => a.mask(cols, row),
        _ => {
            let mut m = Map::new();
            if let Some(k) = cols.iter().find(|c| c.role == Role::Key)
                && let Some(id) = row.get(&k.key)
            {
                m.insert(k.key.clone(), id.clone());
            }
            m
        }
    }
}

/// For an adopted table: whether the row keyed `key` matches `access`'s grants in SQL (on the
/// stored values). Managed tables hold only values their fields decode, where the matcher and
/// SQL agree, so for them (and for all access) this is `true` without a query.
async fn sql_matches(
    tx: &mut Tx,
    info: &CollectionInfo,
    cols: &[Col],
    key: &Key,
    access: Option<&Access>,
) -> Result<bool, StoreError> {
    let Some(access) = access else {
        return Ok(false);
    };
    if !info.adopted {
        return Ok(true);
    }
    let Some(cond) = access.condition(tx.dialect())? else {
        return Ok(true);
    };
    let mut q = Query::select();
    q.expr(Expr::cust("1"))
        .from(info.table(tx.names()))
        .and_where(key.condition(cols)?)
        .and_where(cond);
    Ok(!tx.fetch_all(&q).await?.is_empty())
}

/// Reads one row in its wire form (locked on PostgreSQL when `lock`); `None` when missing.
pub(crate) async fn row_by_key(
    tx: &mut Tx,
    info: &CollectionInfo,
    cols: &[Col],
    tenant: &str,
    key: &Key,
    lock: bool,
) -> Result<Option<Map<String, Json>>, StoreError> {
    let d = tx.dialect();
    let mut q = select_of(info, cols, tx.names());
    q.and_where(key.condition(cols)?);
    if let Some(t) = tenant_scope(info, tenant) {
        q.and_where(t);
    }
    if lock && d == Dialect::Postgres {
        q.lock_exclusive();
    }
    let rows = tx.fetch_all(&q).await?;
    rows.iter()
        .next()
        .map(|r| decode_row(info, r, cols))
        .transpose()
}
