//! In-process notices between the parts of an app that share one [`Db`](crate::Db) (its clones):
//! a part that changes something others keep in memory publishes a notice on a topic, and every
//! live listener of that topic hears it before `publish` returns. workeros-auth uses it so that a
//! change made through any handle (a role-sync event applied with the plain function, a second
//! `Auth` over the same `Db`) is forgotten by every credential cache of the process at once.
//! Across processes, PostgreSQL's `NOTIFY` carries the same notices ([`crate::Names`] owns the
//! channel names).

use std::sync::{Arc, Mutex, PoisonError, Weak};

/// A listener: called with each notice's payload.
pub type Listener = Arc<dyn Fn(&str) + Send + Sync>;

/// A listener as the registry holds it: its topic and a weak reference.
type Entry = (String, Weak<dyn Fn(&str) + Send + Sync>);

/// The listeners of one database handle's notices, by topic.
#[derive(Default)]
pub struct Notices {
    listeners: Mutex<Vec<Entry>>,
}

impl std::fmt::Debug for Notices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        f.debug_struct("Notices").field("listeners", &n).finish()
    }
}

impl Notices {
    /// Calls `listener` with every notice published on `topic` from now on, for as long as the
    /// caller keeps the `Arc` (the registry holds it weakly).
    pub fn subscribe(&self, topic: &str, listener: &Listener) {
        let mut l = self
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        l.retain(|(_, w)| w.strong_count() > 0);
        l.push((topic.to_owned(), Arc::downgrade(listener)));
    }

    /// Tells every live listener of `topic` `payload`, before returning.
    pub fn publish(&self, topic: &str, payload: &str) {
        let live: Vec<Listener> = self
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(t, _)| t == topic)
            .filter_map(|(_, w)| w.upgrade())
            .collect();
        for l in live {
            l(payload);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn listeners_hear_their_topic_while_kept() {
        let n = Notices::default();
        let heard = Arc::new(AtomicUsize::new(0));
        let h = heard.clone();
        let l: Listener = Arc::new(move |p| {
            assert_eq!(p, "x");
            h.fetch_add(1, Ordering::SeqCst);
        });
        n.subscribe("auth", &l);
        n.publish("auth", "x");
        n.publish("other", "y");
        assert_eq!(heard.load(Ordering::SeqCst), 1);
        drop(l);
        n.publish("auth", "x");
        assert_eq!(
            heard.load(Ordering::SeqCst),
            1,
            "a dropped listener hears nothing"
        );
    }
}
