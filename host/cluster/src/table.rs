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

/// (name, type, jsonPath) of the columns between Name and Age.
fn columns(rt: &ResourceType) -> Vec<(String, String, String)> {
    if !rt.printer_columns.is_empty() {
        return rt
            .printer_columns
            .iter()
            .filter_map(|c| {
                Some((
                    c["name"].as_str()?.to_owned(),
                    c["type"].as_str().unwrap_or("string").to_owned(),
                    c["jsonPath"].as_str()?.to_owned(),
                ))
            })
            .filter(|(name, _, _)| name != "Age")
            .collect();
    }
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "pods") => vec![
            ("Status".into(), "string".into(), ".status.phase".into()),
            ("Node".into(), "string".into(), ".spec.nodeName".into()),
        ],
        ("", "namespaces") => vec![("Status".into(), "string".into(), ".status.phase".into())],
        // kube-apiserver's node columns; Status and Roles are computed (see `computed`).
        ("", "nodes") => vec![
            ("Status".into(), "string".into(), NODE_STATUS.into()),
            ("Roles".into(), "string".into(), NODE_ROLES.into()),
            (
                "Version".into(),
                "string".into(),
                ".status.nodeInfo.kubeletVersion".into(),
            ),
        ],
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
            .map(|(name, path)| (name.into(), "string".into(), path.into()))
            .collect()
        }
        _ => Vec::new(),
    }
}

/// Column "paths" that are computed from the object rather than read from it.
const NODE_STATUS: &str = "=node-status";
const NODE_ROLES: &str = "=node-roles";

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
    defs.extend(cols.iter().map(
        |(n, t, _)| json!({"name": n, "type": t, "format": "", "description": "", "priority": 0}),
    ));
    defs.push(json!({"name": "Age", "type": "string", "format": "", "description": "Time since creation", "priority": 0}));
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut cells = vec![o["metadata"]["name"].clone()];
            cells.extend(cols.iter().map(|(_, t, p)| {
                computed(o, p).unwrap_or_else(|| cell(json_path(o, p), t))
            }));
            cells.push(json!(age(o["metadata"]["creationTimestamp"].as_str())));
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
