//! Template `{{name}}`: renders a session as one Pod (the template's image, the admitted
//! resources, on the placed node, under Pod Security "restricted") and one Service in front of
//! it. The host checks the objects, fills in the namespace and its labels, and owns them.
//!
//! Build with `vdi plugin build`, check with `vdi plugin test out/{{name}}.wasm --vectors vectors`.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use vdi_plugin_sdk::{
    FieldError, Placement, PluginError, PluginSettings, SessionRequest, Template, TemplateInfo,
};

/// The plugin's settings (`VDIPlugin.spec.settings`).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
struct Settings {
    /// Port the desktop serves on; the Service forwards to it.
    port: u16,
    /// uid (and gid) the desktop runs as; never 0.
    run_as_user: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            port: 8080,
            run_as_user: 1000,
        }
    }
}

impl PluginSettings for Settings {
    fn validate(&self) -> Result<(), FieldError> {
        if self.run_as_user == 0 {
            return Err(FieldError::new(
                "runAsUser",
                "sessions never run as root (uid 0)",
            ));
        }
        if self.port == 0 {
            return Err(FieldError::new("port", "must be greater than 0"));
        }
        Ok(())
    }
}

/// The renderer.
struct Renderer;

impl Renderer {
    fn objects(
        s: &Settings,
        req: &SessionRequest,
        template: &TemplateInfo,
        placement: &Placement,
    ) -> Result<Vec<Value>, PluginError> {
        if template.image.is_empty() {
            return Err(FieldError::new("template.image", "must not be empty").into());
        }
        let r = &req.spec.resources;
        // The Service selects the pod by the label the host puts on every session object.
        let selector = json!({ "vdi.dev/session": req.name });
        let metadata = json!({ "name": req.name, "namespace": req.namespace, "labels": selector });
        let mut resources =
            json!({ "cpu": format!("{}m", r.cpu_millis), "memory": format!("{}Mi", r.memory_mib) });
        if r.gpu_slices > 0 {
            resources["nvidia.com/gpu"] = json!(r.gpu_slices.to_string());
        }
        let pod = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": metadata,
            "spec": {
                "nodeName": placement.node,
                "restartPolicy": "Never",
                "automountServiceAccountToken": false,
                "securityContext": {
                    "runAsNonRoot": true,
                    "runAsUser": s.run_as_user,
                    "runAsGroup": s.run_as_user,
                    "seccompProfile": { "type": "RuntimeDefault" },
                },
                "containers": [{
                    "name": "desktop",
                    "image": template.image,
                    "ports": [{ "name": "http", "containerPort": s.port, "protocol": "TCP" }],
                    "resources": { "requests": resources, "limits": resources },
                    "securityContext": {
                        "allowPrivilegeEscalation": false,
                        "capabilities": { "drop": ["ALL"] },
                    },
                }],
            },
        });
        let service = json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": metadata,
            "spec": {
                "type": "ClusterIP",
                "selector": selector,
                "ports": [{ "name": "http", "port": s.port, "targetPort": "http", "protocol": "TCP" }],
            },
        });
        Ok(vec![pod, service])
    }
}

impl Template for Renderer {
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

vdi_plugin_sdk::export_template!(Renderer);
