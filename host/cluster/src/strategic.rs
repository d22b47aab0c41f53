//! Strategic merge patch, as `kubectl apply` and `kubectl patch` send them for built-in kinds:
//! a JSON merge patch, except that lists of objects with a known merge key (containers by
//! `name`, ports by `containerPort`, conditions by `type`, ...) are merged element by element,
//! and the `$patch` and `$deleteFromPrimitiveList` directives are honoured.
//!
//! Merge keys come from the Kubernetes API types' `patchMergeKey` tags for the fields this
//! platform's objects use; a list without a known key is replaced, as in a merge patch.

use serde_json::{Map, Value};

/// The merge key of list field `field`, if it merges by key.
pub(crate) fn merge_key(field: &str) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "hostAliases" => {
            if field == "hostAliases" {
                "ip"
            } else {
                "name"
            }
        }
        "ports" => "containerPort",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "conditions" => "type",
        "ownerReferences" => "uid",
        "topologySpreadConstraints" => "topologyKey",
        _ => return None,
    })
}

/// Lists of scalars that merge as sets.
fn merges_as_set(field: &str) -> bool {
    field == "finalizers"
}

/// Applies `patch` to `target` in place.
pub fn apply(target: &mut Value, patch: &Value) {
    let Some(p) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if p.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut replacement = patch.clone();
        if let Some(o) = replacement.as_object_mut() {
            o.remove("$patch");
        }
        *target = replacement;
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Some(t) = target.as_object_mut() else {
        return;
    };
    for (key, value) in p {
        if key == "$patch" || key.starts_with("$setElementOrder/") || key == "$retainKeys" {
            continue;
        }
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(list), Some(remove)) = (
                t.get_mut(field).and_then(Value::as_array_mut),
                value.as_array(),
            ) {
                list.retain(|v| !remove.contains(v));
            }
            continue;
        }
        match value {
            Value::Null => {
                t.remove(key);
            }
            Value::Object(_) => apply(t.entry(key.clone()).or_insert(Value::Null), value),
            Value::Array(items) => {
                match (merge_key(key), t.get_mut(key).and_then(Value::as_array_mut)) {
                    (Some(mk), Some(existing)) if items.iter().all(Value::is_object) => {
                        merge_list(existing, items, mk)
                    }
                    (_, Some(existing)) if merges_as_set(key) => {
                        for item in items {
                            if !existing.contains(item) {
                                existing.push(item.clone());
                            }
                        }
                    }
                    _ => {
                        let cleaned: Vec<Value> = items
                            .iter()
                            .filter(|i| i.get("$patch").is_none())
                            .cloned()
                            .collect();
                        t.insert(key.clone(), Value::Array(cleaned));
                    }
                }
            }
            other => {
                t.insert(key.clone(), other.clone());
            }
        }
    }
}

fn merge_list(existing: &mut Vec<Value>, items: &[Value], key: &str) {
    for item in items {
        let id = item.get(key);
        let pos = id.and_then(|id| existing.iter().position(|e| e.get(key) == Some(id)));
        match (item.get("$patch").and_then(Value::as_str), pos) {
            (Some("delete"), Some(i)) => {
                existing.remove(i);
            }
            (Some("delete"), None) => {}
            (_, Some(i)) => apply(&mut existing[i], item),
            (_, None) => {
                let mut fresh = Value::Null;
                apply(&mut fresh, item);
                existing.push(fresh);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({"metadata": {"finalizers": ["a"], "labels": {"x": "1"}}, "spec": {"containers": [
            {"name": "desktop", "image": "d:1", "env": [{"name": "A", "value": "1"}], "resources": {"limits": {"cpu": "1"}}},
            {"name": "streamer", "image": "s:1"},
        ]}})
    }

    #[test]
    fn merges_containers_by_name_keeping_what_the_patch_omits() {
        let mut p = pod();
        apply(
            &mut p,
            &json!({"spec": {"containers": [{"name": "desktop", "image": "d:2", "env": [{"name": "B", "value": "2"}]}]}}),
        );
        let c = &p["spec"]["containers"];
        assert_eq!(c.as_array().map(Vec::len), Some(2));
        assert_eq!(c[0]["image"], "d:2");
        assert_eq!(c[0]["resources"]["limits"]["cpu"], "1");
        assert_eq!(
            c[0]["env"],
            json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])
        );
        assert_eq!(c[1]["image"], "s:1");
    }

    #[test]
    fn honours_delete_replace_and_primitive_list_directives() {
        let mut p = pod();
        apply(
            &mut p,
            &json!({"spec": {"containers": [{"name": "streamer", "$patch": "delete"}]}}),
        );
        assert_eq!(p["spec"]["containers"].as_array().map(Vec::len), Some(1));
        apply(&mut p, &json!({"metadata": {"finalizers": ["b"]}}));
        assert_eq!(p["metadata"]["finalizers"], json!(["a", "b"]));
        apply(
            &mut p,
            &json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
        );
        assert_eq!(p["metadata"]["finalizers"], json!(["b"]));
        apply(
            &mut p,
            &json!({"metadata": {"labels": {"$patch": "replace", "y": "2"}}}),
        );
        assert_eq!(p["metadata"]["labels"], json!({"y": "2"}));
        apply(&mut p, &json!({"metadata": {"labels": null}}));
        assert!(p["metadata"].get("labels").is_none());
    }

    #[test]
    fn lists_without_a_merge_key_are_replaced() {
        let mut v = json!({"spec": {"args": ["a", "b"]}});
        apply(&mut v, &json!({"spec": {"args": ["c"]}}));
        assert_eq!(v["spec"]["args"], json!(["c"]));
    }
}
