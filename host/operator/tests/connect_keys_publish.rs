//! The connect keys' public half against the embedded control plane: published into a session
//! namespace on demand (creating the keys when there are none), and rewritten in every
//! namespace with a session after a rotation.

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::PostParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::reflector;
use kube::runtime::watcher::Event;
use kube::{Api, Client};
use vdi_cluster::{Cluster, ClusterConfig};
use vdi_crd::VDISession;
use vdi_operator::connect::{
    ConnectKeys, KEYS_CONFIGMAP, KEYS_NAMESPACE, KEYS_PEM, PublishedKeys, keys_pem,
};

async fn client(cluster: &Cluster) -> Client {
    let kc = Kubeconfig::from_yaml(&cluster.kubeconfig()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

async fn namespace(client: &Client, name: &str) {
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name},
    }))
    .unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
}

fn session(namespace: &str) -> VDISession {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "vdi.dev/v1alpha1", "kind": "VDISession",
        "metadata": {"name": "s", "namespace": namespace, "uid": format!("uid-{namespace}")},
        "spec": {"user": {"name": namespace}, "template": "t"},
    }))
    .unwrap()
}

async fn published(client: &Client, namespace: &str) -> Option<String> {
    Api::<ConfigMap>::namespaced(client.clone(), namespace)
        .get_opt(KEYS_CONFIGMAP)
        .await
        .unwrap()
        .and_then(|cm| cm.data)
        .and_then(|d| d.get(KEYS_PEM).cloned())
}

#[tokio::test]
async fn public_keys_reach_session_namespaces_and_follow_a_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(ClusterConfig::local(dir.path()))
        .await
        .unwrap();
    let client = client(&cluster).await;
    for ns in [KEYS_NAMESPACE, "alice", "bob"] {
        namespace(&client, ns).await;
    }
    let keys = PublishedKeys::default();

    keys.ensure(&client, "alice").await.unwrap();
    let first = ConnectKeys::load_or_create(&client).await.unwrap();
    assert_eq!(
        published(&client, "alice").await,
        Some(keys_pem(&first)),
        "the keys were created and their public half published"
    );
    assert_eq!(published(&client, "bob").await, None, "only where asked");

    // Sessions live in both namespaces; a rotation reaches both on the next resync.
    let (reader, mut writer) = reflector::store::<VDISession>();
    writer.apply_watcher_event(&Event::Init);
    for ns in ["alice", "bob"] {
        writer.apply_watcher_event(&Event::InitApply(session(ns)));
    }
    writer.apply_watcher_event(&Event::InitDone);
    let rotated = ConnectKeys::rotate(&client).await.unwrap();
    keys.resync(&client, &reader).await;
    let pem = keys_pem(&rotated);
    assert_eq!(
        published(&client, "alice").await.as_deref(),
        Some(pem.as_str())
    );
    assert_eq!(
        published(&client, "bob").await.as_deref(),
        Some(pem.as_str())
    );
    assert!(
        pem.contains(first.current.public_pem.trim_end()),
        "the previous key still verifies during the rotation"
    );
    assert!(!pem.contains("PRIVATE"));
}
