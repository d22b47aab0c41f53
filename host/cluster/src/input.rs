//! Checks on what clients send, before the server uses it: the size of a request body, how deep
//! it nests, and the envelope of an object (a JSON object whose `metadata` is an object with
//! string names, string-valued labels and annotations, ...): what kube-apiserver's typed decoding
//! refuses, and what the server's own code relies on when it writes into an object.
//!
//! The API checks bodies as they arrive (400) and objects as patches leave them (422); the store
//! checks every write again, so in-process writers are held to the same rules and nothing it
//! stores can fail to load when it restarts.

use std::fmt;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use futures::StreamExt;
use serde_json::{Map, Value};

use crate::error::{ApiError, Result};

/// Largest request body accepted, in bytes; a larger one is answered 413 RequestEntityTooLarge.
pub const MAX_BODY_BYTES: usize = 64 << 20;

/// Deepest nesting of objects and arrays in an object a client writes, whole or through a patch
/// (the object itself is level 1). Well under serde_json's recursion limit of 128, so whatever
/// is stored parses again when the store reloads. `metadata.managedFields`, which the server
/// rewrites on every write, is measured apart against [`MAX_STORED_DEPTH`].
pub const MAX_NESTING_DEPTH: usize = 100;

/// Deepest nesting the store writes, managed fields included: their FieldsV1 mirrors the object's
/// fields five levels down, so an object at [`MAX_NESTING_DEPTH`] is stored about 105 deep. Under
/// serde_json's recursion limit of 128, so every stored row parses again.
pub const MAX_STORED_DEPTH: usize = 120;

/// Name of the whole object in a [`Malformed`] finding.
const ROOT: &str = "object";

/// Metadata fields that must be strings where present.
const STRING_METADATA: [&str; 8] = [
    "name",
    "generateName",
    "namespace",
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "deletionTimestamp",
    "selfLink",
];

/// Metadata fields that must be integers where present.
const INTEGER_METADATA: [&str; 2] = ["generation", "deletionGracePeriodSeconds"];

/// Owner reference fields that must be strings where present.
const STRING_OWNER_REFERENCE: [&str; 4] = ["apiVersion", "kind", "name", "uid"];

/// Where an object is malformed and why. Not an error of its own: it becomes a 400 BadRequest
/// for a body as sent, a 422 Invalid for an object a patch or an in-process writer produced,
/// and a warning where a background agent meets it in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Malformed {
    /// Path of the field, e.g. `metadata.labels.app` (`object` for the whole object).
    pub(crate) field: String,
    /// Why it is refused.
    pub(crate) reason: String,
}

impl Malformed {
    fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }

    fn wrong_type(field: impl Into<String>, wanted: &str, got: &Value) -> Self {
        Self::new(field, format!("must be {wanted}, got {}", type_name(got)))
    }

    /// 400 BadRequest, for a request body as the client sent it.
    pub(crate) fn bad_request(self) -> ApiError {
        ApiError::BadRequest(self.to_string())
    }

    /// 422 Invalid, for an object a patch (or an in-process writer) produced.
    pub(crate) fn invalid(self, kind: &str, name: &str) -> ApiError {
        ApiError::Invalid {
            kind: kind.to_owned(),
            name: name.to_owned(),
            field: self.field,
            reason: self.reason,
        }
    }
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// `a string`, `an object`, ... for messages.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Reads a request body of at most [`MAX_BODY_BYTES`]. A body declared or found larger is 413,
/// without reading further than the limit.
pub(crate) async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes> {
    let too_large = || ApiError::RequestEntityTooLarge {
        limit: MAX_BODY_BYTES,
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let mut read = Vec::new();
    let mut chunks = body.into_data_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::BadRequest(format!("the request body could not be read: {e}"))
        })?;
        if read.len().saturating_add(chunk.len()) > MAX_BODY_BYTES {
            return Err(too_large());
        }
        read.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(read))
}

/// How deep `v` nests objects and arrays (a scalar is 0, `{}` and `[]` are 1). Without
/// recursion, so a value of any depth is measured safely.
pub(crate) fn depth(v: &Value) -> usize {
    let mut deepest = 0;
    let mut pending = vec![(v, 1_usize)];
    while let Some((v, level)) = pending.pop() {
        match v {
            Value::Object(o) => {
                deepest = deepest.max(level);
                pending.extend(o.values().map(|c| (c, level + 1)));
            }
            Value::Array(a) => {
                deepest = deepest.max(level);
                pending.extend(a.iter().map(|c| (c, level + 1)));
            }
            _ => {}
        }
    }
    deepest
}

/// How deep an object nests, leaving out `metadata.managedFields` (see [`MAX_STORED_DEPTH`]),
/// and the top-level field where it is deepest.
fn nesting(v: &Value) -> (usize, String) {
    let Some(o) = v.as_object() else {
        return (depth(v), ROOT.to_owned());
    };
    let mut deepest = (1, ROOT.to_owned());
    for (k, child) in o {
        let d = match child.as_object() {
            Some(md) if k == "metadata" => {
                1 + md
                    .iter()
                    .filter(|(f, _)| f.as_str() != "managedFields")
                    .map(|(_, c)| depth(c))
                    .max()
                    .unwrap_or(0)
            }
            _ => depth(child),
        };
        if 1 + d > deepest.0 {
            deepest = (1 + d, k.clone());
        }
    }
    deepest
}

/// Refuses a value nested deeper than [`MAX_NESTING_DEPTH`].
pub(crate) fn check_depth(v: &Value) -> Result<(), Malformed> {
    let (levels, field) = nesting(v);
    if levels > MAX_NESTING_DEPTH {
        return Err(Malformed::new(
            field,
            format!(
                "nested too deeply: {levels} levels of objects and arrays, at most {MAX_NESTING_DEPTH} are allowed"
            ),
        ));
    }
    Ok(())
}

/// Parses a request body as JSON, no deeper than [`MAX_NESTING_DEPTH`] (400 otherwise).
pub(crate) fn json_body(body: &Bytes) -> Result<Value> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?;
    check_depth(&v).map_err(Malformed::bad_request)?;
    Ok(v)
}

/// Parses a request body that must be an object (see [`check_object`]; 400 otherwise).
pub(crate) fn object_body(body: &Bytes) -> Result<Value> {
    let v = json_body(body)?;
    check_object(&v).map_err(Malformed::bad_request)?;
    Ok(v)
}

/// Checks the envelope of an object as kube-apiserver's typed decoding would: a JSON object;
/// `apiVersion` and `kind` strings; `spec` and `status` objects; `metadata` an object whose
/// names are strings, labels and annotations string maps, finalizers strings, owner references
/// objects; and no deeper than [`MAX_NESTING_DEPTH`]. Absent or null fields pass.
pub(crate) fn check_object(obj: &Value) -> Result<(), Malformed> {
    let Some(o) = obj.as_object() else {
        return Err(Malformed::wrong_type(ROOT, "a JSON object", obj));
    };
    for f in ["apiVersion", "kind"] {
        check_field(o, f, f, "a string", Value::is_string)?;
    }
    for f in ["spec", "status"] {
        check_field(o, f, f, "an object", Value::is_object)?;
    }
    check_field(o, "metadata", "metadata", "an object", Value::is_object)?;
    if let Some(md) = o.get("metadata").and_then(Value::as_object) {
        check_metadata(md)?;
    }
    check_depth(obj)
}

/// Like [`check_object`], and the whole object, managed fields included, no deeper than
/// [`MAX_STORED_DEPTH`]: what the store writes.
pub(crate) fn check_stored(obj: &Value) -> Result<(), Malformed> {
    check_object(obj)?;
    let levels = depth(obj);
    if levels > MAX_STORED_DEPTH {
        return Err(Malformed::new(
            "metadata.managedFields",
            format!(
                "nested too deeply: the object reaches {levels} levels of objects and arrays, at most {MAX_STORED_DEPTH} can be stored"
            ),
        ));
    }
    Ok(())
}

/// `o[key]`, where present and not null, must satisfy `ok`.
fn check_field(
    o: &Map<String, Value>,
    key: &str,
    field: &str,
    wanted: &str,
    ok: fn(&Value) -> bool,
) -> Result<(), Malformed> {
    match o.get(key) {
        Some(v) if !v.is_null() && !ok(v) => Err(Malformed::wrong_type(field, wanted, v)),
        _ => Ok(()),
    }
}

fn check_metadata(md: &Map<String, Value>) -> Result<(), Malformed> {
    let integer = |v: &Value| v.is_i64() || v.is_u64();
    for f in STRING_METADATA {
        check_field(
            md,
            f,
            &format!("metadata.{f}"),
            "a string",
            Value::is_string,
        )?;
    }
    for f in INTEGER_METADATA {
        check_field(md, f, &format!("metadata.{f}"), "an integer", integer)?;
    }
    for f in ["labels", "annotations"] {
        let field = format!("metadata.{f}");
        check_field(md, f, &field, "an object of strings", Value::is_object)?;
        if let Some(map) = md.get(f).and_then(Value::as_object) {
            for k in map.keys() {
                check_field(
                    map,
                    k,
                    &format!("{field}.{k}"),
                    "a string",
                    Value::is_string,
                )?;
            }
        }
    }
    let list = |f: &str| -> Result<&[Value], Malformed> {
        match md.get(f) {
            None | Some(Value::Null) => Ok(&[]),
            Some(Value::Array(items)) => Ok(items),
            Some(other) => Err(Malformed::wrong_type(
                format!("metadata.{f}"),
                "an array",
                other,
            )),
        }
    };
    for (i, f) in list("finalizers")?.iter().enumerate() {
        if !f.is_string() {
            return Err(Malformed::wrong_type(
                format!("metadata.finalizers[{i}]"),
                "a string",
                f,
            ));
        }
    }
    for (i, r) in list("ownerReferences")?.iter().enumerate() {
        let field = format!("metadata.ownerReferences[{i}]");
        let Some(r) = r.as_object() else {
            return Err(Malformed::wrong_type(field, "an object", r));
        };
        for f in STRING_OWNER_REFERENCE {
            check_field(r, f, &format!("{field}.{f}"), "a string", Value::is_string)?;
        }
    }
    for (i, m) in list("managedFields")?.iter().enumerate() {
        if !m.is_object() {
            return Err(Malformed::wrong_type(
                format!("metadata.managedFields[{i}]"),
                "an object",
                m,
            ));
        }
    }
    Ok(())
}

/// Nested `levels` deep: `{"a": {"a": ... {}}}`.
#[cfg(test)]
pub(crate) fn nested(levels: usize) -> Value {
    (1..levels).fold(
        serde_json::json!({}),
        |inner, _| serde_json::json!({ "a": inner }),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_envelope_is_checked_field_by_field() {
        let field = |v: Value| check_object(&v).map_err(|m| m.field);
        assert_eq!(field(json!([])), Err("object".into()));
        assert_eq!(field(json!({"metadata": 1})), Err("metadata".into()));
        assert_eq!(field(json!({"kind": 1})), Err("kind".into()));
        assert_eq!(field(json!({"spec": "x"})), Err("spec".into()));
        assert_eq!(
            field(json!({"metadata": {"name": 1}})),
            Err("metadata.name".into())
        );
        assert_eq!(
            field(json!({"metadata": {"labels": {"app": 1}}})),
            Err("metadata.labels.app".into())
        );
        assert_eq!(
            field(json!({"metadata": {"annotations": []}})),
            Err("metadata.annotations".into())
        );
        assert_eq!(
            field(json!({"metadata": {"finalizers": ["a", 2]}})),
            Err("metadata.finalizers[1]".into())
        );
        assert_eq!(
            field(json!({"metadata": {"ownerReferences": [{"uid": 3}]}})),
            Err("metadata.ownerReferences[0].uid".into())
        );
        assert_eq!(
            field(json!({"metadata": {"generation": "1"}})),
            Err("metadata.generation".into())
        );
        assert_eq!(
            field(json!({"metadata": null, "spec": null, "status": {}, "data": [1, "x"]})),
            Ok(())
        );
    }

    #[test]
    fn depth_is_capped_except_for_managed_fields() {
        assert_eq!(depth(&json!(1)), 0);
        assert_eq!(depth(&nested(3)), 3);
        let at_limit = json!({"spec": nested(MAX_NESTING_DEPTH - 1)});
        assert_eq!(check_object(&at_limit), Ok(()));
        let over = json!({"spec": nested(MAX_NESTING_DEPTH)});
        let err = check_object(&over).expect_err("too deep");
        assert_eq!(err.field, "spec");
        assert!(err.reason.contains("at most 100"), "{err}");
        // Managed fields mirror the object a few levels further down; the store allows that...
        let managed =
            json!({"metadata": {"managedFields": [{"fieldsV1": nested(MAX_NESTING_DEPTH)}]}});
        assert_eq!(check_stored(&managed), Ok(()));
        // ...but not without bound.
        let runaway =
            json!({"metadata": {"managedFields": [{"fieldsV1": nested(MAX_STORED_DEPTH)}]}});
        assert_eq!(
            check_stored(&runaway).map_err(|m| m.field),
            Err("metadata.managedFields".into())
        );
    }
}
