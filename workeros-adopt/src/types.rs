//! The type mapping of `001_*`, reserved column names, and alias suggestions.

use workeros_core::FieldType;

/// Column names with a workeros role (the core's reserved field names). An adopted column with
/// one of these names must fit the role (`id` is the primary key; the others need the alias type
/// of their role).
pub use workeros_core::RESERVED_FIELD_NAMES as RESERVED_COLUMNS;

/// The suggested field type of a column declared as `declared` (as the catalog prints it:
/// PostgreSQL's `format_type`, SQLite's declared type), or why there is none.
///
/// | declared | field type |
/// |---|---|
/// | `varchar(n)`, `char(n)`, `nvarchar(n)` with n ≤ 255 | `text` |
/// | `text`, `varchar` without or with n > 255, `clob` | `longtext` |
/// | `smallint`, `integer`, `bigint` (and SQLite `INT…`) | `integer` |
/// | `numeric`, `decimal`, `real`, `double precision`, `float` | `number` |
/// | `boolean` | `boolean` |
/// | `json`, `jsonb` | `json` |
/// | `timestamp`, `timestamptz`, SQLite `DATETIME` | `timestamp` |
/// | `uuid` | `uuid` |
///
/// Arrays, enums, domains, geometry, binary and anything else are not mapped.
pub fn suggest(declared: &str, is_postgres: bool) -> Result<FieldType, String> {
    let t = declared.trim().to_ascii_lowercase();
    if t.ends_with("[]") {
        return Err(format!("arrays (`{declared}`) are not mapped"));
    }
    let (base, len) = split_length(&t);
    let text_by_len = |n: Option<u32>| match n {
        Some(n) if n <= 255 => FieldType::Text,
        _ => FieldType::Longtext,
    };
    let mapped = match base {
        "character varying" | "varchar" | "nvarchar" | "varying character" | "national varchar" => {
            Some(text_by_len(len))
        }
        // Fixed-length characters: `char` alone is `char(1)`.
        "character" | "char" | "nchar" | "native character" | "bpchar" => {
            Some(text_by_len(len.or(Some(1))))
        }
        "text" | "clob" | "citext" | "name" => Some(FieldType::Longtext),
        "smallint" | "integer" | "int" | "bigint" | "int2" | "int4" | "int8" | "tinyint"
        | "mediumint" | "unsigned big int" | "serial" | "bigserial" | "smallserial" => {
            Some(FieldType::Integer)
        }
        "numeric" | "decimal" | "real" | "double precision" | "double" | "float" | "float4"
        | "float8" => Some(FieldType::Number),
        "boolean" | "bool" => Some(FieldType::Boolean),
        "json" | "jsonb" => Some(FieldType::Json),
        "timestamp"
        | "timestamptz"
        | "timestamp with time zone"
        | "timestamp without time zone"
        | "datetime" => Some(FieldType::Timestamp),
        "uuid" => Some(FieldType::Uuid),
        _ => None,
    };
    if let Some(m) = mapped {
        return Ok(m);
    }
    if !is_postgres {
        // SQLite's affinity rules for declared types nobody listed above.
        if t.contains("int") {
            return Ok(FieldType::Integer);
        }
        if t.contains("char") || t.contains("clob") || t.contains("text") {
            return Ok(text_by_len(len));
        }
        if t.contains("real") || t.contains("floa") || t.contains("doub") {
            return Ok(FieldType::Number);
        }
        if t.is_empty() {
            return Err("no declared type (SQLite stores any value): not mapped".into());
        }
    }
    Err(format!("type `{declared}` is not mapped"))
}

/// `varchar(160)` → (`varchar`, Some(160)); `numeric(10,2)` → (`numeric`, None);
/// `timestamp(3) with time zone` → (`timestamp with time zone`, Some(3)).
fn split_length(t: &str) -> (&str, Option<u32>) {
    let Some(open) = t.find('(') else {
        return (t, None);
    };
    let close = t[open..].find(')').map(|c| open + c);
    let inner = close.map(|c| &t[open + 1..c]);
    let n = inner.and_then(|s| s.trim().parse::<u32>().ok());
    let before = t[..open].trim_end();
    let after = close.map(|c| t[c + 1..].trim()).unwrap_or("");
    if after.is_empty() {
        (before, n)
    } else {
        // `timestamp(3) with time zone`: the words around the parenthesis name the type.
        match (before, after) {
            ("timestamp", "with time zone") => ("timestamp with time zone", n),
            ("timestamp", "without time zone") => ("timestamp without time zone", n),
            _ => (before, n),
        }
    }
}

/// The conventional role an alias gives a column (the store's: it checks the types too).
pub use workeros_store::AliasRole;

/// The column names suggested for `role` (matched case-insensitively).
pub fn alias_patterns(role: AliasRole) -> &'static [&'static str] {
    match role {
        AliasRole::CreatedAt => &[
            "inserted_at",
            "created_at",
            "date_created",
            "created",
            "insert_time",
            "createdAt",
            "dateCreated",
        ],
        AliasRole::UpdatedAt => &[
            "modified_at",
            "updated_at",
            "last_modified",
            "updated",
            "modify_time",
            "updatedAt",
            "modifiedAt",
            "lastModified",
        ],
        AliasRole::OwnerId => &[
            "user_id",
            "owner_id",
            "created_by",
            "author_id",
            "owner",
            "owned_by",
            "userId",
            "createdBy",
            "authorId",
            "ownedBy",
        ],
    }
}

/// The column suggested for `role` among `columns` (name, suggested type), in pattern order.
pub fn suggest_alias<'a>(
    role: AliasRole,
    columns: impl Iterator<Item = (&'a str, Option<FieldType>)> + Clone,
) -> Option<&'a str> {
    alias_patterns(role).iter().find_map(|p| {
        columns.clone().find_map(|(name, t)| {
            (name.eq_ignore_ascii_case(p) && t.is_some_and(|t| role.accepts(t))).then_some(name)
        })
    })
}

/// Whether a primary key of type `t` is supported (uuid, text, integer).
pub fn key_type_supported(t: Option<FieldType>) -> bool {
    t.is_some_and(workeros_store::is_key_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_table() {
        let pg = |t| suggest(t, true).ok();
        assert_eq!(pg("character varying(160)"), Some(FieldType::Text));
        assert_eq!(pg("character varying(256)"), Some(FieldType::Longtext));
        assert_eq!(pg("character varying"), Some(FieldType::Longtext));
        assert_eq!(pg("text"), Some(FieldType::Longtext));
        assert_eq!(pg("character(2)"), Some(FieldType::Text));
        assert_eq!(pg("integer"), Some(FieldType::Integer));
        assert_eq!(pg("bigint"), Some(FieldType::Integer));
        assert_eq!(pg("smallint"), Some(FieldType::Integer));
        assert_eq!(pg("numeric(10,2)"), Some(FieldType::Number));
        assert_eq!(pg("double precision"), Some(FieldType::Number));
        assert_eq!(pg("real"), Some(FieldType::Number));
        assert_eq!(pg("boolean"), Some(FieldType::Boolean));
        assert_eq!(pg("jsonb"), Some(FieldType::Json));
        assert_eq!(
            pg("timestamp without time zone"),
            Some(FieldType::Timestamp)
        );
        assert_eq!(
            pg("timestamp(3) with time zone"),
            Some(FieldType::Timestamp)
        );
        assert_eq!(pg("uuid"), Some(FieldType::Uuid));
        for bad in [
            "integer[]",
            "geometry",
            "mood",
            "bytea",
            "date",
            "interval",
            "money",
        ] {
            assert!(suggest(bad, true).is_err(), "{bad}");
        }
        let lite = |t| suggest(t, false).ok();
        assert_eq!(lite("NVARCHAR(160)"), Some(FieldType::Text));
        assert_eq!(lite("INTEGER"), Some(FieldType::Integer));
        assert_eq!(lite("NUMERIC(10,2)"), Some(FieldType::Number));
        assert_eq!(lite("DATETIME"), Some(FieldType::Timestamp));
        assert_eq!(lite("BIGINTEGER"), Some(FieldType::Integer));
        assert_eq!(lite("VARCHAR2(300)"), Some(FieldType::Longtext));
        assert!(suggest("", false).is_err());
        assert!(suggest("BLOB", false).is_err());
    }

    #[test]
    fn alias_suggestions_follow_patterns_and_types() {
        let cols = [
            ("id", Some(FieldType::Uuid)),
            ("inserted_at", Some(FieldType::Timestamp)),
            ("Created", Some(FieldType::Text)),
            ("userId", Some(FieldType::Text)),
            ("owner", Some(FieldType::Integer)),
        ];
        let it = cols.iter().map(|(n, t)| (*n, *t));
        assert_eq!(
            suggest_alias(AliasRole::CreatedAt, it.clone()),
            Some("inserted_at")
        );
        assert_eq!(suggest_alias(AliasRole::UpdatedAt, it.clone()), None);
        assert_eq!(
            suggest_alias(AliasRole::OwnerId, it.clone()),
            Some("userId")
        );
        let only_int_owner = [("owner", Some(FieldType::Integer))];
        assert_eq!(
            suggest_alias(
                AliasRole::OwnerId,
                only_int_owner.iter().map(|(n, t)| (*n, *t))
            ),
            None,
            "an integer cannot own"
        );
    }
}
