//! The admission webhooks' answers (`AdmissionReview` v1): the plugin chain and the identity
//! rules of [`Admission`] over the request, encoded as the API server reads them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use serde_json::{Value, json};

use crate::admission::{Admission, AdmissionSettings, AdmissionSources, Requester};
use crate::registry::PluginSet;

/// Answers an `AdmissionReview` (v1) for the webhook endpoints, as the JSON body to send.
/// `mutate` says whether the answer may carry a patch (mutating webhook) or only allow/deny
/// (validating webhook, which also refuses an untrusted requester naming someone else).
pub fn answer_review(
    set: &PluginSet,
    sources: &dyn AdmissionSources,
    settings: &AdmissionSettings,
    review: AdmissionReview<DynamicObject>,
    mutate: bool,
) -> Value {
    let admission = Admission {
        set,
        sources,
        settings,
    };
    encode(judge(&admission, review, mutate))
}

fn judge(
    admission: &Admission<'_>,
    review: AdmissionReview<DynamicObject>,
    mutate: bool,
) -> AdmissionReview<DynamicObject> {
    let request: AdmissionRequest<DynamicObject> = match review.try_into() {
        Ok(r) => r,
        Err(e) => {
            return AdmissionResponse::invalid(format!("malformed AdmissionReview: {e}"))
                .into_review();
        }
    };
    let response = AdmissionResponse::from(&request);
    let create = match request.operation {
        Operation::Create => true,
        Operation::Update => false,
        _ => return response.into_review(),
    };
    let Some(object) = &request.object else {
        return response.into_review();
    };
    let requester = Requester {
        user: request.user_info.username.clone().unwrap_or_default(),
        groups: request.user_info.groups.clone().unwrap_or_default(),
    };
    let Ok(original) = serde_json::to_value(object) else {
        return response.deny("object is not JSON").into_review();
    };
    let old = request
        .old_object
        .as_ref()
        .and_then(|o| serde_json::to_value(o).ok());
    let mut obj = original.clone();
    let judged = if mutate {
        admission.mutate(&requester, create, &mut obj, old.as_ref())
    } else {
        admission.validate(&requester, create, &mut obj, old.as_ref())
    };
    match judged {
        Err(refusal) => {
            let mut r = response.deny(refusal.message);
            r.result.code = refusal.code;
            r.into_review()
        }
        Ok(()) if !mutate || obj == original => response.into_review(),
        Ok(()) => {
            let patch = json_patch::diff(&original, &obj);
            match response.with_patch(patch) {
                Ok(r) => r.into_review(),
                Err(e) => {
                    AdmissionResponse::invalid(format!("cannot encode patch: {e}")).into_review()
                }
            }
        }
    }
}

/// The review as JSON, with `response.patch` as Kubernetes encodes `[]byte`: a base64 string
/// (kube's `AdmissionResponse` serializes its `Vec<u8>` as an array of numbers, which the API
/// server refuses).
fn encode(mut review: AdmissionReview<DynamicObject>) -> Value {
    let response = review.response.as_mut();
    let uid = response.as_ref().map(|r| r.uid.clone()).unwrap_or_default();
    let patch = response.and_then(|r| r.patch.take());
    let mut body = match serde_json::to_value(&review) {
        Ok(body) => body,
        Err(e) => {
            tracing::error!(error = %e, "cannot encode an AdmissionReview");
            return json!({
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "response": {
                    "uid": uid,
                    "allowed": false,
                    "status": {"code": 500, "message": "the webhook cannot encode its answer"},
                },
            });
        }
    };
    if let (Some(patch), Some(response)) = (
        patch,
        body.get_mut("response").and_then(Value::as_object_mut),
    ) {
        response.insert("patch".into(), Value::String(STANDARD.encode(patch)));
    }
    body
}
