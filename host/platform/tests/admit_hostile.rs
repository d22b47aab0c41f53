//! The hostile admission plugin, each of its blocking and flooding attacks, judged the two ways a
//! cluster asks: the embedded control plane's in-process hook (a create through the API) and the
//! operator's validating webhook (an `AdmissionReview` over HTTP). Blocking attacks end in the
//! plugin's time limit with a clear refusal; floods still decide; the platform serves the next
//! request every time.

mod common;

use std::time::{Duration, Instant};

use common::webhook::post_review;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use vdi_crd::{PluginPhase, VDIPlugin, VDISession};
use vdi_operator::OperatorConfig;

use common::{nodes, operator_config, put_module, session, start_with};

/// The hostile plugin's time limit for the attacks that block or spin.
const LIMIT_MS: u32 = 50;
/// Its limit for the floods, which must decide: writing 1 MiB through WASI takes a few
/// milliseconds, more on a loaded 2-core machine.
const FLOOD_LIMIT_MS: u32 = 2000;

fn alice(name: &str) -> serde_json::Value {
    serde_json::to_value(session(name, "alice", &["staff"], "ubuntu-cpu", None)).unwrap()
}

/// Applies the hostile plugin in `mode` and waits until the operator serves that mode.
async fn hostile(client: &Client, digest: &str, mode: &str, limit_ms: u32) {
    let plugins: Api<VDIPlugin> = Api::all(client.clone());
    let spec = json!({
        "apiVersion": "vdi.dev/v1alpha1", "kind": "VDIPlugin", "metadata": {"name": "hostile"},
        "spec": {"hook": "admission", "source": {"upload": {}}, "sha256": digest,
                 "settings": {"mode": mode}, "order": 5, "failurePolicy": "Fail",
                 "timeoutMs": limit_ms},
    });
    plugins
        .patch(
            "hostile",
            &PatchParams::apply("test").force(),
            &Patch::Apply(&spec),
        )
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let p = plugins.get("hostile").await.unwrap();
        let served = p.status.as_ref().is_some_and(|s| {
            s.phase == Some(PluginPhase::Ready) && s.observed_generation == p.metadata.generation
        });
        if served {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "hostile/{mode} never loaded: {p:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_admission_plugins_through_the_in_process_hook_and_the_webhook() {
    let config = OperatorConfig {
        http_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..operator_config()
    };
    let env = start_with(nodes(1, 8), Some(config), true).await;
    let client = env.client();
    let addr = env.platform.operator.as_ref().unwrap().http_addr().unwrap();
    let digest = put_module(&env, "vdi_hostile").await.to_string();
    let sessions: Api<VDISession> = Api::namespaced(client.clone(), "default");

    for (i, (mode, blocks)) in [
        ("sleep-forever", true),
        ("sleep-then-loop", true),
        ("loop", true),
        ("stdout-flood", false),
        ("stderr-panic", false),
        ("log-flood", false),
    ]
    .into_iter()
    .enumerate()
    {
        let limit_ms = if blocks { LIMIT_MS } else { FLOOD_LIMIT_MS };
        hostile(&client, &digest, mode, limit_ms).await;
        let name = format!("s-{i}");
        let obj = alice(&name);

        // In-process hook: a create through the API.
        let started = Instant::now();
        let created = sessions
            .create(
                &PostParams::default(),
                &serde_json::from_value(obj.clone()).unwrap(),
            )
            .await;
        let took = started.elapsed();
        println!(
            "{mode}: in-process hook answered in {took:?}: {:?}",
            created.as_ref().err()
        );
        assert!(took < Duration::from_secs(5), "{mode}: took {took:?}");
        match (mode, created) {
            (_, Err(kube::Error::Api(e))) if blocks => {
                assert_eq!(e.code, 403, "{mode}: {e:?}");
                assert!(
                    e.message.contains("plugin hostile failed")
                        && e.message.contains("timed out after 50ms"),
                    "{mode}: {}",
                    e.message
                );
            }
            ("stderr-panic", Err(kube::Error::Api(e))) => {
                assert_eq!(e.code, 403, "{e:?}");
                assert!(e.message.contains("panics after a flood"), "{}", e.message);
            }
            ("stdout-flood" | "log-flood", Ok(_)) => {}
            (_, other) => panic!("{mode}: unexpected {other:?}"),
        }

        // Webhook: the same session as an AdmissionReview.
        let started = Instant::now();
        let answer = post_review(addr, "/validate", "alice", &["staff"], obj).await;
        let took = started.elapsed();
        let response = &answer["response"];
        println!("{mode}: webhook answered in {took:?}: {response}");
        assert!(took < Duration::from_secs(5), "{mode}: took {took:?}");
        let message = response["status"]["message"].as_str().unwrap_or_default();
        match mode {
            _ if blocks => {
                assert_eq!(response["allowed"], false, "{mode}: {answer}");
                assert!(
                    message.contains("timed out after 50ms"),
                    "{mode}: {message}"
                );
            }
            "stderr-panic" => {
                assert_eq!(response["allowed"], false, "{answer}");
                assert!(message.contains("panics after a flood"), "{message}");
            }
            _ => assert_eq!(response["allowed"], true, "{mode}: {answer}"),
        }
    }

    // The platform still serves: with the hostile plugin gone, a session is admitted.
    Api::<VDIPlugin>::all(client.clone())
        .delete("hostile", &Default::default())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = sessions
            .create(
                &PostParams::default(),
                &serde_json::from_value(alice("after")).unwrap(),
            )
            .await;
        match r {
            Ok(_) => break,
            Err(e) if Instant::now() < deadline => {
                println!("not yet: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the platform no longer admits: {e}"),
        }
    }
    env.platform.stop().await;
}
