//! The kinds a session may own (`vdi_crd::SESSION_KINDS`) agree with what the plugin host lets
//! template plugins render: the operator can apply, delete and sweep everything a renderer may
//! produce, and a renderer may produce every kind the operator handles.

use std::collections::BTreeSet;

use serde_json::json;
use vdi_crd::SESSION_KINDS;
use vdi_plugin_host::types::{Resources, SessionRequest, SessionSpec, UserInfo};
use vdi_plugin_host::{RenderError, RenderPolicy};

fn request() -> SessionRequest {
    SessionRequest {
        name: "desk".into(),
        namespace: "default".into(),
        spec: SessionSpec {
            user: UserInfo {
                name: "alice".into(),
                groups: Vec::new(),
            },
            template: "ubuntu-desktop".into(),
            resources: Resources {
                gpu_slices: 0,
                gpu_memory_mib: 0,
                cpu_millis: 1000,
                memory_mib: 1024,
                video_encoder: false,
            },
            timeout_seconds: 0,
            labels: Vec::new(),
        },
    }
}

/// Whether the render check allows the kind (other objections, e.g. to a bare Pod's missing
/// spec, are not about the kind).
fn renderable(api_version: &str, kind: &str) -> bool {
    let obj = json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": "desk"}});
    !matches!(
        RenderPolicy::default().check(&request(), vec![obj.to_string()]),
        Err(RenderError::KindNotAllowed { .. })
    )
}

#[test]
fn every_session_kind_may_be_rendered() {
    for k in SESSION_KINDS {
        assert!(
            renderable(&k.api_version(), k.kind),
            "the render check refuses {}/{}, a session kind",
            k.api_version(),
            k.kind
        );
    }
}

#[test]
fn nothing_else_may_be_rendered() {
    for (api_version, kind) in [
        ("apps/v1", "Deployment"),
        ("v1", "Secret"),
        ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ] {
        assert!(!renderable(api_version, kind), "{api_version}/{kind}");
    }
}

/// `BUILTIN_KINDS` (host/plugins/src/render.rs) is not exported by `vdi-plugin-host`, so its
/// entries are read from the source: each must be a session kind.
#[test]
fn the_render_checks_builtin_kinds_are_session_kinds() {
    let source = include_str!("../../plugins/src/render.rs");
    let start = source
        .find("pub const BUILTIN_KINDS")
        .expect("render.rs defines BUILTIN_KINDS");
    let rest = &source[start..];
    let body = &rest[rest.find("= &[").expect("a slice") + 4..rest.find("];").expect("its end")];
    let builtin: BTreeSet<(String, String)> = body
        .split("),")
        .filter_map(|entry| {
            let quoted: Vec<&str> = entry.split('"').skip(1).step_by(2).collect();
            match quoted[..] {
                [group, kind] => Some((group.to_owned(), kind.to_owned())),
                _ => None,
            }
        })
        .collect();
    assert!(builtin.len() >= 4, "parsed {builtin:?}");
    let session: BTreeSet<(String, String)> = SESSION_KINDS
        .iter()
        .map(|k| (k.group.to_owned(), k.kind.to_owned()))
        .collect();
    let missing: Vec<_> = builtin.difference(&session).collect();
    assert!(
        missing.is_empty(),
        "renderers may produce {missing:?}, which vdi_crd::SESSION_KINDS lacks"
    );
}
