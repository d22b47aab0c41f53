//! Sessions through the assembled platform over real HTTPS: from creation to Running and away
//! again with their objects, admission denials at the API and in the controller, capacity waits,
//! timeouts, and an operator killed mid-way.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt as _};
use serde_json::json;
use vdi_cluster::SimulatedNodes;
use vdi_crd::{SessionPhase, VDIPlugin, VDISession};

use common::{
    WAIT, assert_refused, create, nodes, operator_config, phase, session, session_objects, start,
    start_with, wait_gone, wait_phase,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_session_runs_through_every_hook_and_goes_away_with_its_objects() {
    let env = start(nodes(2, 8)).await;
    // The objects a real cluster gets (the embedded platform's default leaves the route and
    // the policy out: nothing there acts on them).
    Api::<VDIPlugin>::all(env.client())
        .patch(
            "desktop",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"settings": {"ingressRoute": true, "networkPolicy": true}}}),
            ),
        )
        .await
        .unwrap();
    common::wait_plugins_ready(&env, &["desktop"]).await;
    let created = create(
        &env,
        &session(
            "alice-desktop",
            "alice",
            &["staff"],
            "ubuntu-desktop",
            Some("2h"),
        ),
    )
    .await
    .unwrap();
    let s = wait_phase(&env, "alice-desktop", SessionPhase::Running).await;
    let st = s.status.clone().unwrap();
    assert_eq!(
        st.url.as_deref(),
        Some("https://localhost:8443/sessions/default/alice-desktop/")
    );
    assert!(
        st.node.as_deref().unwrap().starts_with("sim-gpu-"),
        "{st:?}"
    );
    assert_eq!(st.gpu, Some(0));
    assert!(st.started_at.is_some() && st.expires_at.is_some());
    assert_eq!(
        st.admitted.as_ref().unwrap().resources.gpu_slices,
        1,
        "template default"
    );
    let hooks: Vec<(&str, &str, &str)> = st
        .decisions
        .iter()
        .map(|d| (d.hook.as_str(), d.plugin.as_str(), d.outcome.as_str()))
        .collect();
    assert_eq!(
        hooks,
        [
            ("admission", "quota", "Allowed"),
            ("scheduler", "gpu-binpack", "Placed"),
            ("template", "desktop", "Rendered"),
        ]
    );
    assert!(st.decisions.iter().all(|d| d.digest.starts_with("sha256:")));
    let kinds: Vec<&str> = st.objects.iter().map(|o| o.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "PersistentVolumeClaim",
            "Pod",
            "Service",
            "IngressRoute",
            "NetworkPolicy"
        ]
    );
    let pod = Api::<Pod>::namespaced(env.client(), "default")
        .get("alice-desktop")
        .await
        .unwrap();
    let owner = &pod.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("VDISession", created.uid().unwrap().as_str())
    );
    assert_eq!(owner.controller, Some(true));
    assert_eq!(pod.spec.unwrap().node_name, st.node);
    // The operator records the Running event just after it writes the Running status.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let events: Vec<String> = Api::<Event>::namespaced(env.client(), "default")
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| {
                e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("alice-desktop")
            })
            .filter_map(|e| Some(format!("{}: {}", e.reason?, e.note.unwrap_or_default())))
            .collect();
        let missing: Vec<&str> = ["Running: desktop ready at https://localhost:8443/sessions/default/alice-desktop/ (on sim-gpu-"]
            .into_iter()
            .filter(|reason| !events.iter().any(|e| e.starts_with(reason)))
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {missing:?} event in {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let metrics = env.platform.operator.as_ref().unwrap().metrics();
    // Straight from Scheduled when the desktop is ready within the grace (a simulated node
    // starts it at once), through a written Provisioning on a machine too busy for that.
    assert_eq!(
        metrics.transitions(SessionPhase::Scheduled, SessionPhase::Running)
            + metrics.transitions(SessionPhase::Provisioning, SessionPhase::Running),
        1
    );

    env.sessions()
        .delete("alice-desktop", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&env, "alice-desktop").await;
    assert_eq!(
        session_objects(&env, &created.uid().unwrap()).await,
        0,
        "objects left behind"
    );
    env.platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_denied_session_is_refused_at_the_api_and_recorded_by_the_controller() {
    let bob = session(
        "bob-desktop",
        "bob",
        &["contractors"],
        "ubuntu-desktop",
        None,
    );
    // With the in-process admission (the webhook's stand-in), the create itself is refused.
    let env = start(nodes(1, 8)).await;
    assert_refused(
        &env,
        &bob,
        "denied by plugin quota: template \"ubuntu-desktop\" is not allowed for user \"bob\"",
    )
    .await;
    // A template that does not exist is an invalid field, not a policy denial.
    let invalid = create(&env, &session("x", "bob", &[], "no-such-template", None))
        .await
        .unwrap_err();
    assert!(
        matches!(invalid, kube::Error::Api(ref e) if e.code == 422 && e.message.contains("no-such-template")),
        "{invalid:?}"
    );
    env.platform.stop().await;

    // Without it (a real cluster with no webhook installed), the controller denies it and says
    // why in the status and an Event.
    let env = start_with(nodes(1, 8), Some(operator_config()), false).await;
    create(&env, &bob).await.unwrap();
    let s = wait_phase(&env, "bob-desktop", SessionPhase::Denied).await;
    let st = s.status.unwrap();
    assert_eq!(st.reason.as_deref(), Some("AdmissionDenied"));
    assert!(
        st.message
            .unwrap()
            .contains("is not allowed for user \"bob\"")
    );
    assert_eq!(st.node, None, "a denied session is never placed");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let events = Api::<Event>::namespaced(env.client(), "default")
            .list(&ListParams::default())
            .await
            .unwrap();
        if events.items.iter().any(|e| {
            e.reason.as_deref() == Some("AdmissionDenied")
                && e.note.as_deref().is_some_and(|n| n.contains("bob"))
                && e.type_.as_deref() == Some("Warning")
        }) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no AdmissionDenied event"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    env.platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_ninth_session_on_an_eight_slice_gpu_waits_and_is_placed_when_one_goes() {
    let env = start(nodes(1, 8)).await;
    let names: Vec<String> = (0..9).map(|i| format!("desk-{i}")).collect();
    let creates = names.iter().enumerate().map(|(i, n)| {
        let s = session(n, &format!("user-{i}"), &["staff"], "ubuntu-desktop", None);
        let api = env.sessions();
        async move { api.create(&PostParams::default(), &s).await.unwrap() }
    });
    futures::future::join_all(creates).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let (running, waiting) = loop {
        let list = env
            .sessions()
            .list(&ListParams::default())
            .await
            .unwrap()
            .items;
        let running: Vec<VDISession> = list
            .iter()
            .filter(|s| phase(Some(s)) == Some(SessionPhase::Running))
            .cloned()
            .collect();
        let waiting: Vec<VDISession> = list
            .iter()
            .filter(|s| {
                s.status
                    .as_ref()
                    .and_then(|st| st.condition("Scheduled"))
                    .is_some_and(|c| c.status == "False" && c.reason == "Unschedulable")
            })
            .cloned()
            .collect();
        if running.len() == 8 && waiting.len() == 1 {
            break (running, waiting);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "expected 8 running and 1 waiting, got {} and {}",
            running.len(),
            waiting.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let slots: HashSet<(String, u32)> = running
        .iter()
        .map(|s| {
            let st = s.status.as_ref().unwrap();
            (st.node.clone().unwrap(), st.gpu.unwrap())
        })
        .collect();
    assert_eq!(slots.len(), 1, "all on the one GPU");
    let waiter = waiting[0].name_any();
    let st = waiting[0].status.as_ref().unwrap();
    assert_eq!(st.phase(), SessionPhase::Pending);
    assert!(
        st.condition("Scheduled").unwrap().message.contains("slice"),
        "{st:?}"
    );

    env.sessions()
        .delete(&running[0].name_any(), &DeleteParams::default())
        .await
        .unwrap();
    let placed = wait_phase(&env, &waiter, SessionPhase::Running).await;
    assert_eq!(placed.status.unwrap().gpu, Some(0));
    env.platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_expired_session_is_removed_with_everything_it_had() {
    let env = start(nodes(1, 8)).await;
    let s = create(
        &env,
        &session("short", "alice", &["staff"], "ubuntu-cpu", Some("3s")),
    )
    .await
    .unwrap();
    let running = wait_phase(&env, "short", SessionPhase::Running).await;
    let st = running.status.unwrap();
    assert!(st.node.is_some());
    assert_eq!(st.gpu, None, "CPU-only template");
    let expires: jiff::Timestamp = st.expires_at.unwrap().parse().unwrap();
    wait_gone(&env, "short").await;
    assert!(
        jiff::Timestamp::now() >= expires,
        "removed before its expiry"
    );
    assert_eq!(session_objects(&env, &s.uid().unwrap()).await, 0);
    env.platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_operator_killed_mid_way_converges_without_duplicates_or_leaks() {
    // Slower than the operator's grace for writing Provisioning (2 s).
    let slow = SimulatedNodes {
        start_delay: Duration::from_millis(3500),
        ..nodes(2, 8)
    };
    let mut env = start(slow).await;
    let names = ["r-0", "r-1", "r-2"];
    for (i, n) in names.iter().enumerate() {
        create(
            &env,
            &session(n, &format!("u{i}"), &["staff"], "ubuntu-desktop", None),
        )
        .await
        .unwrap();
    }
    for n in names {
        wait_phase(&env, n, SessionPhase::Provisioning).await;
    }
    // Killed while the desktops start.
    env.platform.kill_operator();
    env.platform
        .start_operator(operator_config())
        .await
        .unwrap();
    let mut uids = Vec::new();
    for n in names {
        let s = wait_phase(&env, n, SessionPhase::Running).await;
        let pods = Api::<Pod>::namespaced(env.client(), "default")
            .list(&ListParams::default().labels(&format!("vdi.dev/session={n}")))
            .await
            .unwrap();
        assert_eq!(pods.items.len(), 1, "exactly one pod for {n}");
        uids.push(s.uid().unwrap());
    }
    let mut slots = HashSet::new();
    for n in names {
        let st = env.sessions().get(n).await.unwrap().status.unwrap();
        assert!(
            slots.insert((st.node.unwrap(), st.gpu.unwrap(), n)),
            "no slot given twice"
        );
    }

    // Killed while removing them: a finalizer on one desktop pod holds its session in
    // Terminating (as a slow graceful shutdown would).
    let pods: Api<Pod> = Api::namespaced(env.client(), "default");
    let hold = json!({"metadata": {"finalizers": ["test.vdi.dev/hold"]}});
    pods.patch("r-0", &PatchParams::default(), &Patch::Merge(&hold))
        .await
        .unwrap();
    for n in names {
        env.sessions()
            .delete(n, &DeleteParams::default())
            .await
            .unwrap();
    }
    wait_phase(&env, names[0], SessionPhase::Terminating).await;
    env.platform.kill_operator();
    env.platform
        .start_operator(operator_config())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        phase(env.sessions().get_opt("r-0").await.unwrap().as_ref()),
        Some(SessionPhase::Terminating),
        "waits for its pod"
    );
    let release = json!({"metadata": {"finalizers": null}});
    pods.patch("r-0", &PatchParams::default(), &Patch::Merge(&release))
        .await
        .unwrap();
    for n in names {
        wait_gone(&env, n).await;
    }
    for uid in uids {
        assert_eq!(
            session_objects(&env, &uid).await,
            0,
            "objects of {uid} leaked"
        );
    }
    env.platform.stop().await;
}
