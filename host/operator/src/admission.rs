//! Admission of `VDISession` requests through the plugin chain, shared by the validating and
//! mutating webhook (real clusters), the embedded control plane's in-process hook, and the
//! session controller (which records the decisions in the session's status).

use std::time::Duration;

use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use serde_json::Value;
use vdi_crd::{
    AdmittedSpec, DecisionRecord, SessionPhase, SessionResources, VDISession, VDISessionSpec,
    VDITemplateSpec, format_duration, parse_duration,
};
use vdi_plugin_host::types::{
    ActiveSession, AdmissionContext, Resources, SessionRequest, SessionSpec, UserInfo,
};
use vdi_plugin_host::{ChainVerdict, DecisionOutcome};

use crate::registry::PluginSet;

/// Groups whose members may create sessions for other users (the dashboard API acting for
/// users, and cluster admins).
pub const TRUSTED_GROUPS: &[&str] = &["system:masters", "vdi:session-admins"];

/// Where admission reads what it needs besides the request.
pub trait AdmissionSources: Send + Sync {
    /// The template called `name`.
    fn template(&self, name: &str) -> Option<VDITemplateSpec>;
    /// The sessions `user` has, as `(namespace, name, spec, phase)`.
    fn sessions_of(&self, user: &str) -> Vec<(String, String, VDISessionSpec, SessionPhase)>;
}

/// Who asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester {
    /// User name.
    pub user: String,
    /// Groups.
    pub groups: Vec<String>,
}

impl Requester {
    fn trusted(&self) -> bool {
        self.groups
            .iter()
            .any(|g| TRUSTED_GROUPS.contains(&g.as_str()))
            || self.user.starts_with("system:serviceaccount:vdi-system:")
    }
}

/// The chain's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Review {
    /// Admitted, with the spec to store (changed when a plugin mutated it).
    Allowed {
        /// The spec, mutations applied.
        spec: VDISessionSpec,
        /// The values scheduling and rendering use.
        admitted: AdmittedSpec,
        /// Plugin decisions.
        decisions: Vec<DecisionRecord>,
    },
    /// Refused.
    Denied {
        /// One CamelCase word (`AdmissionDenied`, `PluginFailed`, `TemplateNotFound`, ...).
        reason: String,
        /// For the user.
        message: String,
        /// Plugin decisions.
        decisions: Vec<DecisionRecord>,
    },
}

fn to_wit_resources(r: vdi_crd::EffectiveResources) -> Resources {
    Resources {
        gpu_slices: r.gpu_slices,
        gpu_memory_mib: r.gpu_memory_mib,
        cpu_millis: r.cpu_millis,
        memory_mib: r.memory_mib,
        video_encoder: r.video_encoder,
    }
}

fn from_wit_resources(r: &Resources) -> vdi_crd::EffectiveResources {
    vdi_crd::EffectiveResources {
        gpu_slices: r.gpu_slices,
        gpu_memory_mib: r.gpu_memory_mib,
        cpu_millis: r.cpu_millis,
        memory_mib: r.memory_mib,
        video_encoder: r.video_encoder,
    }
}

/// The plugin-facing request for a session (resources with the template's defaults).
pub fn session_request(
    name: &str,
    namespace: &str,
    spec: &VDISessionSpec,
    labels: Vec<(String, String)>,
    template: Option<&VDITemplateSpec>,
) -> Result<SessionRequest, String> {
    let resources = spec
        .resources
        .clone()
        .unwrap_or_default()
        .effective(template.and_then(|t| t.resources.as_ref()));
    let timeout_seconds = match &spec.timeout {
        Some(t) => parse_duration(t).map_err(|e| format!("spec.timeout: {e}"))?,
        None => 0,
    };
    Ok(SessionRequest {
        name: name.to_owned(),
        namespace: namespace.to_owned(),
        spec: SessionSpec {
            user: UserInfo {
                name: spec.user.name.clone(),
                groups: spec.user.groups.clone(),
            },
            template: spec.template.clone(),
            resources: to_wit_resources(resources),
            timeout_seconds,
            labels,
        },
    })
}

/// The request the plugins see for a session already admitted (scheduling, rendering).
pub fn admitted_request(session: &VDISession, admitted: &AdmittedSpec) -> SessionRequest {
    SessionRequest {
        name: session.metadata.name.clone().unwrap_or_default(),
        namespace: session.metadata.namespace.clone().unwrap_or_default(),
        spec: SessionSpec {
            user: UserInfo {
                name: session.spec.user.name.clone(),
                groups: session.spec.user.groups.clone(),
            },
            template: admitted.template.clone(),
            resources: to_wit_resources(admitted.resources),
            timeout_seconds: admitted.timeout_seconds,
            labels: labels_of(session.metadata.labels.as_ref()),
        },
    }
}

/// Labels as the plugins take them (sorted pairs).
pub fn labels_of(
    labels: Option<&std::collections::BTreeMap<String, String>>,
) -> Vec<(String, String)> {
    labels
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn record(d: &vdi_plugin_host::Decision) -> DecisionRecord {
    let (outcome, message) = match &d.outcome {
        DecisionOutcome::Allowed => ("Allowed", String::new()),
        DecisionOutcome::Denied(r) => ("Denied", r.clone()),
        DecisionOutcome::Mutated => ("Mutated", String::new()),
        DecisionOutcome::Skipped(e) => ("Skipped", e.to_string()),
        DecisionOutcome::Failed(e) => ("Failed", e.to_string()),
    };
    DecisionRecord {
        hook: "admission".into(),
        plugin: d.plugin.clone(),
        digest: d.digest.clone(),
        outcome: outcome.into(),
        message,
        latency_micros: duration_micros(d.latency),
    }
}

/// A duration in whole microseconds.
pub fn duration_micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Runs the chain in `set` over a session request.
pub fn review(
    set: &PluginSet,
    sources: &dyn AdmissionSources,
    create: bool,
    name: &str,
    namespace: &str,
    spec: &VDISessionSpec,
    labels: Vec<(String, String)>,
) -> Review {
    let deny = |reason: &str, message: String| Review::Denied {
        reason: reason.into(),
        message,
        decisions: Vec::new(),
    };
    let Some(template) = sources.template(&spec.template) else {
        return deny(
            "TemplateNotFound",
            format!(
                "spec.template: VDITemplate {:?} does not exist",
                spec.template
            ),
        );
    };
    let request = match session_request(name, namespace, spec, labels, Some(&template)) {
        Ok(r) => r,
        Err(e) => return deny("Invalid", e),
    };
    let active_sessions = sources
        .sessions_of(&spec.user.name)
        .into_iter()
        .filter(|(ns, n, _, phase)| !phase.is_final() && (ns != namespace || n != name))
        .map(|(_, n, s, _)| ActiveSession {
            name: n,
            template: s.template.clone(),
            resources: to_wit_resources(
                s.resources.unwrap_or_default().effective(
                    sources
                        .template(&s.template)
                        .and_then(|t| t.resources)
                        .as_ref(),
                ),
            ),
        })
        .collect();
    let context = AdmissionContext {
        operation: if create {
            vdi_plugin_host::types::Operation::Create
        } else {
            vdi_plugin_host::types::Operation::Update
        },
        active_sessions,
    };
    let outcome = set
        .chain_for(&spec.template, namespace)
        .review(&request, &context);
    let decisions: Vec<DecisionRecord> = outcome.decisions.iter().map(record).collect();
    match outcome.verdict {
        ChainVerdict::Allowed { spec: admitted, .. } => {
            let resources = from_wit_resources(&admitted.resources);
            let mut out = spec.clone();
            out.template = admitted.template.clone();
            if admitted.timeout_seconds > 0 {
                out.timeout = Some(format_duration(admitted.timeout_seconds));
            }
            if admitted.resources != request.spec.resources {
                out.resources = Some(SessionResources::from(resources));
            }
            Review::Allowed {
                spec: out,
                admitted: AdmittedSpec {
                    template: admitted.template,
                    resources,
                    timeout_seconds: admitted.timeout_seconds,
                },
                decisions,
            }
        }
        ChainVerdict::Denied { plugin, reason } => Review::Denied {
            reason: "AdmissionDenied".into(),
            message: format!("denied by plugin {plugin}: {reason}"),
            decisions,
        },
        ChainVerdict::Failed { plugin, error } => Review::Denied {
            reason: "PluginFailed".into(),
            message: format!("plugin {plugin} failed (failurePolicy Fail): {error}"),
            decisions,
        },
    }
}

/// Why an object is refused: HTTP status and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 403 for a policy denial, 422 for an invalid object.
    pub code: u16,
    /// For the user.
    pub message: String,
}

/// Admits a `VDISession` object (as JSON), mutating it in place: what both the webhook and the
/// embedded control plane's in-process hook do. Non-trusted requesters get their own identity
/// in `spec.user`. Updates that leave the spec alone are not re-judged.
pub fn admit_object(
    set: &PluginSet,
    sources: &dyn AdmissionSources,
    requester: &Requester,
    create: bool,
    obj: &mut Value,
    old: Option<&Value>,
) -> Result<(), Refusal> {
    let invalid = |message: String| Refusal { code: 422, message };
    if !create && old.is_some_and(|o| o["spec"] == obj["spec"]) {
        return Ok(());
    }
    let mut session: VDISession =
        serde_json::from_value(obj.clone()).map_err(|e| invalid(format!("VDISession: {e}")))?;
    if !requester.trusted() {
        session.spec.user.name = requester.user.clone();
        session.spec.user.groups = requester.groups.clone();
    }
    let name = session.metadata.name.clone().unwrap_or_default();
    let namespace = session.metadata.namespace.clone().unwrap_or_default();
    let labels = labels_of(session.metadata.labels.as_ref());
    match review(
        set,
        sources,
        create,
        &name,
        &namespace,
        &session.spec,
        labels,
    ) {
        Review::Allowed { spec, .. } => {
            obj["spec"] = serde_json::to_value(&spec).map_err(|e| invalid(e.to_string()))?;
            Ok(())
        }
        Review::Denied {
            reason, message, ..
        } => Err(Refusal {
            code: if reason == "Invalid" || reason == "TemplateNotFound" {
                422
            } else {
                403
            },
            message,
        }),
    }
}

/// Answers an `AdmissionReview` (v1) for the webhook endpoints. `mutate` says whether the
/// answer may carry a patch (mutating webhook) or only allow/deny (validating webhook).
pub fn answer_review(
    set: &PluginSet,
    sources: &dyn AdmissionSources,
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
    match admit_object(set, sources, &requester, create, &mut obj, old.as_ref()) {
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
