//! The GraphQL object types, read from the custom resources.

use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use k8s_openapi::api::core::v1::Event;
use kube::api::ListParams;
use kube::{Api, ResourceExt as _};
use vdi_crd::{SessionPhase, SessionResources, VDISession, VDITemplate};

use super::ctx;
use crate::error::ApiError;
use crate::ids;

/// Most Events returned for one session (the newest).
const MAX_EVENTS: usize = 50;

/// Where a session is in its life.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(rename_items = "SCREAMING_SNAKE_CASE")]
pub enum Phase {
    /// Waiting for admission or a place to run.
    Pending,
    /// Admission allowed it.
    Admitted,
    /// A node and GPU are reserved.
    Scheduled,
    /// Its objects are applied; the desktop is starting.
    Provisioning,
    /// The desktop is up.
    Running,
    /// Being removed.
    Terminating,
    /// Removed.
    Terminated,
    /// Admission refused it.
    Denied,
    /// It cannot run.
    Failed,
}

impl From<SessionPhase> for Phase {
    fn from(p: SessionPhase) -> Self {
        match p {
            SessionPhase::Pending => Self::Pending,
            SessionPhase::Admitted => Self::Admitted,
            SessionPhase::Scheduled => Self::Scheduled,
            SessionPhase::Provisioning => Self::Provisioning,
            SessionPhase::Running => Self::Running,
            SessionPhase::Terminating => Self::Terminating,
            SessionPhase::Terminated => Self::Terminated,
            SessionPhase::Denied => Self::Denied,
            SessionPhase::Failed => Self::Failed,
        }
    }
}

/// Resources of a session or template.
#[derive(SimpleObject, InputObject, Debug, Clone, Default, PartialEq, Eq)]
#[graphql(input_name = "ResourcesInput")]
pub struct Resources {
    /// GPU time-slices (0: CPU only).
    pub gpu_slices: Option<u32>,
    /// GPU memory in MiB.
    pub gpu_memory_mib: Option<u64>,
    /// CPU in millicores.
    pub cpu_millis: Option<u32>,
    /// Memory in MiB.
    pub memory_mib: Option<u64>,
    /// Whether a hardware video encoder session is needed.
    pub video_encoder: Option<bool>,
}

impl From<&SessionResources> for Resources {
    fn from(r: &SessionResources) -> Self {
        Self {
            gpu_slices: r.gpu_slices,
            gpu_memory_mib: r.gpu_memory_mib,
            cpu_millis: r.cpu_millis,
            memory_mib: r.memory_mib,
            video_encoder: r.video_encoder,
        }
    }
}

impl From<Resources> for SessionResources {
    fn from(r: Resources) -> Self {
        Self {
            gpu_slices: r.gpu_slices,
            gpu_memory_mib: r.gpu_memory_mib,
            cpu_millis: r.cpu_millis,
            memory_mib: r.memory_mib,
            video_encoder: r.video_encoder,
        }
    }
}

/// A status condition.
#[derive(SimpleObject, Debug, Clone)]
pub struct Condition {
    /// Its type (`Admitted`, `Scheduled`, `Ready`).
    #[graphql(name = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Machine-readable reason.
    pub reason: String,
    /// Human-readable message.
    pub message: String,
    /// When it last changed (RFC 3339).
    pub last_transition_time: String,
}

/// One plugin's decision on the session.
#[derive(SimpleObject, Debug, Clone)]
pub struct Decision {
    /// The hook (`admission`, `scheduler`, `template`).
    pub hook: String,
    /// The plugin.
    pub plugin: String,
    /// The module's digest.
    pub digest: String,
    /// Its verdict (`allowed`, `denied`, `mutated`, `placed`, `failed`, …).
    pub verdict: String,
    /// What it said.
    pub message: String,
    /// How long it took, in microseconds.
    pub latency_micros: u64,
}

/// A Kubernetes Event about a session.
#[derive(SimpleObject, Debug, Clone)]
pub struct SessionEventRecord {
    /// `Normal` or `Warning`.
    #[graphql(name = "type")]
    pub type_: Option<String>,
    /// Its reason (`Scheduled`, `Running`, `AdmissionDenied`).
    pub reason: Option<String>,
    /// Its message.
    pub message: Option<String>,
    /// When it last happened (RFC 3339).
    pub time: Option<String>,
    /// How many times.
    pub count: Option<i32>,
}

/// A desktop session.
pub struct Session(pub VDISession);

#[Object]
impl Session {
    /// Global ID.
    async fn id(&self) -> ID {
        ID(ids::session_id(&self.ns(), &self.0.name_any()))
    }
    /// Its name.
    async fn name(&self) -> String {
        self.0.name_any()
    }
    /// Its namespace (the owner's).
    async fn namespace(&self) -> String {
        self.ns()
    }
    /// Its owner.
    async fn user(&self) -> &str {
        &self.0.spec.user.name
    }
    /// The template it runs.
    async fn template(&self) -> &str {
        &self.0.spec.template
    }
    /// Resources asked for.
    async fn requested(&self) -> Option<Resources> {
        self.0.spec.resources.as_ref().map(Resources::from)
    }
    /// Lifetime asked for (`1h30m`).
    async fn timeout(&self) -> Option<&str> {
        self.0.spec.timeout.as_deref()
    }
    /// Where it is in its life.
    async fn phase(&self) -> Phase {
        self.phase_value()
    }
    /// Why it is in this phase.
    async fn reason(&self) -> Option<&str> {
        self.status().and_then(|s| s.reason.as_deref())
    }
    /// A human-readable message about the phase.
    async fn message(&self) -> Option<&str> {
        self.status().and_then(|s| s.message.as_deref())
    }
    /// Where the desktop is reached (Running).
    async fn url(&self) -> Option<&str> {
        self.status().and_then(|s| s.url.as_deref())
    }
    /// The node it runs on.
    async fn node(&self) -> Option<&str> {
        self.status().and_then(|s| s.node.as_deref())
    }
    /// The GPU index on the node.
    async fn gpu(&self) -> Option<u32> {
        self.status().and_then(|s| s.gpu)
    }
    /// The GPU slices admitted.
    async fn gpu_slices(&self) -> Option<u32> {
        self.status()
            .and_then(|s| s.admitted.as_ref())
            .map(|a| a.resources.gpu_slices)
    }
    /// When it was created (RFC 3339).
    async fn created_at(&self) -> Option<String> {
        self.0
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.to_string())
    }
    /// When it was admitted and its lifetime began (RFC 3339).
    async fn started_at(&self) -> Option<&str> {
        self.status().and_then(|s| s.started_at.as_deref())
    }
    /// When it is removed (RFC 3339).
    async fn expires_at(&self) -> Option<&str> {
        self.status().and_then(|s| s.expires_at.as_deref())
    }
    /// Status conditions.
    async fn conditions(&self) -> Vec<Condition> {
        self.status()
            .map(|s| {
                s.conditions
                    .iter()
                    .map(|c| Condition {
                        type_: c.type_.clone(),
                        status: c.status.clone(),
                        reason: c.reason.clone(),
                        message: c.message.clone(),
                        last_transition_time: c.last_transition_time.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
    /// Every plugin decision on it.
    async fn decisions(&self) -> Vec<Decision> {
        self.status()
            .map(|s| {
                s.decisions
                    .iter()
                    .map(|d| Decision {
                        hook: d.hook.clone(),
                        plugin: d.plugin.clone(),
                        digest: d.digest.clone(),
                        verdict: d.outcome.clone(),
                        message: d.message.clone(),
                        latency_micros: d.latency_micros,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
    /// When its start reached each step (admitted, placed, objects applied, pod ready, first
    /// frame); each null until reached.
    async fn timings(&self) -> Timings {
        self.status()
            .map(|s| Timings::from(&s.timings))
            .unwrap_or_default()
    }
    /// Its Kubernetes Events, newest last (at most 50). Costs a request: 10 against the
    /// complexity limit.
    #[graphql(complexity = "10 + child_complexity")]
    async fn events(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<SessionEventRecord>> {
        let (_, client) = ctx::acting(ctx)?;
        let ns = self.0.namespace().unwrap_or_default();
        let api: Api<Event> = Api::namespaced(client, &ns);
        let selector = format!(
            "involvedObject.kind=VDISession,involvedObject.name={}",
            self.0.name_any()
        );
        let list = api
            .list(&ListParams::default().fields(&selector))
            .await
            .map_err(ApiError::from)?;
        let mut events: Vec<SessionEventRecord> = list
            .items
            .into_iter()
            .map(|e| SessionEventRecord {
                time: e
                    .last_timestamp
                    .as_ref()
                    .map(|t| t.0.to_string())
                    .or_else(|| e.event_time.as_ref().map(|t| t.0.to_string())),
                type_: e.type_,
                reason: e.reason,
                message: e.message,
                count: e.count,
            })
            .collect();
        events.sort_by(|a, b| a.time.cmp(&b.time));
        let skip = events.len().saturating_sub(MAX_EVENTS);
        Ok(events.split_off(skip))
    }
}

impl Session {
    fn status(&self) -> Option<&vdi_crd::VDISessionStatus> {
        self.0.status.as_ref()
    }

    fn ns(&self) -> String {
        self.0.namespace().unwrap_or_default()
    }

    /// The phase (Pending before the operator has written any status).
    pub fn phase_value(&self) -> Phase {
        self.status().map(|s| s.phase()).unwrap_or_default().into()
    }
}

/// When a session's start reached each step (RFC 3339), each written once.
#[derive(SimpleObject, Debug, Clone, Default, PartialEq, Eq)]
pub struct Timings {
    /// Admission allowed it.
    pub admitted: Option<String>,
    /// The scheduler placed it.
    pub placed: Option<String>,
    /// Its objects were applied.
    pub objects_applied: Option<String>,
    /// The desktop pod became Ready.
    pub pod_ready: Option<String>,
    /// The streamer sent its first video frame.
    pub first_frame: Option<String>,
}

impl From<&vdi_crd::SessionTimings> for Timings {
    fn from(t: &vdi_crd::SessionTimings) -> Self {
        Self {
            admitted: t.admitted.clone(),
            placed: t.placed.clone(),
            objects_applied: t.objects_applied.clone(),
            pod_ready: t.pod_ready.clone(),
            first_frame: t.first_frame.clone(),
        }
    }
}

/// A desktop template.
pub struct Template(pub VDITemplate);

#[Object]
impl Template {
    /// Its name (what `launchSession` takes).
    async fn name(&self) -> String {
        self.0.name_any()
    }
    /// Its display name.
    async fn display_name(&self) -> &str {
        &self.0.spec.display_name
    }
    /// A description.
    async fn description(&self) -> Option<&str> {
        self.0.spec.description.as_deref()
    }
    /// The desktop image.
    async fn image(&self) -> &str {
        &self.0.spec.image
    }
    /// Default resources.
    async fn resources(&self) -> Option<Resources> {
        self.0.spec.resources.as_ref().map(Resources::from)
    }
    /// Its whole spec as stored (settings, node selector, idle timeout, …), for editing.
    async fn spec(&self) -> async_graphql::Json<serde_json::Value> {
        async_graphql::Json(self.spec_json())
    }
}

impl Template {
    /// The spec as JSON, in the CRD's own field names.
    fn spec_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.0.spec).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_gives_its_whole_spec_for_editing() {
        let spec: vdi_crd::VDITemplateSpec = serde_json::from_value(serde_json::json!({
            "displayName": "Desk",
            "image": "img:1",
            "resources": {"gpuSlices": 1},
            "settings": {"homeSize": "10Gi"},
        }))
        .unwrap();
        let json = Template(VDITemplate::new("desk", spec)).spec_json();
        assert_eq!(json["displayName"], "Desk");
        assert_eq!(json["settings"]["homeSize"], "10Gi");
        assert_eq!(json["resources"]["gpuSlices"], 1);
    }

    #[test]
    fn timings_carry_every_step_and_stay_null_until_reached() {
        let crd = vdi_crd::SessionTimings {
            admitted: Some("2026-12-01T10:00:00Z".into()),
            placed: Some("2026-12-01T10:00:01Z".into()),
            objects_applied: None,
            pod_ready: Some("2026-12-01T10:00:03Z".into()),
            first_frame: Some("2026-12-01T10:00:04Z".into()),
        };
        let t = Timings::from(&crd);
        assert_eq!(t.admitted.as_deref(), Some("2026-12-01T10:00:00Z"));
        assert_eq!(t.placed.as_deref(), Some("2026-12-01T10:00:01Z"));
        assert_eq!(t.objects_applied, None);
        assert_eq!(t.pod_ready.as_deref(), Some("2026-12-01T10:00:03Z"));
        assert_eq!(t.first_frame.as_deref(), Some("2026-12-01T10:00:04Z"));
        assert_eq!(
            Timings::from(&vdi_crd::SessionTimings::default()),
            Timings::default()
        );
    }
}
