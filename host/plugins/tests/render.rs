//! The default desktop template's real output against the host's render check: its Pod is
//! within Pod Security `restricted` and confined to the session, and settings that would reach
//! beyond the session are refused.

mod common;

use common::{load, request, runtime};
use serde_json::Value;
use vdi_plugin_host::types::{Placement, TemplateInfo};
use vdi_plugin_host::{CallError, RenderPolicy};

fn template() -> TemplateInfo {
    TemplateInfo {
        name: "ubuntu".into(),
        display_name: "Ubuntu".into(),
        image: "ghcr.io/vdi/ubuntu:24.04".into(),
        settings: r#"{"env": {"LANG": "C.UTF-8"}}"#.into(),
    }
}

fn placement(gpu: Option<u32>) -> Placement {
    Placement {
        node: "gpu-1".into(),
        gpu,
        reason: "test".into(),
    }
}

#[test]
fn desktop_output_passes_pod_security_and_confinement() {
    let rt = runtime();
    for settings in ["", r#"{"ingressHost": "vdi.example.com"}"#] {
        let plugin = load(&rt, "vdi_desktop", settings);
        for gpu in [Some(0), None] {
            let placement = placement(gpu);
            let policy = RenderPolicy::default().with_allowed_secrets(["regcred"]);
            let objects = plugin
                .render(&request(), &template(), &placement, &policy)
                .unwrap_or_else(|e| panic!("render with {settings:?}: {e}"));
            // The full check, node included, over what the plugin rendered.
            let checked = policy
                .check_placed(
                    &request(),
                    &placement,
                    objects.iter().map(Value::to_string).collect(),
                )
                .unwrap_or_else(|e| panic!("check with {settings:?}, gpu {gpu:?}: {e}"));
            let pod = checked
                .iter()
                .find(|o| o["kind"] == "Pod")
                .expect("a Pod is rendered");
            assert_eq!(pod["spec"]["nodeName"], "gpu-1");
            assert_eq!(pod["spec"]["serviceAccountName"], "default");
            assert_eq!(pod["spec"]["automountServiceAccountToken"], false);
        }
    }
}

#[test]
fn desktop_settings_reaching_beyond_the_session_are_refused() {
    let rt = runtime();
    let cases = [
        (
            r#"{"ingressNamespace": "team-b"}"#,
            "spec.ingress[0].from[0].namespaceSelector.matchLabels",
            "confine/network-policy-peer",
        ),
        (
            r#"{"pathPrefix": "/api"}"#,
            "spec.routes[0].match",
            "confine/route-match",
        ),
    ];
    for (settings, field, rule) in cases {
        let plugin = load(&rt, "vdi_desktop", settings);
        let err = plugin
            .render(
                &request(),
                &template(),
                &placement(Some(0)),
                &RenderPolicy::default(),
            )
            .expect_err("refused");
        assert!(
            matches!(&err, CallError::BadOutput { reason } if reason.contains(field) && reason.contains(rule)),
            "{settings}: {err:?}"
        );
    }
}
