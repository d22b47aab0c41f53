//! Counting the platform's API writes while the burst runs: every committed write is one event
//! on the store's change stream, so counting events by resource counts writes (a no-op write
//! that stores nothing is not one).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result, bail};
use tokio::sync::broadcast::error::RecvError;
use vdi_cluster::{EventType, Store};

/// Resources written by the platform's own upkeep, not per session.
const BACKGROUND: &[&str] = &["leases.coordination.k8s.io", "nodes"];

/// Writes counted so far, by storage key (`pods`, `vdisessions.vdi.dev`).
#[derive(Default)]
struct Counts {
    by_key: BTreeMap<String, u64>,
    /// Sessions created (the bench's own writes; not counted above).
    created: u64,
    lagged: u64,
}

/// Counts writes from now until [`WriteCounter::stop`].
pub(crate) struct WriteCounter {
    counts: Arc<Mutex<Counts>>,
    task: tokio::task::JoinHandle<()>,
}

impl WriteCounter {
    pub(crate) fn start(store: &Arc<Store>) -> Result<Self> {
        let pods = store
            .registry
            .find("", "v1", "pods")
            .context("no pods type")?;
        let start = store.watch(&pods, None, Some(store.resource_version()))?;
        let mut rx = start.receiver;
        let counts: Arc<Mutex<Counts>> = Arc::default();
        let task = {
            let counts = counts.clone();
            tokio::spawn(async move {
                loop {
                    let event = rx.recv().await;
                    let mut c = counts
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    match event {
                        Ok(e) if e.key == "vdisessions.vdi.dev" && e.kind == EventType::Added => {
                            c.created += 1;
                        }
                        Ok(e) => *c.by_key.entry(e.key.clone()).or_default() += 1,
                        Err(RecvError::Lagged(n)) => c.lagged += n,
                        Err(RecvError::Closed) => return,
                    }
                }
            })
        };
        Ok(Self { counts, task })
    }

    /// Stops counting; what was written per session, for `sessions` sessions created.
    pub(crate) fn stop(self, sessions: usize) -> Result<Writes> {
        self.task.abort();
        let c = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if c.lagged > 0 {
            bail!("the write counter missed {} changes", c.lagged);
        }
        Ok(Writes::from_counts(&c.by_key, sessions))
    }
}

/// Writes by resource, split into those every session makes and the rest.
#[derive(Debug, PartialEq)]
pub(crate) struct Writes {
    /// Resources written for (nearly) every session: (key, writes per session).
    pub(crate) per_session: Vec<(String, f64)>,
    /// Resources written for fewer than half the sessions (a namespace's or user's objects,
    /// made once and reused): (key, writes).
    pub(crate) shared: Vec<(String, u64)>,
    /// The platform's upkeep (leases, node heartbeats): (key, writes).
    pub(crate) background: Vec<(String, u64)>,
}

impl Writes {
    fn from_counts(by_key: &BTreeMap<String, u64>, sessions: usize) -> Self {
        let n = sessions.max(1) as u64;
        let mut w = Self {
            per_session: Vec::new(),
            shared: Vec::new(),
            background: Vec::new(),
        };
        for (key, count) in by_key {
            if BACKGROUND.contains(&key.as_str()) {
                w.background.push((key.clone(), *count));
            } else if *count * 2 >= n {
                w.per_session.push((key.clone(), *count as f64 / n as f64));
            } else {
                w.shared.push((key.clone(), *count));
            }
        }
        w
    }

    /// API writes per session, from its create (not counted) to Running.
    pub(crate) fn per_session_total(&self) -> f64 {
        self.per_session.iter().map(|(_, w)| w).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_split_into_per_session_shared_and_background() {
        let counts = BTreeMap::from([
            ("vdisessions.vdi.dev".to_owned(), 2000),
            ("pods".to_owned(), 2000),
            ("events.k8s.io".to_owned(), 1000),
            ("persistentvolumeclaims".to_owned(), 1),
            ("leases.coordination.k8s.io".to_owned(), 7),
        ]);
        let w = Writes::from_counts(&counts, 1000);
        assert_eq!(w.per_session_total(), 5.0);
        assert_eq!(
            w.shared,
            [("persistentvolumeclaims".to_owned(), 1)],
            "made once for all sessions"
        );
        assert_eq!(w.background, [("leases.coordination.k8s.io".to_owned(), 7)]);
    }
}
