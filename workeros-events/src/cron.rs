//! Cron schedules of event functions and flows: parsing (five or six fields), the slots in a
//! window, the shortest gap, and where a schedule resumes after a start.

use crate::EventsError;
use sea_query::{Alias, Expr, ExprTrait, Order, Query};
use std::str::FromStr;
use std::time::Duration;
use time::OffsetDateTime;
use workeros_store::Db;
use workeros_store::SystemTable;

/// Parses a cron expression: five fields (minute first) or six (second first).
pub(crate) fn parse_cron(expr: &str) -> Result<cron::Schedule, EventsError> {
    let fields = expr.split_whitespace().count();
    let full = match fields {
        5 => format!("0 {expr}"),
        6 => expr.to_owned(),
        _ => {
            return Err(EventsError::invalid(
                "schedule",
                format!("`{expr}` is not a cron expression of five or six fields"),
            ));
        }
    };
    cron::Schedule::from_str(&full)
        .map_err(|e| EventsError::invalid("schedule", format!("`{expr}` does not parse: {e}")))
}

fn to_chrono(t: OffsetDateTime) -> Option<chrono::DateTime<chrono::Utc>> {
    let nanos = t.unix_timestamp_nanos();
    let secs = i64::try_from(nanos.div_euclid(1_000_000_000)).ok()?;
    let sub = u32::try_from(nanos.rem_euclid(1_000_000_000)).ok()?;
    chrono::DateTime::from_timestamp(secs, sub)
}

fn from_chrono(t: chrono::DateTime<chrono::Utc>) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.timestamp_nanos_opt()?)).ok()
}

/// The shortest gap between the next few slots of `schedule` (`None`: fewer than two).
pub(crate) fn min_gap(schedule: &cron::Schedule) -> Option<Duration> {
    let next: Vec<_> = schedule.upcoming(chrono::Utc).take(6).collect();
    next.iter()
        .zip(next.iter().skip(1))
        .filter_map(|(a, b)| (*b - *a).to_std().ok())
        .min()
}

/// The slots of `schedule` in `(from, to]`, oldest first (at most 1,000).
pub(crate) fn slots(
    schedule: &cron::Schedule,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Vec<OffsetDateTime> {
    let (Some(f), Some(t)) = (to_chrono(from), to_chrono(to)) else {
        return Vec::new();
    };
    schedule
        .after(&f)
        .take_while(|s| *s <= t)
        .take(1_000)
        .filter_map(from_chrono)
        .collect()
}

/// Where a schedule resumes that this instance has not looked at yet: the newest `slot` of
/// `table` where `key` is `value` (whichever instance made it), or `at` for a schedule never
/// run (it starts now).
pub(crate) async fn resume_after(
    db: &Db,
    table: SystemTable,
    key: &str,
    value: sea_query::Value,
    at: time::OffsetDateTime,
) -> Result<time::OffsetDateTime, EventsError> {
    let rows = db
        .fetch_all(
            Query::select()
                .column(Alias::new("slot"))
                .from(db.table(table))
                .and_where(Expr::col(Alias::new(key)).eq(value))
                .and_where(Expr::col(Alias::new("slot")).is_not_null())
                .order_by(Alias::new("slot"), Order::Desc)
                .limit(1),
        )
        .await?;
    let last = rows
        .iter()
        .next()
        .map(|r| r.ts("slot"))
        .transpose()?
        .flatten();
    Ok(last.unwrap_or(at))
}

/// The slots of `schedule` after `since` (at most `catch_up` before `to`) up to `to`, and where
/// the next round goes on: `to`, or after the last slot when a round hits the 1,000-slot cap.
pub(crate) fn due_slots(
    schedule: &cron::Schedule,
    since: time::OffsetDateTime,
    to: time::OffsetDateTime,
    catch_up: Duration,
) -> (Vec<time::OffsetDateTime>, time::OffsetDateTime) {
    let from = Ord::max(since, to - catch_up);
    let due = crate::cron::slots(schedule, from, to);
    let reached = if due.len() >= 1_000 {
        due.last().copied().unwrap_or(to)
    } else {
        to
    };
    (due, reached)
}
