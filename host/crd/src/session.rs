//! `VDISession`: one user's desktop, from request to teardown.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A desktop session a user asked for. The operator admits, places and provisions it through the
/// plugin hooks and records every step in `status`.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "vdi.dev",
    version = "v1alpha1",
    kind = "VDISession",
    namespaced,
    status = "VDISessionStatus",
    shortname = "vds",
    category = "vdi",
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase"}"#,
    printcolumn = r#"{"name":"User","type":"string","jsonPath":".spec.user.name"}"#,
    printcolumn = r#"{"name":"Template","type":"string","jsonPath":".spec.template"}"#,
    printcolumn = r#"{"name":"Node","type":"string","jsonPath":".status.node"}"#,
    printcolumn = r#"{"name":"GPU","type":"integer","jsonPath":".status.gpu"}"#,
    printcolumn = r#"{"name":"URL","type":"string","jsonPath":".status.url","priority":1}"#,
    printcolumn = r#"{"name":"Ready","type":"date","jsonPath":".status.timings.podReady","priority":1}"#,
    printcolumn = r#"{"name":"First Frame","type":"date","jsonPath":".status.timings.firstFrame","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct VDISessionSpec {
    /// Who the session is for. On requests from non-admin users the platform sets it to the
    /// requester's own identity. It cannot change once the session exists.
    #[schemars(extend("x-kubernetes-validations" = [
        {"rule": "self == oldSelf", "message": "spec.user is immutable"}
    ]))]
    pub user: SessionUser,
    /// Name of the `VDITemplate` to start.
    #[schemars(length(min = 1, max = 253))]
    pub template: String,
    /// Resources asked for; fields left out come from the template's defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<SessionResources>,
    /// Lifetime, e.g. `30m`, `8h`, `1h30m`; admission policies may clamp it. The session is
    /// removed when it runs out. Without one, admission policies choose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^([0-9]+(s|m|h|d))+$"))]
    pub timeout: Option<String>,
}

/// A user as the identity provider names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SessionUser {
    /// Stable user name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Groups; policies grant templates and quotas per group.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// Resources a session asks for; each field is optional so templates can supply defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionResources {
    /// GPU time-slices (0 = CPU-only desktop).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 64))]
    pub gpu_slices: Option<u32>,
    /// GPU memory needed on the chosen GPU, in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_memory_mib: Option<u64>,
    /// CPU request in millicores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub cpu_millis: Option<u32>,
    /// Memory request in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub memory_mib: Option<u64>,
    /// Whether a hardware video-encoder session is needed (default: when GPU slices are asked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_encoder: Option<bool>,
}

/// Resources with every field decided.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EffectiveResources {
    /// GPU time-slices.
    pub gpu_slices: u32,
    /// GPU memory in MiB.
    pub gpu_memory_mib: u64,
    /// CPU in millicores.
    pub cpu_millis: u32,
    /// Memory in MiB.
    pub memory_mib: u64,
    /// Hardware encoder session needed.
    pub video_encoder: bool,
}

/// CPU a session gets when neither it nor its template says.
pub const DEFAULT_CPU_MILLIS: u32 = 2000;
/// Memory a session gets when neither it nor its template says.
pub const DEFAULT_MEMORY_MIB: u64 = 4096;
/// GPU memory per slice when neither the session nor its template says.
pub const DEFAULT_GPU_MEMORY_MIB_PER_SLICE: u64 = 4096;

impl SessionResources {
    /// This request's fields over the template's defaults over the platform's defaults.
    pub fn effective(&self, defaults: Option<&SessionResources>) -> EffectiveResources {
        let d = defaults.cloned().unwrap_or_default();
        let gpu_slices = self.gpu_slices.or(d.gpu_slices).unwrap_or(0);
        EffectiveResources {
            gpu_slices,
            gpu_memory_mib: self
                .gpu_memory_mib
                .or(d.gpu_memory_mib)
                .unwrap_or(u64::from(gpu_slices) * DEFAULT_GPU_MEMORY_MIB_PER_SLICE),
            cpu_millis: self
                .cpu_millis
                .or(d.cpu_millis)
                .unwrap_or(DEFAULT_CPU_MILLIS),
            memory_mib: self
                .memory_mib
                .or(d.memory_mib)
                .unwrap_or(DEFAULT_MEMORY_MIB),
            video_encoder: self
                .video_encoder
                .or(d.video_encoder)
                .unwrap_or(gpu_slices > 0),
        }
    }
}

impl From<EffectiveResources> for SessionResources {
    fn from(r: EffectiveResources) -> Self {
        Self {
            gpu_slices: Some(r.gpu_slices),
            gpu_memory_mib: Some(r.gpu_memory_mib),
            cpu_millis: Some(r.cpu_millis),
            memory_mib: Some(r.memory_mib),
            video_encoder: Some(r.video_encoder),
        }
    }
}

/// Where a session is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum SessionPhase {
    /// Waiting for admission or for a place to run.
    #[default]
    Pending,
    /// Admission allowed it.
    Admitted,
    /// A node and GPU are reserved for it.
    Scheduled,
    /// Its objects are applied; waiting for the desktop pod to be ready.
    Provisioning,
    /// The desktop is up; `status.url` reaches it.
    Running,
    /// Being removed.
    Terminating,
    /// Removed (seen just before the object goes).
    Terminated,
    /// Admission refused it (`status.message` says why).
    Denied,
    /// It cannot run (`status.reason` and `status.message` say why).
    Failed,
}

impl SessionPhase {
    /// Its name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Admitted => "Admitted",
            Self::Scheduled => "Scheduled",
            Self::Provisioning => "Provisioning",
            Self::Running => "Running",
            Self::Terminating => "Terminating",
            Self::Terminated => "Terminated",
            Self::Denied => "Denied",
            Self::Failed => "Failed",
        }
    }

    /// Whether the session holds a node and GPU slot in this phase.
    pub fn holds_capacity(self) -> bool {
        matches!(
            self,
            Self::Scheduled | Self::Provisioning | Self::Running | Self::Terminating
        )
    }

    /// Whether the session is over (nothing more happens to it but removal).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Denied | Self::Failed | Self::Terminated)
    }
}

/// What admission settled: the values scheduling and rendering use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdmittedSpec {
    /// Template.
    pub template: String,
    /// Resources, every field decided.
    pub resources: EffectiveResources,
    /// Lifetime in seconds.
    pub timeout_seconds: u64,
}

/// A standard Kubernetes condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Admitted`, `Scheduled`, `Provisioned`, `Ready`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// One CamelCase word.
    #[serde(default)]
    pub reason: String,
    /// A sentence for people.
    #[serde(default)]
    pub message: String,
    /// When `status` last changed (RFC 3339).
    pub last_transition_time: String,
}

/// One plugin decision about the session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DecisionRecord {
    /// `admission`, `scheduler` or `template`.
    pub hook: String,
    /// The `VDIPlugin` name.
    pub plugin: String,
    /// Digest of the module that decided (`sha256:...`).
    pub digest: String,
    /// `Allowed`, `Mutated`, `Denied`, `Skipped`, `Failed`, `Placed`, `Unschedulable`, `Rendered`.
    pub outcome: String,
    /// The plugin's reason or the error, when there is one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// How long the call took, in microseconds.
    pub latency_micros: u64,
}

/// An object the operator applied for the session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRecord {
    /// `group/version` or `version`.
    pub api_version: String,
    /// Kind.
    pub kind: String,
    /// Name (in the session's namespace).
    pub name: String,
}

/// What the operator has done and seen.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VDISessionStatus {
    /// Phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<SessionPhase>,
    /// One CamelCase word for `Failed` and `Denied` (e.g. `ImagePullBackOff`, `AdmissionDenied`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A sentence for people about the latest step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Where the browser reaches the desktop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Node the session runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// `vdi-pool/<name>`: the warm pool's session that serves this one (it claimed it). Such a
    /// session renders nothing; it follows the pool session, whose desktop it streams.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served_by: Option<String>,
    /// The uid of the `servedBy` session: connect tokens name it (its streamer checks them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served_by_uid: Option<String>,
    /// GPU index on that node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<u32>,
    /// What admission settled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admitted: Option<AdmittedSpec>,
    /// When the desktop became ready (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// When the session will be removed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// The spec generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Plugin decisions, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<DecisionRecord>,
    /// Objects applied for the session.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<ObjectRecord>,
    /// When each step of the start happened (each set once).
    #[serde(default, skip_serializing_if = "SessionTimings::is_empty")]
    pub timings: SessionTimings,
}

/// When a session's start reached each step (RFC 3339), each written once: how long a desktop
/// takes to come up, and where the time goes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionTimings {
    /// Admission allowed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admitted: Option<String>,
    /// The scheduler placed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placed: Option<String>,
    /// Its objects were applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objects_applied: Option<String>,
    /// The desktop pod became Ready (its `Ready` condition's time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_ready: Option<String>,
    /// The streamer sent its first video frame (as the streamer reports it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_frame: Option<String>,
}

impl SessionTimings {
    /// Whether no time is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Sets `slot` to `at` unless it is already set (timings are written once). Returns whether it
/// changed.
pub(crate) fn set_once(slot: &mut Option<String>, at: &str) -> bool {
    if slot.is_some() {
        return false;
    }
    *slot = Some(at.to_owned());
    true
}

impl VDISessionStatus {
    /// The phase, `Pending` when unset.
    pub fn phase(&self) -> SessionPhase {
        self.phase.unwrap_or_default()
    }

    /// Sets condition `type_` (keeping its transition time when the status is unchanged).
    pub fn set_condition(
        &mut self,
        type_: &str,
        status: bool,
        reason: &str,
        message: &str,
        now: &str,
    ) {
        let status = if status { "True" } else { "False" };
        match self.conditions.iter_mut().find(|c| c.type_ == type_) {
            Some(c) => {
                if c.status != status {
                    c.last_transition_time = now.to_owned();
                    c.status = status.to_owned();
                }
                c.reason = reason.to_owned();
                c.message = message.to_owned();
            }
            None => self.conditions.push(Condition {
                type_: type_.to_owned(),
                status: status.to_owned(),
                reason: reason.to_owned(),
                message: message.to_owned(),
                last_transition_time: now.to_owned(),
            }),
        }
    }

    /// The condition of `type_`, if set.
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_fall_back_field_by_field() {
        let asked = SessionResources {
            gpu_slices: Some(2),
            ..SessionResources::default()
        };
        let template = SessionResources {
            cpu_millis: Some(4000),
            gpu_slices: Some(1),
            ..SessionResources::default()
        };
        let r = asked.effective(Some(&template));
        assert_eq!(r.gpu_slices, 2, "the session's own value wins");
        assert_eq!(r.cpu_millis, 4000, "then the template's");
        assert_eq!(r.memory_mib, DEFAULT_MEMORY_MIB, "then the platform's");
        assert_eq!(r.gpu_memory_mib, 2 * DEFAULT_GPU_MEMORY_MIB_PER_SLICE);
        assert!(r.video_encoder);
        assert!(!SessionResources::default().effective(None).video_encoder);
    }

    #[test]
    fn conditions_keep_transition_time_while_unchanged() {
        let mut s = VDISessionStatus::default();
        s.set_condition("Scheduled", false, "Unschedulable", "full", "t1");
        s.set_condition("Scheduled", false, "Unschedulable", "still full", "t2");
        assert_eq!(s.condition("Scheduled").unwrap().last_transition_time, "t1");
        s.set_condition("Scheduled", true, "Placed", "ok", "t3");
        let c = s.condition("Scheduled").unwrap();
        assert_eq!(
            (c.status.as_str(), c.last_transition_time.as_str()),
            ("True", "t3")
        );
    }
}
