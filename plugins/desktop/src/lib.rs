//! Template plugin `desktop`: the Kubernetes objects of one desktop session.
//!
//! Renders a Pod (desktop + streamer containers, pinned to the placed node, non-root), a
//! PersistentVolumeClaim for the home directory, a Service for the streamer, a Traefik
//! IngressRoute on a per-session path, and a NetworkPolicy that lets in only the ingress
//! controller and the TURN server. The host adds owner references and checks the output.
//! Settings `ingressRoute` and `networkPolicy` leave the last two out where nothing would act
//! on them (the embedded platform: its front proxy routes, and no CNI enforces policies).
//!
//! The home claim is named per template (`home-<template>`; the namespace is the user's) and
//! annotated `vdi.dev/retain: "true"`: the operator creates it once and never deletes it, so a
//! relaunch finds the user's files. Two live sessions of one template share it (a
//! ReadWriteOnce claim is shared by pods on one node; on another node the second pod waits).
//!
//! The streamer gets the connect keys' public half from the ConfigMap the operator keeps in the
//! namespace (`vdi-connect-keys`, mounted at `/etc/vdi/connect`), its namespace and session uid
//! (downward API, from the label the operator puts on the pod), and TURN settings when set.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use vdi_plugin_sdk::{
    FieldError, Placement, PluginError, PluginSettings, SessionRequest, Template, TemplateInfo,
};

mod settings;
pub use settings::Settings;
use settings::{TemplateSettings, check_quantity};

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
/// The ConfigMap (kept by the operator in each session namespace) with the connect keys.
pub const CONNECT_KEYS_CONFIGMAP: &str = "vdi-connect-keys";
/// Where the streamer finds it.
pub const CONNECT_KEYS_DIR: &str = "/etc/vdi/connect";
/// Its entry: the public keys, PEM.
pub const CONNECT_KEYS_FILE: &str = "keys.pem";
/// Default entry of the TURN secret holding the shared secret.
pub const DEFAULT_TURN_SECRET_KEY: &str = "secret";
/// The annotation that keeps an object past its session (the operator never deletes it).
pub const RETAIN_ANNOTATION: &str = "vdi.dev/retain";
/// Longest object name Kubernetes accepts (a DNS subdomain).
pub const MAX_NAME_LEN: usize = 253;
/// The pod label the operator sets to the session's uid.
pub const SESSION_UID_LABEL: &str = "vdi.dev/session-uid";

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

/// The streamer's environment: display, session identity (name, namespace, uid from the pod
/// label the operator sets), base path, listen address, the connect keys' file and TURN.
fn streamer_env(s: &Settings, req: &SessionRequest, path: &str) -> Vec<Value> {
    let mut env = vec![
        json!({ "name": "DISPLAY", "value": ":0" }),
        json!({ "name": "VDI_SESSION", "value": req.name }),
        json!({ "name": "VDI_NAMESPACE", "value": req.namespace }),
        json!({ "name": "VDI_SESSION_UID", "valueFrom": { "fieldRef": {
            "fieldPath": format!("metadata.labels['{SESSION_UID_LABEL}']") } } }),
        json!({ "name": "VDI_BASE_PATH", "value": path }),
        json!({ "name": "VDI_LISTEN", "value": format!("0.0.0.0:{}", s.streamer_port) }),
        json!({ "name": "VDI_TOKEN_PUBLIC_KEY",
            "value": format!("{CONNECT_KEYS_DIR}/{CONNECT_KEYS_FILE}") }),
    ];
    if let Some(url) = &s.turn_url {
        env.push(json!({ "name": "VDI_TURN", "value": url }));
    }
    if let Some(secret) = &s.turn_secret_name {
        let key = s
            .turn_secret_key
            .as_deref()
            .unwrap_or(DEFAULT_TURN_SECRET_KEY);
        env.push(json!({ "name": "VDI_TURN_SECRET", "valueFrom": {
            "secretKeyRef": { "name": secret, "key": key } } }));
    }
    env
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
        let home = format!("home-{}", template.name);
        if home.len() > MAX_NAME_LEN {
            return Err(FieldError::new(
                "template.name",
                format!("too long for the home claim's name {home:?} (at most {MAX_NAME_LEN})"),
            )
            .into());
        }

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
                        "env": streamer_env(s, req, &path),
                        "ports": [{ "name": "http", "containerPort": s.streamer_port, "protocol": "TCP" }],
                        // Probed every second: the session counts as ready (and the user is told) within a
                        // second of the streamer listening, not at the next 10 s default period.
                        "readinessProbe": { "httpGet": { "path": "/healthz", "port": "http" }, "periodSeconds": 1 },
                        "resources": { "requests": { "cpu": "250m", "memory": "256Mi" } },
                        "securityContext": container_security,
                        "volumeMounts": [
                            { "name": "x11", "mountPath": "/tmp/.X11-unix" },
                            { "name": "connect-keys", "mountPath": CONNECT_KEYS_DIR, "readOnly": true },
                        ],
                    },
                ],
                "volumes": [
                    { "name": "home", "persistentVolumeClaim": { "claimName": home } },
                    { "name": "x11", "emptyDir": {} },
                    { "name": "connect-keys", "configMap": { "name": CONNECT_KEYS_CONFIGMAP } },
                ],
            },
        });
        let mut pvc_meta = meta(home.clone());
        pvc_meta["annotations"] = json!({ RETAIN_ANNOTATION: "true" });
        let pvc = json!({
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": pvc_meta,
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
        let mut objects = vec![pvc, pod, service];
        if s.ingress_route {
            objects.push(route);
        }
        if s.network_policy {
            objects.push(policy);
        }
        Ok(objects)
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

#[cfg(test)]
mod tests {
    use vdi_plugin_sdk::{Resources, SessionSpec, UserInfo};

    use super::*;

    fn request() -> SessionRequest {
        SessionRequest {
            name: "desk-1".into(),
            namespace: "alice".into(),
            spec: SessionSpec {
                user: UserInfo {
                    name: "alice".into(),
                    groups: vec![],
                },
                template: "ubuntu".into(),
                resources: Resources {
                    cpu_millis: 1000,
                    memory_mib: 2048,
                    ..Resources::default()
                },
                ..SessionSpec::default()
            },
        }
    }

    fn render(settings: &str) -> Result<Vec<Value>, PluginError> {
        let template = TemplateInfo {
            name: "ubuntu".into(),
            display_name: "Ubuntu".into(),
            image: "ubuntu:24.04".into(),
            settings: String::new(),
        };
        let placement = Placement {
            node: "local".into(),
            gpu: None,
            reason: "test".into(),
        };
        let s = Settings::parse(settings).map_err(PluginError::from)?;
        Desktop::objects(&s, &request(), &template, &placement)
    }

    fn streamer(objects: &[Value]) -> &Value {
        objects
            .iter()
            .find(|o| o["kind"] == "Pod")
            .and_then(|p| p["spec"]["containers"].as_array())
            .and_then(|c| c.iter().find(|c| c["name"] == "streamer"))
            .expect("a streamer container")
    }

    fn env<'a>(container: &'a Value, name: &str) -> Option<&'a Value> {
        container["env"]
            .as_array()
            .and_then(|e| e.iter().find(|v| v["name"] == name))
    }

    fn kinds(objects: &[Value]) -> Vec<&str> {
        objects.iter().filter_map(|o| o["kind"].as_str()).collect()
    }

    #[test]
    fn routes_and_policies_are_rendered_unless_switched_off() {
        let all = render("{}").expect("renders");
        assert_eq!(
            kinds(&all),
            [
                "PersistentVolumeClaim",
                "Pod",
                "Service",
                "IngressRoute",
                "NetworkPolicy"
            ]
        );
        let embedded =
            render(r#"{"ingressRoute": false, "networkPolicy": false}"#).expect("renders");
        assert_eq!(
            kinds(&embedded),
            ["PersistentVolumeClaim", "Pod", "Service"]
        );
        let no_route = render(r#"{"ingressRoute": false}"#).expect("renders");
        assert_eq!(kinds(&no_route).last(), Some(&"NetworkPolicy"));
        let err = render(r#"{"networkPolicy": "no"}"#).unwrap_err();
        assert!(format!("{err:?}").contains("expected a boolean"), "{err:?}");
    }

    #[test]
    fn the_streamer_gets_keys_namespace_and_uid() {
        let objects = render("{}").expect("renders");
        let s = streamer(&objects);
        assert_eq!(
            env(s, "VDI_NAMESPACE").map(|v| &v["value"]),
            Some(&json!("alice"))
        );
        assert_eq!(
            env(s, "VDI_TOKEN_PUBLIC_KEY").map(|v| &v["value"]),
            Some(&json!("/etc/vdi/connect/keys.pem"))
        );
        assert_eq!(
            env(s, "VDI_SESSION_UID").map(|v| &v["valueFrom"]["fieldRef"]["fieldPath"]),
            Some(&json!("metadata.labels['vdi.dev/session-uid']"))
        );
        assert!(env(s, "VDI_TURN").is_none() && env(s, "VDI_TURN_SECRET").is_none());
        let mount = s["volumeMounts"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["name"] == "connect-keys"))
            .expect("the keys are mounted");
        assert_eq!(mount["mountPath"], CONNECT_KEYS_DIR);
        assert_eq!(mount["readOnly"], true);
        let pod = objects.iter().find(|o| o["kind"] == "Pod").expect("a pod");
        let volume = pod["spec"]["volumes"]
            .as_array()
            .and_then(|v| v.iter().find(|v| v["name"] == "connect-keys"))
            .expect("the keys volume");
        assert_eq!(volume["configMap"]["name"], CONNECT_KEYS_CONFIGMAP);
    }

    #[test]
    fn turn_settings_reach_the_streamer_through_a_secret_reference() {
        let objects =
            render(r#"{"turnUrl": "turn:turn.example.com:3478", "turnSecretName": "turn"}"#)
                .expect("renders");
        let s = streamer(&objects);
        assert_eq!(
            env(s, "VDI_TURN").map(|v| &v["value"]),
            Some(&json!("turn:turn.example.com:3478"))
        );
        assert_eq!(
            env(s, "VDI_TURN_SECRET").map(|v| &v["valueFrom"]["secretKeyRef"]),
            Some(&json!({"name": "turn", "key": "secret"}))
        );
        let keyed = render(
            r#"{"turnUrl": "turns:t:5349", "turnSecretName": "turn", "turnSecretKey": "k"}"#,
        )
        .expect("renders");
        assert_eq!(
            env(streamer(&keyed), "VDI_TURN_SECRET")
                .map(|v| &v["valueFrom"]["secretKeyRef"]["key"]),
            Some(&json!("k"))
        );
    }

    #[test]
    fn bad_turn_settings_name_their_field() {
        let field = |settings: &str| Settings::parse(settings).err().map(|e| e.field);
        assert_eq!(
            field(r#"{"turnUrl": "http://x"}"#).as_deref(),
            Some("turnUrl")
        );
        assert_eq!(
            field(r#"{"turnSecretName": "turn"}"#).as_deref(),
            Some("turnSecretName")
        );
        assert_eq!(
            field(r#"{"turnUrl": "turn:x:1", "turnSecretKey": "k"}"#).as_deref(),
            Some("turnSecretKey")
        );
        assert_eq!(
            field(r#"{"turnUrl": "turn:x:1", "turnSecretName": ""}"#).as_deref(),
            Some("turnSecretName")
        );
    }

    #[test]
    fn a_template_name_too_long_for_the_claim_is_refused() {
        let template = TemplateInfo {
            name: "t".repeat(250),
            display_name: "T".into(),
            image: "i".into(),
            settings: String::new(),
        };
        let placement = Placement {
            node: "n".into(),
            gpu: None,
            reason: "test".into(),
        };
        let err = Desktop::objects(&Settings::default(), &request(), &template, &placement)
            .expect_err("too long");
        assert!(
            matches!(&err, PluginError::Invalid(f) if f.field == "template.name"),
            "{err:?}"
        );
    }

    #[test]
    fn the_home_claim_is_per_template_and_retained() {
        let objects = render("{}").expect("renders");
        let pvc = objects
            .iter()
            .find(|o| o["kind"] == "PersistentVolumeClaim")
            .expect("a claim");
        assert_eq!(pvc["metadata"]["name"], "home-ubuntu");
        assert_eq!(pvc["metadata"]["annotations"][RETAIN_ANNOTATION], "true");
        let pod = objects.iter().find(|o| o["kind"] == "Pod").expect("a pod");
        assert_eq!(
            pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"],
            "home-ubuntu"
        );
    }
}
