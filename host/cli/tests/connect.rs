//! `vdi connect` against `vdi up`: a running session's URL comes back with a connect token that
//! the public key in the platform's Secret verifies, for the session's owner, with the session's
//! namespace/name as audience and its expiry as the stream's end.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::ClusterProcess;
use k8s_openapi::api::core::v1::Secret;
use kube::api::PostParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};
use vdi_crd::VDISession;
use vdi_operator::connect::{
    CONNECT_WINDOW_SECS, CURRENT_PUBLIC, ConnectKeys, KEYS_NAMESPACE, KEYS_SECRET, KeyPem,
};

const VDI: &str = env!("CARGO_BIN_EXE_vdi");

#[tokio::test(flavor = "multi_thread")]
async fn vdi_connect_prints_the_session_url_with_a_token_the_platform_key_verifies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let platform = ClusterProcess::up(dir.path());
    let yaml = std::fs::read_to_string(&platform.kubeconfig).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(
        Kubeconfig::from_yaml(&yaml).expect("kubeconfig"),
        &KubeConfigOptions::default(),
    )
    .await
    .expect("config");
    let client = Client::try_from(config).expect("client");

    let sessions = Api::<VDISession>::namespaced(client.clone(), "default");
    let session: VDISession = serde_json::from_value(serde_json::json!({
        "apiVersion": "vdi.dev/v1alpha1", "kind": "VDISession",
        "metadata": {"name": "desk-1", "namespace": "default"},
        "spec": {"user": {"name": "alice", "groups": ["staff"]}, "template": "ubuntu-desktop",
                 "timeout": "2h"},
    }))
    .expect("session");
    sessions
        .create(&PostParams::default(), &session)
        .await
        .expect("create the session");
    let deadline = Instant::now() + Duration::from_secs(60);
    let session = loop {
        let s = sessions.get("desk-1").await.expect("get the session");
        let status = s.status.clone().unwrap_or_default();
        if status.url.is_some() && status.expires_at.is_some() {
            break s;
        }
        assert!(Instant::now() < deadline, "no url and expiry: {status:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let status = session.status.clone().expect("status");

    let out = Command::new(VDI)
        .args(["connect", "desk-1", "-n", "default"])
        .env("KUBECONFIG", &platform.kubeconfig)
        .output()
        .expect("run vdi connect");
    assert!(
        out.status.success(),
        "vdi connect: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).expect("utf-8");
    let (base, token) = printed
        .trim()
        .rsplit_once("token=")
        .expect("a token in the URL");
    let url = status.url.clone().expect("url");
    assert_eq!(
        base,
        format!("{url}#"),
        "the token travels in the fragment: {printed}"
    );

    let secret = Api::<Secret>::namespaced(client.clone(), KEYS_NAMESPACE)
        .get(KEYS_SECRET)
        .await
        .expect("the connect keys' Secret");
    let public_pem =
        String::from_utf8(secret.data.expect("data")[CURRENT_PUBLIC].0.clone()).expect("PEM text");
    // Only the public key: what a streamer holds.
    let verifier = ConnectKeys {
        current: KeyPem {
            private_pem: String::new(),
            public_pem,
        },
        previous: None,
    };
    let now = u64::try_from(jiff::Timestamp::now().as_second()).expect("after 1970");
    let claims = verifier
        .verify(token, "default", "desk-1", now)
        .expect("the token verifies");
    assert_eq!(claims.sub, "alice");
    assert_eq!(Some(claims.sid.as_str()), session.metadata.uid.as_deref());
    let expires_at: jiff::Timestamp = status
        .expires_at
        .expect("expiry")
        .parse()
        .expect("RFC 3339");
    assert_eq!(
        claims.stream_exp,
        u64::try_from(expires_at.as_second()).expect("after 1970")
    );
    assert!(claims.exp <= now + CONNECT_WINDOW_SECS, "{claims:?}");
    assert!(verifier.verify(token, "default", "desk-2", now).is_err());

    // A session that does not exist is refused, and names itself.
    let out = Command::new(VDI)
        .args(["connect", "nope", "-n", "default"])
        .env("KUBECONFIG", &platform.kubeconfig)
        .output()
        .expect("run vdi connect");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("default/nope"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
