//! Watch fan-out over real HTTPS: every watcher gets the one serialized line of an event, yet
//! each still sees only what its namespace and selectors admit.

mod common;

use common::start;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{PostParams, WatchEvent, WatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

fn cm(name: &str, color: &str) -> ConfigMap {
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": {"color": color}}, "data": {"k": "v"}}),
    )
    .expect("configmap")
}

/// The names of the ADDED events a watch sees until it sees `last`.
async fn added_until(
    api: &Api<ConfigMap>,
    params: &WatchParams,
    from: &str,
    last: &str,
) -> Vec<String> {
    let mut stream = api.watch(params, from).await.expect("watch").boxed();
    let mut seen = Vec::new();
    while let Some(event) = stream.try_next().await.expect("event") {
        if let WatchEvent::Added(c) = event {
            let name = c.name_any();
            assert_eq!(
                c.data.as_ref().and_then(|d| d.get("k")).map(String::as_str),
                Some("v")
            );
            seen.push(name.clone());
            if name == last {
                break;
            }
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_watcher_sees_only_what_its_namespace_and_selectors_admit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_cluster, client) = start(dir.path()).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let other: Namespace =
        serde_json::from_value(json!({"metadata": {"name": "other"}})).expect("namespace");
    namespaces
        .create(&PostParams::default(), &other)
        .await
        .expect("namespace");
    let default: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let in_other: Api<ConfigMap> = Api::namespaced(client.clone(), "other");
    let everywhere: Api<ConfigMap> = Api::all(client);
    let from = default
        .list(&kube::api::ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("version");

    let red_here = tokio::spawn({
        let (api, from) = (default.clone(), from.clone());
        async move {
            let params = WatchParams::default().labels("color=red").timeout(30);
            added_until(&api, &params, &from, "red-2").await
        }
    });
    let all_here = tokio::spawn({
        let (api, from) = (default.clone(), from.clone());
        async move { added_until(&api, &WatchParams::default().timeout(30), &from, "red-2").await }
    });
    let blue_everywhere = tokio::spawn({
        let (api, from) = (everywhere.clone(), from.clone());
        async move {
            let params = WatchParams::default().labels("color=blue").timeout(30);
            added_until(&api, &params, &from, "blue-other").await
        }
    });
    for (api, name, color) in [
        (&default, "red-1", "red"),
        (&default, "blue-1", "blue"),
        (&in_other, "red-other", "red"),
        (&default, "red-2", "red"),
        (&in_other, "blue-other", "blue"),
    ] {
        api.create(&PostParams::default(), &cm(name, color))
            .await
            .expect("create");
    }
    assert_eq!(red_here.await.expect("red watcher"), ["red-1", "red-2"]);
    assert_eq!(
        all_here.await.expect("namespace watcher"),
        ["red-1", "blue-1", "red-2"]
    );
    assert_eq!(
        blue_everywhere.await.expect("blue watcher"),
        ["blue-1", "blue-other"]
    );
}
