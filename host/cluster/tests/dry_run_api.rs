//! Server-side dry run (`?dryRun=All`) with the real `kube::Client`: every write answers what it
//! would store, and nothing is stored, no resourceVersion moves, no watch event fires.

mod common;

use common::start;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

fn cm(name: &str, value: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": value}})).expect("cm")
}

fn dry_post() -> PostParams {
    PostParams {
        dry_run: true,
        ..PostParams::default()
    }
}

/// The resourceVersion of a list of config maps: the store's version.
async fn version(cms: &Api<ConfigMap>) -> String {
    cms.list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("list version")
}

fn code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

#[tokio::test]
async fn every_write_kind_runs_dry_and_stores_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_cluster, client) = start(dir.path()).await;
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let real = cms
        .create(&PostParams::default(), &cm("real", "1"))
        .await
        .expect("create");
    let before = version(&cms).await;
    let mut watch = cms
        .watch(&WatchParams::default().timeout(2), &before)
        .await
        .expect("watch")
        .boxed();

    // Create: 201 with what would be stored (uid, creationTimestamp), no version.
    let would = cms
        .create(&dry_post(), &cm("dry", "1"))
        .await
        .expect("dry create");
    assert!(would.uid().is_some() && would.creation_timestamp().is_some());
    assert_eq!(would.resource_version(), None);
    assert_eq!(
        code(&cms.get("dry").await.expect_err("not stored")),
        Some(404)
    );
    // Validation still runs: a bad name is refused as a real create would be.
    let bad = cms
        .create(&dry_post(), &cm("Not_A_Name", "1"))
        .await
        .expect_err("invalid name");
    assert_eq!(code(&bad), Some(422));
    let exists = cms
        .create(&dry_post(), &cm("real", "1"))
        .await
        .expect_err("exists");
    assert_eq!(code(&exists), Some(409));

    // Replace, merge patch, server-side apply: the change is answered, not kept.
    let mut changed = real.clone();
    changed.data = Some([("k".to_owned(), "2".to_owned())].into());
    let replaced = cms
        .replace("real", &dry_post(), &changed)
        .await
        .expect("dry replace");
    assert_eq!(
        replaced
            .data
            .as_ref()
            .and_then(|d| d.get("k"))
            .map(String::as_str),
        Some("2")
    );
    assert_eq!(replaced.resource_version(), real.resource_version());
    let patched = cms
        .patch(
            "real",
            &PatchParams::default().dry_run(),
            &Patch::Merge(json!({"data": {"k": "3"}})),
        )
        .await
        .expect("dry merge patch");
    assert_eq!(
        patched
            .data
            .as_ref()
            .and_then(|d| d.get("k"))
            .map(String::as_str),
        Some("3")
    );
    let applied = cms
        .patch(
            "applied",
            &PatchParams::apply("test").dry_run(),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"k": "4"}})),
        )
        .await
        .expect("dry apply that would create");
    assert_eq!(applied.name_any(), "applied");
    assert_eq!(
        code(&cms.get("applied").await.expect_err("not stored")),
        Some(404)
    );

    // Delete: answered, the object stays.
    cms.delete("real", &DeleteParams::default().dry_run())
        .await
        .expect("dry delete");
    let kept = cms.get("real").await.expect("still there");
    assert_eq!(
        kept.data
            .as_ref()
            .and_then(|d| d.get("k"))
            .map(String::as_str),
        Some("1")
    );
    assert_eq!(kept.resource_version(), real.resource_version());

    // Nothing moved and no watcher heard of any of it.
    assert_eq!(version(&cms).await, before);
    let heard: Vec<_> = watch.by_ref().try_collect().await.expect("watch ends");
    let changes: Vec<_> = heard
        .iter()
        .filter(|e| !matches!(e, WatchEvent::Bookmark(_)))
        .collect();
    assert!(changes.is_empty(), "{changes:?}");
}

#[tokio::test]
async fn dry_runs_have_no_side_effects_and_bad_values_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_cluster, client) = start(dir.path()).await;
    // A namespace: no namespace, so no default service account either.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace =
        serde_json::from_value(json!({"metadata": {"name": "dry-ns"}})).expect("ns");
    namespaces.create(&dry_post(), &ns).await.expect("dry ns");
    assert_eq!(
        code(&namespaces.get("dry-ns").await.expect_err("no ns")),
        Some(404)
    );
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), "dry-ns");
    assert!(
        accounts
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
            .is_empty()
    );

    // A CRD: checked, not served.
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": {"name": "gadgets.test.vdi.dev"},
        "spec": {"group": "test.vdi.dev", "scope": "Namespaced",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object"}}}]},
    }))
    .expect("crd");
    let answered = crds.create(&dry_post(), &crd).await.expect("dry crd");
    assert!(answered.status.is_some(), "answered as it would be stored");
    let discovery = client
        .list_api_groups()
        .await
        .expect("groups")
        .groups
        .into_iter()
        .any(|g| g.name == "test.vdi.dev");
    assert!(!discovery, "a dry-run CRD is not served");

    // An unknown dryRun value is a 400 naming it.
    let request = http::Request::post("/api/v1/namespaces/default/configmaps?dryRun=Some")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&cm("x", "1")).expect("body"))
        .expect("request");
    let err = client
        .request::<ConfigMap>(request)
        .await
        .expect_err("bad dryRun");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 400 && s.message.contains("dryRun") && s.message.contains("Some")),
        "{err:?}"
    );
    let cms: Api<ConfigMap> = Api::default_namespaced(Client::clone(&client));
    assert_eq!(
        code(&cms.get("x").await.expect_err("not stored")),
        Some(404)
    );
}
