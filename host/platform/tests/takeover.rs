//! No takeover, over real HTTPS against the embedded control plane: a session whose rendered
//! objects would take the names of objects someone else made fails without touching them, and
//! deleting a session never deletes a same-named object it does not own.

mod common;

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Pod, Service};
use k8s_openapi::api::events::v1::Event;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, ResourceExt as _};
use serde_json::json;
use vdi_crd::{SessionPhase, VDISession, session_field_manager};

use common::{Env, WAIT, create, nodes, session, start, wait_gone, wait_phase};

fn services(env: &Env) -> Api<Service> {
    Api::namespaced(env.client(), "default")
}

async fn create_session(env: &Env, name: &str, user: &str) -> VDISession {
    create(
        env,
        &session(name, user, &["staff"], "ubuntu-desktop", None),
    )
    .await
    .unwrap()
}

async fn delete_session(env: &Env, name: &str) {
    env.sessions()
        .delete(name, &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(env, name).await;
}

async fn warning_events(env: &Env, session: &str) -> Vec<(String, String)> {
    Api::<Event>::namespaced(env.client(), "default")
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(session))
        .filter(|e| e.type_.as_deref() == Some("Warning"))
        .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
        .collect()
}

/// A Service someone else made, as a desktop's would be named.
fn foreign_service(name: &str) -> Service {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default", "labels": {"team": "billing"}},
        "spec": {"selector": {"app": "billing"}, "ports": [{"name": "api", "port": 9000}]},
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_session_named_after_someone_elses_service_fails_and_leaves_it_alone() {
    let env = start(nodes(1, 8)).await;
    let foreign = services(&env)
        .create(&PostParams::default(), &foreign_service("alice-desktop"))
        .await
        .unwrap();

    create_session(&env, "alice-desktop", "alice").await;
    let failed = wait_phase(&env, "alice-desktop", SessionPhase::Failed).await;
    let st = failed.status.unwrap();
    assert_eq!(st.reason.as_deref(), Some("ObjectConflict"));
    let message = st.message.unwrap_or_default();
    assert!(
        message.contains("Service/alice-desktop")
            && message.contains("exists and is not owned by this session"),
        "{message:?}"
    );
    assert!(st.objects.is_empty(), "nothing is recorded as applied");
    // Nothing was applied: not even the objects whose names were free.
    let pods: Api<Pod> = Api::namespaced(env.client(), "default");
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(env.client(), "default");
    assert!(pods.get_opt("alice-desktop").await.unwrap().is_none());
    assert!(
        claims
            .get_opt("home-ubuntu-desktop")
            .await
            .unwrap()
            .is_none()
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    while !warning_events(&env, "alice-desktop")
        .await
        .iter()
        .any(|(reason, note)| reason == "ObjectConflict" && note.contains("Service/alice-desktop"))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no ObjectConflict event"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let unchanged = |s: &Service| {
        assert_eq!(s.uid(), foreign.uid());
        assert_eq!(
            s.resource_version(),
            foreign.resource_version(),
            "the foreign Service was written to"
        );
        assert_eq!(s.labels(), foreign.labels());
        assert!(s.owner_references().is_empty());
    };
    unchanged(&services(&env).get("alice-desktop").await.unwrap());

    delete_session(&env, "alice-desktop").await;
    unchanged(&services(&env).get("alice-desktop").await.unwrap());

    // The platform serves the next session as ever.
    create_session(&env, "carol-desktop", "carol").await;
    wait_phase(&env, "carol-desktop", SessionPhase::Running).await;
    env.platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_session_applies_its_objects_under_its_own_field_manager() {
    let env = start(nodes(1, 8)).await;
    let created = create_session(&env, "dave-desktop", "dave").await;
    wait_phase(&env, "dave-desktop", SessionPhase::Running).await;
    let uid = created.uid().unwrap();
    let pod = Api::<Pod>::namespaced(env.client(), "default")
        .get("dave-desktop")
        .await
        .unwrap();
    let managers: Vec<(String, String)> = pod
        .managed_fields()
        .iter()
        .map(|m| {
            (
                m.manager.clone().unwrap_or_default(),
                m.operation.clone().unwrap_or_default(),
            )
        })
        .collect();
    // Created under the session's own manager (a later pass re-applies under it).
    assert!(
        managers.contains(&(session_field_manager(&uid), "Update".to_owned()))
            || managers.contains(&(session_field_manager(&uid), "Apply".to_owned())),
        "{managers:?}"
    );
    assert!(
        managers
            .iter()
            .all(|(m, _)| m == &session_field_manager(&uid)),
        "no other manager: {managers:?}"
    );
    env.platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_object_replaced_by_someone_elses_survives_the_sessions_deletion() {
    let env = start(nodes(1, 8)).await;
    create_session(&env, "erin-desktop", "erin").await;
    wait_phase(&env, "erin-desktop", SessionPhase::Running).await;
    // Someone removes the session's Service and puts their own in its place.
    services(&env)
        .delete("erin-desktop", &DeleteParams::default())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while services(&env)
        .get_opt("erin-desktop")
        .await
        .unwrap()
        .is_some()
    {
        assert!(tokio::time::Instant::now() < deadline, "Service not gone");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let foreign = services(&env)
        .create(&PostParams::default(), &foreign_service("erin-desktop"))
        .await
        .unwrap();
    // And a ConfigMap of the session's name, never the session's at all.
    let config_maps: Api<ConfigMap> = Api::namespaced(env.client(), "default");
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "erin-desktop"},
        "data": {"owner": "billing"},
    }))
    .unwrap();
    config_maps
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();

    delete_session(&env, "erin-desktop").await;
    let kept = services(&env).get("erin-desktop").await.unwrap();
    assert_eq!(kept.uid(), foreign.uid());
    assert!(config_maps.get_opt("erin-desktop").await.unwrap().is_some());
    // The session's own objects went.
    let pods: Api<Pod> = Api::namespaced(env.client(), "default");
    let deadline = tokio::time::Instant::now() + WAIT;
    while pods.get_opt("erin-desktop").await.unwrap().is_some() {
        assert!(tokio::time::Instant::now() < deadline, "Pod left behind");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    env.platform.stop().await;
}
