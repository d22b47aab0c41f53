//! The ClusterRole aggregation controller, as kube-controller-manager's
//! `clusterrole-aggregation` runs it: whenever a ClusterRole changes, every ClusterRole with an
//! `aggregationRule` is rewritten to hold the union of the rules its selectors match, so that
//! `kubectl get clusterrole view -o yaml` shows what the authorizer decides with (which
//! aggregates on its own and never waits for this).

use std::sync::Arc;

use k8s_openapi::api::rbac::v1::ClusterRole;
use serde_json::json;

use crate::rbac::RBAC_GROUP;
use crate::rbac::aggregate;
use crate::store::{Part, Store};

/// Brings every aggregated ClusterRole's stored rules up to date; returns how many it rewrote.
/// A role another write changed in between is left for the next pass (its event triggers one).
pub fn reconcile(store: &Store) -> usize {
    let Some(rt) = store.registry.find(RBAC_GROUP, "v1", "clusterroles") else {
        return 0;
    };
    let (items, _, _) = store.list(&rt, None, None, None, &|_| true);
    let stored: Vec<(serde_json::Value, ClusterRole)> = items
        .into_iter()
        .filter_map(|v| Some((v.clone(), serde_json::from_value(v).ok()?)))
        .collect();
    let mut roles: Vec<ClusterRole> = stored.iter().map(|(_, r)| r.clone()).collect();
    aggregate(&mut roles);
    let mut rewritten = 0;
    for ((raw, before), after) in stored.iter().zip(&roles) {
        if before.aggregation_rule.is_none() || before.rules == after.rules {
            continue;
        }
        let mut updated = raw.clone();
        updated["rules"] = json!(after.rules.clone().unwrap_or_default());
        let name = raw["metadata"]["name"].as_str().unwrap_or_default();
        match store.update(&rt, "", name, updated, Part::Main) {
            Ok(_) => rewritten += 1,
            Err(e) => tracing::debug!(role = name, error = %e, "aggregation deferred"),
        }
    }
    rewritten
}

/// Runs [`reconcile`] now and after every ClusterRole change, until the store is dropped.
pub fn spawn(store: &Arc<Store>) -> Option<tokio::task::JoinHandle<()>> {
    let rt = store.registry.find(RBAC_GROUP, "v1", "clusterroles")?;
    let start = store
        .watch(&rt, None, Some(store.resource_version()))
        .ok()?;
    let weak = Arc::downgrade(store);
    let mut events = start.receiver;
    Some(tokio::spawn(async move {
        let key = rt.key();
        if let Some(store) = weak.upgrade() {
            reconcile(&store);
        }
        loop {
            match events.recv().await {
                Ok(event) if event.key != key => continue,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
            let Some(store) = weak.upgrade() else { return };
            reconcile(&store);
        }
    }))
}
