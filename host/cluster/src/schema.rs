//! Validation and pruning of objects against their schema: a CRD's `openAPIV3Schema`, or a
//! built-in kind's from k8s-openapi ([`builtin`]). Validation checks types, required fields,
//! enums, bounds and lengths (422 naming the field); pruning drops unknown fields as
//! kube-apiserver does for structural schemas, except under `x-kubernetes-preserve-unknown-fields`
//! and in objects whose schema names no fields at all.

mod builtin;

use std::collections::HashMap;

use serde_json::Value;

use crate::error::{ApiError, Result};
use crate::resources::ResourceType;

pub(crate) use builtin::{name as builtin_name, published};

/// The schema objects of `rt` are checked against: the CRD's, else the built-in kind's.
fn schema_of(rt: &ResourceType) -> Option<&Value> {
    rt.schema.as_ref().or_else(|| builtin::structural(rt))
}

/// Whether `field` at the top of an object is outside the schema's reach: the envelope, which
/// the server checks itself, and the status of a kind that writes it only through `/status`
/// (the main resource keeps the stored status, so it was checked when it was written).
fn skipped(rt: &ResourceType, field: &str) -> bool {
    matches!(field, "apiVersion" | "kind" | "metadata")
        || (field == "status" && rt.status_subresource)
}

/// Validates `obj` if `rt` has a schema. `metadata` is the server's business.
pub fn validate(rt: &ResourceType, obj: &Value) -> Result<()> {
    let Some(schema) = schema_of(rt) else {
        return Ok(());
    };
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    let Some(props) = schema["properties"].as_object() else {
        return Ok(());
    };
    let Some(fields) = obj.as_object() else {
        return Ok(());
    };
    for (k, v) in fields {
        if skipped(rt, k) {
            continue;
        }
        if let Some(s) = props.get(k) {
            check(s, v, k).map_err(|(field, reason)| ApiError::Invalid {
                kind: rt.kind.clone(),
                name: name.to_owned(),
                field,
                reason,
            })?;
        }
    }
    for req in schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !fields.contains_key(req) {
            return Err(ApiError::Invalid {
                kind: rt.kind.clone(),
                name: name.to_owned(),
                field: req.to_owned(),
                reason: "Required value".into(),
            });
        }
    }
    Ok(())
}

/// Prunes what a request body holds outside `rt`'s schema, as kube-apiserver decodes it:
/// unknown fields, and `null` where the schema does not allow it (Go reads it as unset). With
/// `fieldValidation=Strict` an unknown field is a 400 instead, as kubectl asks by default.
pub(crate) fn prune_request(
    rt: &ResourceType,
    obj: &mut Value,
    q: &HashMap<String, String>,
) -> Result<()> {
    let unknown = prune(rt, obj);
    if unknown.is_empty() || q.get("fieldValidation").map(String::as_str) != Some("Strict") {
        return Ok(());
    }
    let list: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field {f:?}"))
        .collect();
    Err(ApiError::BadRequest(format!(
        "strict decoding error: {}",
        list.join(", ")
    )))
}

/// Drops unknown fields (and disallowed nulls) from `obj`; returns the unknown fields' paths.
pub(crate) fn prune(rt: &ResourceType, obj: &mut Value) -> Vec<String> {
    let mut unknown = Vec::new();
    let Some(schema) = schema_of(rt) else {
        return unknown;
    };
    let Some(fields) = obj.as_object_mut() else {
        return unknown;
    };
    let mut path = String::new();
    fields.retain(|k, v| {
        if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
            return true;
        }
        path.clear();
        path.push_str(k);
        keep(schema, k, v, &mut path, &mut unknown)
    });
    unknown
}

/// Whether field `k` (value `v`, at `path`) of an object with schema `s` stays; prunes inside it.
fn keep(s: &Value, k: &str, v: &mut Value, path: &mut String, unknown: &mut Vec<String>) -> bool {
    let field = match s.get("properties").and_then(|p| p.get(k)) {
        Some(f) => Some(f),
        None => s.get("additionalProperties").filter(|a| a.is_object()),
    };
    match field {
        Some(f) if v.is_null() => f["nullable"].as_bool() == Some(true),
        Some(f) => {
            prune_value(f, v, path, unknown);
            true
        }
        // An object whose schema names no fields keeps what it holds.
        None if !s["properties"].is_object()
            || s["x-kubernetes-preserve-unknown-fields"].as_bool() == Some(true)
            || s["additionalProperties"].as_bool() == Some(true) =>
        {
            true
        }
        None => {
            unknown.push(path.clone());
            false
        }
    }
}

fn prune_value(s: &Value, v: &mut Value, path: &mut String, unknown: &mut Vec<String>) {
    if s["x-kubernetes-int-or-string"].as_bool() == Some(true) {
        return;
    }
    match v {
        Value::Object(o) => {
            if !s["properties"].is_object() && !s["additionalProperties"].is_object() {
                return;
            }
            let len = path.len();
            o.retain(|k, child| {
                path.truncate(len);
                path.push('.');
                path.push_str(k);
                keep(s, k, child, path, unknown)
            });
            path.truncate(len);
        }
        Value::Array(items) if s["items"].is_object() => {
            let len = path.len();
            for (i, item) in items.iter_mut().enumerate() {
                path.truncate(len);
                path.push_str(&format!("[{i}]"));
                prune_value(&s["items"], item, path, unknown);
            }
            path.truncate(len);
        }
        _ => {}
    }
}

/// Checks `v` against `s`; errors carry (field path, reason).
fn check(s: &Value, v: &Value, path: &str) -> Result<(), (String, String)> {
    let fail = |reason: String| Err((path.to_owned(), reason));
    if v.is_null() && s["nullable"].as_bool() == Some(true) {
        return Ok(());
    }
    if s["x-kubernetes-int-or-string"].as_bool() == Some(true) {
        return if v.is_i64() || v.is_u64() || v.is_string() {
            Ok(())
        } else {
            fail(format!("{v}: must be an integer or a string"))
        };
    }
    match s["type"].as_str() {
        Some("object") => {
            let Some(o) = v.as_object() else {
                return fail(format!("{}: must be of type object", short(v)));
            };
            let props = s["properties"].as_object();
            for (k, child) in o {
                let sub = format!("{path}.{k}");
                if let Some(cs) = props.and_then(|p| p.get(k)) {
                    check(cs, child, &sub)?;
                } else if s["additionalProperties"].is_object() {
                    check(&s["additionalProperties"], child, &sub)?;
                }
            }
            for req in s["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if !o.contains_key(req) {
                    return Err((format!("{path}.{req}"), "Required value".into()));
                }
            }
        }
        Some("array") => {
            let Some(a) = v.as_array() else {
                return fail(format!("{}: must be of type array", short(v)));
            };
            if let Some(max) = s["maxItems"].as_u64()
                && a.len() as u64 > max
            {
                return fail(format!("must have at most {max} items"));
            }
            for (i, item) in a.iter().enumerate() {
                check(&s["items"], item, &format!("{path}[{i}]"))?;
            }
        }
        Some("string") => {
            let Some(text) = v.as_str() else {
                return fail(format!("{}: must be of type string", short(v)));
            };
            if let Some(max) = s["maxLength"].as_u64()
                && text.chars().count() as u64 > max
            {
                return fail(format!("must have at most {max} characters"));
            }
            if let Some(min) = s["minLength"].as_u64()
                && (text.chars().count() as u64) < min
            {
                return fail(format!("must have at least {min} characters"));
            }
        }
        Some("integer") if !(v.is_i64() || v.is_u64()) => {
            return fail(format!("{}: must be of type integer", short(v)));
        }
        Some("number") if !v.is_number() => {
            return fail(format!("{}: must be of type number", short(v)));
        }
        Some("boolean") if !v.is_boolean() => {
            return fail(format!("{}: must be of type boolean", short(v)));
        }
        _ => {}
    }
    if let Some(n) = v.as_f64() {
        if let Some(min) = s["minimum"].as_f64()
            && n < min
        {
            return fail(format!("{v}: should be greater than or equal to {min}"));
        }
        if let Some(max) = s["maximum"].as_f64()
            && n > max
        {
            return fail(format!("{v}: should be less than or equal to {max}"));
        }
    }
    if let Some(allowed) = s["enum"].as_array()
        && !allowed.contains(v)
    {
        let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
        return fail(format!(
            "{}: supported values: {}",
            short(v),
            list.join(", ")
        ));
    }
    Ok(())
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 64 {
        format!(
            "{}...",
            &s[..s.char_indices().nth(60).map_or(s.len(), |(i, _)| i)]
        )
    } else {
        s
    }
}
