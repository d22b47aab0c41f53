//! Patches racing other writes over real HTTPS, as kube-apiserver answers them.

mod common;

use common::start;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "v"}}))
        .expect("configmap")
}

/// Patches that name no resourceVersion never fail because another write landed between the
/// server's read and its write (kube-apiserver re-applies them); one that names a stale
/// resourceVersion still gets 409.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_patches_without_a_resource_version_all_apply() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_cluster, client) = start(dir.path()).await;
    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    let first = cms
        .create(&PostParams::default(), &cm("shared"))
        .await
        .expect("create");
    let writers: Vec<_> = (0..16)
        .map(|i| {
            let cms = cms.clone();
            tokio::spawn(async move {
                for j in 0..8 {
                    let patch = json!({"metadata": {"labels": {format!("w{i}-{j}"): "x"}}});
                    cms.patch("shared", &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                        .map_err(|e| format!("writer {i}, patch {j}: {e}"))?;
                }
                Ok::<(), String>(())
            })
        })
        .collect();
    for w in writers {
        w.await.expect("writer task").expect("every patch applies");
    }
    let labels = cms.get("shared").await.expect("get").labels().len();
    assert_eq!(labels, 16 * 8);
    let stale =
        json!({"metadata": {"resourceVersion": first.resource_version(), "labels": {"late": "x"}}});
    let err = cms
        .patch("shared", &PatchParams::default(), &Patch::Merge(&stale))
        .await
        .expect_err("a stale resourceVersion conflicts");
    assert!(
        matches!(err, kube::Error::Api(ref e) if e.code == 409),
        "{err:?}"
    );
}
