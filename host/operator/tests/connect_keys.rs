//! The connect keys' Secret against the embedded control plane: created once and then read
//! back unchanged, rotated with the previous key kept (its tokens still verify) and the one
//! before dropped.

use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::PostParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};
use vdi_cluster::{Cluster, ClusterConfig};
use vdi_operator::connect::{
    CURRENT_PUBLIC, ConnectError, ConnectKeys, KEYS_NAMESPACE, KEYS_SECRET, PREVIOUS_PUBLIC,
};

const NOW: u64 = 1_800_000_000;

async fn client(cluster: &Cluster) -> Client {
    let kc = Kubeconfig::from_yaml(&cluster.kubeconfig()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

#[tokio::test]
async fn keys_are_created_once_and_rotated_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(ClusterConfig::local(dir.path()))
        .await
        .unwrap();
    let client = client(&cluster).await;
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": KEYS_NAMESPACE},
    }))
    .unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();

    let first = ConnectKeys::load_or_create(&client).await.unwrap();
    assert_eq!(first.previous, None);
    assert_eq!(ConnectKeys::load_or_create(&client).await.unwrap(), first);
    let token = first
        .mint("team-a", "desk-1", "uid-1", "alice", NOW + 3600, NOW)
        .unwrap();

    let second = ConnectKeys::rotate(&client).await.unwrap();
    assert_eq!(second.previous.as_ref(), Some(&first.current));
    let stored = ConnectKeys::load_or_create(&client).await.unwrap();
    assert_eq!(stored, second);
    assert_eq!(
        stored.verify(&token, "team-a", "desk-1", NOW).unwrap().sub,
        "alice"
    );
    // The streamer is given the public keys as they stand in the Secret.
    let secret = Api::<Secret>::namespaced(client.clone(), KEYS_NAMESPACE)
        .get(KEYS_SECRET)
        .await
        .unwrap();
    let data = secret.data.unwrap();
    assert_eq!(data[CURRENT_PUBLIC].0, second.current.public_pem.as_bytes());
    assert_eq!(data[PREVIOUS_PUBLIC].0, first.current.public_pem.as_bytes());

    let third = ConnectKeys::rotate(&client).await.unwrap();
    assert_eq!(third.previous.as_ref(), Some(&second.current));
    assert!(matches!(
        third.verify(&token, "team-a", "desk-1", NOW),
        Err(ConnectError::Invalid(_))
    ));
}
