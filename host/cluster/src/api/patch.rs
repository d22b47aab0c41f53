//! `PATCH` on a resource: JSON patch, JSON merge patch, strategic merge patch and server-side
//! apply. Every result is checked (see [`crate::input`]) before the server writes into it or
//! stores it, so a patch that breaks an object's envelope is a 422, not a panic.

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::Target;
use crate::admission::Requester;
use crate::error::{ApiError, Result};
use crate::input::{MAX_STORED_DEPTH, Malformed, check_object, depth, json_body, object_body};
use crate::store::{Part, Store};

const APPLY: &str = "application/apply-patch+yaml";

/// The body types a PATCH accepts, for the 415 that answers any other.
const PATCH_TYPES: [&str; 4] = [
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    APPLY,
];

/// Server-side apply parameters of a request.
pub(super) struct Apply<'a> {
    pub(super) manager: &'a str,
    pub(super) force: bool,
    /// Whether the requester may create the object (RBAC's `create`): server-side apply of an
    /// object that does not exist creates it, so `patch` alone is not enough (as in
    /// kube-apiserver).
    pub(super) may_create: &'a dyn Fn() -> Result<()>,
    /// The request's query (`fieldValidation` decides what an unknown field is).
    pub(super) query: &'a std::collections::HashMap<String, String>,
}

/// How often a patch that names no resourceVersion is re-applied when another write lands
/// between its read and its write (kube-apiserver's `GuaranteedUpdate` retries the same way).
const PATCH_ATTEMPTS: usize = 8;

/// Patches `name` with `body`, of media type `ctype`.
#[allow(clippy::too_many_arguments, reason = "one request's parts")]
pub(super) fn patch(
    store: &Store,
    t: &Target,
    name: &str,
    (ctype, body): (&str, &Bytes),
    part: Part,
    requester: &Requester,
    apply: &Apply<'_>,
) -> Result<Response> {
    let mut attempt = 1;
    loop {
        match patch_once(store, t, name, (ctype, body), part, requester, apply) {
            Err(Attempt::Raced(e)) if attempt < PATCH_ATTEMPTS => {
                tracing::debug!(name, attempt, error = %e, "patch raced another write; re-applying");
                attempt += 1;
            }
            Err(Attempt::Raced(e) | Attempt::Failed(e)) => return Err(e),
            Ok(r) => return Ok(r),
        }
    }
}

/// Why one attempt at a patch failed.
enum Attempt {
    /// The object changed between read and write, and the patch named no resourceVersion.
    Raced(ApiError),
    /// Anything else (including a conflict with a resourceVersion the patch named).
    Failed(ApiError),
}

impl From<ApiError> for Attempt {
    fn from(e: ApiError) -> Self {
        Self::Failed(e)
    }
}

/// Reads the object, applies the patch and writes the result once.
#[allow(clippy::too_many_arguments, reason = "one request's parts")]
fn patch_once(
    store: &Store,
    t: &Target,
    name: &str,
    (ctype, body): (&str, &Bytes),
    part: Part,
    requester: &Requester,
    apply: &Apply<'_>,
) -> Result<Response, Attempt> {
    let media = ctype.split(';').next().unwrap_or_default().trim();
    let kind = t.rt.kind.as_str();
    // Staged writes included: this patch's write is staged after them (see `get_latest`).
    let current = match store.get_latest(&t.rt, &t.ns, name) {
        Ok(c) => c,
        // Server-side apply creates what does not exist yet.
        Err(ApiError::NotFound { .. }) if media == APPLY && part == Part::Main => {
            (apply.may_create)()?;
            let mut obj = object_body(body)?;
            crate::schema::prune_request(&t.rt, &mut obj, apply.query)?;
            // An object with an object (or no) `metadata`, as `object_body` checked.
            obj["metadata"]["name"] = json!(name);
            obj["apiVersion"] = json!(t.rt.api_version());
            crate::apply::on_create(&mut obj, apply.manager, "Apply");
            return Ok((
                StatusCode::CREATED,
                axum::Json(store.create_as(&t.rt, &t.ns, obj, requester)?),
            )
                .into_response());
        }
        Err(e) => return Err(e.into()),
    };
    let mut doc = current.clone();
    match media {
        "application/json-patch+json" => {
            let ops: json_patch::Patch = serde_json::from_slice(body)
                .map_err(|e| ApiError::BadRequest(format!("invalid JSON patch: {e}")))?;
            json_patch_bounded(&mut doc, &ops).map_err(|m| m.invalid(kind, name))?;
        }
        "application/strategic-merge-patch+json" => {
            crate::strategic::apply(&mut doc, &json_body(body)?)
        }
        "application/merge-patch+json" => json_patch::merge(&mut doc, &json_body(body)?),
        APPLY if part == Part::Main => {
            let config = object_body(body)?;
            doc = crate::apply::apply(&current, &config, apply.manager, apply.force, kind, name)?;
        }
        APPLY => json_patch::merge(&mut doc, &json_body(body)?),
        _ => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "the body of the request was in an unknown format ({media}) - accepted media types include: {}",
                PATCH_TYPES.join(", ")
            ))
            .into());
        }
    }
    // What follows writes into `metadata`: it must still be an object, and the rest sound.
    check_object(&doc).map_err(|m| m.invalid(kind, name))?;
    if part == Part::Main && media != APPLY {
        crate::apply::on_update(&current, &mut doc, apply.manager);
    }
    crate::schema::prune_request(&t.rt, &mut doc, apply.query)?;
    // A patch that names no resourceVersion applies to whatever is current.
    let floating = doc["metadata"]["resourceVersion"] == current["metadata"]["resourceVersion"]
        || doc["metadata"]["resourceVersion"].is_null();
    if floating {
        doc["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"].clone();
    }
    match store.update_as(&t.rt, &t.ns, name, doc, part, requester) {
        Ok(obj) => Ok(axum::Json(obj).into_response()),
        Err(e @ ApiError::Conflict { .. }) if floating => Err(Attempt::Raced(e)),
        Err(e) => Err(e.into()),
    }
}

/// Applies a JSON patch one operation at a time, refusing an operation that leaves the document
/// deeper than [`MAX_STORED_DEPTH`] where it wrote. Each operation can at most double the depth
/// (a copy of the document into itself), so checking after each keeps what the patch library
/// clones and drops, recursively, within a bounded depth; the result is checked against the
/// (lower) limit for objects afterwards. A failed operation fails the whole patch: `doc` is a
/// copy the caller discards.
fn json_patch_bounded(doc: &mut Value, ops: &json_patch::Patch) -> Result<(), Malformed> {
    for (i, op) in ops.0.iter().enumerate() {
        json_patch::patch(doc, std::slice::from_ref(op)).map_err(|e| Malformed {
            field: "patch".into(),
            reason: format!("operation {i}: {e}"),
        })?;
        if matches!(
            op,
            json_patch::PatchOperation::Remove(_) | json_patch::PatchOperation::Test(_)
        ) {
            continue;
        }
        let path = op.path().as_str();
        // Each `/` enters one more container: the document is `tokens` deep above the target.
        let tokens = path.matches('/').count();
        let target = match path.strip_suffix("/-") {
            // `-` appends to an array: the target is its last element (in an object, a key).
            Some(parent) => match doc.pointer(parent) {
                Some(Value::Array(a)) => a.last(),
                Some(other) => other.get("-"),
                None => None,
            },
            None => doc.pointer(path),
        };
        let levels = tokens + target.map_or(0, depth);
        if levels > MAX_STORED_DEPTH {
            return Err(Malformed {
                field: path.to_owned(),
                reason: format!(
                    "nested too deeply: operation {i} makes {levels} levels of objects and arrays, at most {MAX_STORED_DEPTH} are allowed"
                ),
            });
        }
    }
    Ok(())
}
