//! The orphan sweep: removes objects labelled for a session that no longer exists (left behind
//! when a session vanished without its finalizer running, e.g. force-removed).

use std::collections::HashSet;
use std::time::Duration;

use jiff::Timestamp;
use kube::api::{DeleteParams, DynamicObject, GroupVersionKind, ListParams};
use kube::runtime::reflector::Store;
use kube::{Api, Client, ResourceExt as _};
use vdi_crd::{SESSION_KINDS, SESSION_UID_LABEL, VDISession};

/// Objects younger than this are left alone (their session may not be in the cache yet).
pub const MIN_AGE: Duration = Duration::from_secs(60);

/// Deletes orphans of every kind in [`SESSION_KINDS`] (those a cluster does not serve are
/// skipped) once; returns how many it deleted.
pub async fn sweep_once(client: &Client, sessions: &Store<VDISession>, min_age: Duration) -> usize {
    let live: HashSet<String> = sessions.state().iter().filter_map(|s| s.uid()).collect();
    let now = Timestamp::now();
    let mut deleted = 0;
    for k in SESSION_KINDS {
        let kind = k.kind;
        let gvk = GroupVersionKind::gvk(k.group, k.version, k.kind);
        let Ok((ar, _)) = kube::discovery::pinned_kind(client, &gvk).await else {
            continue;
        };
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        let list = match api
            .list(&ListParams::default().labels(SESSION_UID_LABEL))
            .await
        {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(%kind, error = %e, "orphan sweep cannot list");
                continue;
            }
        };
        for obj in list {
            let Some(uid) = obj.labels().get(SESSION_UID_LABEL) else {
                continue;
            };
            let old_enough = obj
                .creation_timestamp()
                .is_some_and(|t| now.duration_since(t.0).as_secs_f64() >= min_age.as_secs_f64());
            if live.contains(uid) || !old_enough || obj.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let ns = obj.namespace().unwrap_or_default();
            let name = obj.name_any();
            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar);
            match api.delete(&name, &DeleteParams::background()).await {
                Ok(_) => {
                    tracing::info!(%kind, namespace = %ns, %name, session_uid = %uid, "deleted orphan");
                    deleted += 1;
                }
                Err(e) => tracing::warn!(%kind, %name, error = %e, "cannot delete orphan"),
            }
        }
    }
    deleted
}
