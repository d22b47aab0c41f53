//! OpenAPI v3 documents, enough for `kubectl` validation and `kubectl explain`: every served
//! kind gets a schema tagged with its group, version and kind. Built-in kinds publish their
//! k8s-openapi schema (with the definitions it refers to and their descriptions); CRDs carry
//! their `openAPIV3Schema`.

use serde_json::{Value, json};

use crate::resources::{Registry, ResourceType};

/// `api/v1` or `apis/<group>/<version>`.
fn gv_path(t: &ResourceType) -> String {
    if t.group.is_empty() {
        format!("api/{}", t.version)
    } else {
        format!("apis/{}/{}", t.group, t.version)
    }
}

/// Path items for `t`'s collection and objects. Clients look up a kind's operations by the
/// `x-kubernetes-group-version-kind` of each operation, and which query parameters it takes.
fn operations(t: &ResourceType) -> serde_json::Map<String, Value> {
    let base = if t.group.is_empty() {
        format!("/api/{}", t.version)
    } else {
        format!("/apis/{}/{}", t.group, t.version)
    };
    let collection = if t.namespaced {
        format!("{base}/namespaces/{{namespace}}/{}", t.plural)
    } else {
        format!("{base}/{}", t.plural)
    };
    let gvk = json!({"group": t.group, "version": t.version, "kind": t.kind});
    let reference = json!({"$ref": format!("#/components/schemas/{}", schema_name(t))});
    let query = |names: &[&str]| -> Vec<Value> {
        names
            .iter()
            .map(|n| json!({"name": n, "in": "query", "schema": {"type": "string"}}))
            .collect()
    };
    let op = |action: &str, params: &[&str]| {
        json!({
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk,
            "parameters": query(params),
            "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": reference}}}},
        })
    };
    let write = ["dryRun", "fieldManager", "fieldValidation"];
    let mut out = serde_json::Map::new();
    out.insert(collection.clone(), json!({"get": op("list", &["labelSelector", "fieldSelector", "limit", "continue", "watch"]), "post": op("post", &write)}));
    out.insert(
        format!("{collection}/{{name}}"),
        json!({"get": op("get", &[]), "put": op("put", &write), "patch": op("patch", &["dryRun", "fieldManager", "fieldValidation", "force"]), "delete": op("delete", &["propagationPolicy"])}),
    );
    out
}

/// The discovery index: one document per group version.
pub fn index(registry: &Registry) -> Value {
    let mut paths = serde_json::Map::new();
    for t in registry.all() {
        let p = gv_path(&t);
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}")}),
        );
    }
    json!({"paths": paths})
}

/// Schema name as Kubernetes spells it (`io.k8s.api.core.v1.Pod`, `dev.vdi.v1.VDISession`).
fn schema_name(t: &ResourceType) -> String {
    if t.schema.is_none()
        && let Some(name) = crate::schema::builtin_name(t)
    {
        return name.to_owned();
    }
    if t.group.is_empty() {
        return format!("io.k8s.api.core.{}.{}", t.version, t.kind);
    }
    let reversed: Vec<&str> = t.group.split('.').rev().collect();
    format!("{}.{}.{}", reversed.join("."), t.version, t.kind)
}

/// The document for `path` (`api/v1`, `apis/<group>/<version>`), if served.
pub fn document(registry: &Registry, path: &str) -> Option<Value> {
    let types: Vec<ResourceType> = registry
        .all()
        .into_iter()
        .filter(|t| gv_path(t) == path)
        .collect();
    if types.is_empty() {
        return None;
    }
    let mut schemas = serde_json::Map::new();
    let mut paths = serde_json::Map::new();
    for t in &types {
        paths.extend(operations(t));
        if t.schema.is_none()
            && let Some((name, defs)) = crate::schema::published(t)
        {
            for (n, def) in defs {
                schemas.entry(n).or_insert(def);
            }
            if let Some(schema) = schemas.get_mut(&name) {
                schema["x-kubernetes-group-version-kind"] =
                    json!([{"group": t.group, "version": t.version, "kind": t.kind}]);
            }
            continue;
        }
        let mut schema = t.schema.clone().unwrap_or_else(
            || json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
        );
        let props = schema.as_object_mut().and_then(|o| {
            o.entry("properties").or_insert_with(|| json!({}));
            o.get_mut("properties").and_then(Value::as_object_mut)
        });
        if let Some(props) = props {
            props.insert("apiVersion".into(), json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."}));
            props.insert("kind".into(), json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents."}));
            props.insert("metadata".into(), json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true, "description": "Standard object's metadata."}));
        }
        schema["x-kubernetes-group-version-kind"] =
            json!([{"group": t.group, "version": t.version, "kind": t.kind}]);
        schemas.insert(schema_name(t), schema);
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (vdi embedded control plane)", "version": format!("v{}.{}.0", crate::api::KUBERNETES_VERSION.0, crate::api::KUBERNETES_VERSION.1)},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}
