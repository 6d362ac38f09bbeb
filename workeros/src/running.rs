//! [`Running`]: the one handle of every background engine [`Workeros::start`](crate::Workeros::start)
//! started.

use workeros_store::workers::Workers;

/// The background engines of a [`Workeros`](crate::Workeros), running. [`Running::shutdown`]
/// stops them all; dropping the handle aborts them (what they held is retried after its lease).
#[derive(Debug)]
#[must_use = "dropping the handle aborts the engines: keep it and call `shutdown`"]
pub struct Running {
    pub(crate) workers: Vec<Workers>,
    #[cfg(feature = "events")]
    pub(crate) realtime: Option<workeros_events::Realtime>,
}

impl Running {
    /// How many loops run, over every engine.
    pub fn loops(&self) -> usize {
        self.workers.iter().map(Workers::loops).sum()
    }

    /// Stops gracefully: open realtime streams end at once (so a server's graceful shutdown is
    /// not held by them) and new ones are refused, then every engine stops claiming work, lets
    /// what is in flight finish and be recorded, and this returns when all have ended.
    pub async fn shutdown(self) {
        #[cfg(feature = "events")]
        if let Some(rt) = &self.realtime {
            rt.close();
        }
        let Self { workers, .. } = self;
        futures::future::join_all(workers.into_iter().map(Workers::shutdown)).await;
    }
}
