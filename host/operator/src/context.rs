//! What every reconcile shares: the client and caches, the plugins, the placement task, kind
//! discovery, events, metrics, and the bookkeeping that keeps reconciles from acting on a cache
//! older than their own writes. The session controller and the objects it applies both read it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, Resource as _, ResourceExt as _};
use tokio::sync::mpsc;
use vdi_crd::{SessionPhase, VDISession, VDISessionSpec, VDITemplate, VDITemplateSpec};
use vdi_plugin_host::RenderPolicy;

use crate::activity::{Activities, Prober};
use crate::admission::AdmissionSources;
use crate::connect::PublishedKeys;
use crate::discovery::Discovery;
use crate::metrics::OperatorMetrics;
use crate::registry::Registry;
use crate::scheduler::Scheduler;

/// Settings of the session controller.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// URL of a running session; `{namespace}` and `{name}` are replaced.
    pub url_template: String,
    /// What rendered objects must respect.
    pub render_policy: RenderPolicy,
}

impl SessionSettings {
    /// Where the browser reaches session `name` of `namespace`.
    pub(crate) fn url_of(&self, namespace: &str, name: &str) -> String {
        self.url_template
            .replace("{namespace}", namespace)
            .replace("{name}", name)
    }
}

/// Everything a reconcile needs.
pub struct Context {
    pub(crate) client: Client,
    pub(crate) registry: Arc<Registry>,
    pub(crate) scheduler: Scheduler,
    pub(crate) sessions: Store<VDISession>,
    pub(crate) templates: Store<VDITemplate>,
    pub(crate) recorder: Recorder,
    pub(crate) metrics: Arc<OperatorMetrics>,
    pub(crate) settings: SessionSettings,
    pub(crate) discovery: Discovery,
    pub(crate) waiting: Mutex<HashSet<ObjectRef<VDISession>>>,
    /// The resourceVersion of our last write per session uid, until the cache shows it.
    pub(crate) written: Mutex<HashMap<String, u64>>,
    pub(crate) wake: mpsc::UnboundedSender<()>,
    /// The connect keys' public half, published per session namespace.
    pub(crate) keys: Arc<PublishedKeys>,
    /// The streamers' latest activity reports.
    pub(crate) activities: Arc<Activities>,
    /// Asks streamers for their activity.
    pub(crate) prober: Prober,
    /// Wakes the warm pool's loop (a pool session was claimed: refill now).
    pub(crate) pool_wake: Arc<tokio::sync::Notify>,
    /// Provisioned statuses not written yet (see [`crate::session::held`]).
    pub(crate) held: crate::session::held::HeldStatuses,
}

/// Admission reads templates and the user's sessions from the operator's caches.
pub(crate) struct CachedSources<'a> {
    pub(crate) sessions: &'a Store<VDISession>,
    pub(crate) templates: &'a Store<VDITemplate>,
}

impl AdmissionSources for CachedSources<'_> {
    fn template(&self, name: &str) -> Option<VDITemplateSpec> {
        self.templates
            .get(&ObjectRef::new(name))
            .map(|t| t.spec.clone())
    }

    fn sessions_of(&self, user: &str) -> Vec<(String, String, VDISessionSpec, SessionPhase)> {
        self.sessions
            .state()
            .iter()
            .filter(|s| s.spec.user.name == user && s.metadata.deletion_timestamp.is_none())
            .map(|s| {
                (
                    s.namespace().unwrap_or_default(),
                    s.name_any(),
                    s.spec.clone(),
                    s.status.as_ref().map(|st| st.phase()).unwrap_or_default(),
                )
            })
            .collect()
    }
}

impl Context {
    /// Whether the cached version `rv` of session `uid` is older than our last write to it.
    /// resourceVersions are opaque to clients in general; where they are not numbers (they are
    /// on etcd and the embedded control plane) this says no and optimistic concurrency guards.
    pub(crate) fn cache_is_behind(&self, uid: &str, rv: &str) -> bool {
        let mut written = self
            .written
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (Some(last), Ok(cached)) = (written.get(uid).copied(), rv.parse::<u64>()) else {
            return false;
        };
        if cached >= last {
            written.remove(uid);
            return false;
        }
        true
    }

    /// Notes our write of version `rv` of session `uid`.
    pub(crate) fn wrote(&self, uid: &str, rv: &str) {
        if let Ok(rv) = rv.parse::<u64>() {
            self.written
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(uid.to_owned(), rv);
        }
    }

    /// Notes that `session` waits for capacity or for a scheduler.
    pub(crate) fn wait_for_wake(&self, session: &VDISession) {
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(ObjectRef::from_obj(session));
    }

    /// Wakes the warm pool's loop: a pool session was claimed.
    pub(crate) fn pool_changed(&self) {
        self.pool_wake.notify_one();
    }

    /// Wakes the sessions waiting for capacity or for a scheduler (by reconciling all: a
    /// reconcile of a session with nothing to do costs no API call).
    pub(crate) fn wake_waiting(&self) {
        let mut waiting = self
            .waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !waiting.is_empty() {
            waiting.clear();
            let _ = self.wake.send(());
        }
    }

    /// Publishes an event about `session` (a failure to publish is only logged).
    pub(crate) async fn event(
        &self,
        session: &VDISession,
        warning: bool,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let ev = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.into(),
            note: Some(note),
            action: action.into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, &session.object_ref(&())).await {
            tracing::debug!(error = %e, "event not published");
        }
    }
}
