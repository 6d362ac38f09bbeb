//! Collections, fields and permissions as data.

use crate::{CoreError, FieldName, Slug};
use serde::{Deserialize, Serialize};

/// The type of a collection field, with the names used on the wire and in schemas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// Text of at most 255 characters (`varchar(255)` / `TEXT`).
    Text,
    /// Text of any length (`text` / `TEXT`).
    Longtext,
    /// A 64-bit integer (`bigint` / `INTEGER`).
    Integer,
    /// A double-precision float (`double precision` / `REAL`).
    Number,
    /// A boolean (`boolean` / `INTEGER` 0 or 1).
    Boolean,
    /// Any JSON value (`jsonb` / `TEXT`).
    Json,
    /// An instant, RFC 3339 UTC on the wire (`timestamptz` / fixed-width RFC 3339 `TEXT`).
    Timestamp,
    /// A UUID (`uuid` / `TEXT`).
    Uuid,
    /// A reference to one row of another collection (stored as that collection's key type).
    Relation,
    /// References to many rows of another collection (a JSON array of keys).
    RelationMany,
}

impl FieldType {
    /// The wire name, as accepted by `FromStr`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Longtext => "longtext",
            Self::Integer => "integer",
            Self::Number => "number",
            Self::Boolean => "boolean",
            Self::Json => "json",
            Self::Timestamp => "timestamp",
            Self::Uuid => "uuid",
            Self::Relation => "relation",
            Self::RelationMany => "relation_many",
        }
    }

    /// Every field type.
    pub const ALL: [FieldType; 10] = [
        Self::Text,
        Self::Longtext,
        Self::Integer,
        Self::Number,
        Self::Boolean,
        Self::Json,
        Self::Timestamp,
        Self::Uuid,
        Self::Relation,
        Self::RelationMany,
    ];
}

impl std::str::FromStr for FieldType {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, CoreError> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| CoreError::UnknownFieldType(s.to_owned()))
    }
}

impl std::fmt::Display for FieldType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One field of a collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Field {
    /// The logical name clients use.
    pub name: FieldName,
    /// The type.
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// For relations: the target collection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Slug>,
    /// Whether a value is required on create.
    #[serde(default)]
    pub required: bool,
    /// Whether values are unique.
    #[serde(default)]
    pub unique: bool,
    /// The physical column when it differs from `name` (adopted collections).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
}

impl Field {
    /// A plain optional field.
    pub fn new(name: FieldName, field_type: FieldType) -> Self {
        Self {
            name,
            field_type,
            to: None,
            required: false,
            unique: false,
            column: None,
        }
    }

    /// The physical column name: `column` when set, else the name.
    pub fn column_name(&self) -> &str {
        self.column.as_deref().unwrap_or(self.name.as_str())
    }
}

/// What a subject does to items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Create items.
    Create,
    /// Read items.
    Read,
    /// Update items.
    Update,
    /// Delete items.
    Delete,
}

impl Action {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Read => "read",
            Self::Update => "update",
            Self::Delete => "delete",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_type_names_round_trip() {
        for t in FieldType::ALL {
            assert_eq!(t.as_str().parse::<FieldType>(), Ok(t));
            assert_eq!(
                serde_json::to_value(t).ok(),
                Some(serde_json::Value::String(t.as_str().into()))
            );
        }
        assert!("varchar".parse::<FieldType>().is_err());
    }
}
