//! The host's check of rendered objects: allowed kinds only, in the session's namespace only,
//! within size caps; host labels added.

use serde_json::Value;

use crate::types::SessionRequest;

/// Kinds every renderer may produce, as (apiVersion group, kind).
pub const BUILTIN_KINDS: &[(&str, &str)] = &[
    ("", "Pod"),
    ("", "PersistentVolumeClaim"),
    ("", "Service"),
    ("", "ConfigMap"),
    ("networking.k8s.io", "NetworkPolicy"),
    ("traefik.io", "IngressRoute"),
    ("traefik.containo.us", "IngressRoute"),
];
/// Default cap on the number of objects one render returns.
pub const DEFAULT_MAX_OBJECTS: usize = 32;
/// Default cap on one object's JSON size.
pub const DEFAULT_MAX_OBJECT_BYTES: usize = 256 << 10;
/// Default cap on all objects together.
pub const DEFAULT_MAX_TOTAL_BYTES: usize = 1 << 20;
/// Label the host puts on every rendered object.
pub const SESSION_LABEL: &str = "vdi.dev/session";
/// Label naming the operator as manager.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";

/// Why rendered output was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// Too many objects or bytes.
    #[error("{0}")]
    TooLarge(String),
    /// Object `index` is not a Kubernetes object.
    #[error("object {index}: {reason}")]
    Malformed {
        /// Position in the output.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// A kind outside the allowed list.
    #[error("object {index} ({kind} {name:?}): kind {api_version}/{kind} is not allowed")]
    KindNotAllowed {
        /// Position in the output.
        index: usize,
        /// Its apiVersion.
        api_version: String,
        /// Its kind.
        kind: String,
        /// Its name.
        name: String,
    },
    /// An object in another namespace.
    #[error(
        "object {index} ({kind} {name:?}): namespace {namespace:?} is not the session's {expected:?}"
    )]
    WrongNamespace {
        /// Position in the output.
        index: usize,
        /// Its kind.
        kind: String,
        /// Its name.
        name: String,
        /// The namespace it names.
        namespace: String,
        /// The session's namespace.
        expected: String,
    },
}

/// What rendered output must respect. The operator extends `extra_kinds`.
#[derive(Debug, Clone)]
pub struct RenderPolicy {
    /// Kinds allowed besides [`BUILTIN_KINDS`], as (group, kind).
    pub extra_kinds: Vec<(String, String)>,
    /// Most objects per render.
    pub max_objects: usize,
    /// Largest object, in bytes of JSON.
    pub max_object_bytes: usize,
    /// Largest total, in bytes of JSON.
    pub max_total_bytes: usize,
}

impl Default for RenderPolicy {
    fn default() -> Self {
        Self {
            extra_kinds: Vec::new(),
            max_objects: DEFAULT_MAX_OBJECTS,
            max_object_bytes: DEFAULT_MAX_OBJECT_BYTES,
            max_total_bytes: DEFAULT_MAX_TOTAL_BYTES,
        }
    }
}

impl RenderPolicy {
    fn allowed(&self, group: &str, kind: &str) -> bool {
        BUILTIN_KINDS.iter().any(|(g, k)| *g == group && *k == kind)
            || self
                .extra_kinds
                .iter()
                .any(|(g, k)| g == group && k == kind)
    }

    /// Parses and checks `objects`; fills in the namespace and the host's labels.
    pub fn check(
        &self,
        request: &SessionRequest,
        objects: Vec<String>,
    ) -> Result<Vec<Value>, RenderError> {
        if objects.len() > self.max_objects {
            return Err(RenderError::TooLarge(format!(
                "{} objects exceed the limit of {}",
                objects.len(),
                self.max_objects
            )));
        }
        let total: usize = objects.iter().map(String::len).sum();
        if total > self.max_total_bytes {
            return Err(RenderError::TooLarge(format!(
                "{total} bytes of objects exceed the limit of {}",
                self.max_total_bytes
            )));
        }
        objects
            .iter()
            .enumerate()
            .map(|(index, raw)| self.check_one(request, index, raw))
            .collect()
    }

    fn check_one(
        &self,
        request: &SessionRequest,
        index: usize,
        raw: &str,
    ) -> Result<Value, RenderError> {
        let malformed = |reason: String| RenderError::Malformed { index, reason };
        if raw.len() > self.max_object_bytes {
            return Err(RenderError::TooLarge(format!(
                "object {index} is {} bytes, over the limit of {}",
                raw.len(),
                self.max_object_bytes
            )));
        }
        let mut obj: Value =
            serde_json::from_str(raw).map_err(|e| malformed(format!("not JSON: {e}")))?;
        let field = |name: &str| obj.get(name).and_then(Value::as_str).map(str::to_owned);
        let api_version =
            field("apiVersion").ok_or_else(|| malformed("apiVersion is missing".into()))?;
        let kind = field("kind").ok_or_else(|| malformed("kind is missing".into()))?;
        let meta = obj
            .get_mut("metadata")
            .and_then(Value::as_object_mut)
            .ok_or_else(|| malformed("metadata is missing".into()))?;
        let name = meta
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if name.is_empty() {
            return Err(malformed("metadata.name is missing".into()));
        }
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        if !self.allowed(group, &kind) {
            return Err(RenderError::KindNotAllowed {
                index,
                api_version,
                kind,
                name,
            });
        }
        match meta.get("namespace").and_then(Value::as_str) {
            Some(ns) if ns != request.namespace => {
                return Err(RenderError::WrongNamespace {
                    index,
                    kind,
                    name,
                    namespace: ns.to_owned(),
                    expected: request.namespace.clone(),
                });
            }
            Some(_) => {}
            None => {
                meta.insert("namespace".into(), Value::String(request.namespace.clone()));
            }
        }
        let labels = meta
            .entry("labels")
            .or_insert_with(|| Value::Object(Default::default()));
        let labels = labels
            .as_object_mut()
            .ok_or_else(|| malformed("metadata.labels is not an object".into()))?;
        labels.insert(SESSION_LABEL.into(), Value::String(request.name.clone()));
        labels.insert(MANAGED_BY_LABEL.into(), Value::String("vdi".into()));
        Ok(obj)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request() -> SessionRequest {
        crate::fixtures::request("desk", "team", 0, false)
    }

    fn check(policy: &RenderPolicy, objects: &[Value]) -> Result<Vec<Value>, RenderError> {
        policy.check(&request(), objects.iter().map(Value::to_string).collect())
    }

    #[test]
    fn fills_namespace_and_host_labels() {
        let out = check(
            &RenderPolicy::default(),
            &[json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})],
        )
        .expect("allowed");
        assert_eq!(out[0]["metadata"]["namespace"], "team");
        assert_eq!(out[0]["metadata"]["labels"][SESSION_LABEL], "desk");
        assert_eq!(out[0]["metadata"]["labels"][MANAGED_BY_LABEL], "vdi");
    }

    #[test]
    fn refuses_other_kinds_unless_configured() {
        let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "pwn"}});
        let err =
            check(&RenderPolicy::default(), std::slice::from_ref(&role)).expect_err("refused");
        assert_eq!(
            err.to_string(),
            r#"object 0 (ClusterRoleBinding "pwn"): kind rbac.authorization.k8s.io/v1/ClusterRoleBinding is not allowed"#
        );
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}});
        assert!(matches!(
            check(&RenderPolicy::default(), std::slice::from_ref(&secret)),
            Err(RenderError::KindNotAllowed { .. })
        ));
        let policy = RenderPolicy {
            extra_kinds: vec![("".into(), "Secret".into())],
            ..RenderPolicy::default()
        };
        assert!(check(&policy, &[secret]).is_ok());
    }

    #[test]
    fn refuses_other_namespaces() {
        let obj = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "kube-system"}});
        assert_eq!(
            check(&RenderPolicy::default(), &[obj]).expect_err("refused"),
            RenderError::WrongNamespace {
                index: 0,
                kind: "Service".into(),
                name: "s".into(),
                namespace: "kube-system".into(),
                expected: "team".into(),
            }
        );
    }

    #[test]
    fn refuses_malformed_and_oversized_output() {
        let policy = RenderPolicy {
            max_object_bytes: 100,
            ..RenderPolicy::default()
        };
        let big = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "x".repeat(200)}});
        assert!(matches!(
            check(&policy, &[big]),
            Err(RenderError::TooLarge(_))
        ));
        let no_kind = json!({"apiVersion": "v1", "metadata": {"name": "c"}});
        assert_eq!(
            check(&RenderPolicy::default(), &[no_kind]).expect_err("refused"),
            RenderError::Malformed {
                index: 0,
                reason: "kind is missing".into()
            }
        );
        let err = RenderPolicy::default()
            .check(&request(), vec!["not json".into()])
            .expect_err("refused");
        assert!(
            matches!(err, RenderError::Malformed { index: 0, .. }),
            "{err:?}"
        );
    }
}
