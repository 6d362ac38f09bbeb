//! Background work and its handle: [`Workers`], the running loops of an engine (the store's
//! outbox pruning, and in workeros-events webhooks, flows, functions and the realtime follower),
//! each given a [`Stop`] that tells it to end at a safe point, and [`every`], a loop that runs a
//! step on a period until stopped.

use std::time::Duration;

/// A boxed, sendable future that lives on its own task.
pub type Task = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'static>>;

/// A worker loop, given what tells it to stop.
pub type Loop = Box<dyn FnOnce(Stop) -> Task + Send>;

/// Tells a running loop to stop ([`Workers::shutdown`]).
#[derive(Debug, Clone)]
pub struct Stop(tokio::sync::watch::Receiver<bool>);

impl Stop {
    /// Whether a stop was asked for.
    pub fn is_set(&self) -> bool {
        *self.0.borrow()
    }

    /// Returns once a stop is asked for (or the handle is gone).
    pub async fn wait(&mut self) {
        while !*self.0.borrow_and_update() {
            if self.0.changed().await.is_err() {
                return;
            }
        }
    }
}

/// The running loops of an engine, from its `start`. [`Workers::shutdown`] stops them at a safe
/// point; dropping the handle aborts them (what they held is retried after its lease).
#[derive(Debug)]
pub struct Workers {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Workers {
    /// Spawns each loop on its own task with its own [`Stop`].
    pub fn spawn(loops: Vec<Loop>) -> Self {
        let (stop, rx) = tokio::sync::watch::channel(false);
        let tasks = loops
            .into_iter()
            .map(|l| tokio::spawn(l(Stop(rx.clone()))))
            .collect();
        Self { tasks, stop }
    }

    /// How many loops run (none: the engine has nothing to do here, such as following other
    /// instances on SQLite).
    pub fn loops(&self) -> usize {
        self.tasks.len()
    }

    /// Stops claiming new work, lets what is in flight finish (within its timeout) and be
    /// recorded, and returns when every loop has ended.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        // Each handle stays until its loop has ended: if this future is dropped halfway, the
        // handle's drop still aborts what is left.
        while let Some(t) = self.tasks.last_mut() {
            let _ = t.await;
            self.tasks.pop();
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Runs `step` every `period` until stopped, logging what it removed (`what` names it in the
/// log) or why it failed (it is tried again next period).
pub async fn every<F, Fut, E>(mut stop: Stop, period: Duration, what: &'static str, mut step: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<u64, E>>,
    E: std::fmt::Display,
{
    loop {
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            () = stop.wait() => return,
        }
        match step().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "{what}"),
            Err(e) => tracing::warn!(error = %e, "{what} failed; trying again later"),
        }
    }
}
