//! Kinds that are created and answered, never stored: the access reviews (`kubectl auth
//! can-i`, `can-i --list`, and those other servers send), SelfSubjectReview (`kubectl auth
//! whoami`) and TokenRequest (`kubectl create token`).

use k8s_pb::api::authentication::v1 as authn;
use k8s_pb::api::authorization::v1 as authz;

use super::fields::{Converted, Obj};
use super::meta::{blank_status, field_requirement, object, requirement};

/// SelfSubjectAccessReview.
pub(super) fn self_subject_access_review(mut r: authz::SelfSubjectAccessReview) -> Converted {
    let mut o = object(r.metadata.take())?;
    o.obj("spec", &mut r.spec, |mut s| {
        let mut o = Obj::default();
        o.obj(
            "resourceAttributes",
            &mut s.resource_attributes,
            resource_attributes,
        )?;
        o.obj(
            "nonResourceAttributes",
            &mut s.non_resource_attributes,
            non_resource,
        )?;
        o.done(s, "SelfSubjectAccessReviewSpec")
    })?;
    blank_status(&mut r.status, "SubjectAccessReviewStatus")?;
    o.done(r, "SelfSubjectAccessReview")
}

/// SelfSubjectRulesReview.
pub(super) fn self_subject_rules_review(mut r: authz::SelfSubjectRulesReview) -> Converted {
    let mut o = object(r.metadata.take())?;
    o.obj("spec", &mut r.spec, |mut s| {
        let mut o = Obj::default();
        o.str("namespace", &mut s.namespace);
        o.done(s, "SelfSubjectRulesReviewSpec")
    })?;
    blank_status(&mut r.status, "SubjectRulesReviewStatus")?;
    o.done(r, "SelfSubjectRulesReview")
}

/// SubjectAccessReview.
pub(super) fn subject_access_review(mut r: authz::SubjectAccessReview) -> Converted {
    let mut o = object(r.metadata.take())?;
    o.obj("spec", &mut r.spec, subject_spec)?;
    blank_status(&mut r.status, "SubjectAccessReviewStatus")?;
    o.done(r, "SubjectAccessReview")
}

/// LocalSubjectAccessReview.
pub(super) fn local_subject_access_review(mut r: authz::LocalSubjectAccessReview) -> Converted {
    let mut o = object(r.metadata.take())?;
    o.obj("spec", &mut r.spec, subject_spec)?;
    blank_status(&mut r.status, "SubjectAccessReviewStatus")?;
    o.done(r, "LocalSubjectAccessReview")
}

/// SelfSubjectReview (it has no spec).
pub(super) fn self_subject_review(mut r: authn::SelfSubjectReview) -> Converted {
    let o = object(r.metadata.take())?;
    blank_status(&mut r.status, "SelfSubjectReviewStatus")?;
    o.done(r, "SelfSubjectReview")
}

/// TokenRequest (`kubectl create token`).
pub(super) fn token_request(mut r: authn::TokenRequest) -> Converted {
    let mut o = object(r.metadata.take())?;
    o.obj("spec", &mut r.spec, |mut s| {
        let mut o = Obj::default();
        o.strs("audiences", &mut s.audiences);
        o.int("expirationSeconds", &mut s.expiration_seconds);
        o.obj("boundObjectRef", &mut s.bound_object_ref, |mut b| {
            let mut o = Obj::default();
            o.str("kind", &mut b.kind);
            o.str("apiVersion", &mut b.api_version);
            o.str("name", &mut b.name);
            o.str("uid", &mut b.u_id);
            o.done(b, "BoundObjectReference")
        })?;
        o.done(s, "TokenRequestSpec")
    })?;
    blank_status(&mut r.status, "TokenRequestStatus")?;
    o.done(r, "TokenRequest")
}

fn subject_spec(mut s: authz::SubjectAccessReviewSpec) -> Converted {
    let mut o = Obj::default();
    o.obj(
        "resourceAttributes",
        &mut s.resource_attributes,
        resource_attributes,
    )?;
    o.obj(
        "nonResourceAttributes",
        &mut s.non_resource_attributes,
        non_resource,
    )?;
    o.str("user", &mut s.user);
    o.strs("groups", &mut s.groups);
    let extra = std::mem::take(&mut s.extra);
    if !extra.is_empty() {
        let extra = extra.into_iter().map(|(k, v)| (k, v.items.into()));
        o.set("extra", serde_json::Value::Object(extra.collect()));
    }
    o.str("uid", &mut s.uid);
    o.done(s, "SubjectAccessReviewSpec")
}

fn resource_attributes(mut r: authz::ResourceAttributes) -> Converted {
    let mut o = Obj::default();
    o.str("namespace", &mut r.namespace);
    o.str("verb", &mut r.verb);
    o.str("group", &mut r.group);
    o.str("version", &mut r.version);
    o.str("resource", &mut r.resource);
    o.str("subresource", &mut r.subresource);
    o.str("name", &mut r.name);
    o.obj("fieldSelector", &mut r.field_selector, |mut f| {
        let mut o = Obj::default();
        o.str("rawSelector", &mut f.raw_selector);
        o.list("requirements", &mut f.requirements, field_requirement)?;
        o.done(f, "FieldSelectorAttributes")
    })?;
    o.obj("labelSelector", &mut r.label_selector, |mut l| {
        let mut o = Obj::default();
        o.str("rawSelector", &mut l.raw_selector);
        o.list("requirements", &mut l.requirements, requirement)?;
        o.done(l, "LabelSelectorAttributes")
    })?;
    o.done(r, "ResourceAttributes")
}

fn non_resource(mut n: authz::NonResourceAttributes) -> Converted {
    let mut o = Obj::default();
    o.str("path", &mut n.path);
    o.str("verb", &mut n.verb);
    o.done(n, "NonResourceAttributes")
}
