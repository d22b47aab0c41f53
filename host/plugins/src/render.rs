//! The host's check of rendered objects: allowed kinds only, in the session's namespace only,
//! within size caps; every Pod within the Pod Security Standards `restricted` profile and
//! confined to the session (its node, no API credentials, listed secrets only, its own volume
//! claims); Services, NetworkPolicies and IngressRoutes confined to the session's own pods and
//! URL path; host labels and the host's Pod fields filled in.
//!
//! Everything is checked before anything is returned, so callers apply all objects or none.

mod confine;
mod pod_security;
mod route;

use std::collections::BTreeSet;

use serde_json::Value;

use crate::types::{Placement, SessionRequest};

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
/// Default namespaces a NetworkPolicy peer may name: the ingress controller's and the
/// platform's (TURN server), as the desktop template renders them.
pub const DEFAULT_PEER_NAMESPACES: &[&str] = &["kube-system", "vdi-system"];
/// Default URL path prefix under which sessions are served (the desktop template's default).
pub const DEFAULT_SESSION_PATH_PREFIX: &str = "/sessions";
/// Label the host puts on every rendered object.
pub const SESSION_LABEL: &str = "vdi.dev/session";
/// Label naming the operator as manager.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// The only service account a rendered Pod runs as: the session namespace's own.
pub const SERVICE_ACCOUNT: &str = "default";

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
    /// An object that breaks a pod-security or confinement rule.
    #[error("object {index} ({kind} {name:?}): {field}: {detail} (rule {rule})")]
    Forbidden {
        /// Position in the output.
        index: usize,
        /// Its kind.
        kind: String,
        /// Its name.
        name: String,
        /// JSON path of the offending field, e.g. `spec.containers[0].securityContext.privileged`.
        field: String,
        /// The rule broken, e.g. `pod-security/privileged` or `confine/service-selector`.
        rule: &'static str,
        /// What the rule requires.
        detail: String,
    },
}

/// One broken rule, before it is tied to an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Violation {
    /// JSON path of the offending field.
    pub(crate) field: String,
    /// The rule's name.
    pub(crate) rule: &'static str,
    /// What the rule requires.
    pub(crate) detail: String,
}

impl Violation {
    pub(crate) fn new(
        field: impl Into<String>,
        rule: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            rule,
            detail: detail.into(),
        }
    }
}

/// The items of list field `key` under `parent` (whose JSON path, with a trailing dot, is `path`):
/// none when absent, refused when not a list.
pub(crate) fn list<'a>(parent: &'a Value, key: &str, path: &str) -> Result<&'a [Value], Violation> {
    match parent.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(Violation::new(
            format!("{path}{key}"),
            "shape",
            "must be a list",
        )),
    }
}

/// What rendered output must respect. The operator extends `extra_kinds` and, per call, adds the
/// template's secrets with [`RenderPolicy::with_allowed_secrets`].
#[derive(Debug, Clone)]
pub struct RenderPolicy {
    /// Kinds allowed besides [`BUILTIN_KINDS`], as (group, kind). Only the built-in kinds are
    /// checked beyond kind and namespace.
    pub extra_kinds: Vec<(String, String)>,
    /// Most objects per render.
    pub max_objects: usize,
    /// Largest object, in bytes of JSON.
    pub max_object_bytes: usize,
    /// Largest total, in bytes of JSON.
    pub max_total_bytes: usize,
    /// Secrets (in the session's namespace) a Pod or IngressRoute may reference: the template's
    /// pull secrets. None by default.
    pub allowed_secrets: Vec<String>,
    /// Namespaces besides the session's whose pods a NetworkPolicy peer may name.
    pub peer_namespaces: Vec<String>,
    /// URL path prefix of sessions: an IngressRoute matches only under
    /// `<prefix>/<namespace>/<name>`. Must agree with the template plugins' own setting.
    pub session_path_prefix: String,
}

impl Default for RenderPolicy {
    fn default() -> Self {
        Self {
            extra_kinds: Vec::new(),
            max_objects: DEFAULT_MAX_OBJECTS,
            max_object_bytes: DEFAULT_MAX_OBJECT_BYTES,
            max_total_bytes: DEFAULT_MAX_TOTAL_BYTES,
            allowed_secrets: Vec::new(),
            peer_namespaces: DEFAULT_PEER_NAMESPACES
                .iter()
                .map(|&n| n.to_owned())
                .collect(),
            session_path_prefix: DEFAULT_SESSION_PATH_PREFIX.to_owned(),
        }
    }
}

/// What one call adds to the policy: the session, and the node it was placed on when known.
pub(crate) struct Scope<'a> {
    /// The session being rendered.
    pub(crate) request: &'a SessionRequest,
    /// The placement's node; `None` leaves a rendered `nodeName` unchecked.
    pub(crate) node: Option<&'a str>,
    /// Names of the Services rendered in the same output.
    pub(crate) services: BTreeSet<String>,
    /// Names of the PersistentVolumeClaims rendered in the same output.
    pub(crate) claims: BTreeSet<String>,
}

/// An object that passed the first checks, with what later checks need.
struct Parsed {
    obj: Value,
    group: String,
    kind: String,
    name: String,
}

impl RenderPolicy {
    /// Adds `names` to the secrets rendered objects may reference.
    #[must_use]
    pub fn with_allowed_secrets<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_secrets
            .extend(names.into_iter().map(Into::into));
        self
    }

    fn allowed(&self, group: &str, kind: &str) -> bool {
        BUILTIN_KINDS.iter().any(|(g, k)| *g == group && *k == kind)
            || self
                .extra_kinds
                .iter()
                .any(|(g, k)| g == group && k == kind)
    }

    /// Parses and checks `objects` without knowing the placement (a rendered Pod's `nodeName`
    /// is left as it is); see [`RenderPolicy::check_placed`].
    pub fn check(
        &self,
        request: &SessionRequest,
        objects: Vec<String>,
    ) -> Result<Vec<Value>, RenderError> {
        self.check_on(request, None, objects)
    }

    /// Parses and checks `objects` for a session placed by `placement`: a Pod runs on the
    /// placement's node. Fills in the namespace, the host's labels and the host's Pod fields.
    pub fn check_placed(
        &self,
        request: &SessionRequest,
        placement: &Placement,
        objects: Vec<String>,
    ) -> Result<Vec<Value>, RenderError> {
        self.check_on(request, Some(&placement.node), objects)
    }

    fn check_on(
        &self,
        request: &SessionRequest,
        node: Option<&str>,
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
        let parsed = objects
            .iter()
            .enumerate()
            .map(|(index, raw)| self.check_one(request, index, raw))
            .collect::<Result<Vec<_>, _>>()?;
        let names_of = |kind: &str| {
            parsed
                .iter()
                .filter(|p| p.group.is_empty() && p.kind == kind)
                .map(|p| p.name.clone())
                .collect()
        };
        let scope = Scope {
            request,
            node,
            services: names_of("Service"),
            claims: names_of("PersistentVolumeClaim"),
        };
        parsed
            .into_iter()
            .enumerate()
            .map(|(index, mut p)| {
                self.confine(&scope, &p.group, &p.kind, &mut p.obj)
                    .map_err(|v| RenderError::Forbidden {
                        index,
                        kind: p.kind.clone(),
                        name: p.name.clone(),
                        field: v.field,
                        rule: v.rule,
                        detail: v.detail,
                    })?;
                Ok(p.obj)
            })
            .collect()
    }

    /// The per-kind rules; only a Pod is changed, and only once it passed.
    fn confine(
        &self,
        scope: &Scope<'_>,
        group: &str,
        kind: &str,
        obj: &mut Value,
    ) -> Result<(), Violation> {
        match (group, kind) {
            ("", "Pod") => {
                pod_security::restricted(obj)?;
                confine::pod(self, scope, obj)
            }
            ("", "PersistentVolumeClaim") => confine::volume_claim(obj),
            ("", "Service") => confine::service(scope, obj),
            ("networking.k8s.io", "NetworkPolicy") => confine::network_policy(self, scope, obj),
            ("traefik.io" | "traefik.containo.us", "IngressRoute") => {
                route::ingress_route(self, scope, obj)
            }
            _ => Ok(()),
        }
    }

    fn check_one(
        &self,
        request: &SessionRequest,
        index: usize,
        raw: &str,
    ) -> Result<Parsed, RenderError> {
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
        let group = api_version
            .rsplit_once('/')
            .map_or("", |(g, _)| g)
            .to_owned();
        if !self.allowed(&group, &kind) {
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
        Ok(Parsed {
            obj,
            group,
            kind,
            name,
        })
    }
}

#[cfg(test)]
mod tests;
