//! `meta.k8s.io/v1` Table responses, which `kubectl get` asks for, with a CRD's
//! `additionalPrinterColumns`.

use serde_json::{Value, json};

use crate::resources::ResourceType;

/// Whether an `Accept` header asks for a Table.
pub fn wanted(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=Table"))
}

/// Reads a simple JSONPath (`.spec.size`, `.status.conditions[0].type`).
fn json_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let path = path
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .trim_start_matches('.');
    path.split('.')
        .filter(|s| !s.is_empty())
        .try_fold(obj, |v, seg| match seg.split_once('[') {
            Some((field, idx)) => {
                let i: usize = idx.trim_end_matches(']').parse().ok()?;
                v.get(field)?.get(i)
            }
            None => v.get(seg),
        })
}

/// `5s`, `3m`, `2h`, `4d` since `timestamp` (RFC 3339).
fn age(timestamp: Option<&str>) -> String {
    let Some(t) = timestamp.and_then(|t| t.parse::<jiff::Timestamp>().ok()) else {
        return "<unknown>".into();
    };
    let secs = (jiff::Timestamp::now().as_second() - t.as_second()).max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// A column besides Name and Age: (name, type, jsonPath or computed path, priority). Priority 0
/// columns come before Age; higher ones after it, shown by `kubectl get -o wide`.
type Column = (String, String, String, u64);

/// The columns of `rt`'s Table.
fn columns(rt: &ResourceType) -> Vec<Column> {
    if !rt.printer_columns.is_empty() {
        return rt
            .printer_columns
            .iter()
            .filter_map(|c| {
                Some((
                    c["name"].as_str()?.to_owned(),
                    c["type"].as_str().unwrap_or("string").to_owned(),
                    c["jsonPath"].as_str()?.to_owned(),
                    c["priority"].as_u64().unwrap_or(0),
                ))
            })
            .filter(|(name, _, _, _)| name != "Age")
            .collect();
    }
    let plain = |cols: &[(&str, &str)], priority: u64| -> Vec<Column> {
        cols.iter()
            .map(|(n, p)| ((*n).into(), "string".into(), (*p).into(), priority))
            .collect()
    };
    match (rt.group.as_str(), rt.plural.as_str()) {
        // kube-apiserver's pod columns: Ready, Status and Restarts are computed.
        ("", "pods") => {
            let mut cols = plain(
                &[
                    ("Ready", POD_READY),
                    ("Status", POD_STATUS),
                    ("Restarts", POD_RESTARTS),
                ],
                0,
            );
            cols.extend(plain(
                &[
                    ("IP", ".status.podIP"),
                    ("Node", ".spec.nodeName"),
                    ("Nominated Node", ".status.nominatedNodeName"),
                    ("Readiness Gates", POD_GATES),
                ],
                1,
            ));
            cols
        }
        ("", "namespaces") => plain(&[("Status", ".status.phase")], 0),
        // kube-apiserver's node columns; Status and Roles are computed (see `computed`).
        ("", "nodes") => plain(
            &[
                ("Status", NODE_STATUS),
                ("Roles", NODE_ROLES),
                ("Version", ".status.nodeInfo.kubeletVersion"),
            ],
            0,
        ),
        // kube-apiserver's event columns; the two versions name the same fields differently.
        ("", "events") | (crate::events::GROUP, "events") => {
            let core = rt.group.is_empty();
            [
                ("Type", ".type"),
                ("Reason", ".reason"),
                (
                    "Object",
                    if core {
                        ".involvedObject.name"
                    } else {
                        ".regarding.name"
                    },
                ),
                ("Message", if core { ".message" } else { ".note" }),
            ]
            .into_iter()
            .map(|(name, path)| (name.into(), "string".into(), path.into(), 0))
            .collect()
        }
        _ => Vec::new(),
    }
}

/// Column "paths" that are computed from the object rather than read from it.
const NODE_STATUS: &str = "=node-status";
const NODE_ROLES: &str = "=node-roles";
const POD_READY: &str = "=pod-ready";
const POD_STATUS: &str = "=pod-status";
const POD_RESTARTS: &str = "=pod-restarts";
const POD_GATES: &str = "=pod-readiness-gates";

/// A pod's containers' statuses.
fn container_statuses(pod: &Value) -> impl Iterator<Item = &Value> {
    pod["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
}

/// What `kubectl get pods` shows as a pod's status, as kubectl's printer works it out: the
/// phase, or the reason of the pod or of its first waiting or failed container, or Terminating.
fn pod_status(pod: &Value) -> String {
    let mut reason = pod["status"]["reason"]
        .as_str()
        .or_else(|| pod["status"]["phase"].as_str())
        .unwrap_or("Pending")
        .to_owned();
    for c in container_statuses(pod) {
        let state = &c["state"];
        if let Some(r) = state["waiting"]["reason"]
            .as_str()
            .filter(|r| !r.is_empty())
        {
            reason = r.to_owned();
        } else if let Some(t) = state["terminated"].as_object() {
            reason = match (t.get("reason").and_then(Value::as_str), t.get("signal")) {
                (Some(r), _) if !r.is_empty() => r.to_owned(),
                (_, Some(sig)) if sig.as_i64().unwrap_or(0) != 0 => format!("Signal:{sig}"),
                _ => format!(
                    "ExitCode:{}",
                    t.get("exitCode").and_then(Value::as_i64).unwrap_or(0)
                ),
            };
        } else {
            continue;
        }
        break;
    }
    if pod["metadata"]["deletionTimestamp"].is_string() {
        reason = "Terminating".into();
    }
    reason
}

/// A computed cell: a node's `Ready`/`NotReady`/`Unknown` (with `,SchedulingDisabled` when it is
/// cordoned), or its roles from the `node-role.kubernetes.io/<role>` labels.
fn computed(obj: &Value, what: &str) -> Option<Value> {
    match what {
        NODE_STATUS => {
            let ready = obj["status"]["conditions"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
                .map(|c| match c["status"].as_str() {
                    Some("True") => "Ready",
                    Some("False") => "NotReady",
                    _ => "Unknown",
                })
                .unwrap_or("Unknown");
            let cordoned = obj["spec"]["unschedulable"].as_bool() == Some(true);
            Some(json!(if cordoned {
                format!("{ready},SchedulingDisabled")
            } else {
                ready.to_owned()
            }))
        }
        NODE_ROLES => {
            let roles: Vec<&str> = obj["metadata"]["labels"]
                .as_object()
                .into_iter()
                .flat_map(|l| l.keys())
                .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/"))
                .filter(|r| !r.is_empty())
                .collect();
            Some(json!(if roles.is_empty() {
                "<none>".to_owned()
            } else {
                roles.join(",")
            }))
        }
        POD_READY => {
            let total = obj["spec"]["containers"].as_array().map_or(0, Vec::len);
            let ready = container_statuses(obj)
                .filter(|c| c["ready"].as_bool() == Some(true))
                .count();
            Some(json!(format!("{ready}/{total}")))
        }
        POD_STATUS => Some(json!(pod_status(obj))),
        POD_RESTARTS => Some(json!(
            container_statuses(obj)
                .map(|c| c["restartCount"].as_u64().unwrap_or(0))
                .sum::<u64>()
        )),
        POD_GATES => {
            let gates = obj["spec"]["readinessGates"].as_array().map_or(0, Vec::len);
            Some(json!(if gates == 0 {
                "<none>".to_owned()
            } else {
                let met = obj["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|c| c["status"] == "True")
                    .filter(|c| {
                        obj["spec"]["readinessGates"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .any(|g| g["conditionType"] == c["type"])
                    })
                    .count();
                format!("{met}/{gates}")
            }))
        }
        _ => None,
    }
}

fn cell(v: Option<&Value>, ty: &str) -> Value {
    match (v, ty) {
        (None | Some(Value::Null), _) => json!("<none>"),
        (Some(Value::String(s)), "date") => json!(age(Some(s))),
        (Some(v @ (Value::String(_) | Value::Number(_) | Value::Bool(_))), _) => v.clone(),
        (Some(other), _) => json!(other.to_string()),
    }
}

/// A Table of `objects`.
pub fn render(rt: &ResourceType, objects: &[Value], resource_version: &str) -> Value {
    let cols = columns(rt);
    let mut defs = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name of the object", "priority": 0}),
    ];
    // Age goes after the always-shown columns, before the `-o wide` ones.
    let (shown, wide): (Vec<&Column>, Vec<&Column>) = cols.iter().partition(|c| c.3 == 0);
    let def = |(n, t, _, priority): &Column| json!({"name": n, "type": t, "format": "", "description": "", "priority": priority});
    defs.extend(shown.iter().copied().map(def));
    defs.push(json!({"name": "Age", "type": "string", "format": "", "description": "Time since creation", "priority": 0}));
    defs.extend(wide.iter().copied().map(def));
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let value = |(_, t, p, _): &&Column| computed(o, p).unwrap_or_else(|| cell(json_path(o, p), t));
            let mut cells = vec![o["metadata"]["name"].clone()];
            cells.extend(shown.iter().map(value));
            cells.push(json!(age(o["metadata"]["creationTimestamp"].as_str())));
            cells.extend(wide.iter().map(value));
            json!({
                "cells": cells,
                "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]},
            })
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": defs,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_show_their_readiness_cordon_and_roles() {
        let node = json!({
            "metadata": {"name": "n", "labels": {"node-role.kubernetes.io/gpu": ""}},
            "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "Ready", "status": "True"}], "nodeInfo": {"kubeletVersion": "v1.37.0"}},
        });
        assert_eq!(
            computed(&node, NODE_STATUS),
            Some(json!("Ready,SchedulingDisabled"))
        );
        assert_eq!(computed(&node, NODE_ROLES), Some(json!("gpu")));
        let bare = json!({"metadata": {"name": "m"}});
        assert_eq!(computed(&bare, NODE_STATUS), Some(json!("Unknown")));
        assert_eq!(computed(&bare, NODE_ROLES), Some(json!("<none>")));
    }

    #[test]
    fn pods_show_readiness_kubectls_status_and_restarts_and_wide_columns_after_age() {
        let pod = json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "local"},
            "status": {"phase": "Running", "podIP": "127.0.0.1", "containerStatuses": [
                {"name": "a", "ready": true, "restartCount": 2, "state": {"running": {}}},
                {"name": "b", "ready": false, "restartCount": 1,
                 "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
            ]},
        });
        assert_eq!(computed(&pod, POD_READY), Some(json!("1/2")));
        assert_eq!(computed(&pod, POD_STATUS), Some(json!("CrashLoopBackOff")));
        assert_eq!(computed(&pod, POD_RESTARTS), Some(json!(3)));
        assert_eq!(computed(&pod, POD_GATES), Some(json!("<none>")));
        let failed = json!({"status": {"phase": "Failed", "containerStatuses": [
            {"name": "a", "state": {"terminated": {"exitCode": 137, "signal": 9}}}]}});
        assert_eq!(pod_status(&failed), "Signal:9");
        let deleting = json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}, "status": {"phase": "Running"}});
        assert_eq!(pod_status(&deleting), "Terminating");

        let registry = crate::resources::Registry::default();
        let rt = registry.find("", "v1", "pods").expect("pods");
        let table = render(&rt, &[pod], "1");
        let names: Vec<&str> = table["columnDefinitions"]
            .as_array()
            .expect("defs")
            .iter()
            .filter_map(|d| d["name"].as_str())
            .collect();
        assert_eq!(
            names,
            [
                "Name",
                "Ready",
                "Status",
                "Restarts",
                "Age",
                "IP",
                "Node",
                "Nominated Node",
                "Readiness Gates"
            ]
        );
        let cells = &table["rows"][0]["cells"];
        assert_eq!(cells[5], "127.0.0.1");
        assert_eq!(cells[6], "local");
        assert_eq!(table["columnDefinitions"][5]["priority"], 1);
    }

    #[test]
    fn reads_paths_and_renders_cells() {
        let o = json!({"spec": {"size": 3}, "status": {"conditions": [{"type": "Ready"}]}});
        assert_eq!(json_path(&o, ".spec.size"), Some(&json!(3)));
        assert_eq!(
            json_path(&o, ".status.conditions[0].type"),
            Some(&json!("Ready"))
        );
        assert_eq!(json_path(&o, ".spec.missing"), None);
        assert_eq!(cell(None, "string"), json!("<none>"));
        assert!(wanted(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
        ));
        assert!(!wanted("application/json"));
    }
}
