//! The kinds the server serves: built-in ones and those CustomResourceDefinitions add.

use std::sync::RwLock;

use serde_json::{Value, json};

use crate::rbac::RBAC_GROUP as RBAC;

/// The verbs every served resource supports (discovery lists them; RBAC's `edit` grants them).
pub(crate) const RESOURCE_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// One served resource (a group, version and plural name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceType {
    /// API group; empty for the core group.
    pub group: String,
    /// Version, e.g. `v1`.
    pub version: String,
    /// Plural resource name, e.g. `pods`.
    pub plural: String,
    /// Singular name.
    pub singular: String,
    /// Kind, e.g. `Pod`.
    pub kind: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Whether `/status` is a separate subresource.
    pub status_subresource: bool,
    /// `kubectl` short names.
    pub short_names: Vec<String>,
    /// Categories (`kubectl get all`).
    pub categories: Vec<String>,
    /// The CRD's schema for this version, if any.
    pub schema: Option<Value>,
    /// The CRD's printer columns for this version.
    pub printer_columns: Vec<Value>,
    /// A request kind that is only ever created and answered, never stored (the access and
    /// token reviews): discovery lists only `create`.
    pub create_only: bool,
}

impl ResourceType {
    fn builtin(
        group: &str,
        version: &str,
        plural: &str,
        kind: &str,
        namespaced: bool,
        status: bool,
        short: &[&str],
    ) -> Self {
        Self {
            group: group.into(),
            version: version.into(),
            plural: plural.into(),
            singular: kind.to_lowercase(),
            kind: kind.into(),
            namespaced,
            status_subresource: status,
            short_names: short.iter().map(|s| (*s).to_owned()).collect(),
            categories: Vec::new(),
            schema: None,
            printer_columns: Vec::new(),
            create_only: false,
        }
    }

    /// A built-in review kind: created and answered, never stored.
    fn review(group: &str, plural: &str, kind: &str, namespaced: bool) -> Self {
        Self {
            create_only: true,
            ..Self::builtin(group, "v1", plural, kind, namespaced, false, &[])
        }
    }

    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Storage key shared by all versions of a resource: `plural.group` (`pods` for core).
    pub fn key(&self) -> String {
        if self.group.is_empty() || crate::events::is_view(self) {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The discovery entry (`APIResource`) and, if any, the status subresource's.
    pub fn discovery(&self) -> Vec<Value> {
        let verbs: &[&str] = if self.create_only {
            &["create"]
        } else {
            RESOURCE_VERBS
        };
        let mut out = vec![json!({
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": verbs,
            "shortNames": self.short_names,
            "categories": self.categories,
        })];
        if self.key() == "pods" {
            out.push(json!({"name": "pods/binding", "singularName": "", "namespaced": true, "kind": "Binding", "verbs": ["create"]}));
            out.push(json!({"name": "pods/log", "singularName": "", "namespaced": true, "kind": "Pod", "verbs": ["get"]}));
        }
        if self.key() == "serviceaccounts" {
            out.push(json!({"name": "serviceaccounts/token", "singularName": "", "namespaced": true, "group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest", "verbs": ["create"]}));
        }
        if self.status_subresource {
            out.push(json!({
                "name": format!("{}/status", self.plural),
                "singularName": "",
                "namespaced": self.namespaced,
                "kind": self.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        out
    }
}

/// The group of the access reviews.
pub(crate) const AUTHORIZATION: &str = "authorization.k8s.io";
/// The group of the token and self-subject reviews.
pub(crate) const AUTHENTICATION: &str = "authentication.k8s.io";

/// A built-in kind's objects live in namespaces.
const NS: u8 = 1;
/// A built-in kind has a `/status` subresource.
const STATUS: u8 = 2;
/// A built-in kind is in the `all` category (`kubectl get all`), as kube-apiserver lists it.
const ALL: u8 = 4;

/// The stored built-in kinds, all at `v1`: (group, plural, kind, flags, short names). Only
/// storage and validation: no controller acts on them unless one is named elsewhere.
#[rustfmt::skip]
const STORED: &[(&str, &str, &str, u8, &[&str])] = &[
    ("", "namespaces", "Namespace", STATUS, &["ns"]),
    ("", "nodes", "Node", STATUS, &["no"]),
    ("", "pods", "Pod", NS | STATUS | ALL, &["po"]),
    ("", "services", "Service", NS | STATUS | ALL, &["svc"]),
    ("", "persistentvolumeclaims", "PersistentVolumeClaim", NS | STATUS, &["pvc"]),
    ("", "persistentvolumes", "PersistentVolume", STATUS, &["pv"]),
    ("", "configmaps", "ConfigMap", NS, &["cm"]),
    ("", "secrets", "Secret", NS, &[]),
    ("", "events", "Event", NS, &["ev"]),
    ("", "serviceaccounts", "ServiceAccount", NS, &["sa"]),
    ("", "endpoints", "Endpoints", NS, &["ep"]),
    ("", "limitranges", "LimitRange", NS, &["limits"]),
    ("", "resourcequotas", "ResourceQuota", NS | STATUS, &["quota"]),
    ("", "replicationcontrollers", "ReplicationController", NS | STATUS | ALL, &["rc"]),
    ("apps", "deployments", "Deployment", NS | STATUS | ALL, &["deploy"]),
    ("apps", "replicasets", "ReplicaSet", NS | STATUS | ALL, &["rs"]),
    ("apps", "statefulsets", "StatefulSet", NS | STATUS | ALL, &["sts"]),
    ("apps", "daemonsets", "DaemonSet", NS | STATUS | ALL, &["ds"]),
    ("apps", "controllerrevisions", "ControllerRevision", NS, &[]),
    ("batch", "jobs", "Job", NS | STATUS | ALL, &[]),
    ("batch", "cronjobs", "CronJob", NS | STATUS | ALL, &["cj"]),
    ("policy", "poddisruptionbudgets", "PodDisruptionBudget", NS | STATUS, &["pdb"]),
    ("events.k8s.io", "events", "Event", NS, &["ev"]),
    ("coordination.k8s.io", "leases", "Lease", NS, &[]),
    ("networking.k8s.io", "networkpolicies", "NetworkPolicy", NS, &["netpol"]),
    ("discovery.k8s.io", "endpointslices", "EndpointSlice", NS, &[]),
    ("scheduling.k8s.io", "priorityclasses", "PriorityClass", 0, &["pc"]),
    ("storage.k8s.io", "storageclasses", "StorageClass", 0, &["sc"]),
    ("storage.k8s.io", "csidrivers", "CSIDriver", 0, &[]),
    ("storage.k8s.io", "csinodes", "CSINode", 0, &[]),
    ("storage.k8s.io", "csistoragecapacities", "CSIStorageCapacity", NS, &[]),
    ("storage.k8s.io", "volumeattachments", "VolumeAttachment", STATUS, &[]),
    ("storage.k8s.io", "volumeattributesclasses", "VolumeAttributesClass", 0, &["vac"]),
    (ADMISSION, "validatingwebhookconfigurations", "ValidatingWebhookConfiguration", 0, &[]),
    (ADMISSION, "mutatingwebhookconfigurations", "MutatingWebhookConfiguration", 0, &[]),
    (ADMISSION, "validatingadmissionpolicies", "ValidatingAdmissionPolicy", STATUS, &[]),
    (ADMISSION, "validatingadmissionpolicybindings", "ValidatingAdmissionPolicyBinding", 0, &[]),
    (ADMISSION, "mutatingadmissionpolicies", "MutatingAdmissionPolicy", 0, &[]),
    (ADMISSION, "mutatingadmissionpolicybindings", "MutatingAdmissionPolicyBinding", 0, &[]),
    (RBAC, "roles", "Role", NS, &[]),
    (RBAC, "clusterroles", "ClusterRole", 0, &[]),
    (RBAC, "rolebindings", "RoleBinding", NS, &[]),
    (RBAC, "clusterrolebindings", "ClusterRoleBinding", 0, &[]),
];

/// The group of the admission webhooks and policies.
const ADMISSION: &str = "admissionregistration.k8s.io";

/// Built-in kinds.
fn builtins() -> Vec<ResourceType> {
    let mut types: Vec<ResourceType> = STORED
        .iter()
        .map(|&(group, plural, kind, flags, short)| {
            let mut t = ResourceType::builtin(
                group,
                "v1",
                plural,
                kind,
                flags & NS != 0,
                flags & STATUS != 0,
                short,
            );
            if flags & ALL != 0 {
                t.categories = vec!["all".into()];
            }
            t
        })
        .collect();
    types.extend([
        ResourceType::review(
            AUTHORIZATION,
            "selfsubjectaccessreviews",
            "SelfSubjectAccessReview",
            false,
        ),
        ResourceType::review(
            AUTHORIZATION,
            "selfsubjectrulesreviews",
            "SelfSubjectRulesReview",
            false,
        ),
        ResourceType::review(
            AUTHORIZATION,
            "subjectaccessreviews",
            "SubjectAccessReview",
            false,
        ),
        ResourceType::review(
            AUTHORIZATION,
            "localsubjectaccessreviews",
            "LocalSubjectAccessReview",
            true,
        ),
        ResourceType::review(
            AUTHENTICATION,
            "selfsubjectreviews",
            "SelfSubjectReview",
            false,
        ),
        ResourceType::review(AUTHENTICATION, "tokenreviews", "TokenReview", false),
        ResourceType::builtin(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            false,
            true,
            &["crd", "crds"],
        ),
    ]);
    types
}

/// The resource types served right now. CRDs add and remove theirs at run time.
#[derive(Debug)]
pub struct Registry {
    types: RwLock<Vec<ResourceType>>,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            types: RwLock::new(crate::metrics::with_metrics(builtins())),
        }
    }
}

impl Registry {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<ResourceType>> {
        self.types
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Finds `plural` in `group/version`.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<ResourceType> {
        self.read()
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
            .cloned()
    }

    /// Every type, in registration order.
    pub fn all(&self) -> Vec<ResourceType> {
        self.read().clone()
    }

    /// Registers (or replaces) the served versions of a CRD object.
    pub fn register_crd(&self, crd: &Value) -> Result<(), String> {
        let spec = &crd["spec"];
        let group = spec["group"].as_str().ok_or("spec.group is required")?;
        let names = &spec["names"];
        let plural = names["plural"]
            .as_str()
            .ok_or("spec.names.plural is required")?;
        let kind = names["kind"]
            .as_str()
            .ok_or("spec.names.kind is required")?;
        let namespaced = match spec["scope"].as_str() {
            Some("Namespaced") => true,
            Some("Cluster") => false,
            _ => return Err("spec.scope must be Namespaced or Cluster".into()),
        };
        let versions = spec["versions"]
            .as_array()
            .filter(|v| !v.is_empty())
            .ok_or("spec.versions must not be empty")?;
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut added = Vec::new();
        for v in versions {
            if v["served"].as_bool() == Some(false) {
                continue;
            }
            let version = v["name"]
                .as_str()
                .ok_or("spec.versions[].name is required")?;
            added.push(ResourceType {
                group: group.into(),
                version: version.into(),
                plural: plural.into(),
                singular: names["singular"]
                    .as_str()
                    .map_or_else(|| kind.to_lowercase(), str::to_owned),
                kind: kind.into(),
                namespaced,
                status_subresource: v["subresources"]["status"].is_object(),
                short_names: strings(&names["shortNames"]),
                categories: strings(&names["categories"]),
                schema: v["schema"]["openAPIV3Schema"]
                    .as_object()
                    .map(|o| Value::Object(o.clone())),
                printer_columns: v["additionalPrinterColumns"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
                create_only: false,
            });
        }
        let mut types = self
            .types
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        types.retain(|t| !(t.group == group && t.plural == plural));
        types.extend(added);
        Ok(())
    }

    /// Stops serving a CRD's resources.
    pub fn unregister_crd(&self, crd: &Value) {
        let (Some(group), Some(plural)) = (
            crd["spec"]["group"].as_str(),
            crd["spec"]["names"]["plural"].as_str(),
        ) else {
            return;
        };
        let mut types = self
            .types
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        types.retain(|t| !(t.group == group && t.plural == plural));
    }
}
