//! Values between the wire (JSON), sea-query (bound values) and the drivers (decoded rows).

use crate::{Rows, StoreError};
use sea_query::Value;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
use sqlx::Row;
use time::OffsetDateTime;
#[cfg(feature = "postgres")]
use workeros_core::instant::rfc3339;
use workeros_core::instant::{micros, rfc3339_micros};
use workeros_dsl::Dialect;

/// The current instant, truncated to microseconds (what both databases keep).
pub fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(t.nanosecond() / 1000 * 1000)
        .unwrap_or(t)
}

/// An instant as a bound value: `timestamptz` on PostgreSQL, fixed-width text on SQLite.
pub fn ts_value(t: OffsetDateTime, d: Dialect) -> Value {
    match d {
        Dialect::Postgres => Value::TimeDateTimeWithTimeZone(Some(t)),
        Dialect::Sqlite => Value::String(rfc3339_micros(micros(t))),
    }
}

/// The current instant as a bound value.
pub(crate) fn now_value(d: Dialect) -> Value {
    ts_value(now(), d)
}

/// The first column of every row, as integers.
pub(crate) fn first_i64(rows: &Rows) -> Result<Vec<i64>, StoreError> {
    Ok(match rows {
        #[cfg(not(any(feature = "postgres", feature = "sqlite")))]
        Rows::NoDriver(n) => n.absurd(),
        #[cfg(feature = "postgres")]
        Rows::Postgres(rs) => rs
            .iter()
            .map(|r| r.try_get::<i64, _>(0))
            .collect::<Result<_, _>>()?,
        #[cfg(feature = "sqlite")]
        Rows::Sqlite(rs) => rs
            .iter()
            .map(|r| r.try_get::<i64, _>(0))
            .collect::<Result<_, _>>()?,
    })
}

/// One row of [`Rows`], read by column name or position with the store's storage conventions
/// (uuids as `uuid` / hyphenated text, instants as `timestamptz` / fixed-width text, booleans as
/// `boolean` / 0 or 1).
#[derive(Debug, Clone, Copy)]
pub enum RowRef<'a> {
    /// A PostgreSQL row.
    #[cfg(feature = "postgres")]
    Postgres(&'a sqlx::postgres::PgRow),
    /// A SQLite row.
    #[cfg(feature = "sqlite")]
    Sqlite(&'a sqlx::sqlite::SqliteRow),
    /// No driver is built in.
    #[doc(hidden)]
    #[cfg(not(any(feature = "postgres", feature = "sqlite")))]
    NoDriver(&'a crate::db::NoDriver),
}

impl Rows {
    /// The rows, one by one.
    pub fn iter(&self) -> Box<dyn Iterator<Item = RowRef<'_>> + '_> {
        match self {
            #[cfg(not(any(feature = "postgres", feature = "sqlite")))]
            Rows::NoDriver(n) => n.absurd(),
            #[cfg(feature = "postgres")]
            Rows::Postgres(rs) => Box::new(rs.iter().map(RowRef::Postgres)),
            #[cfg(feature = "sqlite")]
            Rows::Sqlite(rs) => Box::new(rs.iter().map(RowRef::Sqlite)),
        }
    }
}

/// A column of a row, by name (`&str`) or by position (`usize`), on every driver built in.
pub trait Column: PgColumn + SqliteColumn + Copy {}

impl<T: PgColumn + SqliteColumn + Copy> Column for T {}

/// A column index of PostgreSQL rows (anything, without the `postgres` feature).
#[doc(hidden)]
#[cfg(feature = "postgres")]
pub trait PgColumn: sqlx::ColumnIndex<sqlx::postgres::PgRow> {}
#[cfg(feature = "postgres")]
impl<T: sqlx::ColumnIndex<sqlx::postgres::PgRow>> PgColumn for T {}
#[doc(hidden)]
#[cfg(not(feature = "postgres"))]
pub trait PgColumn {}
#[cfg(not(feature = "postgres"))]
impl<T> PgColumn for T {}

/// A column index of SQLite rows (anything, without the `sqlite` feature).
#[doc(hidden)]
#[cfg(feature = "sqlite")]
pub trait SqliteColumn: sqlx::ColumnIndex<sqlx::sqlite::SqliteRow> {}
#[cfg(feature = "sqlite")]
impl<T: sqlx::ColumnIndex<sqlx::sqlite::SqliteRow>> SqliteColumn for T {}
#[doc(hidden)]
#[cfg(not(feature = "sqlite"))]
pub trait SqliteColumn {}
#[cfg(not(feature = "sqlite"))]
impl<T> SqliteColumn for T {}

impl RowRef<'_> {
    /// A text column.
    pub fn text<C: Column>(&self, c: C) -> Result<Option<String>, StoreError> {
        Ok(match self {
            #[cfg(not(any(feature = "postgres", feature = "sqlite")))]
            RowRef::NoDriver(n) => n.absurd(),
            #[cfg(feature = "postgres")]
            RowRef::Postgres(r) => r.try_get(c)?,
            #[cfg(feature = "sqlite")]
            RowRef::Sqlite(r) => r.try_get(c)?,
        })
    }

    /// A uuid column as its hyphenated text.
    pub fn uuid_text<C: Column>(&self, c: C) -> Result<Option<String>, StoreError> {
        Ok(match self {
            #[cfg(not(any(feature = "postgres", feature = "sqlite")))]
            RowRef::NoDriver(n) => n.absurd(),
            #[cfg(feature = "postgres")]
            RowRef::Postgres(r) => r
                .try_get::<Option<uuid::Uuid>, _>(c)?
                .map(|u| u.hyphenated().to_string()),
            #[cfg(feature = "sqlite")]
            RowRef::Sqlite(r) => r.try_get(c)?,
        })
    }

    /// An integer column.
    pub fn int<C: Column>(&self, c: C) -> Result<Option<i64>, StoreError> {
        Ok(match self {
            #[cfg(not(any(feature = "postgres", feature = "sqlite")))]
            RowRef::NoDriver(n) => n.absurd(),
            #[cfg(feature = "postgres")]
            RowRef::Postgres(r) => r.try_get(c)?,
            #[cfg(feature = "sqlite")]
            RowRef::Sqlite(r) => r.try_get(c)?,
        })
    }

    /// A floating-point column.
    pub fn float<C: Column>(&self, c: C) -> Result<Option<f64>, StoreError> {
        Ok(match self {
            #[cfg(not(any(feature = "postgres", feature = "sqlite")))]
            RowRef::NoDriver(n) => n.absurd(),
            #[cfg(feature = "postgres")]
            RowRef::Postgres(r) => r.try_get(c)?,
            #[cfg(feature = "sqlite")]
            RowRef::Sqlite(r) => r.try_get(c)?,
        })
    }

    /// A boolean column.
    pub fn boolean<C: Column>(&self, c: C) -> Result<Option<bool>, StoreError> {
        Ok(match self {
            #[cfg(not(any(feature = "postgres", feature = "sqlite")))]
            RowRef::NoDriver(n) => n.absurd(),
            #[cfg(feature = "postgres")]
            RowRef::Postgres(r) => r.try_get(c)?,
            #[cfg(feature = "sqlite")]
            RowRef::Sqlite(r) => r.try_get::<Option<i64>, _>(c)?.map(|i| i != 0),
        })
    }

    /// A JSON column.
    pub fn json<C: Column>(&self, c: C) -> Result<Option<serde_json::Value>, StoreError> {
        Ok(match self {
            #[cfg(not(any(feature = "postgres", feature = "sqlite")))]
            RowRef::NoDriver(n) => n.absurd(),
            #[cfg(feature = "postgres")]
            RowRef::Postgres(r) => r.try_get(c)?,
            #[cfg(feature = "sqlite")]
            RowRef::Sqlite(r) => match r.try_get::<Option<String>, _>(c)? {
                Some(s) => Some(serde_json::from_str(&s).map_err(StoreError::internal)?),
                None => None,
            },
        })
    }

    /// An instant column.
    pub fn ts<C: Column>(&self, c: C) -> Result<Option<OffsetDateTime>, StoreError> {
        Ok(match self {
            #[cfg(not(any(feature = "postgres", feature = "sqlite")))]
            RowRef::NoDriver(n) => n.absurd(),
            #[cfg(feature = "postgres")]
            RowRef::Postgres(r) => r.try_get(c)?,
            #[cfg(feature = "sqlite")]
            RowRef::Sqlite(r) => match r.try_get::<Option<String>, _>(c)? {
                Some(s) => Some(
                    workeros_dsl::parse_timestamp(&s)
                        .and_then(|m| {
                            OffsetDateTime::from_unix_timestamp_nanos(i128::from(m) * 1000).ok()
                        })
                        .ok_or_else(|| StoreError::internal("a stored instant does not parse"))?,
                ),
                None => None,
            },
        })
    }

    /// An instant column as its canonical wire text (`2024-05-01T12:00:00.000000Z`): SQLite's
    /// stored text as it is when it is already canonical, no round trip through a date type.
    pub fn ts_text<C: Column>(&self, c: C) -> Result<Option<String>, StoreError> {
        Ok(match self {
            #[cfg(not(any(feature = "postgres", feature = "sqlite")))]
            RowRef::NoDriver(n) => n.absurd(),
            #[cfg(feature = "postgres")]
            RowRef::Postgres(r) => r.try_get::<Option<OffsetDateTime>, _>(c)?.map(rfc3339),
            #[cfg(feature = "sqlite")]
            RowRef::Sqlite(r) => match r.try_get::<Option<String>, _>(c)? {
                // What the store writes: passed through after a shape check.
                Some(s) if canonical_shape(&s) => Some(s),
                Some(s) => Some(
                    parse_stored_instant(&s)
                        .and_then(rfc3339_micros)
                        .ok_or_else(|| StoreError::internal("a stored instant does not parse"))?,
                ),
                None => None,
            },
        })
    }
}

/// An instant as SQLite tables written by other applications hold it: RFC 3339, or SQLite's
/// own `YYYY-MM-DD HH:MM:SS[.fff]` (UTC, as SQLite's date functions write it), or a date.
#[cfg(feature = "sqlite")]
fn parse_stored_instant(s: &str) -> Option<i64> {
    if let Some(m) = workeros_dsl::parse_timestamp(s) {
        return Some(m);
    }
    let (date, time) = s.split_at_checked(10)?;
    let time = time.strip_prefix(' ')?;
    let has_offset = time.ends_with(['Z', 'z']) || time.rfind(['+', '-']).is_some_and(|i| i >= 8);
    let zone = if has_offset { "" } else { "Z" };
    workeros_dsl::parse_timestamp(&format!("{date}T{time}{zone}"))
}

/// Whether `s` has the canonical instant's shape, `YYYY-MM-DDTHH:MM:SS.ffffffZ`: digits where
/// digits go and the separators in place (the store writes only such text; a value written by
/// someone else takes the parsing path).
#[cfg(feature = "sqlite")]
fn canonical_shape(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 27
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            26 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// A JSON value as a bound value: `jsonb` on PostgreSQL, compact text on SQLite; JSON `null` is
/// SQL NULL (the storage contract of the DSL).
pub fn json_value(v: Option<&serde_json::Value>, d: Dialect) -> Value {
    let v = v.filter(|v| !v.is_null());
    match d {
        Dialect::Postgres => Value::Json(v.map(|v| Box::new(v.clone()))),
        Dialect::Sqlite => Value::String(v.map(|v| v.to_string())),
    }
}

/// A boolean as a bound value (`boolean` / `INTEGER` 0 or 1).
pub fn bool_value(b: bool, d: Dialect) -> Value {
    match d {
        Dialect::Postgres => Value::Bool(Some(b)),
        Dialect::Sqlite => Value::BigInt(Some(i64::from(b))),
    }
}

/// A NULL instant in the dialect's storage type.
pub fn ts_null(d: Dialect) -> Value {
    match d {
        Dialect::Postgres => Value::TimeDateTimeWithTimeZone(None),
        Dialect::Sqlite => Value::String(None),
    }
}

/// A NULL uuid in the dialect's storage type.
pub fn uuid_null(d: Dialect) -> Value {
    match d {
        Dialect::Postgres => Value::Uuid(None),
        Dialect::Sqlite => Value::String(None),
    }
}

/// A uuid as a bound value (`uuid` / lowercase hyphenated text).
pub fn uuid_value(u: uuid::Uuid, d: Dialect) -> Value {
    match d {
        Dialect::Postgres => Value::Uuid(Some(u)),
        Dialect::Sqlite => Value::String(Some(u.hyphenated().to_string())),
    }
}
