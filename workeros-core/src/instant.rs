//! The one wire format of instants, which every crate writes: RFC 3339 in UTC with exactly six
//! fraction digits (`2024-05-01T12:00:00.000000Z`, 27 bytes), for years 1 to 9999. SQLite stores
//! the same text, so it sorts as the instants do.

use time::OffsetDateTime;

/// Smallest representable instant: 0001-01-01T00:00:00Z, in microseconds since the Unix epoch.
pub const MIN_MICROS: i64 = -62_135_596_800_000_000;
/// Largest representable instant: 9999-12-31T23:59:59.999999Z.
pub const MAX_MICROS: i64 = 253_402_300_799_999_999;

/// Microseconds since the Unix epoch of `t`, truncated.
pub fn micros(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos().div_euclid(1000)).unwrap_or(i64::MAX)
}

/// `t` on the wire (below a microsecond truncated); empty outside years 1 to 9999.
pub fn rfc3339(t: OffsetDateTime) -> String {
    rfc3339_micros(micros(t)).unwrap_or_default()
}

/// The wire text of an instant given in microseconds since the Unix epoch; `None` outside years
/// 1 to 9999.
pub fn rfc3339_micros(micros: i64) -> Option<String> {
    if !(MIN_MICROS..=MAX_MICROS).contains(&micros) {
        return None;
    }
    let secs = micros.div_euclid(1_000_000);
    let us = micros.rem_euclid(1_000_000);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let mut b = *b"0000-00-00T00:00:00.000000Z";
    let fields = [
        (0, 4, y),
        (5, 2, mo),
        (8, 2, d),
        (11, 2, sod / 3600),
        (14, 2, sod % 3600 / 60),
        (17, 2, sod % 60),
        (20, 6, us),
    ];
    for (at, width, mut v) in fields {
        if let Some(slot) = b.get_mut(at..at + width) {
            for digit in slot.iter_mut().rev() {
                *digit = b'0' + (v % 10) as u8;
                v /= 10;
            }
        }
    }
    // Only ASCII digits and separators were written.
    std::str::from_utf8(&b).ok().map(str::to_owned)
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Serde for an [`OffsetDateTime`] field in the wire format (`#[serde(with = "workeros_core::instant::serde")]`):
/// written by [`rfc3339`], read from any RFC 3339 text.
pub mod serde {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;

    /// Writes `t` as [`rfc3339`](super::rfc3339) does.
    pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::rfc3339(*t))
    }

    /// Reads RFC 3339 text (any offset, any fraction).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        OffsetDateTime::parse(&s, &Rfc3339).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_width_and_truncated() {
        assert_eq!(
            rfc3339_micros(0).as_deref(),
            Some("1970-01-01T00:00:00.000000Z")
        );
        assert_eq!(
            rfc3339_micros(MIN_MICROS).as_deref(),
            Some("0001-01-01T00:00:00.000000Z")
        );
        assert_eq!(
            rfc3339_micros(MAX_MICROS).as_deref(),
            Some("9999-12-31T23:59:59.999999Z")
        );
        assert_eq!(rfc3339_micros(MAX_MICROS + 1), None);
        assert_eq!(rfc3339_micros(i64::MIN), None);
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_714_564_800_123_456_789).unwrap();
        assert_eq!(rfc3339(t), "2024-05-01T12:00:00.123456Z");
        let before = OffsetDateTime::from_unix_timestamp_nanos(-1).unwrap();
        assert_eq!(rfc3339(before), "1969-12-31T23:59:59.999999Z");
    }
}
