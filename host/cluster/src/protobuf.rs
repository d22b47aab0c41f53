//! Request bodies in Kubernetes' protobuf encoding (`application/vnd.kubernetes.protobuf`):
//! the `k8s\0` envelope around a `runtime.Unknown`, decoded with the kube-rs project's
//! `k8s-pb` bindings and turned into the JSON the handlers read. kubectl sends built-in kinds
//! this way; the server answers in JSON, which kubectl accepts.
//!
//! Decoded so far: the reviews kubectl creates (`auth can-i`, `auth can-i --list`,
//! `auth whoami`), the access reviews other servers send, and TokenRequest (`kubectl create
//! token`). Any other protobuf body is refused with 415, never misread.

use k8s_pb::api::authentication::v1 as authn;
use k8s_pb::api::authorization::v1 as authz;
use k8s_pb::apimachinery::pkg::runtime::Unknown;
use prost::Message;
use serde_json::{Map, Value, json};

use crate::error::{ApiError, Result};

/// The media type of protobuf bodies.
pub const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";
/// The four bytes every protobuf-encoded object starts with.
const MAGIC: &[u8] = b"k8s\0";

/// Whether a `Content-Type` names the protobuf encoding.
pub fn is_protobuf(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case(PROTOBUF))
}

/// The JSON object a protobuf `body` encodes, for the kinds listed in the module docs.
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
    let decode_err = |e: prost::DecodeError| bad(format!("{kind}: {e}"));
    let spec = match (api_version.as_str(), kind.as_str()) {
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview") => {
            let r = authz::SelfSubjectAccessReview::decode(raw.as_slice()).map_err(decode_err)?;
            let spec = r.spec.unwrap_or_default();
            access_spec(spec.resource_attributes, spec.non_resource_attributes)
        }
        ("authorization.k8s.io/v1", "SelfSubjectRulesReview") => {
            let r = authz::SelfSubjectRulesReview::decode(raw.as_slice()).map_err(decode_err)?;
            json!({"namespace": r.spec.unwrap_or_default().namespace})
        }
        ("authorization.k8s.io/v1", "SubjectAccessReview") => {
            let r = authz::SubjectAccessReview::decode(raw.as_slice()).map_err(decode_err)?;
            subject_spec(r.spec.unwrap_or_default())
        }
        ("authorization.k8s.io/v1", "LocalSubjectAccessReview") => {
            let r = authz::LocalSubjectAccessReview::decode(raw.as_slice()).map_err(decode_err)?;
            subject_spec(r.spec.unwrap_or_default())
        }
        ("authentication.k8s.io/v1", "SelfSubjectReview") => {
            authn::SelfSubjectReview::decode(raw.as_slice()).map_err(decode_err)?;
            json!({})
        }
        ("authentication.k8s.io/v1", "TokenRequest") => {
            let r = authn::TokenRequest::decode(raw.as_slice()).map_err(decode_err)?;
            token_request_spec(r.spec.unwrap_or_default())
        }
        _ => return Err(ApiError::UnsupportedMediaType),
    };
    Ok(json!({"apiVersion": api_version, "kind": kind, "metadata": {}, "spec": spec}))
}

/// Sets `key` when `value` is present.
fn put(map: &mut Map<String, Value>, key: &str, value: Option<impl Into<Value>>) {
    if let Some(v) = value {
        map.insert(key.to_owned(), v.into());
    }
}

fn access_spec(
    resource: Option<authz::ResourceAttributes>,
    non_resource: Option<authz::NonResourceAttributes>,
) -> Value {
    let mut spec = Map::new();
    if let Some(r) = resource {
        let mut m = Map::new();
        put(&mut m, "namespace", r.namespace);
        put(&mut m, "verb", r.verb);
        put(&mut m, "group", r.group);
        put(&mut m, "version", r.version);
        put(&mut m, "resource", r.resource);
        put(&mut m, "subresource", r.subresource);
        put(&mut m, "name", r.name);
        spec.insert("resourceAttributes".into(), Value::Object(m));
    }
    if let Some(n) = non_resource {
        let mut m = Map::new();
        put(&mut m, "path", n.path);
        put(&mut m, "verb", n.verb);
        spec.insert("nonResourceAttributes".into(), Value::Object(m));
    }
    Value::Object(spec)
}

fn subject_spec(spec: authz::SubjectAccessReviewSpec) -> Value {
    let mut out = access_spec(spec.resource_attributes, spec.non_resource_attributes);
    if let Some(m) = out.as_object_mut() {
        put(m, "user", spec.user);
        put(m, "uid", spec.uid);
        m.insert("groups".into(), json!(spec.groups));
    }
    out
}

fn token_request_spec(spec: authn::TokenRequestSpec) -> Value {
    let mut m = Map::new();
    m.insert("audiences".into(), json!(spec.audiences));
    put(&mut m, "expirationSeconds", spec.expiration_seconds);
    if let Some(r) = spec.bound_object_ref {
        let mut b = Map::new();
        put(&mut b, "kind", r.kind);
        put(&mut b, "apiVersion", r.api_version);
        put(&mut b, "name", r.name);
        put(&mut b, "uid", r.u_id);
        m.insert("boundObjectRef".into(), Value::Object(b));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_pb::apimachinery::pkg::runtime::TypeMeta;

    fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
        let unknown = Unknown {
            type_meta: Some(TypeMeta {
                api_version: Some(api_version.into()),
                kind: Some(kind.into()),
            }),
            raw: Some(raw),
            content_encoding: None,
            content_type: None,
        };
        let mut out = MAGIC.to_vec();
        out.extend(unknown.encode_to_vec());
        out
    }

    #[test]
    fn a_self_subject_access_review_decodes_to_its_json() {
        let review = authz::SelfSubjectAccessReview {
            spec: Some(authz::SelfSubjectAccessReviewSpec {
                resource_attributes: Some(authz::ResourceAttributes {
                    namespace: Some("team".into()),
                    verb: Some("create".into()),
                    group: Some("vdi.dev".into()),
                    resource: Some("vdisessions".into()),
                    ..Default::default()
                }),
                non_resource_attributes: None,
            }),
            ..Default::default()
        };
        let body = envelope(
            "authorization.k8s.io/v1",
            "SelfSubjectAccessReview",
            review.encode_to_vec(),
        );
        let v = to_json(&body).expect("decoded");
        assert_eq!(v["kind"], "SelfSubjectAccessReview");
        assert_eq!(
            v["spec"]["resourceAttributes"],
            json!({"namespace": "team", "verb": "create", "group": "vdi.dev", "resource": "vdisessions"})
        );
    }

    #[test]
    fn a_token_request_keeps_its_audiences_and_bound_object() {
        let request = authn::TokenRequest {
            spec: Some(authn::TokenRequestSpec {
                audiences: vec!["vault".into()],
                expiration_seconds: Some(900),
                bound_object_ref: Some(authn::BoundObjectReference {
                    kind: Some("Pod".into()),
                    name: Some("p".into()),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        };
        let body = envelope(
            "authentication.k8s.io/v1",
            "TokenRequest",
            request.encode_to_vec(),
        );
        let v = to_json(&body).expect("decoded");
        assert_eq!(
            v["spec"],
            json!({"audiences": ["vault"], "expirationSeconds": 900, "boundObjectRef": {"kind": "Pod", "name": "p"}})
        );
    }

    #[test]
    fn other_kinds_and_broken_bodies_are_refused() {
        let pod = envelope("v1", "Pod", vec![]);
        assert!(matches!(to_json(&pod), Err(ApiError::UnsupportedMediaType)));
        assert!(matches!(to_json(b"{}"), Err(ApiError::BadRequest(_))));
        let mut garbage = MAGIC.to_vec();
        garbage.extend([0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert!(matches!(to_json(&garbage), Err(ApiError::BadRequest(_))));
        let truncated = envelope(
            "authorization.k8s.io/v1",
            "SelfSubjectAccessReview",
            vec![0x0a, 0x05, 0x01],
        );
        assert!(matches!(to_json(&truncated), Err(ApiError::BadRequest(_))));
    }
}
