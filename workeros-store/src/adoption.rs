//! Adopted collections: what the store records of a table it wraps (key, alias columns, relation
//! key types) without one DDL statement, and the [`Adopter`] through which
//! `POST /api/collections` with `adopted: true` reaches `workeros-adopt`.

use crate::catalog::{
    ADOPTION_COLUMNS, Adoption, AliasColumn, CollectionInfo, is_key_type, require_admin,
};
use crate::collections::{check_fields, check_relation_target, insert_collection};
use crate::permissions::seed_owner_permissions;
use crate::schema::{COLLECTION_ADOPTIONS, COLLECTIONS};
use crate::value::{json_value, uuid_value};
use crate::{Store, StoreError};
use sea_query::{Alias, Expr, ExprTrait, Query};
use serde::{Deserialize, Serialize};
use workeros_core::{DEFAULT_TENANT, Field, FieldName, Slug, Subject};

/// The answer to adopting `table` again while collection `slug` wraps it (`CONFLICT`).
pub fn already_adopted(table: &str, slug: &str) -> StoreError {
    StoreError::Conflict {
        message: format!(
            "table `{table}` is already adopted (as `{slug}`); delete that collection (its data stays) to adopt it again"
        ),
        field: Some("physicalTable".into()),
    }
}

/// An adopted collection as the store records it: the table's checks (columns exist, types fit,
/// the key is the table's primary key) are the adopter's (`workeros-adopt`); the store checks
/// everything it can without reading the table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdoptedCollection {
    /// The slug.
    pub slug: Slug,
    /// The existing table, exactly as the database names it.
    pub physical_table: String,
    /// Whether rows belong to their creator (the `authenticated` role gets owner permissions).
    pub owner_scoped: bool,
    /// The fields, each on a column of the table (`column` when it differs from the name).
    pub fields: Vec<Field>,
    /// The key and alias columns (`relation_keys` is filled by the store).
    pub adoption: Adoption,
}

/// Something that validates and creates adopted collections for `POST /api/collections` with
/// `adopted: true` (the host installs `workeros-adopt`'s with [`Store::set_adopter`]).
#[async_trait::async_trait]
pub trait Adopter: Send + Sync + 'static {
    /// Validates `body` against the table it names and creates the collection (usually with
    /// [`Store::create_adopted`]).
    async fn adopt(
        &self,
        store: &Store,
        subject: &Subject,
        body: serde_json::Value,
    ) -> Result<CollectionInfo, StoreError>;
}

impl Store {
    /// Records an adopted collection (the adopted branch of `POST /api/collections`): the
    /// metadata row and its `collection_adoptions` row, and for an owner-scoped collection the
    /// `authenticated` role's owner permissions, in one transaction, without one DDL statement.
    /// Only the default tenant's admins adopt (an adopted table has no tenant column). The store
    /// checks names, roles and relation targets; that the columns exist with fitting types is
    /// the caller's to check (`workeros-adopt` does).
    pub async fn create_adopted(
        &self,
        subject: &Subject,
        new: AdoptedCollection,
    ) -> Result<CollectionInfo, StoreError> {
        require_admin(subject)?;
        let tenant = subject.tenant_id();
        if tenant != DEFAULT_TENANT {
            return Err(StoreError::Forbidden(
                "only the deployment's admins adopt tables: an adopted table is shared by every organization"
                    .into(),
            ));
        }
        let slug = new.slug.as_str();
        let table = new.physical_table.as_str();
        let names = self.db().names();
        let in_namespace = names.host_schema() == Some(names.namespace().as_str());
        if names.is_ours(table) || in_namespace {
            return Err(StoreError::validation(
                format!("table `{table}` belongs to workeros and cannot be adopted"),
                Some("physicalTable"),
            ));
        }
        if table.is_empty() || table.chars().any(char::is_control) {
            return Err(StoreError::validation(
                "`physicalTable` names a table workeros cannot handle safely",
                Some("physicalTable"),
            ));
        }
        check_adoption(&new)?;
        check_fields(&new.fields, true)?;
        let mut tx = self.db().begin().await?;
        let d = tx.dialect();
        let existing = tx
            .fetch_all(
                Query::select()
                    .columns(["slug", "physical_table"].map(Alias::new))
                    .from(self.db().table(COLLECTIONS))
                    .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant))
                    .and_where(
                        Expr::col(Alias::new("slug"))
                            .eq(slug)
                            .or(Expr::col(Alias::new("physical_table")).eq(table)),
                    ),
            )
            .await?;
        let mut taken_by = None;
        for r in existing.iter() {
            let other = r.text("slug")?.unwrap_or_default();
            if other == slug {
                return Err(StoreError::Conflict {
                    message: format!("collection `{slug}` already exists"),
                    field: Some("slug".into()),
                });
            }
            taken_by = Some(other);
        }
        if let Some(other) = taken_by {
            return Err(already_adopted(table, &other));
        }
        let mut adoption = new.adoption.clone();
        adoption.relation_keys.clear();
        for f in &new.fields {
            if let Some(key) =
                check_relation_target(&mut tx, tenant, f, slug, adoption.pk_type, true).await?
            {
                adoption
                    .relation_keys
                    .insert(f.name.as_str().to_owned(), key);
            }
        }
        let id = insert_collection(
            &mut tx,
            tenant,
            &new.slug,
            table,
            true,
            new.owner_scoped,
            &new.fields,
        )
        .await?;
        let alias = |a: &Option<AliasColumn>| {
            (
                a.as_ref().map(|a| a.column.clone()),
                a.as_ref().map(|a| a.field_type.as_str().to_owned()),
            )
        };
        let (ca, ct) = alias(&adoption.created_at);
        let (ua, ut) = alias(&adoption.updated_at);
        let (oa, ot) = alias(&adoption.owner_id);
        let keys = serde_json::to_value(&adoption.relation_keys).map_err(StoreError::internal)?;
        let mut columns = vec!["collection_id", "pk_column", "pk_type"];
        columns.extend(ADOPTION_COLUMNS.iter().skip(2).copied());
        tx.execute(
            Query::insert()
                .into_table(self.db().table(COLLECTION_ADOPTIONS))
                .columns(columns.into_iter().map(Alias::new))
                .values([
                    Expr::val(uuid_value(id, d)),
                    Expr::val(adoption.pk_column.as_str()),
                    Expr::val(adoption.pk_type.as_str()),
                    Expr::val(ca),
                    Expr::val(ct),
                    Expr::val(ua),
                    Expr::val(ut),
                    Expr::val(oa),
                    Expr::val(ot),
                    Expr::val(json_value(Some(&keys), d)),
                ])
                .map_err(StoreError::internal)?,
        )
        .await?;
        if new.owner_scoped {
            seed_owner_permissions(&mut tx, tenant, slug).await?;
        }
        self.commit_change(tx, subject, "collection.adopt", slug, None)
            .await
    }

    /// The adopter installed for `adopted: true` bodies, if any.
    pub(crate) fn adopter(&self) -> Option<std::sync::Arc<dyn Adopter>> {
        self.inner.adopter.read().ok().and_then(|a| a.clone())
    }

    /// Installs the [`Adopter`] that `POST /api/collections` with `adopted: true` uses
    /// (`workeros-adopt` calls this); replaces any earlier one.
    pub fn set_adopter(&self, adopter: std::sync::Arc<dyn Adopter>) {
        if let Ok(mut slot) = self.inner.adopter.write() {
            *slot = Some(adopter);
        }
    }
}

/// The store's own checks of an adoption: a key that can name a field and key items, alias
/// columns of fitting types, and no column in two roles.
fn check_adoption(new: &AdoptedCollection) -> Result<(), StoreError> {
    let a = &new.adoption;
    if FieldName::new(a.pk_column.as_str()).is_err() {
        return Err(StoreError::validation(
            format!(
                "primary key column `{}` cannot be a field name (A-Z, a-z, 0-9, _; up to 63): rename it in your migration layer",
                a.pk_column
            ),
            Some("pkColumn"),
        ));
    }
    if !is_key_type(a.pk_type) {
        return Err(StoreError::validation(
            format!(
                "primary key `{}` is {}: workeros keys items by uuid, text or integer",
                a.pk_column, a.pk_type
            ),
            Some("pkColumn"),
        ));
    }
    if workeros_dsl::Ident::new(&a.pk_column).is_err() {
        return Err(StoreError::validation(
            format!(
                "primary key column `{}` is a word of the filter language and cannot name the key",
                a.pk_column
            ),
            Some("pkColumn"),
        ));
    }
    // The names the key and the system fields take on the wire and in filters.
    let mut names = vec![a.pk_column.as_str()];
    names.extend(["createdAt", "updatedAt", "ownerId"]);
    if a.pk_column != "id" {
        names.push("id");
    }
    if let Some(f) = new.fields.iter().find(|f| names.contains(&f.name.as_str())) {
        return Err(StoreError::validation(
            format!(
                "field `{}` would shadow the key or a system field; name it otherwise and set `column`",
                f.name.as_str()
            ),
            Some(f.name.as_str()),
        ));
    }
    let mut taken: Vec<(&str, &str)> = vec![(a.pk_column.as_str(), "pkColumn")];
    for (alias, c) in a.aliases() {
        let role = alias.request_field();
        if !alias.accepts(c.field_type) {
            return Err(StoreError::validation(
                format!(
                    "`{role}` column `{}` is {}; it must be {}",
                    c.column,
                    c.field_type,
                    alias.accepted()
                ),
                Some(role),
            ));
        }
        if let Some((_, other)) = taken.iter().find(|(col, _)| *col == c.column) {
            return Err(StoreError::validation(
                format!(
                    "column `{}` cannot be both `{other}` and `{role}`",
                    c.column
                ),
                Some(role),
            ));
        }
        taken.push((c.column.as_str(), role));
    }
    for f in &new.fields {
        if let Some((_, role)) = taken.iter().find(|(col, _)| *col == f.column_name()) {
            return Err(StoreError::validation(
                format!(
                    "column `{}` is `{role}`; it cannot also be field `{}`",
                    f.column_name(),
                    f.name.as_str()
                ),
                Some(f.name.as_str()),
            ));
        }
    }
    Ok(())
}
