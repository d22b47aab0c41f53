//! Schemas of the built-in kinds, from k8s-openapi's generated types (its `schemars` feature).
//!
//! All kinds are generated once per process into one set of named definitions in OpenAPI v3
//! form (references to `#/components/schemas/...`, a described reference as
//! `allOf: [{$ref}]`, as kube-apiserver publishes them): `/openapi/v3` serves those, so
//! `kubectl explain` reads the real fields and their descriptions. Validation and pruning read
//! a structural copy per kind instead, built on first use and kept: every reference inlined,
//! descriptions dropped, the top-level `metadata` left out (the server checks it itself).

use std::collections::{BTreeSet, VecDeque};
use std::sync::{LazyLock, OnceLock};

use k8s_openapi::api as k8s;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiext;
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Map, Value, json};

use crate::resources::ResourceType;

/// Where the definitions' references point, as in an OpenAPI v3 document.
const REF_PREFIX: &str = "#/components/schemas/";

/// Adds a kind's schema (and those it references) to the generator; returns its name.
type Define = fn(&mut SchemaGenerator) -> String;

fn define<T: JsonSchema>(generator: &mut SchemaGenerator) -> String {
    generator.subschema_for::<T>();
    T::schema_name().into_owned()
}

/// The built-in kinds with a schema: (group, kind, its type).
#[rustfmt::skip]
const KINDS: &[(&str, &str, Define)] = &[
    ("", "Namespace", define::<k8s::core::v1::Namespace>),
    ("", "Node", define::<k8s::core::v1::Node>),
    ("", "Pod", define::<k8s::core::v1::Pod>),
    ("", "Service", define::<k8s::core::v1::Service>),
    ("", "PersistentVolumeClaim", define::<k8s::core::v1::PersistentVolumeClaim>),
    ("", "PersistentVolume", define::<k8s::core::v1::PersistentVolume>),
    ("", "ConfigMap", define::<k8s::core::v1::ConfigMap>),
    ("", "Secret", define::<k8s::core::v1::Secret>),
    ("", "Event", define::<k8s::core::v1::Event>),
    ("", "ServiceAccount", define::<k8s::core::v1::ServiceAccount>),
    ("", "Endpoints", define::<k8s::core::v1::Endpoints>),
    ("", "LimitRange", define::<k8s::core::v1::LimitRange>),
    ("", "ResourceQuota", define::<k8s::core::v1::ResourceQuota>),
    ("", "ReplicationController", define::<k8s::core::v1::ReplicationController>),
    ("apps", "Deployment", define::<k8s::apps::v1::Deployment>),
    ("apps", "ReplicaSet", define::<k8s::apps::v1::ReplicaSet>),
    ("apps", "StatefulSet", define::<k8s::apps::v1::StatefulSet>),
    ("apps", "DaemonSet", define::<k8s::apps::v1::DaemonSet>),
    ("apps", "ControllerRevision", define::<k8s::apps::v1::ControllerRevision>),
    ("batch", "Job", define::<k8s::batch::v1::Job>),
    ("batch", "CronJob", define::<k8s::batch::v1::CronJob>),
    ("policy", "PodDisruptionBudget", define::<k8s::policy::v1::PodDisruptionBudget>),
    ("events.k8s.io", "Event", define::<k8s::events::v1::Event>),
    ("coordination.k8s.io", "Lease", define::<k8s::coordination::v1::Lease>),
    ("networking.k8s.io", "NetworkPolicy", define::<k8s::networking::v1::NetworkPolicy>),
    ("discovery.k8s.io", "EndpointSlice", define::<k8s::discovery::v1::EndpointSlice>),
    ("scheduling.k8s.io", "PriorityClass", define::<k8s::scheduling::v1::PriorityClass>),
    ("storage.k8s.io", "StorageClass", define::<k8s::storage::v1::StorageClass>),
    ("storage.k8s.io", "CSIDriver", define::<k8s::storage::v1::CSIDriver>),
    ("storage.k8s.io", "CSINode", define::<k8s::storage::v1::CSINode>),
    ("storage.k8s.io", "CSIStorageCapacity", define::<k8s::storage::v1::CSIStorageCapacity>),
    ("storage.k8s.io", "VolumeAttachment", define::<k8s::storage::v1::VolumeAttachment>),
    ("storage.k8s.io", "VolumeAttributesClass", define::<k8s::storage::v1::VolumeAttributesClass>),
    (ADMISSION, "ValidatingWebhookConfiguration", define::<k8s::admissionregistration::v1::ValidatingWebhookConfiguration>),
    (ADMISSION, "MutatingWebhookConfiguration", define::<k8s::admissionregistration::v1::MutatingWebhookConfiguration>),
    (ADMISSION, "ValidatingAdmissionPolicy", define::<k8s::admissionregistration::v1::ValidatingAdmissionPolicy>),
    (ADMISSION, "ValidatingAdmissionPolicyBinding", define::<k8s::admissionregistration::v1::ValidatingAdmissionPolicyBinding>),
    (ADMISSION, "MutatingAdmissionPolicy", define::<k8s::admissionregistration::v1::MutatingAdmissionPolicy>),
    (ADMISSION, "MutatingAdmissionPolicyBinding", define::<k8s::admissionregistration::v1::MutatingAdmissionPolicyBinding>),
    (RBAC, "Role", define::<k8s::rbac::v1::Role>),
    (RBAC, "ClusterRole", define::<k8s::rbac::v1::ClusterRole>),
    (RBAC, "RoleBinding", define::<k8s::rbac::v1::RoleBinding>),
    (RBAC, "ClusterRoleBinding", define::<k8s::rbac::v1::ClusterRoleBinding>),
    ("apiextensions.k8s.io", "CustomResourceDefinition", define::<apiext::CustomResourceDefinition>),
];

const ADMISSION: &str = "admissionregistration.k8s.io";
const RBAC: &str = crate::rbac::RBAC_GROUP;

/// Every definition the built-in kinds reach, and each kind's name among them.
struct Definitions {
    schemas: Map<String, Value>,
    /// By index into [`KINDS`].
    names: Vec<String>,
}

static DEFINITIONS: LazyLock<Definitions> = LazyLock::new(generate);

/// The structural schema of each kind, by index into [`KINDS`], built on first use.
static STRUCTURAL: LazyLock<Vec<OnceLock<Value>>> =
    LazyLock::new(|| KINDS.iter().map(|_| OnceLock::new()).collect());

fn generate() -> Definitions {
    let mut generator = SchemaSettings::openapi3().into_generator();
    let names = KINDS
        .iter()
        .map(|(_, _, define)| define(&mut generator))
        .collect();
    let schemas = generator
        .take_definitions(true)
        .into_iter()
        .map(|(name, schema)| (name, opaque(schema)))
        .collect();
    Definitions { schemas, names }
}

/// Marks the definitions that hold arbitrary JSON (RawExtension, FieldsV1, apiextensions'
/// JSON and its one-of wrappers: every `type: object` without fields, and every one-of) as
/// preserving unknown fields, as kube-apiserver publishes them.
fn opaque(schema: Value) -> Value {
    let Value::Object(mut o) = schema else {
        return schema;
    };
    let fieldless = o.get("type").and_then(Value::as_str) == Some("object")
        && !o.contains_key("properties")
        && !o.contains_key("additionalProperties");
    let one_of = o.remove("oneOf").is_some() | o.remove("anyOf").is_some();
    if fieldless || one_of {
        // apiextensions' JSON may be any value, not only an object.
        o.remove("type");
        o.insert("x-kubernetes-preserve-unknown-fields".into(), json!(true));
    }
    Value::Object(o)
}

fn index(group: &str, kind: &str) -> Option<usize> {
    KINDS.iter().position(|(g, k, _)| *g == group && *k == kind)
}

/// The structural schema of a built-in kind, for validation and pruning.
pub(crate) fn structural(rt: &ResourceType) -> Option<&'static Value> {
    let i = index(&rt.group, &rt.kind)?;
    let cell = STRUCTURAL.get(i)?;
    Some(cell.get_or_init(|| {
        let defs = &*DEFINITIONS;
        let name = defs.names.get(i).map_or("", String::as_str);
        let mut stack = Vec::new();
        let mut schema = resolve(&defs.schemas, name, &mut stack);
        if let Some(o) = schema.as_object_mut() {
            if let Some(props) = o.get_mut("properties").and_then(Value::as_object_mut) {
                props.remove("metadata");
            }
            if let Some(required) = o.get_mut("required").and_then(Value::as_array_mut) {
                required.retain(|r| r != "metadata");
            }
        }
        schema
    }))
}

/// The name of a built-in kind's schema (`io.k8s.api.core.v1.Pod`).
pub(crate) fn name(rt: &ResourceType) -> Option<&'static str> {
    let defs = &*DEFINITIONS;
    defs.names
        .get(index(&rt.group, &rt.kind)?)
        .map(String::as_str)
}

/// A built-in kind's schema as `/openapi/v3` publishes it: its name, and the definitions it
/// reaches (itself included), with references left in place.
pub(crate) fn published(rt: &ResourceType) -> Option<(String, Map<String, Value>)> {
    let defs = &*DEFINITIONS;
    let name = defs.names.get(index(&rt.group, &rt.kind)?)?.clone();
    let mut out = Map::new();
    let mut queue = VecDeque::from([name.clone()]);
    while let Some(next) = queue.pop_front() {
        if out.contains_key(&next) {
            continue;
        }
        let Some(schema) = defs.schemas.get(&next) else {
            continue;
        };
        let mut refs = BTreeSet::new();
        references(schema, &mut refs);
        queue.extend(refs);
        out.insert(next, schema.clone());
    }
    Some((name, out))
}

/// The definition names `v` refers to.
fn references(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(o) => {
            if let Some(name) = o
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix(REF_PREFIX))
            {
                out.insert(name.to_owned());
            }
            o.values().for_each(|c| references(c, out));
        }
        Value::Array(a) => a.iter().for_each(|c| references(c, out)),
        _ => {}
    }
}

/// The definition a schema stands for: `{$ref}` or `{allOf: [{$ref}], description}`.
fn referenced(o: &Map<String, Value>) -> Option<&str> {
    let direct = o.get("$ref");
    let wrapped = || match o.get("allOf").and_then(Value::as_array).map(Vec::as_slice) {
        Some([only]) => only.get("$ref"),
        _ => None,
    };
    direct
        .or_else(wrapped)
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix(REF_PREFIX))
}

/// The definition `name` with every reference inlined and descriptions dropped. A reference
/// back into a definition being inlined (apiextensions' JSONSchemaProps) accepts anything.
fn resolve(defs: &Map<String, Value>, name: &str, stack: &mut Vec<String>) -> Value {
    match defs.get(name) {
        Some(schema) if !stack.iter().any(|s| s == name) => {
            stack.push(name.to_owned());
            let out = inline(defs, schema, stack);
            stack.pop();
            out
        }
        _ => json!({"x-kubernetes-preserve-unknown-fields": true}),
    }
}

fn inline(defs: &Map<String, Value>, schema: &Value, stack: &mut Vec<String>) -> Value {
    let Value::Object(o) = schema else {
        return schema.clone();
    };
    if let Some(name) = referenced(o) {
        return resolve(defs, name, stack);
    }
    let mut out = Map::new();
    for (key, child) in o {
        let value = match key.as_str() {
            "description" => continue,
            "properties" => Value::Object(
                child
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(field, s)| (field.clone(), inline(defs, s, stack)))
                    .collect(),
            ),
            "items" | "additionalProperties" => inline(defs, child, stack),
            _ => child.clone(),
        };
        out.insert(key.clone(), value);
    }
    Value::Object(out)
}

#[cfg(test)]
#[path = "builtin_tests.rs"]
mod tests;
