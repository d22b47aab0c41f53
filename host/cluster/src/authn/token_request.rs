//! The `authentication.k8s.io/v1` TokenRequest subresource (`POST
//! .../serviceaccounts/<name>/token`): the hostile JSON body checked field by field, a token
//! minted for it, and the TokenRequest answered with `status.token`.

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::TokenLookup;
use super::service_account::{
    BoundKind, BoundObject, DEFAULT_EXPIRATION_SECONDS, ServiceAccountTokens, TokenSpec,
};
use crate::error::{ApiError, Result};

/// The API version of TokenRequest.
const API_VERSION: &str = "authentication.k8s.io/v1";
const KIND: &str = "TokenRequest";
/// The longest duration kube-apiserver's validation lets through before capping (2^32 s).
const MAX_REQUESTED_SECONDS: i64 = 1 << 32;

/// A field of the wrong JSON type: 400, as kube-apiserver answers a body it cannot decode.
fn wrong_type(field: &str, expected: &str) -> ApiError {
    ApiError::BadRequest(format!(
        "TokenRequest in version \"v1\" cannot be handled as a TokenRequest: {field}: expected {expected}"
    ))
}

impl ServiceAccountTokens {
    /// Answers a TokenRequest `body` for service account `sa_name` (uid `sa_uid`) in
    /// `namespace`, at `now`: the request echoed with `spec` defaulted and `status.token`,
    /// `status.expirationTimestamp` (RFC 3339) filled in.
    ///
    /// A bound object (`spec.boundObjectRef`, kind Pod or Secret) is looked up through `lookup`
    /// to stamp its uid into the token: 404 when it does not exist, 422 when the request names
    /// a different uid. Fields of the wrong type are 400, bad values 422, each naming the field.
    /// (kube-apiserver also refuses binding to a pod that runs as another service account; that
    /// check needs the pod's spec and is left to the caller.)
    pub fn token_request(
        &self,
        namespace: &str,
        sa_name: &str,
        sa_uid: &str,
        body: &Value,
        lookup: &dyn TokenLookup,
        now: Timestamp,
    ) -> Result<Value> {
        let invalid = |field: &str, reason: String| ApiError::Invalid {
            kind: KIND.into(),
            name: sa_name.into(),
            field: field.into(),
            reason,
        };
        let body = body
            .as_object()
            .ok_or_else(|| wrong_type("body", "an object"))?;
        check_type_meta(body)?;
        let empty = Map::new();
        let spec = match body.get("spec") {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(spec)) => spec,
            Some(_) => return Err(wrong_type("spec", "an object")),
        };
        let audiences = parse_audiences(spec, &invalid)?;
        let expiration_seconds = match spec.get("expirationSeconds") {
            None | Some(Value::Null) => DEFAULT_EXPIRATION_SECONDS,
            Some(v) => v
                .as_i64()
                .ok_or_else(|| wrong_type("spec.expirationSeconds", "an integer"))?,
        };
        if expiration_seconds > MAX_REQUESTED_SECONDS {
            return Err(invalid(
                "spec.expirationSeconds",
                format!(
                    "{expiration_seconds}: may not specify a duration larger than 2^32 seconds"
                ),
            ));
        }
        let bound_object = match spec.get("boundObjectRef") {
            None | Some(Value::Null) => None,
            Some(Value::Object(r)) => Some(bound_object(namespace, r, lookup, &invalid)?),
            Some(_) => return Err(wrong_type("spec.boundObjectRef", "an object")),
        };
        let token_spec = TokenSpec {
            namespace: namespace.to_owned(),
            service_account: sa_name.to_owned(),
            service_account_uid: sa_uid.to_owned(),
            audiences: audiences.clone(),
            expiration_seconds,
            bound_object: bound_object.clone(),
        };
        let (token, expires) = self.mint(&token_spec, now)?;
        let mut spec_out = json!({
            "audiences": if audiences.is_empty() { self.api_audiences().to_vec() } else { audiences },
            "expirationSeconds": expiration_seconds,
        });
        if let (Some(b), Some(map)) = (&bound_object, spec_out.as_object_mut()) {
            map.insert(
                "boundObjectRef".into(),
                json!({ "kind": b.kind.kind(), "apiVersion": "v1", "name": b.name, "uid": b.uid }),
            );
        }
        let created = Timestamp::from_second(now.as_second()).unwrap_or(now);
        Ok(json!({
            "kind": KIND,
            "apiVersion": API_VERSION,
            "metadata": {
                "name": sa_name,
                "namespace": namespace,
                "creationTimestamp": created.to_string(),
            },
            "spec": spec_out,
            "status": { "token": token, "expirationTimestamp": expires.to_string() },
        }))
    }
}

fn check_type_meta(body: &Map<String, Value>) -> Result<()> {
    for (field, expected) in [("kind", KIND), ("apiVersion", API_VERSION)] {
        match body.get(field) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s == expected => {}
            Some(Value::String(s)) => {
                return Err(ApiError::BadRequest(format!(
                    "{field}: {s:?} is not {expected:?}: the body must be a TokenRequest"
                )));
            }
            Some(_) => return Err(wrong_type(field, "a string")),
        }
    }
    Ok(())
}

fn parse_audiences(
    spec: &Map<String, Value>,
    invalid: &dyn Fn(&str, String) -> ApiError,
) -> Result<Vec<String>> {
    let items = match spec.get("audiences") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(wrong_type("spec.audiences", "an array of strings")),
    };
    items
        .iter()
        .enumerate()
        .map(|(i, a)| match a {
            Value::String(s) if s.is_empty() => Err(invalid(
                &format!("spec.audiences[{i}]"),
                "\"\": must not be empty".into(),
            )),
            Value::String(s) => Ok(s.clone()),
            _ => Err(wrong_type(&format!("spec.audiences[{i}]"), "a string")),
        })
        .collect()
}

fn bound_object(
    namespace: &str,
    r: &Map<String, Value>,
    lookup: &dyn TokenLookup,
    invalid: &dyn Fn(&str, String) -> ApiError,
) -> Result<BoundObject> {
    let string = |name: &str| -> Result<Option<&str>> {
        match r.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(wrong_type(
                &format!("spec.boundObjectRef.{name}"),
                "a string",
            )),
        }
    };
    let kind = match string("kind")? {
        Some("Pod") => BoundKind::Pod,
        Some("Secret") => BoundKind::Secret,
        Some(other) => {
            return Err(invalid(
                "spec.boundObjectRef.kind",
                format!("{other:?}: supported values: \"Pod\", \"Secret\""),
            ));
        }
        None => {
            return Err(invalid(
                "spec.boundObjectRef.kind",
                "\"\": supported values: \"Pod\", \"Secret\"".into(),
            ));
        }
    };
    match string("apiVersion")? {
        None | Some("v1") => {}
        Some(other) => {
            return Err(invalid(
                "spec.boundObjectRef.apiVersion",
                format!("{other:?}: must be \"v1\""),
            ));
        }
    }
    let name = match string("name")? {
        Some(n) if !n.is_empty() => n,
        _ => {
            return Err(invalid(
                "spec.boundObjectRef.name",
                "\"\": name is required".into(),
            ));
        }
    };
    let (uid, resource) = match kind {
        BoundKind::Pod => (lookup.pod_uid(namespace, name), "pods"),
        BoundKind::Secret => (lookup.secret_uid(namespace, name), "secrets"),
    };
    let uid = uid.ok_or_else(|| ApiError::NotFound {
        resource: resource.into(),
        name: name.into(),
    })?;
    if let Some(requested) = string("uid")?.filter(|u| !u.is_empty())
        && requested != uid
    {
        return Err(invalid(
            "spec.boundObjectRef.uid",
            format!(
                "{requested:?}: does not match the uid of the {} on record; it may have been deleted and recreated",
                kind.kind()
            ),
        ));
    }
    Ok(BoundObject {
        kind,
        name: name.to_owned(),
        uid,
    })
}

#[cfg(test)]
mod tests;
