//! Fair sharing of a worker pool between tenants: in org mode anyone who signs up administers a
//! tenant, so one tenant's slow webhook receiver or long flows must not hold every worker while
//! the others wait.
//!
//! [`Shares`] counts the jobs in flight per tenant in this process. A tenant holds at most
//! `per_tenant` of the `limit` slots while another tenant's work is due; when no other tenant's
//! work is due it may use more, up to `limit - per_tenant`, so that `per_tenant` slots are always
//! left for a tenant whose work arrives. A claim ([`Shares::claim`]) first takes due rows of the
//! tenants under their share; rows past a tenant's share go back at once (their lease and claim
//! cleared), and only when that claim found fewer rows than it asked for (nothing else is due) do
//! the tenants at their share get the spare slots. A slot is held by the job it was claimed for
//! and freed when the job's [`Slot`] drops.
//!
//! The share is per process: instances on one PostgreSQL each give a tenant its share of their
//! own pool.

use crate::EventsError;
use crate::jobs::claim_due;
use sea_query::{Alias, Expr, ExprTrait, Query, SimpleExpr};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use uuid::Uuid;
use workeros_store::values::{RowRef, ts_null, uuid_null, uuid_value};
use workeros_store::{Db, Rows, SystemTable};

/// The jobs in flight in one pool: in all and per tenant.
#[derive(Debug, Default)]
struct Busy {
    total: usize,
    by_tenant: HashMap<String, usize>,
}

/// A pool's slots shared between tenants. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Shares {
    limit: usize,
    per_tenant: usize,
    busy: Arc<Mutex<Busy>>,
}

/// One slot of a [`Shares`] pool, held by a tenant's job until dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    tenant: String,
    busy: Arc<Mutex<Busy>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut b = self.busy.lock().unwrap_or_else(PoisonError::into_inner);
        b.total = b.total.saturating_sub(1);
        if let Some(n) = b.by_tenant.get_mut(&self.tenant) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                b.by_tenant.remove(&self.tenant);
            }
        }
    }
}

impl Shares {
    /// A pool of `limit` slots of which one tenant holds `per_tenant` while others wait (both
    /// at least 1; `per_tenant` at most `limit`).
    pub(crate) fn new(limit: usize, per_tenant: usize) -> Self {
        let limit = limit.max(1);
        Self {
            limit,
            per_tenant: per_tenant.clamp(1, limit),
            busy: Arc::default(),
        }
    }

    /// A slot for `tenant`: within its share, or past it when `spare` (nothing else is due) and
    /// the pool keeps `per_tenant` slots free; `None` when neither.
    pub(crate) fn take(&self, tenant: &str, spare: bool) -> Option<Slot> {
        let mut b = self.busy.lock().unwrap_or_else(PoisonError::into_inner);
        let held = b.by_tenant.get(tenant).copied().unwrap_or(0);
        let within = held < self.per_tenant && b.total < self.limit;
        let past = spare && b.total + self.per_tenant < self.limit;
        if !within && !past {
            return None;
        }
        b.total += 1;
        *b.by_tenant.entry(tenant.to_owned()).or_insert(0) += 1;
        Some(Slot {
            tenant: tenant.to_owned(),
            busy: self.busy.clone(),
        })
    }

    /// The tenants holding their share, and how many slots are free for spare use.
    fn state(&self) -> (Vec<String>, usize) {
        let b = self.busy.lock().unwrap_or_else(PoisonError::into_inner);
        let full = (b.by_tenant.iter())
            .filter(|(_, n)| **n >= self.per_tenant)
            .map(|(t, _)| t.clone())
            .collect();
        (full, (self.limit - self.per_tenant).saturating_sub(b.total))
    }

    /// Claims up to `n` due rows of `table` (a claimable table with a `tenant_id` column; see
    /// [`crate::jobs`]), fairly between tenants as the module describes, and makes each kept
    /// row into a job with `make(row, slot)`. `columns` must hold `id` and `tenant_id`; `only`
    /// narrows the rows as in [`claim_due`].
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn claim<T>(
        &self,
        db: &Db,
        table: SystemTable,
        columns: &[&str],
        only: Option<SimpleExpr>,
        n: usize,
        lease: Duration,
        claim: Uuid,
        mut make: impl FnMut(RowRef<'_>, Slot) -> Result<T, EventsError>,
    ) -> Result<Vec<T>, EventsError> {
        let (full, _) = self.state();
        let tenant = || Expr::col(Alias::new("tenant_id"));
        let mut first_only = only.clone();
        if !full.is_empty() {
            first_only = Some(and(first_only, tenant().is_not_in(full.clone())));
        }
        let rows = claim_due(db, table, columns, first_only, n, lease, claim).await?;
        // Fewer rows than asked for: nothing else of the tenants under their share is due.
        let spare = rows.len() < n;
        let mut out = Vec::with_capacity(rows.len());
        let mut back = Vec::new();
        self.share_out(&rows, spare, &mut make, &mut out, &mut back)?;
        let (_, free) = self.state();
        let want = n.saturating_sub(out.len() + back.len()).min(free);
        if spare && !full.is_empty() && want > 0 {
            let only = Some(and(only, tenant().is_in(full)));
            let rows = claim_due(db, table, columns, only, want, lease, claim).await?;
            self.share_out(&rows, true, &mut make, &mut out, &mut back)?;
        }
        release(db, table, &back, claim).await?;
        Ok(out)
    }
}

impl Shares {
    /// Gives each claimed row a slot (see [`take`](Self::take)) and makes it a job into `out`,
    /// or, without a slot, puts its id in `back` to be released.
    fn share_out<T>(
        &self,
        rows: &Rows,
        spare: bool,
        make: &mut impl FnMut(RowRef<'_>, Slot) -> Result<T, EventsError>,
        out: &mut Vec<T>,
        back: &mut Vec<String>,
    ) -> Result<(), EventsError> {
        for r in rows.iter() {
            let t = r.text("tenant_id")?.unwrap_or_default();
            match self.take(&t, spare) {
                Some(slot) => out.push(make(r, slot)?),
                None => back.push(r.uuid_text("id")?.unwrap_or_default()),
            }
        }
        Ok(())
    }
}

/// `a AND b` (`b` alone without `a`).
fn and(a: Option<SimpleExpr>, b: SimpleExpr) -> SimpleExpr {
    match a {
        Some(a) => a.and(b),
        None => b,
    }
}

/// Gives claimed rows back (lease and claim cleared, where the claim is still `claim`), due at
/// once for the next claim.
async fn release(
    db: &Db,
    table: SystemTable,
    ids: &[String],
    claim: Uuid,
) -> Result<(), EventsError> {
    if ids.is_empty() {
        return Ok(());
    }
    let d = db.dialect();
    let ids = ids
        .iter()
        .map(|i| Uuid::try_parse(i).map(|u| uuid_value(u, d)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(EventsError::internal)?;
    db.execute(
        Query::update()
            .table(db.table(table))
            .value(Alias::new("lease_until"), ts_null(d))
            .value(Alias::new("claim"), uuid_null(d))
            .and_where(Expr::col(Alias::new("id")).is_in(ids))
            .and_where(Expr::col(Alias::new("claim")).eq(uuid_value(claim, d))),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_keeps_to_its_share_unless_the_pool_is_otherwise_idle() {
        let s = Shares::new(8, 2);
        let a: Vec<Slot> = (0..2).filter_map(|_| s.take("a", false)).collect();
        assert_eq!(a.len(), 2);
        assert!(
            s.take("a", false).is_none(),
            "past its share with others due"
        );
        // Nothing else due: up to `limit - per_tenant` in all.
        let more: Vec<Slot> = (0..10).filter_map(|_| s.take("a", true)).collect();
        assert_eq!(more.len(), 4, "6 in all, 2 kept free");
        // Those 2 are another tenant's.
        let b: Vec<Slot> = (0..5).filter_map(|_| s.take("b", false)).collect();
        assert_eq!(b.len(), 2);
        assert!(s.take("c", false).is_none(), "the pool is full");
        drop(more);
        let mut full = s.state().0;
        full.sort();
        assert_eq!(full, ["a", "b"], "both at their share");
        assert_eq!(
            s.state().1,
            2,
            "spare: 8, less the 2 kept free, less the 4 held"
        );
        drop(a);
        drop(b);
        let b = s.busy.lock().unwrap_or_else(PoisonError::into_inner);
        assert_eq!((b.total, b.by_tenant.len()), (0, 0), "every slot freed");
    }
}
