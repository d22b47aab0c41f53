//! Every conversion between the CRD types (`vdi-crd`) and the plugins' WIT types
//! (`vdi_plugin_host::types`): the session request the hooks see, resources both ways, the
//! template and placement a renderer gets, and the admission decisions recorded in status.
//!
//! The session controller builds a session's request once per reconcile
//! ([`admitted_request`]) and hands it to whichever step needs it.

use std::collections::BTreeMap;

use serde_json::Value;
use vdi_crd::{
    AdmittedSpec, DecisionRecord, EffectiveResources, HookKind, Outcome, SessionResources,
    VDISession, VDISessionSpec, VDISessionStatus, VDITemplateSpec, format_duration, parse_duration,
};
use vdi_plugin_host::types::{
    ActiveSession, Operation, Placement, Resources, SessionRequest, SessionSpec, TemplateInfo,
    UserInfo,
};
use vdi_plugin_host::{Decision, DecisionOutcome};

use crate::calls::duration_micros;

/// Resources as the plugins take them.
pub(crate) fn to_wit_resources(r: EffectiveResources) -> Resources {
    Resources {
        gpu_slices: r.gpu_slices,
        gpu_memory_mib: r.gpu_memory_mib,
        cpu_millis: r.cpu_millis,
        memory_mib: r.memory_mib,
        video_encoder: r.video_encoder,
    }
}

/// Resources a plugin answered with, as the CRD stores them.
pub(crate) fn from_wit_resources(r: &Resources) -> EffectiveResources {
    EffectiveResources {
        gpu_slices: r.gpu_slices,
        gpu_memory_mib: r.gpu_memory_mib,
        cpu_millis: r.cpu_millis,
        memory_mib: r.memory_mib,
        video_encoder: r.video_encoder,
    }
}

/// Labels as the plugins take them (sorted pairs).
pub(crate) fn labels_of(labels: Option<&BTreeMap<String, String>>) -> Vec<(String, String)> {
    labels
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn user_of(spec: &VDISessionSpec) -> UserInfo {
    UserInfo {
        name: spec.user.name.clone(),
        groups: spec.user.groups.clone(),
    }
}

/// The request admission judges: the session as asked, resources with the template's defaults.
pub(crate) fn session_request(
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
            user: user_of(spec),
            template: spec.template.clone(),
            resources: to_wit_resources(resources),
            timeout_seconds,
            labels,
        },
    })
}

/// The request the plugins see for a session already admitted (scheduling, rendering).
pub(crate) fn admitted_request(session: &VDISession, admitted: &AdmittedSpec) -> SessionRequest {
    SessionRequest {
        name: session.metadata.name.clone().unwrap_or_default(),
        namespace: session.metadata.namespace.clone().unwrap_or_default(),
        spec: SessionSpec {
            user: user_of(&session.spec),
            template: admitted.template.clone(),
            resources: to_wit_resources(admitted.resources),
            timeout_seconds: admitted.timeout_seconds,
            labels: labels_of(session.metadata.labels.as_ref()),
        },
    }
}

/// Another session of the same user, as admission plugins see it (`template`: its template).
pub(crate) fn active_session(
    name: String,
    spec: &VDISessionSpec,
    template: Option<&VDITemplateSpec>,
) -> ActiveSession {
    ActiveSession {
        name,
        template: spec.template.clone(),
        resources: to_wit_resources(
            spec.resources
                .clone()
                .unwrap_or_default()
                .effective(template.and_then(|t| t.resources.as_ref())),
        ),
    }
}

/// The admission operation.
pub(crate) fn operation(create: bool) -> Operation {
    if create {
        Operation::Create
    } else {
        Operation::Update
    }
}

/// What the admission chain settled (`admitted`), as the spec to store (`spec` with the
/// chain's template, timeout and, when they changed from what was `asked`, resources) and the
/// values scheduling and rendering use.
pub(crate) fn admitted_spec(
    spec: &VDISessionSpec,
    asked: &Resources,
    admitted: SessionSpec,
) -> (VDISessionSpec, AdmittedSpec) {
    let resources = from_wit_resources(&admitted.resources);
    let mut out = spec.clone();
    out.template = admitted.template.clone();
    if admitted.timeout_seconds > 0 {
        out.timeout = Some(format_duration(admitted.timeout_seconds));
    }
    if admitted.resources != *asked {
        out.resources = Some(SessionResources::from(resources));
    }
    let settled = AdmittedSpec {
        template: admitted.template,
        resources,
        timeout_seconds: admitted.timeout_seconds,
    };
    (out, settled)
}

/// An admission plugin's decision, as recorded in status.
pub(crate) fn decision_record(d: &Decision) -> DecisionRecord {
    let (outcome, message) = match &d.outcome {
        DecisionOutcome::Allowed => (Outcome::Allowed, String::new()),
        DecisionOutcome::Denied(r) => (Outcome::Denied, r.clone()),
        DecisionOutcome::Mutated => (Outcome::Mutated, String::new()),
        DecisionOutcome::Skipped(e) => (Outcome::Skipped, e.to_string()),
        DecisionOutcome::Failed(e) => (Outcome::Failed, e.to_string()),
    };
    DecisionRecord::new(
        HookKind::Admission,
        &d.plugin,
        &d.digest,
        outcome,
        message,
        duration_micros(d.latency),
    )
}

/// The template `name` as its renderer sees it (settings as a JSON string, empty when none).
pub(crate) fn template_info(name: &str, template: &VDITemplateSpec) -> TemplateInfo {
    TemplateInfo {
        name: name.to_owned(),
        display_name: template.display_name.clone(),
        image: template.image.clone(),
        settings: template
            .settings
            .as_ref()
            .map_or_else(String::new, Value::to_string),
    }
}

/// Where the session was placed, as its renderer sees it; `None` before placement.
pub(crate) fn placement(status: &VDISessionStatus) -> Option<Placement> {
    Some(Placement {
        node: status.node.clone()?,
        gpu: status.gpu,
        reason: status.message.clone().unwrap_or_default(),
    })
}
