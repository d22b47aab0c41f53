//! Kubernetes watches shared by subscriptions: every `sessionEvents` that asks the same thing
//! (same caller and groups, namespace and session) without a version to resume from follows one
//! watch, fanned out through a broadcast channel, instead of each opening its own. A thousand
//! dashboards on one session cost the control plane one watch and the API one decode per
//! change. The watch lives while one of its subscribers does.
//!
//! Each subscriber still lists on its own first (its `ADDED` events), after joining, so it misses
//! nothing between the list and the shared watch (a change may come twice: as listed and as
//! changed). One that falls too far behind is listed again (`SYNC`), as after a 410.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use kube::Api;
use kube::api::ListParams;
use tokio::sync::{broadcast, mpsc};
use vdi_crd::VDISession;

use super::subscription::{ChangeType, SessionEvent, pump};

/// Changes a slow subscriber may fall behind before it is listed again.
const HUB_BUFFER: usize = 256;

/// A change as every subscriber of a shared watch gets it.
pub(crate) type Change = Result<(ChangeType, String, VDISession), async_graphql::Error>;

/// What a shared watch is of, and as whom.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct WatchKey {
    /// The impersonated user and groups: RBAC decided for them alone.
    pub(crate) user: String,
    pub(crate) groups: Vec<String>,
    pub(crate) namespace: String,
    /// `metadata.name=<session>`, or every session of the namespace.
    pub(crate) fields: Option<String>,
}

/// One shared watch; dropping the last handle stops it.
pub(crate) struct SharedWatch {
    tx: broadcast::Sender<Change>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SharedWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The shared watches of one API server.
#[derive(Default)]
pub(crate) struct WatchHub {
    watches: Mutex<HashMap<WatchKey, Weak<SharedWatch>>>,
}

impl WatchHub {
    /// Joins the watch of `key` (starting it through `api` when none runs): the handle that keeps
    /// it alive, and the changes from now on.
    pub(crate) fn join(
        &self,
        key: WatchKey,
        api: Api<VDISession>,
    ) -> (Arc<SharedWatch>, broadcast::Receiver<Change>) {
        let mut watches = self.watches.lock().unwrap_or_else(PoisonError::into_inner);
        watches.retain(|_, w| w.strong_count() > 0);
        if let Some(shared) = watches.get(&key).and_then(Weak::upgrade) {
            let rx = shared.tx.subscribe();
            return (shared, rx);
        }
        let (tx, rx) = broadcast::channel(HUB_BUFFER);
        let task = tokio::spawn(broadcast_changes(api, key.fields.clone(), tx.clone()));
        let shared = Arc::new(SharedWatch { tx, task });
        watches.insert(key, Arc::downgrade(&shared));
        (shared, rx)
    }

    /// How many shared watches run.
    #[cfg(test)]
    fn running(&self) -> usize {
        let watches = self.watches.lock().unwrap_or_else(PoisonError::into_inner);
        watches.values().filter(|w| w.strong_count() > 0).count()
    }
}

/// Watches from the current version (every subscriber lists for itself) and sends each change
/// to the subscribers; an error is sent to them and ends the watch.
async fn broadcast_changes(
    api: Api<VDISession>,
    fields: Option<String>,
    tx: broadcast::Sender<Change>,
) {
    let mut params = ListParams::default().limit(1);
    if let Some(f) = &fields {
        params = params.fields(f);
    }
    let from = match api.list(&params).await {
        Ok(list) => list.metadata.resource_version,
        Err(e) => {
            let _ = tx.send(Err(crate::error::ApiError::from(e).into()));
            return;
        }
    };
    let (events, mut rx) =
        mpsc::channel::<async_graphql::Result<SessionEvent>>(super::subscription::BUFFER);
    let forward = async {
        while let Some(item) = rx.recv().await {
            let change = item.map(|e| (e.type_, e.resource_version, e.session.0));
            // No subscriber at this instant is fine: the next one lists for itself.
            let _ = tx.send(change);
        }
    };
    tokio::join!(pump(api, fields, from, events), forward);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(user: &str) -> WatchKey {
        WatchKey {
            user: user.into(),
            groups: vec!["staff".into()],
            namespace: "u-a".into(),
            fields: Some("metadata.name=desk".into()),
        }
    }

    #[tokio::test]
    async fn subscribers_of_the_same_key_share_one_watch_that_ends_with_the_last() {
        // A client of nothing: the watch's first request fails, which is all this test needs.
        let config = kube::Config::new("http://127.0.0.1:9".parse().expect("url"));
        let client = kube::Client::try_from(config).expect("client");
        let api: Api<VDISession> = Api::namespaced(client, "u-a");
        let hub = WatchHub::default();
        let (a, _ra) = hub.join(key("alice"), api.clone());
        let (b, _rb) = hub.join(key("alice"), api.clone());
        assert!(
            Arc::ptr_eq(&a, &b),
            "one watch for the same caller and session"
        );
        let (c, _rc) = hub.join(key("bob"), api.clone());
        assert!(!Arc::ptr_eq(&a, &c), "another caller's RBAC: another watch");
        assert_eq!(hub.running(), 2);
        drop((a, b));
        assert_eq!(hub.running(), 1, "the last subscriber gone, the watch goes");
        drop(c);
        assert_eq!(hub.running(), 0);
    }
}
