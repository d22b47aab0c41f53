//! The operator's HTTP endpoints on the running platform: the validating and mutating webhooks,
//! metrics and readiness, and module uploads.

mod common;

use vdi_crd::SessionPhase;
use vdi_operator::OperatorConfig;
use vdi_plugin_host::Digest;

use common::webhook::{http, post_review};
use common::{create, nodes, operator_config, session, start_with, wait_phase};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_webhook_metrics_and_upload_endpoints_answer_over_http() {
    let config = OperatorConfig {
        http_listen: Some("127.0.0.1:0".parse().unwrap()),
        upload_token: Some("s3cret".into()),
        ..operator_config()
    };
    let env = start_with(nodes(1, 8), Some(config), true).await;
    let addr = env.platform.operator.as_ref().unwrap().http_addr().unwrap();

    // Validating: a denial carries the plugin's reason and 403.
    let bob = serde_json::to_value(session(
        "bob-desktop",
        "bob",
        &["contractors"],
        "ubuntu-desktop",
        None,
    ))
    .unwrap();
    let answer = post_review(addr, "/validate", "admin", &["system:masters"], bob).await;
    let response = &answer["response"];
    assert_eq!(response["uid"], "7d1d6e4c-0000-4000-8000-000000000001");
    assert_eq!(response["allowed"], false);
    assert_eq!(response["status"]["code"], 403);
    assert!(
        response["status"]["message"]
            .as_str()
            .unwrap()
            .contains("is not allowed for user \"bob\""),
        "{answer}"
    );

    // Mutating: a user who is not trusted gets their own identity, and the timeout is clamped.
    let mallory = serde_json::to_value(session(
        "carol-desktop",
        "mallory",
        &["admins"],
        "ubuntu-desktop",
        Some("24h"),
    ))
    .unwrap();
    let answer = post_review(addr, "/mutate", "carol", &["staff"], mallory).await;
    let response = &answer["response"];
    assert_eq!(response["allowed"], true, "{answer}");
    assert_eq!(response["patchType"], "JSONPatch");
    // Go's []byte: kube-core writes a JSON array of bytes (which the API server accepts, as it
    // accepts base64).
    let bytes: Vec<u8> = match &response["patch"] {
        serde_json::Value::String(b64) => {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap()
        }
        other => serde_json::from_value(other.clone()).unwrap(),
    };
    let patch: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let ops = patch.to_string();
    assert!(ops.contains("\"carol\"") && ops.contains("\"4h\""), "{ops}");
    assert!(
        !ops.contains("admins"),
        "the claimed group is replaced: {ops}"
    );

    // Metrics after one session ran.
    create(&env, &session("m", "alice", &["staff"], "ubuntu-cpu", None))
        .await
        .unwrap();
    wait_phase(&env, "m", SessionPhase::Running).await;
    // The operator counts the transition just after it writes the Running status.
    let needles = [
        "vdi_operator_reconcile_duration_seconds_bucket",
        // From Scheduled (ready within the grace) or Provisioning (a machine too busy).
        ",to=\"Running\"} 1",
        "vdi_operator_session_startup_seconds_count 1",
        "vdi_plugin_calls_total{plugin=\"quota\",hook=\"admission\"}",
        "vdi_plugin_call_duration_seconds_bucket",
    ];
    let deadline = tokio::time::Instant::now() + common::WAIT;
    let text = loop {
        let (code, body) = http(addr, "GET", "/metrics", &[], b"").await;
        assert_eq!(code, 200);
        let text = String::from_utf8(body).unwrap();
        let missing: Vec<&str> = needles
            .iter()
            .copied()
            .filter(|n| !text.contains(n))
            .collect();
        if missing.is_empty() {
            break text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {missing:?} in\n{text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(text.ends_with("# EOF\n"));
    let (code, _) = http(addr, "GET", "/readyz", &[], b"").await;
    assert_eq!(code, 200);

    // Uploads need the token and a real component; they land in the store by digest (the
    // platform stored the default plugins already, so this one is new).
    let module = vdi_testkit::wasm("vdi_hostile");
    let (code, _) = http(addr, "PUT", "/modules", &[], &module).await;
    assert_eq!(code, 401);
    let auth = [("Authorization", "Bearer s3cret")];
    let (code, body) = http(addr, "PUT", "/modules", &auth, b"not wasm").await;
    assert_eq!(code, 422, "{}", String::from_utf8_lossy(&body));
    let (code, body) = http(addr, "PUT", "/modules", &auth, &module).await;
    assert_eq!(code, 201);
    let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["sha256"], Digest::of(&module).to_string());
    env.platform.stop().await;
}
