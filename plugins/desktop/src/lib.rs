//! Template plugin `desktop`: the Kubernetes objects of one desktop session.
//!
//! Renders a Pod (desktop + streamer containers, pinned to the placed node, non-root), a
//! PersistentVolumeClaim for the home directory, a Service for the streamer, a Traefik
//! IngressRoute on a per-session path, and a NetworkPolicy that lets in only the ingress
//! controller and the TURN server. The host adds owner references and checks the output.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use vdi_plugin_sdk::{
    FieldError, Placement, PluginError, PluginSettings, SessionRequest, Template, TemplateInfo,
};

/// Default streamer image.
pub const DEFAULT_STREAMER_IMAGE: &str = "ghcr.io/vdi-platform/vdi-streamer:0.1.0";
/// Default size of a session's home volume.
pub const DEFAULT_HOME_SIZE: &str = "10Gi";
/// Default storage class for home volumes (k3s ships local-path).
pub const DEFAULT_STORAGE_CLASS: &str = "local-path";
/// Default URL path under which sessions are served.
pub const DEFAULT_PATH_PREFIX: &str = "/sessions";
/// Port the streamer listens on inside the pod.
pub const DEFAULT_STREAMER_PORT: u16 = 8080;
/// Default uid of the desktop user.
pub const DEFAULT_RUN_AS_USER: u32 = 1000;

/// The plugin's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Settings {
    /// Image of the streamer sidecar.
    pub streamer_image: String,
    /// Size of the home volume (a Kubernetes quantity).
    pub home_size: String,
    /// Storage class of the home volume.
    pub storage_class: String,
    /// URL path prefix; a session is served at `<prefix>/<namespace>/<name>/`.
    pub path_prefix: String,
    /// Host name the IngressRoute matches; any host when absent.
    pub ingress_host: Option<String>,
    /// Traefik entry points.
    pub entry_points: Vec<String>,
    /// Namespace of the ingress controller allowed to reach the streamer.
    pub ingress_namespace: String,
    /// Pod labels of the ingress controller.
    pub ingress_pod_labels: BTreeMap<String, String>,
    /// Namespace of the TURN server allowed to relay media to the session.
    pub turn_namespace: String,
    /// Pod labels of the TURN server.
    pub turn_pod_labels: BTreeMap<String, String>,
    /// Port the streamer listens on.
    pub streamer_port: u16,
    /// uid (and gid) the containers run as; never 0.
    pub run_as_user: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            streamer_image: DEFAULT_STREAMER_IMAGE.to_owned(),
            home_size: DEFAULT_HOME_SIZE.to_owned(),
            storage_class: DEFAULT_STORAGE_CLASS.to_owned(),
            path_prefix: DEFAULT_PATH_PREFIX.to_owned(),
            ingress_host: None,
            entry_points: vec!["websecure".to_owned()],
            ingress_namespace: "kube-system".to_owned(),
            ingress_pod_labels: BTreeMap::from([(
                "app.kubernetes.io/name".to_owned(),
                "traefik".to_owned(),
            )]),
            turn_namespace: "vdi-system".to_owned(),
            turn_pod_labels: BTreeMap::from([(
                "app.kubernetes.io/name".to_owned(),
                "coturn".to_owned(),
            )]),
            streamer_port: DEFAULT_STREAMER_PORT,
            run_as_user: DEFAULT_RUN_AS_USER,
        }
    }
}

/// Per-template overrides (`VDITemplate.spec.settings`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
struct TemplateSettings {
    /// Home volume size for this template.
    home_size: Option<String>,
    /// Extra environment for the desktop container.
    env: BTreeMap<String, String>,
}

impl PluginSettings for Settings {
    fn validate(&self) -> Result<(), FieldError> {
        if self.run_as_user == 0 {
            return Err(FieldError::new(
                "runAsUser",
                "sessions never run as root (uid 0)",
            ));
        }
        if !self.path_prefix.starts_with('/') || self.path_prefix.ends_with('/') {
            return Err(FieldError::new(
                "pathPrefix",
                "must start with '/' and not end with '/'",
            ));
        }
        if self.streamer_port == 0 {
            return Err(FieldError::new("streamerPort", "must be greater than 0"));
        }
        if self.entry_points.is_empty() {
            return Err(FieldError::new(
                "entryPoints",
                "must name at least one entry point",
            ));
        }
        check_quantity("homeSize", &self.home_size)?;
        Ok(())
    }
}

/// Accepts plain Kubernetes quantities such as `10Gi` or `500M`.
fn check_quantity(field: &str, q: &str) -> Result<(), FieldError> {
    let digits = q.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &q[digits.len()..];
    let known = ["", "Ki", "Mi", "Gi", "Ti", "k", "M", "G", "T"];
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) || !known.contains(&suffix)
    {
        return Err(FieldError::new(
            field,
            format!("{q:?} is not a storage quantity like 10Gi"),
        ));
    }
    Ok(())
}

/// Turns any string into a valid label value (at most 63 of `[A-Za-z0-9._-]`, alphanumeric ends).
pub fn label_value(s: &str) -> String {
    let v: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(63)
        .collect();
    v.trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_owned()
}

/// The desktop renderer.
pub struct Desktop;

impl Desktop {
    /// Renders the objects with parsed settings.
    pub fn objects(
        s: &Settings,
        req: &SessionRequest,
        template: &TemplateInfo,
        placement: &Placement,
    ) -> Result<Vec<Value>, PluginError> {
        let tpl: TemplateSettings = if template.settings.trim().is_empty() {
            TemplateSettings::default()
        } else {
            serde_json::from_str(&template.settings)
                .map_err(|e| FieldError::new("template.settings", e.to_string()))?
        };
        if template.image.is_empty() {
            return Err(FieldError::new("template.image", "must not be empty").into());
        }
        let home_size = tpl.home_size.as_deref().unwrap_or(&s.home_size);
        check_quantity("template.settings.homeSize", home_size)?;
        let name = &req.name;
        let ns = &req.namespace;
        let r = &req.spec.resources;
        let labels = json!({
            "app.kubernetes.io/name": "vdi-session",
            "app.kubernetes.io/managed-by": "vdi",
            "vdi.dev/session": label_value(name),
            "vdi.dev/user": label_value(&req.spec.user.name),
            "vdi.dev/template": label_value(&template.name),
        });
        let selector = json!({ "vdi.dev/session": label_value(name) });
        let meta = |n: String| json!({ "name": n, "namespace": ns, "labels": labels });
        let path = format!("{}/{}/{}", s.path_prefix, ns, name);
        let home = format!("{name}-home");

        let mut limits =
            json!({ "cpu": format!("{}m", r.cpu_millis), "memory": format!("{}Mi", r.memory_mib) });
        if r.gpu_slices > 0 {
            limits["nvidia.com/gpu"] = json!(r.gpu_slices.to_string());
        }
        let mut env = vec![json!({ "name": "DISPLAY", "value": ":0" })];
        env.extend(
            tpl.env
                .iter()
                .map(|(k, v)| json!({ "name": k, "value": v })),
        );
        if let Some(gpu) = placement.gpu {
            env.push(json!({ "name": "VDI_GPU_INDEX", "value": gpu.to_string() }));
        }
        let container_security = json!({
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": false,
            "capabilities": { "drop": ["ALL"] },
        });
        let mut pod_meta = meta(name.clone());
        pod_meta["annotations"] = json!({ "vdi.dev/placement": placement.reason });
        let pod = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": pod_meta,
            "spec": {
                "nodeName": placement.node,
                "restartPolicy": "Never",
                "automountServiceAccountToken": false,
                "enableServiceLinks": false,
                "securityContext": {
                    "runAsNonRoot": true,
                    "runAsUser": s.run_as_user,
                    "runAsGroup": s.run_as_user,
                    "fsGroup": s.run_as_user,
                    "seccompProfile": { "type": "RuntimeDefault" },
                },
                "containers": [
                    {
                        "name": "desktop",
                        "image": template.image,
                        "env": env,
                        "resources": { "requests": limits, "limits": limits },
                        "securityContext": container_security,
                        "volumeMounts": [
                            { "name": "home", "mountPath": "/home/user" },
                            { "name": "x11", "mountPath": "/tmp/.X11-unix" },
                        ],
                    },
                    {
                        "name": "streamer",
                        "image": s.streamer_image,
                        "env": [
                            { "name": "DISPLAY", "value": ":0" },
                            { "name": "VDI_SESSION", "value": name },
                            { "name": "VDI_BASE_PATH", "value": path },
                            { "name": "VDI_LISTEN", "value": format!("0.0.0.0:{}", s.streamer_port) },
                        ],
                        "ports": [{ "name": "http", "containerPort": s.streamer_port, "protocol": "TCP" }],
                        "readinessProbe": { "httpGet": { "path": "/healthz", "port": "http" } },
                        "resources": { "requests": { "cpu": "250m", "memory": "256Mi" } },
                        "securityContext": container_security,
                        "volumeMounts": [{ "name": "x11", "mountPath": "/tmp/.X11-unix" }],
                    },
                ],
                "volumes": [
                    { "name": "home", "persistentVolumeClaim": { "claimName": home } },
                    { "name": "x11", "emptyDir": {} },
                ],
            },
        });
        let pvc = json!({
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": meta(home.clone()),
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": s.storage_class,
                "resources": { "requests": { "storage": home_size } },
            },
        });
        let service = json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta(name.clone()),
            "spec": {
                "type": "ClusterIP",
                "selector": selector,
                "ports": [{ "name": "http", "port": s.streamer_port, "targetPort": "http", "protocol": "TCP" }],
            },
        });
        let rule = match &s.ingress_host {
            Some(host) => format!("Host(`{host}`) && PathPrefix(`{path}`)"),
            None => format!("PathPrefix(`{path}`)"),
        };
        let route = json!({
            "apiVersion": "traefik.io/v1alpha1",
            "kind": "IngressRoute",
            "metadata": meta(name.clone()),
            "spec": {
                "entryPoints": s.entry_points,
                "routes": [{
                    "kind": "Rule",
                    "match": rule,
                    "services": [{ "name": name, "port": s.streamer_port }],
                }],
            },
        });
        let peer = |namespace: &str, pod_labels: &BTreeMap<String, String>| {
            json!({
                "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": namespace } },
                "podSelector": { "matchLabels": pod_labels },
            })
        };
        let policy = json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": meta(name.clone()),
            "spec": {
                "podSelector": { "matchLabels": selector },
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [peer(&s.ingress_namespace, &s.ingress_pod_labels)],
                        "ports": [{ "protocol": "TCP", "port": s.streamer_port }],
                    },
                    // Media relayed by TURN arrives on ephemeral UDP ports.
                    { "from": [peer(&s.turn_namespace, &s.turn_pod_labels)] },
                ],
            },
        });
        Ok(vec![pvc, pod, service, route, policy])
    }
}

impl Template for Desktop {
    fn configure(settings: &str) -> Result<String, FieldError> {
        Settings::normalise(settings)
    }

    fn render(
        settings: &str,
        request: SessionRequest,
        template: TemplateInfo,
        placement: Placement,
    ) -> Result<Vec<String>, PluginError> {
        let settings = Settings::parse(settings)?;
        let objects = Self::objects(&settings, &request, &template, &placement)?;
        Ok(objects.iter().map(Value::to_string).collect())
    }
}

vdi_plugin_sdk::export_template!(Desktop);
