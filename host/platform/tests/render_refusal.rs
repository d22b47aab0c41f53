//! A template plugin whose output reaches beyond its session, over real HTTPS against the
//! embedded control plane: the session fails with a reason naming the object, the field and the
//! rule (in its status and a Warning Event), nothing is applied, and once the plugin renders
//! within bounds again the next session runs.

mod common;

use k8s_openapi::api::events::v1::Event;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt as _};
use serde_json::json;
use vdi_crd::{SessionPhase, VDIPlugin};

use common::{create, nodes, session, session_objects, start, wait_phase, wait_plugins_ready};

/// Sets the default desktop renderer's `pathPrefix` and waits until it serves it.
async fn desktop_path_prefix(env: &common::Env, prefix: &str) {
    Api::<VDIPlugin>::all(env.client())
        .patch(
            "desktop",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"settings": {"pathPrefix": prefix, "ingressRoute": true}}}),
            ),
        )
        .await
        .unwrap();
    wait_plugins_ready(env, &["desktop"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_render_outside_the_session_path_fails_the_session_and_applies_nothing() {
    let env = start(nodes(1, 8)).await;
    // The plugin itself accepts the setting; the host's route confinement does not.
    desktop_path_prefix(&env, "/api").await;
    let s = create(
        &env,
        &session("alice-desktop", "alice", &["staff"], "ubuntu-desktop", None),
    )
    .await
    .unwrap();
    let failed = wait_phase(&env, "alice-desktop", SessionPhase::Failed).await;
    let message = failed
        .status
        .as_ref()
        .and_then(|st| st.message.clone())
        .unwrap_or_default();
    println!("status message: {message}");
    for needle in ["IngressRoute", "spec.routes[0].match", "rule"] {
        assert!(message.contains(needle), "{needle:?} not in {message:?}");
    }
    let uid = s.uid().expect("uid");
    assert_eq!(session_objects(&env, &uid).await, 0, "nothing was applied");
    let events = Api::<Event>::namespaced(env.client(), "default")
        .list(&ListParams::default())
        .await
        .unwrap();
    let warning = events
        .items
        .iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("alice-desktop"))
        .find(|e| e.type_.as_deref() == Some("Warning"))
        .expect("a Warning Event for the session");
    assert!(
        warning
            .note
            .as_deref()
            .unwrap_or_default()
            .contains("IngressRoute"),
        "{warning:?}"
    );

    // Back within bounds, the platform serves the next session.
    desktop_path_prefix(&env, "/sessions").await;
    create(
        &env,
        &session("alice-2", "alice", &["staff"], "ubuntu-desktop", None),
    )
    .await
    .unwrap();
    wait_phase(&env, "alice-2", SessionPhase::Running).await;
    env.platform.stop().await;
}
