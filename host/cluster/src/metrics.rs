//! `metrics.k8s.io/v1beta1`, what metrics-server serves and `kubectl top nodes|pods` reads:
//! NodeMetrics and PodMetrics computed on each request from the simulated nodes and the pods
//! running on them. A simulated node runs no containers, so there is nothing to measure: a
//! container's usage is what it requests (its limits when it requests nothing), a node's the sum
//! over its running pods. Every item carries the annotation `vdi.dev/simulated: "true"` so no
//! one mistakes the figures for measurements. Read-only: get and list.

use serde_json::{Value, json};

use crate::error::{ApiError, Result};
use crate::nodes::SIMULATED_LABEL;
use crate::resources::ResourceType;
use crate::store::Store;
use vdi_crd::quantity;

/// The group metrics-server serves.
pub(crate) const GROUP: &str = "metrics.k8s.io";
/// Its version, the one `kubectl top` reads.
const VERSION: &str = "v1beta1";
/// The window the figures claim to cover (metrics-server's default resolution).
const WINDOW: &str = "30s";

/// `types` with the two metrics kinds added: `nodes` (NodeMetrics, cluster-scoped) and `pods`
/// (PodMetrics, namespaced), shaped like the core kinds they describe.
pub(crate) fn with_metrics(mut types: Vec<ResourceType>) -> Vec<ResourceType> {
    let added: Vec<ResourceType> = [("nodes", "NodeMetrics"), ("pods", "PodMetrics")]
        .into_iter()
        .filter_map(|(plural, kind)| {
            let mut t = types
                .iter()
                .find(|t| t.group.is_empty() && t.plural == plural)?
                .clone();
            t.group = GROUP.into();
            t.version = VERSION.into();
            t.kind = kind.into();
            t.singular = kind.to_lowercase();
            t.status_subresource = false;
            t.short_names = Vec::new();
            t.categories = Vec::new();
            Some(t)
        })
        .collect();
    types.extend(added);
    types
}

/// Whether `rt` is one of the metrics kinds.
pub(crate) fn serves(rt: &ResourceType) -> bool {
    rt.group == GROUP
}

/// Answers a GET of the metrics kind `rt`: one item (`name`) or the list (in `ns`, everywhere
/// when `None`, those `filter` accepts: the query's label and field selectors).
pub(crate) fn get(
    store: &Store,
    rt: &ResourceType,
    ns: Option<&str>,
    name: Option<&str>,
    filter: &dyn Fn(&Value) -> bool,
) -> Result<Value> {
    let core = |plural: &str| {
        store
            .registry
            .find("", "v1", plural)
            .ok_or_else(|| ApiError::Internal(format!("no {plural} type")))
    };
    let (nodes, _, _) = store.list(&core("nodes")?, None, None, None, &|n| {
        n["metadata"]["labels"][SIMULATED_LABEL] == "true"
    });
    let simulated: Vec<&str> = nodes
        .iter()
        .filter_map(|n| n["metadata"]["name"].as_str())
        .collect();
    let (pods, _, _) = store.list(&core("pods")?, ns, None, None, &|p| {
        p["status"]["phase"] == "Running"
            && p["spec"]["nodeName"]
                .as_str()
                .is_some_and(|n| simulated.contains(&n))
    });
    let now = crate::store::now();
    let items: Vec<Value> = if rt.plural == "nodes" {
        nodes.iter().map(|n| node_metrics(n, &pods, &now)).collect()
    } else {
        pods.iter().map(|p| pod_metrics(p, &now)).collect()
    };
    let mut items: Vec<Value> = items.into_iter().filter(|i| filter(i)).collect();
    match name {
        Some(name) => {
            let at = items
                .iter()
                .position(|i| i["metadata"]["name"] == name)
                .ok_or_else(|| ApiError::NotFound {
                    resource: rt.key(),
                    name: name.to_owned(),
                })?;
            Ok(items.swap_remove(at))
        }
        None => Ok(json!({
            "kind": format!("{}List", rt.kind),
            "apiVersion": rt.api_version(),
            "metadata": {},
            "items": items,
        })),
    }
}

/// (millicores, bytes) a container uses by this module's account: its requests, else its limits.
fn container_usage(container: &Value) -> (u64, u64) {
    let r = &container["resources"];
    let get = |k: &str| {
        r["requests"][k]
            .as_str()
            .or_else(|| r["limits"][k].as_str())
    };
    (
        get("cpu").and_then(quantity::millicores).unwrap_or(0),
        get("memory").and_then(quantity::bytes).unwrap_or(0),
    )
}

/// The `usage` object of (millicores, bytes), in the units metrics-server writes.
fn usage((millis, bytes): (u64, u64)) -> Value {
    json!({"cpu": format!("{millis}m"), "memory": format!("{}Ki", bytes / 1024)})
}

/// An item's metadata: the described object's name, namespace and labels, marked simulated.
fn metadata(of: &Value, now: &str) -> Value {
    let mut md = json!({
        "name": of["metadata"]["name"],
        "creationTimestamp": now,
        "annotations": {SIMULATED_LABEL: "true"},
    });
    if let Some(ns) = of["metadata"]["namespace"].as_str() {
        md["namespace"] = json!(ns);
    }
    if of["metadata"]["labels"].is_object() {
        md["labels"] = of["metadata"]["labels"].clone();
    }
    md
}

fn node_metrics(node: &Value, pods: &[Value], now: &str) -> Value {
    let name = &node["metadata"]["name"];
    let total = pods
        .iter()
        .filter(|p| p["spec"]["nodeName"] == *name)
        .flat_map(|p| {
            p["spec"]["containers"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|c| container_usage(&c))
        .fold((0_u64, 0_u64), |a, b| {
            (a.0.saturating_add(b.0), a.1.saturating_add(b.1))
        });
    json!({
        "kind": "NodeMetrics",
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "metadata": metadata(node, now),
        "timestamp": now,
        "window": WINDOW,
        "usage": usage(total),
    })
}

fn pod_metrics(pod: &Value, now: &str) -> Value {
    let containers: Vec<Value> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| json!({"name": c["name"], "usage": usage(container_usage(c))}))
        .collect();
    json!({
        "kind": "PodMetrics",
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "metadata": metadata(pod, now),
        "timestamp": now,
        "window": WINDOW,
        "containers": containers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_what_the_containers_request() {
        let pod = json!({"metadata": {"name": "p", "namespace": "d", "labels": {"app": "x"}},
        "spec": {"nodeName": "n", "containers": [
            {"name": "a", "resources": {"requests": {"cpu": "250m", "memory": "1Gi"}}},
            {"name": "b", "resources": {"limits": {"cpu": "1", "memory": "512Mi"}}},
            {"name": "c"},
        ]}});
        let m = pod_metrics(&pod, "2026-01-01T00:00:00Z");
        assert_eq!(
            m["containers"][0]["usage"],
            json!({"cpu": "250m", "memory": "1048576Ki"})
        );
        assert_eq!(
            m["containers"][1]["usage"],
            json!({"cpu": "1000m", "memory": "524288Ki"})
        );
        assert_eq!(
            m["containers"][2]["usage"],
            json!({"cpu": "0m", "memory": "0Ki"})
        );
        assert_eq!(m["metadata"]["annotations"][SIMULATED_LABEL], "true");
        assert_eq!(m["metadata"]["labels"]["app"], "x");
        assert_eq!(m["window"], "30s");
        let node = json!({"metadata": {"name": "n"}});
        let other = json!({"spec": {"nodeName": "elsewhere", "containers": [{"name": "z", "resources": {"requests": {"cpu": "8"}}}]}});
        let n = node_metrics(&node, &[pod, other], "2026-01-01T00:00:00Z");
        assert_eq!(n["usage"], json!({"cpu": "1250m", "memory": "1572864Ki"}));
        assert!(n["metadata"].get("namespace").is_none());
    }

    #[test]
    fn the_kinds_are_registered_beside_the_core_ones() {
        let registry = crate::resources::Registry::default();
        let pods = registry.find(GROUP, VERSION, "pods").expect("pod metrics");
        assert!(pods.namespaced && pods.kind == "PodMetrics");
        let nodes = registry
            .find(GROUP, VERSION, "nodes")
            .expect("node metrics");
        assert!(!nodes.namespaced && nodes.kind == "NodeMetrics");
    }
}
