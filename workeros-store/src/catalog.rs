//! The collection metadata every other part reads: [`CollectionInfo`] with its status and
//! adoption, how it is loaded from `collections` and `collection_adoptions`, and who may manage it.

use crate::names::Names;
use crate::schema::{COLLECTION_ADOPTIONS, COLLECTIONS};
use crate::value::RowRef;
use crate::{StoreError, Tx};
use sea_query::{Alias, Expr, ExprTrait, Query};
use serde::{Deserialize, Serialize};
use workeros_core::instant::rfc3339;
use workeros_core::{Field, FieldType, Slug, Subject};

/// Whether a collection is in use or archived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CollectionStatus {
    /// In use.
    Active,
    /// Archived (adopted collections only): hidden unless asked for, restorable.
    Archived,
}

impl CollectionStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Archived => "archived",
        }
    }
}

/// A collection as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CollectionInfo {
    /// The slug clients use in URLs.
    pub slug: Slug,
    /// The physical table.
    pub physical_table: String,
    /// Whether the table was adopted (no DDL ever runs against it).
    pub adopted: bool,
    /// Whether rows belong to their creator (`owner_id`).
    pub owner_scoped: bool,
    /// The user fields.
    pub fields: Vec<Field>,
    /// In use or archived.
    pub status: CollectionStatus,
    /// When it was archived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived_at: Option<String>,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When its metadata last changed (RFC 3339).
    pub updated_at: String,
    /// For an adopted collection: its key, alias columns and relation key types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adoption: Option<Adoption>,
}

impl CollectionInfo {
    /// The field that keys items (`id` for managed collections, the primary key column for
    /// adopted ones): the `:id` of `/api/items/:slug/:id` and the wire key of the key.
    pub fn key_field(&self) -> &str {
        self.adoption
            .as_ref()
            .map_or("id", |a| a.pk_column.as_str())
    }

    /// The type of the key: `uuid` for managed collections.
    pub fn key_type(&self) -> FieldType {
        self.adoption
            .as_ref()
            .map_or(FieldType::Uuid, |a| a.pk_type)
    }

    /// The collection's table where it is: a managed one in workeros's namespace, an adopted
    /// one in the host's schema.
    pub(crate) fn table(&self, names: &Names) -> sea_query::TableRef {
        if self.adopted {
            names.host_table(&self.physical_table)
        } else {
            names.collection_table(&self.physical_table)
        }
    }

    /// The name that qualifies the table's columns (its name without a schema).
    pub(crate) fn qualifier(&self, names: &Names) -> Alias {
        if self.adopted {
            Alias::new(self.physical_table.as_str())
        } else {
            Alias::new(names.collection_physical(&self.physical_table))
        }
    }

    /// Whether items carry an owner (`ownerId`): owner-scoped, or adopted with an owner column.
    pub fn has_owner(&self) -> bool {
        self.owner_scoped || self.adoption.as_ref().is_some_and(|a| a.owner_id.is_some())
    }
}

/// A column of an adopted table that plays a system role (`createdAt`, `updatedAt`, `ownerId`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AliasColumn {
    /// The column, exactly as the table has it.
    pub column: String,
    /// Its field type: `timestamp` or `integer` (Unix milliseconds) for the times, `text`,
    /// `longtext` or `uuid` for the owner.
    #[serde(rename = "type")]
    pub field_type: FieldType,
}

/// What an adopted collection knows about its table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Adoption {
    /// The single-column primary key; also its field name (so it is a valid field name).
    pub pk_column: String,
    /// The key's type: `uuid`, `text`, `longtext` or `integer`.
    pub pk_type: FieldType,
    /// The column read as `createdAt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<AliasColumn>,
    /// The column read as `updatedAt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<AliasColumn>,
    /// The column read as `ownerId`; `None` with `ownerScoped` keeps owners in `item_ownership`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<AliasColumn>,
    /// The key type of each relation field's target (set by the store when the collection is
    /// created).
    #[serde(default)]
    pub relation_keys: std::collections::BTreeMap<String, FieldType>,
}

/// The system role an adopted column can play under its conventional name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AliasRole {
    /// `createdAt`.
    CreatedAt,
    /// `updatedAt`.
    UpdatedAt,
    /// `ownerId`.
    OwnerId,
}

impl AliasRole {
    /// Every role.
    pub const ALL: [AliasRole; 3] = [Self::CreatedAt, Self::UpdatedAt, Self::OwnerId];

    /// Whether a column of type `t` can play the role: instants are `timestamp` or `integer`
    /// (Unix milliseconds), owners `text`, `longtext` or `uuid`.
    pub fn accepts(self, t: FieldType) -> bool {
        match self {
            Self::CreatedAt | Self::UpdatedAt => {
                matches!(t, FieldType::Timestamp | FieldType::Integer)
            }
            Self::OwnerId => matches!(t, FieldType::Text | FieldType::Longtext | FieldType::Uuid),
        }
    }

    /// The types [`accepts`](Self::accepts) takes, in words.
    pub fn accepted(self) -> &'static str {
        match self {
            Self::CreatedAt | Self::UpdatedAt => "timestamp or integer",
            Self::OwnerId => "text, longtext or uuid",
        }
    }

    /// The request field that sets the alias (`createdAtColumn`…).
    pub fn request_field(self) -> &'static str {
        match self {
            Self::CreatedAt => "createdAtColumn",
            Self::UpdatedAt => "updatedAtColumn",
            Self::OwnerId => "ownerIdColumn",
        }
    }

    /// The reserved column name of the role (`created_at`…).
    pub fn reserved_name(self) -> &'static str {
        match self {
            Self::CreatedAt => "created_at",
            Self::UpdatedAt => "updated_at",
            Self::OwnerId => "owner_id",
        }
    }
}

impl Adoption {
    /// The alias columns with their roles.
    pub fn aliases(&self) -> impl Iterator<Item = (AliasRole, &AliasColumn)> {
        [
            (AliasRole::CreatedAt, self.created_at.as_ref()),
            (AliasRole::UpdatedAt, self.updated_at.as_ref()),
            (AliasRole::OwnerId, self.owner_id.as_ref()),
        ]
        .into_iter()
        .filter_map(|(role, c)| c.map(|c| (role, c)))
    }
}

/// Whether items can be keyed by `t` (`uuid`, `text`, `longtext`, `integer`).
pub fn is_key_type(t: FieldType) -> bool {
    matches!(
        t,
        FieldType::Uuid | FieldType::Text | FieldType::Longtext | FieldType::Integer
    )
}

/// Refuses anyone but an admin.
pub(crate) fn require_admin(subject: &Subject) -> Result<(), StoreError> {
    if subject.is_admin() {
        Ok(())
    } else {
        Err(StoreError::Forbidden(
            "only an admin may manage collections and permissions".into(),
        ))
    }
}

const COLUMNS: [&str; 11] = [
    "id",
    "slug",
    "physical_table",
    "adopted",
    "owner_scoped",
    "fields",
    "status",
    "archived_at",
    "created_at",
    "updated_at",
    "tenant_id",
];

/// The columns of `collection_adoptions` read with a collection (none share a name with
/// `collections`).
pub(crate) const ADOPTION_COLUMNS: [&str; 9] = [
    "pk_column",
    "pk_type",
    "created_at_column",
    "created_at_type",
    "updated_at_column",
    "updated_at_type",
    "owner_id_column",
    "owner_id_type",
    "relation_keys",
];

fn alias_of(r: RowRef<'_>, column: &str, ty: &str) -> Result<Option<AliasColumn>, StoreError> {
    let (Some(column), Some(ty)) = (r.text(column)?, r.text(ty)?) else {
        return Ok(None);
    };
    Ok(Some(AliasColumn {
        column,
        field_type: ty.parse()?,
    }))
}

fn adoption_of(r: RowRef<'_>) -> Result<Option<Adoption>, StoreError> {
    let (Some(pk_column), Some(pk_type)) = (r.text("pk_column")?, r.text("pk_type")?) else {
        return Ok(None);
    };
    let relation_keys = match r.json("relation_keys")? {
        Some(v) => serde_json::from_value(v).map_err(StoreError::internal)?,
        None => Default::default(),
    };
    Ok(Some(Adoption {
        pk_column,
        pk_type: pk_type.parse()?,
        created_at: alias_of(r, "created_at_column", "created_at_type")?,
        updated_at: alias_of(r, "updated_at_column", "updated_at_type")?,
        owner_id: alias_of(r, "owner_id_column", "owner_id_type")?,
        relation_keys,
    }))
}

pub(crate) fn info_of(r: RowRef<'_>) -> Result<CollectionInfo, StoreError> {
    let missing = || StoreError::internal("a collections row lacks a required column");
    let fields: Vec<Field> = serde_json::from_value(r.json("fields")?.ok_or_else(missing)?)
        .map_err(StoreError::internal)?;
    let status = match r.text("status")?.as_deref() {
        Some("archived") => CollectionStatus::Archived,
        _ => CollectionStatus::Active,
    };
    let adopted = r.boolean("adopted")?.unwrap_or(false);
    let adoption = if adopted { adoption_of(r)? } else { None };
    if adopted && adoption.is_none() {
        return Err(StoreError::internal(
            "an adopted collection lacks its collection_adoptions row",
        ));
    }
    Ok(CollectionInfo {
        slug: Slug::new(r.text("slug")?.ok_or_else(missing)?)?,
        physical_table: r.text("physical_table")?.ok_or_else(missing)?,
        adopted,
        owner_scoped: r.boolean("owner_scoped")?.unwrap_or(false),
        fields,
        status,
        archived_at: r.ts("archived_at")?.map(rfc3339),
        created_at: r.ts("created_at")?.map(rfc3339).unwrap_or_default(),
        updated_at: r.ts("updated_at")?.map(rfc3339).unwrap_or_default(),
        adoption,
    })
}

/// The collections of `tenant` with their adoption rows (`collections` as `c`, joined
/// `collection_adoptions` as `a`).
pub(crate) fn select_collections(names: &Names, tenant: &str) -> sea_query::SelectStatement {
    let c = || Alias::new("c");
    let a = || Alias::new("a");
    let mut q = Query::select();
    q.columns(COLUMNS.map(|n| (c(), Alias::new(n))))
        .columns(ADOPTION_COLUMNS.map(|n| (a(), Alias::new(n))))
        .from_as(names.table(COLLECTIONS), c())
        .join_as(
            sea_query::JoinType::LeftJoin,
            names.table(COLLECTION_ADOPTIONS),
            a(),
            Expr::col((a(), Alias::new("collection_id"))).equals((c(), Alias::new("id"))),
        )
        .and_where(Expr::col((c(), Alias::new("tenant_id"))).eq(tenant))
        .order_by((c(), Alias::new("slug")), sea_query::Order::Asc);
    q
}

/// `collections.slug = slug`, for [`select_collections`].
pub(crate) fn slug_is(slug: &str) -> sea_query::SimpleExpr {
    Expr::col((Alias::new("c"), Alias::new("slug"))).eq(slug)
}

/// Reads one collection's metadata in a transaction (archived ones included).
pub(crate) async fn load_in(
    tx: &mut Tx,
    tenant: &str,
    slug: &str,
) -> Result<Option<CollectionInfo>, StoreError> {
    let rows = tx
        .fetch_all(select_collections(tx.names(), tenant).and_where(slug_is(slug)))
        .await?;
    rows.iter().next().map(info_of).transpose()
}

/// Reads an active collection in a transaction; archived or missing is 404.
pub(crate) async fn load_active(
    tx: &mut Tx,
    tenant: &str,
    slug: &str,
) -> Result<CollectionInfo, StoreError> {
    load_in(tx, tenant, slug)
        .await?
        .filter(|i| i.status == CollectionStatus::Active)
        .ok_or_else(|| not_found(slug))
}

pub(crate) fn not_found(slug: &str) -> StoreError {
    StoreError::NotFound(format!("collection `{slug}` not found"))
}
