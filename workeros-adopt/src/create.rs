//! The wizard's third step: the adopted branch of `POST /api/collections`, checked against the
//! table as the database has it, then recorded by the store without one DDL statement.

use crate::inspect::{self, ColumnReport, Inspection};
use crate::{AdoptError, require_deployment_admin};

use serde::{Deserialize, Serialize};
use workeros_core::{Field, FieldType, Slug, Subject};
use workeros_store::{
    AdoptedCollection, Adoption, AliasColumn, AliasRole, CollectionInfo, CollectionStatus, Store,
    StoreError,
};

/// The body of `POST /api/collections` with `adopted: true`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdoptRequest {
    /// Always `true` on this branch.
    pub adopted: bool,
    /// The existing table, exactly as the database names it.
    pub physical_table: String,
    /// The slug clients use in URLs.
    pub slug: Slug,
    /// A display name for admin UIs; workeros has none, so it is accepted and not stored.
    #[serde(default)]
    pub singular: Option<String>,
    /// A display name for admin UIs; accepted and not stored.
    #[serde(default)]
    pub plural: Option<String>,
    /// The columns to expose, each as a field (`column` when the field is named otherwise). The
    /// primary key is always exposed under its own name and need not be listed.
    #[serde(default)]
    pub fields: Vec<Field>,
    /// The primary key column; defaults to the one detected (and must be it).
    #[serde(default)]
    pub pk_column: Option<String>,
    /// The table has a `created_at` column to read as `createdAt`.
    #[serde(default, alias = "addCreatedAt")]
    pub has_created_at: bool,
    /// The table has an `updated_at` column to read as `updatedAt`.
    #[serde(default, alias = "addUpdatedAt")]
    pub has_updated_at: bool,
    /// A column to read as `createdAt` (`timestamp` or `integer` milliseconds).
    #[serde(default)]
    pub created_at_column: Option<String>,
    /// A column to read as `updatedAt` (`timestamp` or `integer` milliseconds).
    #[serde(default)]
    pub updated_at_column: Option<String>,
    /// A column holding the owner's user id (`text`, `longtext` or `uuid`); without it an
    /// owner-scoped collection keeps owners in `item_ownership`.
    #[serde(default)]
    pub owner_id_column: Option<String>,
    /// Whether rows belong to their creator (the `authenticated` role gets owner permissions).
    #[serde(default)]
    pub owner_scoped: bool,
}

fn invalid(message: String, field: &str) -> StoreError {
    StoreError::validation(message, Some(field))
}

/// Checks `req` against the table and records the collection.
pub(crate) async fn adopt(
    store: &Store,
    subject: &Subject,
    hidden: &[String],
    req: AdoptRequest,
) -> Result<CollectionInfo, StoreError> {
    require_deployment_admin(subject)?;
    if !req.adopted {
        return Err(invalid(
            "`adopted` must be true to adopt a table".into(),
            "adopted",
        ));
    }
    let table = req.physical_table.as_str();
    let known = inspect::known(store, subject, hidden).await?;
    if let Some(c) = known.adopted_as(table) {
        return Err(workeros_store::already_adopted(table, c.slug.as_str()));
    }
    let report = match inspect::inspect_known(store, &known, table).await {
        Ok(r) => r,
        Err(AdoptError::NotFound(m)) => return Err(invalid(m, "physicalTable")),
        Err(e) => return Err(e.into()),
    };
    if let Some(reason) = &report.reason {
        return Err(invalid(
            format!("table `{table}` cannot be adopted: {reason}"),
            "physicalTable",
        ));
    }
    let pk = key_of(&report, req.pk_column.as_deref())?;
    // The alias column of `role`: the one named, or with `has…` (its name given) the
    // conventional one.
    let alias = |role: AliasRole, named: &Option<String>, has: Option<&str>| {
        let (field, conventional) = (role.request_field(), role.reserved_name());
        let column = match (has, named) {
            (None, None) => return Ok(None),
            (Some(flag), Some(c)) if c != conventional => {
                return Err(invalid(
                    format!(
                        "`{field}` names `{c}` while `{flag}` asks for `{conventional}`; pick one"
                    ),
                    field,
                ));
            }
            (Some(_), _) => conventional,
            (None, Some(c)) => c.as_str(),
        };
        let c = mapped_column(&report, column, field)?;
        Ok(Some(AliasColumn {
            column: c.name.clone(),
            field_type: c.suggested_type.unwrap_or(FieldType::Json),
        }))
    };
    let created_at = alias(
        AliasRole::CreatedAt,
        &req.created_at_column,
        req.has_created_at.then_some("hasCreatedAt"),
    )?;
    let updated_at = alias(
        AliasRole::UpdatedAt,
        &req.updated_at_column,
        req.has_updated_at.then_some("hasUpdatedAt"),
    )?;
    let owner_id = alias(AliasRole::OwnerId, &req.owner_id_column, None)?;
    let mut fields = Vec::with_capacity(req.fields.len());
    for f in req.fields {
        let name = f.name.as_str().to_owned();
        let column = f.column_name().to_owned();
        let c = mapped_column(&report, &column, &name)?;
        let suggested = c.suggested_type.unwrap_or(FieldType::Json);
        if c.primary_key {
            if name == column && fits(f.field_type, suggested) && f.to.is_none() {
                continue; // the key, listed as the wizard shows it: it is exposed anyway
            }
            return Err(invalid(
                format!(
                    "`{column}` is the primary key: it is always exposed as `{column}`; leave it out of `fields`"
                ),
                &name,
            ));
        }
        if let Some(role) = AliasRole::ALL
            .into_iter()
            .find(|r| r.reserved_name() == name)
        {
            let flag = match role {
                AliasRole::CreatedAt => "`hasCreatedAt: true`",
                AliasRole::UpdatedAt => "`hasUpdatedAt: true`",
                AliasRole::OwnerId => "`ownerIdColumn`",
            };
            return Err(invalid(
                format!("`{name}` is a reserved field name: use {flag} for the column instead"),
                &name,
            ));
        }
        let ok = match f.field_type {
            FieldType::Relation => {
                let target = f.to.as_ref().and_then(|to| {
                    known
                        .collections
                        .iter()
                        .find(|t| t.slug == *to && t.status == CollectionStatus::Active)
                });
                match target {
                    // The store reports a missing target.
                    None => true,
                    Some(t) => fits(t.key_type(), suggested),
                }
            }
            FieldType::RelationMany => suggested == FieldType::Json,
            t => fits(t, suggested),
        };
        if !ok {
            return Err(invalid(
                format!(
                    "field `{name}` cannot be {}: column `{column}` is `{}` ({suggested})",
                    f.field_type, c.declared_type
                ),
                &name,
            ));
        }
        fields.push(f);
    }
    let new = AdoptedCollection {
        slug: req.slug,
        physical_table: report.table.clone(),
        owner_scoped: req.owner_scoped,
        fields,
        adoption: Adoption {
            pk_column: pk.name.clone(),
            pk_type: pk.suggested_type.unwrap_or(FieldType::Json),
            created_at,
            updated_at,
            owner_id,
            relation_keys: Default::default(),
        },
    };
    store.create_adopted(subject, new).await
}

/// Whether a field of type `wanted` can sit on a column whose type maps to `column` (text and
/// longtext are one storage).
fn fits(wanted: FieldType, column: FieldType) -> bool {
    use FieldType::{Longtext, Text};
    wanted == column || matches!((wanted, column), (Text | Longtext, Text | Longtext))
}

/// The single-column primary key, checked against `asked`.
fn key_of<'r>(report: &'r Inspection, asked: Option<&str>) -> Result<&'r ColumnReport, StoreError> {
    let found = report
        .primary_key
        .as_deref()
        .and_then(|pk| report.columns.iter().find(|c| c.name == pk))
        .ok_or_else(|| {
            invalid(
                "the table has no single-column primary key".into(),
                "pkColumn",
            )
        })?;
    if let Some(asked) = asked
        && asked != found.name
    {
        return Err(invalid(
            format!(
                "`{asked}` is not the table's primary key; its key is `{}`",
                found.name
            ),
            "pkColumn",
        ));
    }
    Ok(found)
}

/// The column `name` of the table, which must have a mapped type.
fn mapped_column<'r>(
    report: &'r Inspection,
    name: &str,
    field: &str,
) -> Result<&'r ColumnReport, StoreError> {
    let c = report
        .columns
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| {
            invalid(
                format!("table `{}` has no column `{name}`", report.table),
                field,
            )
        })?;
    if c.suggested_type.is_none() {
        return Err(invalid(
            format!(
                "column `{name}` cannot be adopted: {}",
                c.warnings.join("; ")
            ),
            field,
        ));
    }
    Ok(c)
}
