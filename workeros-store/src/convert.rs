//! Values a client writes to a column: converted to the bound storage value and to the wire form
//! reading it back gives (422 when a value does not fit its field), instants and owners included.

use crate::StoreError;
use crate::columns::Col;
use serde_json::Value as Json;
use time::OffsetDateTime;
use workeros_core::instant::rfc3339;
use workeros_core::{FieldType, Subject};
use workeros_dsl::Dialect;

/// A value converted for a column: the bound value and its wire form (what reading it back gives).
pub(crate) struct Converted {
    pub(crate) value: sea_query::Value,
    pub(crate) wire: Json,
}

/// Converts a client value for a user field; 422 when it does not fit the field's type.
pub(crate) fn convert(
    c: &Col,
    t: FieldType,
    v: &Json,
    d: Dialect,
) -> Result<Converted, StoreError> {
    use sea_query::Value as V;
    let bad = |what: &str| {
        StoreError::validation(format!("field `{}` takes {what}", c.key), Some(&c.key))
    };
    let text = |s: &str, max: Option<usize>| -> Result<Converted, StoreError> {
        if s.contains('\0') {
            return Err(bad("text without NUL characters"));
        }
        if let Some(m) = max
            && s.chars().count() > m
        {
            return Err(bad("text of at most 255 characters"));
        }
        Ok(Converted {
            value: V::String(Some(s.to_owned())),
            wire: Json::String(s.to_owned()),
        })
    };
    if v.is_null() {
        let value = match (t, d) {
            (FieldType::Integer, _) => V::BigInt(None),
            (FieldType::Number, _) => V::Double(None),
            (FieldType::Boolean, Dialect::Postgres) => V::Bool(None),
            (FieldType::Boolean, Dialect::Sqlite) => V::BigInt(None),
            (FieldType::Json | FieldType::RelationMany, Dialect::Postgres) => V::Json(None),
            (FieldType::Timestamp, Dialect::Postgres) => V::TimeDateTimeWithTimeZone(None),
            (FieldType::Uuid | FieldType::Relation, Dialect::Postgres) => V::Uuid(None),
            _ => V::String(None),
        };
        return Ok(Converted {
            value,
            wire: Json::Null,
        });
    }
    match t {
        FieldType::Text => text(v.as_str().ok_or_else(|| bad("text"))?, Some(255)),
        FieldType::Longtext => text(v.as_str().ok_or_else(|| bad("text"))?, None),
        FieldType::Integer => {
            let i = v.as_i64().ok_or_else(|| bad("a 64-bit integer"))?;
            Ok(Converted {
                value: V::BigInt(Some(i)),
                wire: Json::from(i),
            })
        }
        FieldType::Number => {
            let x = v
                .as_f64()
                .filter(|x| x.is_finite())
                .ok_or_else(|| bad("a number"))?;
            Ok(Converted {
                value: V::Double(Some(x)),
                wire: serde_json::Number::from_f64(x).map_or(Json::Null, Json::Number),
            })
        }
        FieldType::Boolean => {
            let b = v.as_bool().ok_or_else(|| bad("true or false"))?;
            Ok(Converted {
                value: crate::value::bool_value(b, d),
                wire: Json::Bool(b),
            })
        }
        FieldType::Json if has_nul(v) => Err(bad("JSON without NUL characters")),
        FieldType::Json => Ok(Converted {
            value: crate::value::json_value(Some(v), d),
            wire: v.clone(),
        }),
        FieldType::RelationMany => {
            let items = v.as_array().ok_or_else(|| bad("an array of ids"))?;
            let mut ids = Vec::with_capacity(items.len());
            for i in items {
                let u = i
                    .as_str()
                    .and_then(|s| uuid::Uuid::try_parse(s).ok())
                    .ok_or_else(|| bad("an array of ids"))?;
                ids.push(Json::String(u.hyphenated().to_string()));
            }
            let wire = Json::Array(ids);
            Ok(Converted {
                value: crate::value::json_value(Some(&wire), d),
                wire,
            })
        }
        FieldType::Timestamp => {
            let m = v
                .as_str()
                .and_then(workeros_dsl::parse_timestamp)
                .ok_or_else(|| bad("an RFC 3339 timestamp"))?;
            let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(m) * 1000)
                .map_err(|_| bad("an RFC 3339 timestamp"))?;
            Ok(Converted {
                value: crate::value::ts_value(t, d),
                wire: Json::String(rfc3339(t)),
            })
        }
        FieldType::Uuid | FieldType::Relation => {
            let u = v
                .as_str()
                .and_then(|s| uuid::Uuid::try_parse(s).ok())
                .ok_or_else(|| bad("a uuid"))?;
            Ok(Converted {
                value: crate::value::uuid_value(u, d),
                wire: Json::String(u.hyphenated().to_string()),
            })
        }
    }
}

/// Whether a JSON value holds NUL in a string or a key (PostgreSQL's `jsonb` refuses it).
fn has_nul(v: &Json) -> bool {
    match v {
        Json::String(s) => s.contains('\0'),
        Json::Array(a) => a.iter().any(has_nul),
        Json::Object(m) => m.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// `at` in the storage of an instant column: a timestamp, or Unix milliseconds for an adopted
/// integer column.
pub(crate) fn instant_value(t: FieldType, at: OffsetDateTime, d: Dialect) -> sea_query::Value {
    match t {
        FieldType::Integer => sea_query::Value::BigInt(Some(unix_ms(at))),
        _ => crate::value::ts_value(at, d),
    }
}

/// `at` as an instant column reads back.
pub(crate) fn instant_wire(t: FieldType, at: OffsetDateTime) -> Json {
    match t {
        FieldType::Integer => Json::from(unix_ms(at)),
        _ => Json::String(rfc3339(at)),
    }
}

fn unix_ms(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// The subject's id as the owner column stores it (a uuid column needs a uuid user id).
pub(crate) fn owner_value(
    c: &Col,
    subject: &Subject,
    d: Dialect,
) -> Result<sea_query::Value, StoreError> {
    let id = subject.user.as_ref().map(|u| u.id.as_str());
    match (c.ty, id) {
        (FieldType::Uuid, None) => Ok(crate::value::uuid_null(d)),
        (FieldType::Uuid, Some(id)) => uuid::Uuid::try_parse(id)
            .map(|u| crate::value::uuid_value(u, d))
            .map_err(|_| {
                StoreError::validation(
                    format!(
                        "the owner column `{}` holds uuids; this user's id is not one",
                        c.column
                    ),
                    Some("ownerId"),
                )
            }),
        (_, id) => Ok(sea_query::Value::String(id.map(str::to_owned))),
    }
}
