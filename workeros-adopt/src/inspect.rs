//! The wizard's first two steps: which tables there are, and what one of them looks like.

use crate::introspect::{RawColumn, RawForeignKey, TableKind, introspector};
use crate::types::{self, AliasRole, RESERVED_COLUMNS};
use crate::{AdoptError, require_deployment_admin};
use serde::{Deserialize, Serialize};
use workeros_core::{FieldType, Subject};
use workeros_store::{CollectionInfo, Db, Names, Store};

/// A table as `GET /api/admin/adopt/tables` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableEntry {
    /// The name, exactly as the database has it.
    pub name: String,
    /// Table, view, partitioned or foreign.
    pub kind: TableKind,
    /// Whether it can be adopted as far as the list can tell (`inspect` says more).
    pub adoptable: bool,
    /// Why not, when it cannot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A column as `inspect` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ColumnReport {
    /// The name, exactly as the database has it.
    pub name: String,
    /// The declared type, as the catalog prints it.
    pub declared_type: String,
    /// Whether it accepts NULL.
    pub nullable: bool,
    /// Whether the database fills it when an insert omits it.
    pub has_default: bool,
    /// Whether it is the (single-column) primary key.
    pub primary_key: bool,
    /// The suggested field type; `None` when the type is not mapped (the column stays out of
    /// the items API).
    pub suggested_type: Option<FieldType>,
    /// What to know about this column.
    pub warnings: Vec<String>,
}

/// The columns suggested for the alias roles.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AliasSuggestions {
    /// For `createdAtColumn`.
    pub created_at: Option<String>,
    /// For `updatedAtColumn`.
    pub updated_at: Option<String>,
    /// For `ownerIdColumn`.
    pub owner_id: Option<String>,
}

/// The collection a foreign key's target table already is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetCollection {
    /// Its slug (use it as the relation's `to`).
    pub slug: String,
}

/// A foreign key as `inspect` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ForeignKeyReport {
    /// The referencing column (the first, for a composite key).
    pub column: String,
    /// Every referencing column, in constraint order.
    pub columns: Vec<String>,
    /// The referenced table.
    pub references_table: String,
    /// The referenced column (the first, for a composite key).
    pub references_column: Option<String>,
    /// Every referenced column, in constraint order.
    pub references_columns: Vec<String>,
    /// Whether the constraint spans several columns (not offered as a relation).
    pub composite: bool,
    /// The collection the referenced table is, if it is one; otherwise adopt it first.
    pub target_collection: Option<TargetCollection>,
}

/// What `POST /api/admin/adopt/inspect` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Inspection {
    /// The table, exactly as the database has it.
    pub table: String,
    /// Its kind.
    pub kind: TableKind,
    /// Whether it can be adopted.
    pub adoptable: bool,
    /// Why not, when it cannot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The single-column primary key, when there is one.
    pub primary_key: Option<String>,
    /// Every primary key column, in key order (several: composite, not adoptable).
    pub primary_key_columns: Vec<String>,
    /// Every column, in table order.
    pub columns: Vec<ColumnReport>,
    /// Columns that look like `createdAt`, `updatedAt`, `ownerId`.
    pub alias_suggestions: AliasSuggestions,
    /// The table's foreign keys.
    pub foreign_keys: Vec<ForeignKeyReport>,
    /// Table-level warnings.
    pub warnings: Vec<String>,
}

/// Why a name cannot be handled safely, if it cannot: control characters (which no client can
/// type and logs would mangle), or the empty name.
fn unsafe_name(name: &str) -> Option<String> {
    if name.is_empty() {
        Some("an empty name".into())
    } else if name.chars().any(char::is_control) {
        Some(format!(
            "the name `{}` contains control characters",
            name.escape_default()
        ))
    } else {
        None
    }
}

fn kind_reason(kind: TableKind) -> Option<&'static str> {
    match kind {
        TableKind::Table => None,
        TableKind::View => Some("views are not adoptable: adopt the tables behind it"),
        TableKind::Partitioned => {
            Some("partitioned tables are not adoptable: adopt a table that is not partitioned")
        }
        TableKind::Foreign => Some("foreign and virtual tables are not adoptable"),
    }
}

/// The hidden tables, workeros's names and the collections of the subject's tenant.
pub(crate) struct Known {
    pub(crate) collections: Vec<CollectionInfo>,
    hidden: Vec<String>,
    names: Names,
}

impl Known {
    /// Whether `name` is not offered: the host hid it, or it is workeros's own (on SQLite, a
    /// table with workeros's prefix; on PostgreSQL workeros's tables are in their own schema,
    /// which the wizard never reads). A host table named like a workeros table (`users`,
    /// `events`, …) is the host's, and offered.
    fn hidden(&self, name: &str) -> bool {
        self.names.is_ours(name) || self.hidden.iter().any(|h| h == name)
    }

    pub(crate) fn adopted_as(&self, name: &str) -> Option<&CollectionInfo> {
        self.collections
            .iter()
            .find(|c| c.adopted && c.physical_table == name)
    }

    fn collection_of(&self, table: &str) -> Option<&CollectionInfo> {
        self.collections.iter().find(|c| c.physical_table == table)
    }
}

pub(crate) async fn known(
    store: &Store,
    subject: &Subject,
    hidden: &[String],
) -> Result<Known, AdoptError> {
    Ok(Known {
        collections: store.list_collections(subject, true).await?,
        hidden: hidden.to_vec(),
        names: store.db().names().clone(),
    })
}

/// Every table of the host that could be adopted: base tables minus workeros' own and tables
/// already adopted; views, partitioned and foreign tables listed as not adoptable, with the
/// reason.
pub(crate) async fn tables(
    store: &Store,
    subject: &Subject,
    hidden: &[String],
) -> Result<Vec<TableEntry>, AdoptError> {
    require_deployment_admin(subject)?;
    let known = known(store, subject, hidden).await?;
    let raw = introspector(store.db()).tables().await?;
    Ok(raw
        .into_iter()
        .filter(|t| !known.hidden(&t.name) && known.adopted_as(&t.name).is_none())
        .map(|t| {
            let reason = kind_reason(t.kind)
                .map(str::to_owned)
                .or_else(|| unsafe_name(&t.name).map(|r| format!("{r}: rename it to adopt it")));
            TableEntry {
                adoptable: reason.is_none(),
                reason,
                name: t.name,
                kind: t.kind,
            }
        })
        .collect())
}

/// Everything about `table` the wizard needs: columns with suggested types and warnings, the
/// primary key, alias suggestions, foreign keys matched to collections. Never fails on an odd
/// table: what cannot be adopted is said, not refused; only a table that is not there (or is
/// workeros' own) is `NOT_FOUND`.
pub(crate) async fn inspect(
    store: &Store,
    subject: &Subject,
    hidden: &[String],
    table: &str,
) -> Result<Inspection, AdoptError> {
    require_deployment_admin(subject)?;
    let known = known(store, subject, hidden).await?;
    inspect_known(store, &known, table).await
}

/// [`inspect`] with the tenant's collections already read.
pub(crate) async fn inspect_known(
    store: &Store,
    known: &Known,
    table: &str,
) -> Result<Inspection, AdoptError> {
    let db: &Db = store.db();
    let is_pg = db.dialect() == workeros_dsl::Dialect::Postgres;
    let intro = introspector(db);
    let not_found = || AdoptError::NotFound(format!("there is no table `{table}` to adopt"));
    if known.hidden(table) {
        return Err(not_found());
    }
    let Some(entry) = intro.tables().await?.into_iter().find(|t| t.name == table) else {
        return Err(not_found());
    };
    let raw_columns = intro.columns(table).await?;
    let pk = intro.primary_key(table).await?;
    let fks = intro.foreign_keys(table).await?;

    let mut warnings = Vec::new();
    let mut reason: Option<String> = kind_reason(entry.kind).map(str::to_owned);
    if let Some(r) = unsafe_name(table) {
        reason.get_or_insert(format!("{r}: rename it to adopt it"));
    }
    if let Some(c) = known.adopted_as(table) {
        reason.get_or_insert(workeros_store::already_adopted(table, c.slug.as_str()).to_string());
    }
    let columns: Vec<ColumnReport> = raw_columns
        .iter()
        .map(|c| column_report(c, &pk, is_pg))
        .collect();
    let single_pk = match pk.as_slice() {
        [] => {
            reason.get_or_insert(
                "no primary key: add a single-column primary key in your migration layer".into(),
            );
            None
        }
        [one] => {
            let t = columns
                .iter()
                .find(|c| &c.name == one)
                .and_then(|c| c.suggested_type);
            if !types::key_type_supported(t) {
                reason.get_or_insert(format!(
                    "primary key `{one}` has a type workeros does not key by; supported: uuid, text, integer"
                ));
            } else if workeros_core::FieldName::new(one.as_str()).is_err() {
                reason.get_or_insert(format!(
                    "primary key `{}` cannot be a field name (A-Z, a-z, 0-9 and _, up to 63): rename it in your migration layer",
                    one.escape_default()
                ));
            }
            Some(one.clone())
        }
        many => {
            reason.get_or_insert(format!(
                "composite primary keys are not supported ({}): change the key in your migration layer",
                many.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
            ));
            None
        }
    };
    if entry.kind != crate::introspect::TableKind::Table && !pk.is_empty() {
        warnings.push("a primary key was found, but the relation is not a base table".into());
    }
    // Columns that cannot be adopted have no suggested type, so they are never suggested.
    let named = columns.iter().map(|c| (c.name.as_str(), c.suggested_type));
    let suggestions = AliasSuggestions {
        created_at: types::suggest_alias(AliasRole::CreatedAt, named.clone()).map(str::to_owned),
        updated_at: types::suggest_alias(AliasRole::UpdatedAt, named.clone()).map(str::to_owned),
        owner_id: types::suggest_alias(AliasRole::OwnerId, named).map(str::to_owned),
    };
    let foreign_keys = fks.iter().map(|fk| fk_report(fk, known)).collect();
    Ok(Inspection {
        table: entry.name,
        kind: entry.kind,
        adoptable: reason.is_none(),
        reason,
        primary_key: single_pk,
        primary_key_columns: pk,
        columns,
        alias_suggestions: suggestions,
        foreign_keys,
        warnings,
    })
}

fn column_report(c: &RawColumn, pk: &[String], is_pg: bool) -> ColumnReport {
    let mut warnings = Vec::new();
    let suggested = match unsafe_name(&c.name) {
        Some(r) => {
            warnings.push(format!("not adoptable: {r}; it stays out of the items API"));
            None
        }
        None => match types::suggest(&c.declared, is_pg) {
            Ok(t) => Some(t),
            Err(why) => {
                warnings.push(format!(
                    "unsupported type: {why}; the column stays out of the items API"
                ));
                None
            }
        },
    };
    let is_pk = pk.len() == 1 && pk.first() == Some(&c.name);
    if suggested.is_some() && !is_pk && workeros_core::FieldName::new(c.name.as_str()).is_err() {
        warnings.push(format!(
            "`{}` is not a field name: adopt it as a field with a name of A-Z, a-z, 0-9 and _ and `\"column\": {}`",
            c.name,
            serde_json::Value::String(c.name.clone())
        ));
    }
    let alias_role = AliasRole::ALL
        .into_iter()
        .find(|r| r.reserved_name() == c.name);
    if let Some(reserved) = RESERVED_COLUMNS.iter().find(|r| **r == c.name) {
        match (*reserved, alias_role) {
            ("id", _) if !is_pk => warnings.push(
                "reserved column name `id` conflicts: `id` must be the primary key; leave it out of the fields"
                    .into(),
            ),
            ("id", _) => {}
            (_, Some(role)) => {
                if !suggested.is_some_and(|t| role.accepts(t)) {
                    warnings.push(format!(
                        "reserved column name `{reserved}` conflicts: its type does not fit the role; leave it out of the fields"
                    ));
                } else {
                    warnings.push(format!(
                        "reserved column name `{reserved}`: use it through `{}` rather than as a field",
                        role.request_field()
                    ));
                }
            }
            (other, None) => warnings.push(format!(
                "reserved column name `{other}` conflicts: workeros gives it another meaning; leave it out of the fields"
            )),
        }
    }
    ColumnReport {
        name: c.name.clone(),
        declared_type: c.declared.clone(),
        nullable: c.nullable,
        has_default: c.has_default,
        primary_key: is_pk,
        suggested_type: suggested,
        warnings,
    }
}

fn fk_report(fk: &RawForeignKey, known: &Known) -> ForeignKeyReport {
    ForeignKeyReport {
        column: fk.columns.first().cloned().unwrap_or_default(),
        columns: fk.columns.clone(),
        references_table: fk.references_table.clone(),
        references_column: fk.references_columns.first().cloned(),
        references_columns: fk.references_columns.clone(),
        composite: fk.columns.len() > 1,
        target_collection: known
            .collection_of(&fk.references_table)
            .filter(|c| c.status == workeros_store::CollectionStatus::Active)
            .map(|c| TargetCollection {
                slug: c.slug.as_str().to_owned(),
            }),
    }
}
