//! The view cache: a collection's metadata, columns and the rules of every action, loaded once
//! and shared by item reads and writes, realtime and flows for the store's TTL; forgotten at once
//! on a change through any store over the same database in the process (`VIEWS_TOPIC` on the
//! `Db`'s notices), and within the TTL for another process's change.

use crate::access::{ReadAccess, ReadRules, ReadView, load_rules_of};
use crate::catalog::load_active;
use crate::columns::columns;
use crate::value::now;
use crate::{Store, StoreError};
use std::sync::Arc;
use workeros_core::{Action, Subject};

/// The [`Notices`](crate::Notices) topic on which a store that changed a tenant's collections or
/// permissions tells every store over the same database (payload: the tenant).
pub(crate) const VIEWS_TOPIC: &str = "store.views";

static NEXT_VIEW: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl Store {
    /// The read view of a collection: from the cache when it is fresh, else loaded (and cached).
    /// Changes through this store clear it at once; changes by another process are seen within
    /// the cache TTL.
    pub(crate) async fn read_view(
        &self,
        tenant: &str,
        slug: &str,
    ) -> Result<std::sync::Arc<ReadView>, StoreError> {
        let key = (tenant.to_owned(), slug.to_owned());
        if let Some(v) = self.cached(&key) {
            return Ok(v);
        }
        let generation = self.generation();
        let mut tx = self.db().begin_read().await?;
        let info = load_active(&mut tx, tenant, slug).await?;
        let [rules, create, update, delete] = load_rules_of(
            &mut tx,
            tenant,
            &info,
            [Action::Read, Action::Create, Action::Update, Action::Delete],
        )
        .await?;
        tx.commit().await?;
        // The same metadata and rules as the view before: the same serial (realtime keeps its
        // subscribers' bound permissions while the serial stays).
        let serial = match self.previous_view(&key) {
            Some(p)
                if p.info == info
                    && p.rules.len() == rules.len()
                    && p.rules
                        .iter()
                        .zip(&rules)
                        .all(|(a, b)| a.source == b.source) =>
            {
                p.serial
            }
            _ => NEXT_VIEW.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        };
        let view = std::sync::Arc::new(ReadView {
            cols: columns(&info),
            info,
            names: self.db().names().clone(),
            rules,
            writes: [create, update, delete],
            loaded: std::time::Instant::now(),
            serial,
        });
        // A change committed while this view loaded may not be in it: use it, do not keep it.
        if self.generation() == generation {
            self.cache_view(key, view.clone());
        }
        Ok(view)
    }

    /// The read rules of collection `slug` of `tenant`: from the cache while fresh (changes
    /// through this store apply at once, another process's within the cache TTL). A collection
    /// that does not exist, or is archived, is `NotFound`.
    pub async fn read_rules(&self, tenant: &str, slug: &str) -> Result<ReadRules, StoreError> {
        Ok(ReadRules {
            view: self.read_view(tenant, slug).await?,
        })
    }

    /// What `subject` may read of `slug` now (`Forbidden` when it may read nothing).
    pub async fn read_access(
        &self,
        subject: &Subject,
        slug: &str,
    ) -> Result<ReadAccess, StoreError> {
        self.read_rules(subject.tenant_id(), slug)
            .await?
            .access(subject, now())
    }

    fn cached(&self, key: &(String, String)) -> Option<Arc<ReadView>> {
        let views = self.inner.views.read().ok()?;
        views
            .get(key)
            .filter(|v| v.loaded.elapsed() < self.inner.ttl)
            .cloned()
    }

    /// The last view loaded for `key`, fresh or not.
    fn previous_view(&self, key: &(String, String)) -> Option<Arc<ReadView>> {
        self.inner.views.read().ok()?.get(key).cloned()
    }

    /// Keeps a view: reused while fresh (never with a zero TTL), and remembered to tell whether
    /// the next one differs.
    fn cache_view(&self, key: (String, String), view: Arc<ReadView>) {
        if let Ok(mut views) = self.inner.views.write() {
            if views.len() >= 10_000 {
                views.clear();
            }
            views.insert(key, view);
        }
    }

    /// The change counter: a view loaded across a change is not cached.
    pub(crate) fn generation(&self) -> u64 {
        self.inner
            .generation
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Forgets the cached views of a tenant (after a change to its collections or permissions),
    /// here and in every other store over the same [`Db`](crate::Db) in the process.
    pub(crate) fn forget(&self, tenant: &str) {
        // This store hears it too.
        self.db().notices().publish(VIEWS_TOPIC, tenant);
    }
}

impl crate::Inner {
    /// Forgets this store's cached views of `tenant`.
    pub(crate) fn forget_views(&self, tenant: &str) {
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if let Ok(mut views) = self.views.write() {
            views.retain(|(t, _), _| t != tenant);
        }
    }
}
