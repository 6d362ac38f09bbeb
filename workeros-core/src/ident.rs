//! Validated identifiers: user-supplied names never reach SQL unchecked.

use crate::CoreError;
use serde::{Deserialize, Serialize};

/// Field names reserved for system columns; a user field may not take them.
pub const RESERVED_FIELD_NAMES: &[&str] = &[
    "id",
    "tenant_id",
    "created_at",
    "updated_at",
    "owner_id",
    "_status",
    "_published_at",
];

/// A collection slug, `^[a-z][a-z0-9_]{0,47}$`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Slug(String);

impl Slug {
    /// Validates `s` as a slug.
    pub fn new(s: impl Into<String>) -> Result<Self, CoreError> {
        let s = s.into();
        let b = s.as_bytes();
        let ok = !b.is_empty()
            && b.len() <= 48
            && b.first().is_some_and(u8::is_ascii_lowercase)
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_');
        if ok {
            Ok(Self(s))
        } else {
            Err(CoreError::InvalidSlug(s))
        }
    }

    /// The slug as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A field name, `^[A-Za-z_][A-Za-z0-9_]{0,62}$` (the DSL's identifiers). Managed collections
/// take the lowercase subset ([`FieldName::is_lowercase`]); adopted ones keep the table's own
/// spelling (`AlbumId`). Whether it may shadow a reserved name is decided by
/// [`FieldName::new_user`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FieldName(String);

impl FieldName {
    /// Validates the shape of `s` (reserved names are accepted: system fields use them).
    pub fn new(s: impl Into<String>) -> Result<Self, CoreError> {
        let s = s.into();
        let b = s.as_bytes();
        let ok = !b.is_empty()
            && b.len() <= 63
            && b.first()
                .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_');
        if ok {
            Ok(Self(s))
        } else {
            Err(CoreError::InvalidFieldName(s))
        }
    }

    /// Whether the name is in the lowercase form managed collections require
    /// (`^[a-z_][a-z0-9_]{0,62}$`).
    pub fn is_lowercase(&self) -> bool {
        !self.0.bytes().any(|c| c.is_ascii_uppercase())
    }

    /// Validates `s` as the name of a user-defined field: the shape, and not a reserved name.
    pub fn new_user(s: impl Into<String>) -> Result<Self, CoreError> {
        let name = Self::new(s)?;
        if name.is_reserved() {
            return Err(CoreError::ReservedFieldName(name.0));
        }
        Ok(name)
    }

    /// Whether this is one of [`RESERVED_FIELD_NAMES`].
    pub fn is_reserved(&self) -> bool {
        RESERVED_FIELD_NAMES.contains(&self.0.as_str())
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! string_newtype_impls {
    ($t:ty) => {
        impl TryFrom<String> for $t {
            type Error = CoreError;
            fn try_from(s: String) -> Result<Self, CoreError> {
                Self::new(s)
            }
        }
        impl From<$t> for String {
            fn from(v: $t) -> String {
                v.0
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl std::str::FromStr for $t {
            type Err = CoreError;
            fn from_str(s: &str) -> Result<Self, CoreError> {
                Self::new(s)
            }
        }
    };
}
string_newtype_impls!(Slug);
string_newtype_impls!(FieldName);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert!(Slug::new("posts").is_ok());
        assert!(Slug::new("p2_x").is_ok());
        assert!(Slug::new("a".repeat(48)).is_ok());
        for bad in [
            "",
            "2x",
            "_x",
            "Posts",
            "a-b",
            "a b",
            "a\"b",
            "a;b",
            &"a".repeat(49),
            "é",
        ] {
            assert!(Slug::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn field_names() {
        assert!(FieldName::new("_x").is_ok());
        assert!(FieldName::new("owner_id").is_ok());
        assert!(FieldName::new_user("owner_id").is_err());
        assert!(FieldName::new_user("title").is_ok());
        assert!(FieldName::new("AlbumId").is_ok_and(|n| !n.is_lowercase()));
        assert!(FieldName::new("album_id").is_ok_and(|n| n.is_lowercase()));
        for bad in ["", "9a", "a b", "a\"", "a'", "a\\b", "é", &"a".repeat(64)] {
            assert!(FieldName::new(bad).is_err(), "{bad}");
        }
    }
}
