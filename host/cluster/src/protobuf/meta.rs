//! `meta.k8s.io/v1` pieces every kind shares: ObjectMeta, label selectors, owner references,
//! DeleteOptions, and the object envelope (metadata, a blank status).

use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use prost::Message;

use super::fields::{Converted, Obj, Unconverted, blank};

/// A top-level object: its converted `metadata` (always present, as JSON clients send it).
pub(super) fn object(metadata: Option<meta::ObjectMeta>) -> Converted<Obj> {
    let mut o = Obj::default();
    o.set("metadata", object_meta(metadata.unwrap_or_default())?);
    Ok(o)
}

/// Drops a `status` that holds nothing (Go writes an empty one for every object it sends);
/// one that holds something is not converted.
pub(super) fn blank_status<T: Message>(
    status: &mut Option<T>,
    what: &'static str,
) -> Converted<()> {
    match status.take() {
        Some(s) if !blank(&s.encode_to_vec()) => Err(Unconverted(what)),
        _ => Ok(()),
    }
}

/// ObjectMeta: what a client may set. The fields the server owns (timestamps, generation,
/// selfLink, managedFields) are dropped, as the server replaces them anyway; `uid` and
/// `resourceVersion` are kept because they are preconditions on an update.
pub(super) fn object_meta(mut m: meta::ObjectMeta) -> Converted {
    let mut o = Obj::default();
    o.str("name", &mut m.name);
    o.str("generateName", &mut m.generate_name);
    o.str("namespace", &mut m.namespace);
    o.str("uid", &mut m.uid);
    o.str("resourceVersion", &mut m.resource_version);
    o.map("labels", &mut m.labels);
    o.map("annotations", &mut m.annotations);
    o.list("ownerReferences", &mut m.owner_references, owner_reference)?;
    o.strs("finalizers", &mut m.finalizers);
    m.self_link = None;
    m.generation = None;
    m.creation_timestamp = None;
    m.deletion_timestamp = None;
    m.deletion_grace_period_seconds = None;
    m.managed_fields.clear();
    o.done(m, "ObjectMeta")
}

fn owner_reference(mut r: meta::OwnerReference) -> Converted {
    let mut o = Obj::default();
    o.str("apiVersion", &mut r.api_version);
    o.str("kind", &mut r.kind);
    o.str("name", &mut r.name);
    o.str("uid", &mut r.uid);
    o.flag("controller", &mut r.controller);
    o.flag("blockOwnerDeletion", &mut r.block_owner_deletion);
    o.done(r, "OwnerReference")
}

/// A label selector (`matchLabels`, `matchExpressions`).
pub(super) fn label_selector(mut s: meta::LabelSelector) -> Converted {
    let mut o = Obj::default();
    o.map("matchLabels", &mut s.match_labels);
    o.list("matchExpressions", &mut s.match_expressions, requirement)?;
    o.done(s, "LabelSelector")
}

/// One label selector requirement (`key`, `operator`, `values`).
pub(super) fn requirement(mut r: meta::LabelSelectorRequirement) -> Converted {
    let mut o = Obj::default();
    o.str("key", &mut r.key);
    o.str("operator", &mut r.operator);
    o.strs("values", &mut r.values);
    o.done(r, "LabelSelectorRequirement")
}

/// One field selector requirement (`key`, `operator`, `values`).
pub(super) fn field_requirement(mut r: meta::FieldSelectorRequirement) -> Converted {
    let mut o = Obj::default();
    o.str("key", &mut r.key);
    o.str("operator", &mut r.operator);
    o.strs("values", &mut r.values);
    o.done(r, "FieldSelectorRequirement")
}

/// DeleteOptions, the body typed clients send with a DELETE.
pub(super) fn delete_options(mut d: meta::DeleteOptions) -> Converted {
    let mut o = Obj::default();
    o.int("gracePeriodSeconds", &mut d.grace_period_seconds);
    o.obj("preconditions", &mut d.preconditions, |mut p| {
        let mut o = Obj::default();
        o.str("uid", &mut p.uid);
        o.str("resourceVersion", &mut p.resource_version);
        o.done(p, "Preconditions")
    })?;
    o.flag("orphanDependents", &mut d.orphan_dependents);
    o.str("propagationPolicy", &mut d.propagation_policy);
    o.strs("dryRun", &mut d.dry_run);
    o.flag(
        "ignoreStoreReadErrorWithClusterBreakingPotential",
        &mut d.ignore_store_read_error_with_cluster_breaking_potential,
    );
    o.done(d, "DeleteOptions")
}
