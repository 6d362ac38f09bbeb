//! Timestamps read: RFC 3339 text and dates to microsecond instants (with a fast path for the
//! wire format, which core's [`workeros_core::instant`] writes), and `$now` shifts.

use crate::ast::{Shift, Unit};
use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime, UtcOffset};

use workeros_core::instant::{MAX_MICROS, MIN_MICROS, rfc3339_micros};

/// The instant `t` as microseconds since the Unix epoch, truncated; `None` outside years 1..=9999.
pub(crate) fn to_micros(t: OffsetDateTime) -> Option<i64> {
    let m = workeros_core::instant::micros(t);
    (MIN_MICROS..=MAX_MICROS).contains(&m).then_some(m)
}

/// The instant of `micros` since the Unix epoch, in UTC.
pub(crate) fn from_micros(micros: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::UNIX_EPOCH.checked_add(time::Duration::microseconds(micros))
}

/// Parses an RFC 3339 timestamp (any offset, any fraction) or a plain date (`2024-05-01`, midnight
/// UTC) to microseconds, truncating below a microsecond.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    if let Some(m) = parse_canonical(s) {
        return Some(m);
    }
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return to_micros(t);
    }
    let d = Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).ok()?;
    to_micros(d.midnight().assume_utc())
}

/// The wire and SQLite text of an instant in microseconds since the Unix epoch, known to be in
/// range (an out-of-range one gives an empty string); the formatter is core's
/// ([`workeros_core::instant::rfc3339_micros`]).
pub(crate) fn canonical(micros: i64) -> String {
    rfc3339_micros(micros).unwrap_or_default()
}

fn digits(b: &[u8]) -> Option<i64> {
    let mut v: i64 = 0;
    let mut bad = false;
    for &c in b {
        let d = c.wrapping_sub(b'0');
        bad |= d > 9;
        v = v * 10 + i64::from(d);
    }
    (!bad).then_some(v)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The allocation-free fast path for the canonical form (`2024-05-01T12:00:00.000000Z`); also
/// takes `Z` forms without a fraction or with 1 to 9 fraction digits. `None` for anything else.
pub(crate) fn parse_canonical(s: &str) -> Option<i64> {
    let (head, rest) = s.as_bytes().split_first_chunk::<19>()?;
    let [y, mo, d, h, mi, sec] = date_time(head)?;
    let us = match rest {
        [b'Z' | b'z'] => 0,
        [b'.', f @ .., b'Z' | b'z'] if (1..=9).contains(&f.len()) => {
            let v = digits(f)?;
            // 10^|6 - len|: scale the fraction to microseconds (truncating beyond them).
            const POW: [i64; 6] = [1, 10, 100, 1_000, 10_000, 100_000];
            match f.len() {
                n @ 1..=6 => v * POW.get(6 - n).copied()?,
                n => v / POW.get(n - 6).copied()?,
            }
        }
        _ => return None,
    };
    civil_micros(y, mo, d, h, mi, sec, us)
}

/// `YYYY-MM-DDTHH:MM:SS` as its six numbers: every digit checked in one pass, with no branch
/// per field.
fn date_time(a: &[u8; 19]) -> Option<[i64; 6]> {
    let [
        y0,
        y1,
        y2,
        y3,
        b'-',
        m0,
        m1,
        b'-',
        d0,
        d1,
        t,
        h0,
        h1,
        b':',
        i0,
        i1,
        b':',
        s0,
        s1,
    ] = *a
    else {
        return None;
    };
    if t | 0x20 != b't' {
        return None;
    }
    let mut bad = false;
    let mut num = |ds: &[u8]| {
        ds.iter().fold(0_i64, |acc, &c| {
            let d = c.wrapping_sub(b'0');
            bad |= d > 9;
            acc * 10 + i64::from(d)
        })
    };
    let parts = [
        num(&[y0, y1, y2, y3]),
        num(&[m0, m1]),
        num(&[d0, d1]),
        num(&[h0, h1]),
        num(&[i0, i1]),
        num(&[s0, s1]),
    ];
    (!bad).then_some(parts)
}

/// Microseconds since the epoch of a checked civil date and time; `None` when a part is out of
/// range (year 0, month 13, February 30, hour 24…).
#[inline]
fn civil_micros(y: i64, mo: i64, d: i64, h: i64, mi: i64, sec: i64, us: i64) -> Option<i64> {
    const DAYS: [i64; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let dim = match mo {
        2 if leap => 29,
        1..=12 => *DAYS.get(usize::try_from(mo - 1).ok()?)?,
        _ => return None,
    };
    if y < 1 || d < 1 || d > dim || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    Some(((days * 86_400 + h * 3600 + mi * 60 + sec) * 1_000_000) + us)
}

/// `now` shifted by `shift` (calendar months and years clamp the day), in microseconds; `None`
/// when the result leaves years 1..=9999.
pub(crate) fn shifted(now_micros: i64, shift: Option<Shift>) -> Option<i64> {
    let Some(Shift { amount, unit }) = shift else {
        return Some(now_micros);
    };
    let secs = |n: i64| {
        amount
            .checked_mul(n)?
            .checked_mul(1_000_000)?
            .checked_add(now_micros)
    };
    let out = match unit {
        Unit::Second => secs(1)?,
        Unit::Minute => secs(60)?,
        Unit::Hour => secs(3600)?,
        Unit::Day => secs(86_400)?,
        Unit::Week => secs(604_800)?,
        Unit::Month | Unit::Year => {
            let months = if unit == Unit::Year {
                amount.checked_mul(12)?
            } else {
                amount
            };
            let t = from_micros(now_micros)?.to_offset(UtcOffset::UTC);
            let total = (i64::from(t.year()) * 12 + i64::from(u8::from(t.month())) - 1)
                .checked_add(months)?;
            let year = i32::try_from(total.div_euclid(12)).ok()?;
            let month = Month::try_from(u8::try_from(total.rem_euclid(12) + 1).ok()?).ok()?;
            let day = t.day().min(month.length(year));
            let date = Date::from_calendar_date(year, month, day).ok()?;
            to_micros(date.with_time(t.time()).assume_utc())?
        }
    };
    (MIN_MICROS..=MAX_MICROS).contains(&out).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_round_trip() {
        for s in [
            "0001-01-01T00:00:00.000000Z",
            "1969-12-31T23:59:59.999999Z",
            "1970-01-01T00:00:00.000000Z",
            "2024-02-29T12:34:56.123456Z",
            "9999-12-31T23:59:59.999999Z",
        ] {
            let m = parse_timestamp(s).unwrap();
            assert_eq!(canonical(m), s);
            let slow = to_micros(OffsetDateTime::parse(s, &Rfc3339).unwrap()).unwrap();
            assert_eq!(m, slow, "{s}");
        }
        assert_eq!(parse_timestamp("0001-01-01T00:00:00Z"), Some(MIN_MICROS));
        assert_eq!(
            parse_timestamp("9999-12-31T23:59:59.999999999Z"),
            Some(MAX_MICROS)
        );
    }

    #[test]
    fn other_forms() {
        let base = parse_timestamp("2024-05-01T10:00:00Z").unwrap();
        assert_eq!(parse_timestamp("2024-05-01T12:00:00+02:00"), Some(base));
        assert_eq!(parse_timestamp("2024-05-01T10:00:00.0000009Z"), Some(base));
        assert_eq!(
            parse_timestamp("2024-05-01"),
            parse_timestamp("2024-05-01T00:00:00Z")
        );
        for bad in [
            "2024-02-30T00:00:00Z",
            "2024-05-01 10:00",
            "yesterday",
            "2024-13-01T00:00:00Z",
            "",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn shifts() {
        let t = parse_timestamp("2024-01-31T08:00:00Z").unwrap();
        let m = |a, u| shifted(t, Some(Shift { amount: a, unit: u })).map(canonical);
        assert_eq!(m(1, Unit::Month).unwrap(), "2024-02-29T08:00:00.000000Z");
        assert_eq!(m(-1, Unit::Year).unwrap(), "2023-01-31T08:00:00.000000Z");
        assert_eq!(m(-1, Unit::Day).unwrap(), "2024-01-30T08:00:00.000000Z");
        assert_eq!(m(2, Unit::Week).unwrap(), "2024-02-14T08:00:00.000000Z");
        assert_eq!(m(90, Unit::Minute).unwrap(), "2024-01-31T09:30:00.000000Z");
        assert_eq!(m(1_000_000, Unit::Year), None);
        // No overflow on shifts a tree built in code could carry.
        assert_eq!(m(i64::MAX, Unit::Month), None);
        assert_eq!(m(i64::MIN, Unit::Year), None);
        assert_eq!(m(i64::MAX, Unit::Second), None);
        assert_eq!(rfc3339_micros(i64::MIN), None);
        assert_eq!(rfc3339_micros(MAX_MICROS + 1), None);
    }

    proptest::proptest! {
        /// Canonical strings parse back to their instant; mutations of them (digits out of range,
        /// separators swapped, letters in either case) parse, when they do, to what the `time`
        /// crate reads.
        #[test]
        fn canonical_parse_agrees_with_time(
            micros in MIN_MICROS..=MAX_MICROS,
            edits in proptest::collection::vec((0_usize..27, proptest::sample::select(
                b"0123456789-T:.Zzt+ 9".to_vec())), 0..3),
        ) {
            let exact = canonical(micros);
            proptest::prop_assert_eq!(parse_canonical(&exact), Some(micros));
            let mut b = exact.into_bytes();
            for (at, c) in edits {
                if let Some(slot) = b.get_mut(at) {
                    *slot = c;
                }
            }
            let s = String::from_utf8(b).unwrap();
            if let Some(fast) = parse_canonical(&s) {
                let slow = OffsetDateTime::parse(&s, &Rfc3339).ok().and_then(to_micros);
                proptest::prop_assert_eq!(Some(fast), slow, "{}", s);
            }
        }
    }
}
