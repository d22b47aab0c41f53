//! The review kinds, created and answered, never stored: SelfSubjectAccessReview (`kubectl auth
//! can-i`), SelfSubjectRulesReview (`kubectl auth can-i --list`), SubjectAccessReview and
//! LocalSubjectAccessReview (for servers that act for users), SelfSubjectReview (`kubectl auth
//! whoami`).

use k8s_openapi::api::authentication::v1::{SelfSubjectReview, SelfSubjectReviewStatus};
use k8s_openapi::api::authorization::v1::{
    LocalSubjectAccessReview, NonResourceAttributes, ResourceAttributes, SelfSubjectAccessReview,
    SelfSubjectRulesReview, SubjectAccessReview, SubjectAccessReviewStatus,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::RbacCache;
use crate::error::{ApiError, Result};
use crate::rbac::{Attributes, Decision, UserInfo};
use crate::resources::ResourceType;
use crate::store::Store;

/// Answers a review of kind `rt` created in `namespace` (only LocalSubjectAccessReview is
/// namespaced) by `user`: the object sent, with its `status` filled in.
pub(crate) fn review(
    rbac: &RbacCache,
    store: &Store,
    rt: &ResourceType,
    namespace: &str,
    user: &UserInfo,
    body: &[u8],
) -> Result<Value> {
    let decide = |attrs: Attributes| access_status(rbac, store, attrs);
    match rt.plural.as_str() {
        "selfsubjectaccessreviews" => {
            let mut r: SelfSubjectAccessReview = parse(rt, body)?;
            let spec = &r.spec;
            r.status = Some(decide(attributes(
                user.clone(),
                spec.resource_attributes.as_ref(),
                spec.non_resource_attributes.as_ref(),
            )?));
            answer(rt, &r)
        }
        "subjectaccessreviews" => {
            let mut r: SubjectAccessReview = parse(rt, body)?;
            let subject = subject(r.spec.user.as_deref(), r.spec.groups.as_deref())?;
            r.status = Some(decide(attributes(
                subject,
                r.spec.resource_attributes.as_ref(),
                r.spec.non_resource_attributes.as_ref(),
            )?));
            answer(rt, &r)
        }
        "localsubjectaccessreviews" => {
            let mut r: LocalSubjectAccessReview = parse(rt, body)?;
            let subject = subject(r.spec.user.as_deref(), r.spec.groups.as_deref())?;
            let in_namespace = r
                .spec
                .resource_attributes
                .as_ref()
                .is_some_and(|a| a.namespace.as_deref().unwrap_or_default() == namespace);
            if !in_namespace {
                return Err(invalid(
                    rt,
                    "spec.resourceAttributes.namespace",
                    "must be the namespace of the request",
                ));
            }
            r.status = Some(decide(attributes(
                subject,
                r.spec.resource_attributes.as_ref(),
                None,
            )?));
            answer(rt, &r)
        }
        "selfsubjectrulesreviews" => {
            let mut r: SelfSubjectRulesReview = parse(rt, body)?;
            let ns = r.spec.namespace.clone().unwrap_or_default();
            r.status = Some(rbac.authorizer(store).rules_for(user, &ns));
            answer(rt, &r)
        }
        "selfsubjectreviews" => {
            let mut r: SelfSubjectReview = parse(rt, body)?;
            r.status = Some(SelfSubjectReviewStatus {
                user_info: Some(k8s_openapi::api::authentication::v1::UserInfo {
                    username: Some(user.name.clone()),
                    groups: Some(user.groups.clone()),
                    ..Default::default()
                }),
            });
            answer(rt, &r)
        }
        other => Err(ApiError::NotFound {
            resource: other.to_owned(),
            name: String::new(),
        }),
    }
}

fn parse<T: DeserializeOwned>(rt: &ResourceType, body: &[u8]) -> Result<T> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the {} is not valid: {e}", rt.kind)))
}

fn answer<T: Serialize>(rt: &ResourceType, review: &T) -> Result<Value> {
    let mut v = serde_json::to_value(review).map_err(|e| ApiError::Internal(e.to_string()))?;
    v["apiVersion"] = rt.api_version().into();
    v["kind"] = rt.kind.clone().into();
    Ok(v)
}

fn invalid(rt: &ResourceType, field: &str, reason: &str) -> ApiError {
    ApiError::Invalid {
        kind: rt.kind.clone(),
        name: String::new(),
        field: field.to_owned(),
        reason: reason.to_owned(),
    }
}

/// The subject of a SubjectAccessReview: a user, groups, or both.
fn subject(user: Option<&str>, groups: Option<&[String]>) -> Result<UserInfo> {
    let name = user.unwrap_or_default();
    let groups = groups.unwrap_or_default();
    if name.is_empty() && groups.is_empty() {
        return Err(ApiError::Invalid {
            kind: "SubjectAccessReview".into(),
            name: String::new(),
            field: "spec.user".into(),
            reason: "at least one of user or group must be specified".into(),
        });
    }
    Ok(UserInfo::new(name, groups.iter().cloned()))
}

/// The attributes a review asks about: exactly one of resource and non-resource attributes.
fn attributes(
    user: UserInfo,
    resource: Option<&ResourceAttributes>,
    non_resource: Option<&NonResourceAttributes>,
) -> Result<Attributes> {
    let field_error = |field: &str, reason: &str| ApiError::Invalid {
        kind: "SubjectAccessReview".into(),
        name: String::new(),
        field: field.into(),
        reason: reason.into(),
    };
    match (resource, non_resource) {
        (Some(r), None) => {
            let resource = match r.subresource.as_deref().filter(|s| !s.is_empty()) {
                Some(sub) => format!("{}/{sub}", r.resource.as_deref().unwrap_or_default()),
                None => r.resource.clone().unwrap_or_default(),
            };
            Ok(Attributes::resource(
                user,
                r.verb.as_deref().unwrap_or_default(),
                r.group.as_deref().unwrap_or_default(),
                &resource,
            )
            .in_namespace(r.namespace.as_deref().unwrap_or_default())
            .named(r.name.as_deref().unwrap_or_default()))
        }
        (None, Some(n)) => Ok(Attributes::non_resource(
            user,
            n.verb.as_deref().unwrap_or_default(),
            n.path.as_deref().unwrap_or_default(),
        )),
        (Some(_), Some(_)) => Err(field_error(
            "spec.nonResourceAttributes",
            "cannot be specified in combination with resourceAttributes",
        )),
        (None, None) => Err(field_error(
            "spec.resourceAttributes",
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        )),
    }
}

fn access_status(rbac: &RbacCache, store: &Store, attrs: Attributes) -> SubjectAccessReviewStatus {
    match rbac.authorizer(store).authorize(&attrs) {
        Decision::Allow => SubjectAccessReviewStatus {
            allowed: true,
            ..Default::default()
        },
        // RBAC has no opinion on what it does not grant: like kube-apiserver, the review says
        // no reason (kubectl prints a bare "no"), only the errors of dangling bindings.
        Decision::Deny { reason } => SubjectAccessReviewStatus {
            allowed: false,
            evaluation_error: reason.split_once(": RBAC: ").map(|(_, e)| e.to_owned()),
            ..Default::default()
        },
    }
}
