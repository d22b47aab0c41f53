//! Which nodes a template's sessions may use, through the assembled platform: the default
//! `local-desktop` template selects the local process node (`vdi.dev/runtime=process`), and a
//! template that does not ask for it never lands there, even when bin-packing would prefer it.

mod common;

use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use vdi_crd::{RUNTIME_LABEL, SessionPhase};

use common::{create, nodes, session, start, wait_phase};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_templates_that_select_the_process_node_land_on_it() {
    let env = start(nodes(2, 8)).await;
    let label = json!({"metadata": {"labels": {RUNTIME_LABEL: "process"}}});
    Api::<Node>::all(env.client())
        .patch(
            "sim-gpu-000",
            &PatchParams::default(),
            &Patch::Merge(&label),
        )
        .await
        .unwrap();

    // Placed only once the operator sees the label (unschedulable until then).
    create(
        &env,
        &session("local", "alice", &["staff"], "local-desktop", None),
    )
    .await
    .unwrap();
    let local = wait_phase(&env, "local", SessionPhase::Running).await;
    let st = local.status.unwrap();
    assert_eq!(st.node.as_deref(), Some("sim-gpu-000"));
    assert_eq!(st.gpu, None, "a CPU-only desktop");

    // Bin-packing prefers the fuller node, but these templates do not ask for the process node.
    for name in ["cpu-1", "cpu-2"] {
        create(
            &env,
            &session(name, "alice", &["staff"], "ubuntu-cpu", None),
        )
        .await
        .unwrap();
    }
    for name in ["cpu-1", "cpu-2"] {
        let s = wait_phase(&env, name, SessionPhase::Running).await;
        assert_eq!(
            s.status.unwrap().node.as_deref(),
            Some("sim-gpu-001"),
            "{name} landed on the process node"
        );
    }
    env.platform.stop().await;
}
