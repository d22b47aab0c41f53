//! Request bodies in Kubernetes' protobuf encoding (`application/vnd.kubernetes.protobuf`):
//! the `k8s\0` envelope around a `runtime.Unknown`, decoded with the kube-rs project's
//! `k8s-pb` bindings and turned into the JSON a JSON client would have sent, which the handlers
//! read. kubectl sends built-in kinds this way (`kubectl create namespace|secret|...`, `kubectl
//! create token`); the server answers in JSON, which kubectl accepts.
//!
//! Every converter takes each field it maps out of the decoded message and then requires the
//! rest to be empty, so a field the server does not convert yet makes the body 415 (send JSON
//! instead), never a silently smaller object. A kind not in [`KINDS`] is 415 too.
//!
//! [`request_body`] is also where a body's `Content-Type` is checked: JSON (or none) as is,
//! protobuf converted, anything else 415 with the types accepted.

mod apps;
mod container;
mod core;
mod fields;
mod meta;
mod pod;
mod policy;
mod rbac;
mod review;
#[cfg(test)]
mod tests;
mod volume;

use axum::body::Bytes;
use axum::http::{HeaderValue, Method};
use k8s_pb::apimachinery::pkg::runtime::Unknown;
use prost::Message;
use serde_json::{Value, json};

use crate::error::{ApiError, Result};
use fields::{Converted, Unconverted};

/// The media type of protobuf bodies.
pub const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";
/// The media type of JSON bodies (also assumed when a body names none, as kube-apiserver does).
pub const JSON: &str = "application/json";
/// The four bytes every protobuf-encoded object starts with.
const MAGIC: &[u8] = b"k8s\0";

/// Decodes a kind's `raw` bytes and converts the message to JSON.
type Converter = fn(&[u8]) -> Result<Converted, prost::DecodeError>;

/// Decodes `raw` as `M` and converts it with `convert`.
fn decode<M: Message + Default>(
    raw: &[u8],
    convert: fn(M) -> Converted,
) -> Result<Converted, prost::DecodeError> {
    M::decode(raw).map(convert)
}

/// The kinds accepted in protobuf: `(apiVersion, kind, converter)`.
const KINDS: &[(&str, &str, Converter)] = &[
    ("v1", "Namespace", |r| decode(r, core::namespace)),
    ("v1", "ConfigMap", |r| decode(r, core::config_map)),
    ("v1", "Secret", |r| decode(r, core::secret)),
    ("v1", "ServiceAccount", |r| decode(r, core::service_account)),
    ("v1", "Service", |r| decode(r, core::service)),
    ("v1", "ResourceQuota", |r| decode(r, core::resource_quota)),
    ("v1", "Event", |r| decode(r, core::event)),
    ("v1", "Pod", |r| decode(r, pod::pod)),
    ("rbac.authorization.k8s.io/v1", "Role", |r| {
        decode(r, rbac::role)
    }),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", |r| {
        decode(r, rbac::cluster_role)
    }),
    ("rbac.authorization.k8s.io/v1", "RoleBinding", |r| {
        decode(r, rbac::role_binding)
    }),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", |r| {
        decode(r, rbac::cluster_role_binding)
    }),
    ("apps/v1", "Deployment", |r| decode(r, apps::deployment)),
    ("batch/v1", "Job", |r| decode(r, apps::job)),
    ("batch/v1", "CronJob", |r| decode(r, apps::cron_job)),
    ("policy/v1", "PodDisruptionBudget", |r| {
        decode(r, policy::pod_disruption_budget)
    }),
    ("scheduling.k8s.io/v1", "PriorityClass", |r| {
        decode(r, policy::priority_class)
    }),
    ("networking.k8s.io/v1", "Ingress", |r| {
        decode(r, policy::ingress)
    }),
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview", |r| {
        decode(r, review::self_subject_access_review)
    }),
    ("authorization.k8s.io/v1", "SelfSubjectRulesReview", |r| {
        decode(r, review::self_subject_rules_review)
    }),
    ("authorization.k8s.io/v1", "SubjectAccessReview", |r| {
        decode(r, review::subject_access_review)
    }),
    ("authorization.k8s.io/v1", "LocalSubjectAccessReview", |r| {
        decode(r, review::local_subject_access_review)
    }),
    ("authentication.k8s.io/v1", "SelfSubjectReview", |r| {
        decode(r, review::self_subject_review)
    }),
    ("authentication.k8s.io/v1", "TokenRequest", |r| {
        decode(r, review::token_request)
    }),
    // Typed clients send the options of a DELETE in the client's group version.
    ("", "DeleteOptions", |r| decode(r, meta::delete_options)),
];

/// The media type of a `Content-Type` value, without its parameters (`; charset=utf-8`).
fn media_type(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or_default().trim()
}

/// The JSON body a request carries: an empty body, and a JSON one (or one that names no type),
/// as they are; a protobuf one converted ([`to_json`]); any other type 415 with the types
/// accepted. PATCH bodies pass as they are: the patch handler checks their types.
pub(crate) fn request_body(
    method: &Method,
    content_type: Option<&HeaderValue>,
    body: Bytes,
) -> Result<Bytes> {
    if body.is_empty() || method == Method::PATCH {
        return Ok(body);
    }
    let Some(content_type) = content_type else {
        return Ok(body);
    };
    let media = content_type.to_str().map(media_type).unwrap_or_default();
    if media.eq_ignore_ascii_case(JSON) {
        Ok(body)
    } else if media.eq_ignore_ascii_case(PROTOBUF) {
        Ok(Bytes::from(to_json(&body)?.to_string()))
    } else {
        Err(unsupported(format!(
            "the body of the request was in an unknown format ({media}) - accepted media types include: {}",
            accepted()
        )))
    }
}

/// The body types accepted for a create or an update, for messages.
fn accepted() -> String {
    let kinds: Vec<String> = KINDS
        .iter()
        .filter(|(v, ..)| !v.is_empty())
        .map(|(v, k, _)| format!("{v} {k}"))
        .collect();
    format!("{JSON}, {PROTOBUF} (for {})", kinds.join(", "))
}

fn unsupported(message: String) -> ApiError {
    ApiError::UnsupportedMediaType(message)
}

/// The JSON object a protobuf `body` encodes, for the kinds in [`KINDS`]: 400 for a body that is
/// not protobuf, 415 for another kind or one that sets a field not converted.
pub fn to_json(body: &[u8]) -> Result<Value> {
    let bad = |why: String| ApiError::BadRequest(format!("the protobuf body is not valid: {why}"));
    let envelope = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| bad("it does not start with the k8s protobuf magic".into()))?;
    let unknown = Unknown::decode(envelope).map_err(|e| bad(e.to_string()))?;
    if unknown
        .content_encoding
        .as_deref()
        .is_some_and(|e| !e.is_empty())
    {
        return Err(bad("encoded (compressed) raw data is not supported".into()));
    }
    let meta = unknown.type_meta.unwrap_or_default();
    let api_version = meta.api_version.unwrap_or_default();
    let kind = meta.kind.unwrap_or_default();
    let raw = unknown.raw.unwrap_or_default();
    let convert = KINDS
        .iter()
        .find(|(v, k, _)| *k == kind && (v.is_empty() || *v == api_version))
        .map(|(.., convert)| convert)
        .ok_or_else(|| {
            unsupported(format!(
                "{api_version} {kind} is not accepted in protobuf by this server: send it as {JSON} (e.g. kubectl create -f FILE) - accepted media types include: {}",
                accepted()
            ))
        })?;
    let mut object = convert(&raw)
        .map_err(|e| bad(format!("{kind}: {e}")))?
        .map_err(|Unconverted(what)| {
            unsupported(format!(
                "{api_version} {kind}: the protobuf body sets a field of {what} this server does not read from protobuf yet; send the object as {JSON} instead (e.g. kubectl create -f FILE)"
            ))
        })?;
    if let Some(o) = object.as_object_mut() {
        o.insert("apiVersion".into(), json!(api_version));
        o.insert("kind".into(), json!(kind));
    }
    Ok(object)
}
