//! Starting an embedded cluster and a client configured from its kubeconfig.

use kube::Client;
use vdi_cluster::{Cluster, ClusterConfig};

/// Starts a cluster storing in `dir` and a client for it.
pub async fn start(dir: &std::path::Path) -> (Cluster, Client) {
    let cluster = Cluster::start(ClusterConfig::local(dir))
        .await
        .expect("start cluster");
    let client = client_for(&cluster).await;
    (cluster, client)
}

/// A client configured from the kubeconfig the cluster hands out (HTTPS, its CA, its token).
pub async fn client_for(cluster: &Cluster) -> Client {
    let kubeconfig =
        kube::config::Kubeconfig::from_yaml(&cluster.kubeconfig()).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .expect("config");
    assert!(
        config
            .cluster_url
            .to_string()
            .starts_with("https://127.0.0.1:")
    );
    Client::try_from(config).expect("client")
}
