//! Server-side apply: field ownership per manager (`metadata.managedFields`, FieldsV1),
//! conflicts when a manager applies a value to a field another manager owns, `force` to take
//! the field over, and removal of fields a manager stops applying.
//!
//! Field paths follow FieldsV1: `f:<field>` for object fields and `k:<key json>` for elements
//! of lists merged by key (containers by name, ...); other lists are owned whole.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::error::{ApiError, Result};

/// One field path, as FieldsV1 segments.
type Path = Vec<String>;
/// Fields owned by one manager.
type FieldSet = BTreeSet<Path>;

/// Fields the server owns or that identify the object: never tracked.
fn untracked(path: &[String]) -> bool {
    match path {
        [a] => a == "f:apiVersion" || a == "f:kind" || a == "f:status",
        [m, f, ..] if m == "f:metadata" => {
            matches!(
                f.as_str(),
                "f:name"
                    | "f:namespace"
                    | "f:resourceVersion"
                    | "f:uid"
                    | "f:managedFields"
                    | "f:creationTimestamp"
                    | "f:generation"
                    | "f:deletionTimestamp"
                    | "f:selfLink"
            )
        }
        _ => false,
    }
}

/// The leaf fields `v` sets.
fn fields_of(v: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    collect(v, &mut Vec::new(), None, &mut out);
    out.retain(|p| !untracked(p));
    out
}

fn collect(v: &Value, path: &mut Path, field: Option<&str>, out: &mut FieldSet) {
    match v {
        Value::Object(o) if !o.is_empty() => {
            for (k, child) in o {
                path.push(format!("f:{k}"));
                collect(child, path, Some(k), out);
                path.pop();
            }
        }
        Value::Array(items) => match field.and_then(crate::strategic::merge_key) {
            Some(key) if items.iter().all(|i| i.get(key).is_some()) && !items.is_empty() => {
                for item in items {
                    path.push(format!("k:{}", json!({key: item[key]})));
                    collect(item, path, None, out);
                    path.pop();
                }
            }
            _ => {
                out.insert(path.clone());
            }
        },
        _ => {
            out.insert(path.clone());
        }
    }
}

/// The value at `path` in `v`.
fn at<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, seg| {
        if let Some(f) = seg.strip_prefix("f:") {
            cur.get(f)
        } else {
            let key: Map<String, Value> = serde_json::from_str(seg.strip_prefix("k:")?).ok()?;
            let (k, want) = key.into_iter().next()?;
            cur.as_array()?.iter().find(|e| e.get(&k) == Some(&want))
        }
    })
}

/// Removes the field at `path` from `v` (object fields only; list elements stay).
fn remove(v: &mut Value, path: &[String]) {
    let Some((last, parent)) = path.split_last() else {
        return;
    };
    let mut cur = v;
    for seg in parent {
        let next = if let Some(f) = seg.strip_prefix("f:") {
            cur.get_mut(f)
        } else {
            let Some(key) = seg
                .strip_prefix("k:")
                .and_then(|k| serde_json::from_str::<Map<String, Value>>(k).ok())
            else {
                return;
            };
            let Some((k, want)) = key.into_iter().next() else {
                return;
            };
            cur.as_array_mut()
                .and_then(|a| a.iter_mut().find(|e| e.get(&k) == Some(&want)))
        };
        let Some(n) = next else { return };
        cur = n;
    }
    if let (Some(f), Some(o)) = (last.strip_prefix("f:"), cur.as_object_mut()) {
        o.remove(f);
    }
}

/// FieldsV1 encoding of a field set.
fn encode(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut cur = &mut root;
        for seg in path {
            let node = cur.entry(seg.clone()).or_insert_with(|| json!({}));
            if !node.is_object() {
                *node = json!({});
            }
            let Some(next) = node.as_object_mut() else {
                break;
            };
            cur = next;
        }
    }
    Value::Object(root)
}

fn decode(v: &Value, prefix: &mut Path, out: &mut FieldSet) {
    match v.as_object() {
        Some(o) if !o.is_empty() => {
            for (k, child) in o.iter().filter(|(k, _)| k.as_str() != ".") {
                prefix.push(k.clone());
                decode(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {
            if !prefix.is_empty() {
                out.insert(prefix.clone());
            }
        }
    }
}

/// Managers and their fields, from `metadata.managedFields`: (manager, operation) → fields.
fn managers(obj: &Value) -> BTreeMap<(String, String), FieldSet> {
    let mut out = BTreeMap::new();
    for entry in obj["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let (Some(m), Some(op)) = (entry["manager"].as_str(), entry["operation"].as_str()) else {
            continue;
        };
        let mut set = FieldSet::new();
        decode(&entry["fieldsV1"], &mut Vec::new(), &mut set);
        out.insert((m.to_owned(), op.to_owned()), set);
    }
    out
}

fn store_managers(
    obj: &mut Value,
    managers: &BTreeMap<(String, String), FieldSet>,
    api_version: &str,
) {
    let now = crate::store::now();
    let entries: Vec<Value> = managers
        .iter()
        .filter(|(_, set)| !set.is_empty())
        .map(|((m, op), set)| {
            json!({"manager": m, "operation": op, "apiVersion": api_version, "time": now, "fieldsType": "FieldsV1", "fieldsV1": encode(set)})
        })
        .collect();
    obj["metadata"]["managedFields"] = json!(entries);
}

fn display(path: &[String]) -> String {
    path.iter()
        .map(|s| {
            s.strip_prefix("f:").map_or_else(
                || format!("[{}]", s.strip_prefix("k:").unwrap_or(s)),
                |f| format!(".{f}"),
            )
        })
        .collect()
}

/// Ownership for a newly created object: `manager` owns what it set.
pub fn on_create(obj: &mut Value, manager: &str, operation: &str) {
    let api_version = obj["apiVersion"].as_str().unwrap_or_default().to_owned();
    let mut m = BTreeMap::new();
    m.insert((manager.to_owned(), operation.to_owned()), fields_of(obj));
    store_managers(obj, &m, &api_version);
}

/// Ownership after a non-apply write by `manager`: it takes the fields whose values changed.
/// A write that sets `managedFields` itself (as `kubectl` does when it moves ownership from
/// client-side to server-side apply) is taken as it is.
pub fn on_update(old: &Value, new: &mut Value, manager: &str) {
    let given = &new["metadata"]["managedFields"];
    if given.is_array() && *given != old["metadata"]["managedFields"] {
        return;
    }
    let api_version = new["apiVersion"].as_str().unwrap_or_default().to_owned();
    let mut owners = managers(old);
    let changed: FieldSet = fields_of(new)
        .into_iter()
        .filter(|p| at(old, p) != at(new, p))
        .collect();
    if changed.is_empty() && !owners.is_empty() {
        new["metadata"]["managedFields"] = old["metadata"]["managedFields"].clone();
        return;
    }
    for set in owners.values_mut() {
        set.retain(|p| !changed.contains(p));
    }
    owners
        .entry((manager.to_owned(), "Update".to_owned()))
        .or_default()
        .extend(changed);
    store_managers(new, &owners, &api_version);
}

/// Applies `config` for `manager` to `live`; returns the new object or a 409 listing conflicts.
pub fn apply(
    live: &Value,
    config: &Value,
    manager: &str,
    force: bool,
    kind: &str,
    name: &str,
) -> Result<Value> {
    let mut owners = managers(live);
    let wanted = fields_of(config);
    let mut conflicts = Vec::new();
    for ((other, _), set) in owners.iter_mut().filter(|((m, _), _)| m != manager) {
        let contested: Vec<Path> = set
            .iter()
            .filter(|p| wanted.contains(*p) && at(live, p) != at(config, p))
            .cloned()
            .collect();
        if force {
            set.retain(|p| !contested.contains(p));
        } else {
            conflicts.extend(
                contested
                    .iter()
                    .map(|p| format!("conflict with \"{other}\": {}", display(p))),
            );
        }
    }
    if !conflicts.is_empty() {
        return Err(ApiError::ApplyConflict {
            kind: kind.to_owned(),
            name: name.to_owned(),
            message: format!(
                "Apply failed with {} conflict{}: {}",
                conflicts.len(),
                if conflicts.len() == 1 { "" } else { "s" },
                conflicts.join("\n")
            ),
        });
    }
    let key = (manager.to_owned(), "Apply".to_owned());
    let previous = owners.remove(&key).unwrap_or_default();
    let mut out = live.clone();
    // Fields this manager applied before and no longer applies go, unless someone else owns them.
    for dropped in previous.difference(&wanted) {
        if !owners.values().any(|s| s.contains(dropped)) {
            remove(&mut out, dropped);
        }
    }
    crate::strategic::apply(&mut out, config);
    owners.insert(key, wanted);
    let api_version = out["apiVersion"].as_str().unwrap_or_default().to_owned();
    store_managers(&mut out, &owners, &api_version);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cm(data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data})
    }

    #[test]
    fn conflicts_force_and_dropped_fields() {
        let mut live = cm(json!({"a": "1", "b": "1"}));
        on_create(&mut live, "alice", "Apply");
        // Same values: no conflict; bob now co-owns `a`.
        let live = apply(
            &live,
            &cm(json!({"a": "1"})),
            "bob",
            false,
            "ConfigMap",
            "c",
        )
        .expect("no conflict");
        // A different value for a field alice owns conflicts...
        let err = apply(
            &live,
            &cm(json!({"a": "2"})),
            "bob",
            false,
            "ConfigMap",
            "c",
        )
        .expect_err("conflict");
        assert!(
            err.to_string()
                .contains(r#"conflict with "alice": .data.a"#),
            "{err}"
        );
        // ...unless forced, which takes the field from alice.
        let live =
            apply(&live, &cm(json!({"a": "2"})), "bob", true, "ConfigMap", "c").expect("forced");
        assert_eq!(live["data"]["a"], "2");
        let owners = managers(&live);
        assert!(
            !owners[&("alice".to_owned(), "Apply".to_owned())]
                .contains(&vec!["f:data".to_owned(), "f:a".to_owned()])
        );
        // alice stops applying `b`: it goes, as nobody else owns it.
        let live = apply(&live, &cm(json!({})), "alice", false, "ConfigMap", "c").expect("apply");
        assert!(live["data"].get("b").is_none(), "{live}");
        assert_eq!(live["data"]["a"], "2");
    }

    #[test]
    fn list_elements_are_owned_by_key_and_round_trip_through_fields_v1() {
        let pod = json!({"spec": {"containers": [{"name": "d", "image": "x"}], "args": ["a"]}});
        let set = fields_of(&pod);
        assert!(set.contains(&vec![
            "f:spec".into(),
            "f:containers".into(),
            r#"k:{"name":"d"}"#.into(),
            "f:image".into()
        ]));
        assert!(set.contains(&vec!["f:spec".into(), "f:args".into()]));
        let mut back = FieldSet::new();
        decode(&encode(&set), &mut Vec::new(), &mut back);
        assert_eq!(back, set);
    }
}
