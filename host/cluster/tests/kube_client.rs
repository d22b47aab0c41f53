//! Conformance of the embedded control plane with the real `kube::Client` and `kube::runtime`,
//! over real HTTP on a local port.

mod common;

use std::time::Duration;

use common::start;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::{WatchStreamExt, conditions, wait::await_condition, watcher};
use kube::{Api, Client, CustomResource, CustomResourceExt, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

fn cm(name: &str, labels: serde_json::Value) -> ConfigMap {
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": labels}, "data": {"k": "v"}}),
    )
    .expect("configmap")
}

fn status_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

#[tokio::test]
async fn requests_without_the_token_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cluster, _) = start(dir.path()).await;
    let mut config = kube::Config::new(cluster.url().parse().expect("url"));
    config.root_cert = Some(vec![rustls_pemfile_der(cluster.ca_pem())]);
    let anonymous = Client::try_from(config).expect("client");
    let cms: Api<ConfigMap> = Api::default_namespaced(anonymous);
    assert_eq!(
        status_code(&cms.list(&ListParams::default()).await.expect_err("refused")),
        Some(401)
    );
}

/// The DER bytes of the first certificate in `pem`.
fn rustls_pemfile_der(pem: &str) -> Vec<u8> {
    use base64::Engine as _;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("base64")
}

#[tokio::test]
async fn crud_conflicts_and_patches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_cluster, client) = start(dir.path()).await;
    let cms: Api<ConfigMap> = Api::default_namespaced(client);

    let created = cms
        .create(&PostParams::default(), &cm("one", json!({"app": "vdi"})))
        .await
        .expect("create");
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.creation_timestamp.is_some());
    let err = cms
        .create(&PostParams::default(), &cm("one", json!({})))
        .await
        .expect_err("duplicate");
    assert_eq!(status_code(&err), Some(409));
    cms.create(&PostParams::default(), &cm("two", json!({"app": "other"})))
        .await
        .expect("create");

    let listed = cms
        .list(&ListParams::default().labels("app=vdi"))
        .await
        .expect("list");
    assert_eq!(
        listed
            .items
            .iter()
            .map(|c| c.name_any())
            .collect::<Vec<_>>(),
        ["one"]
    );
    assert!(listed.metadata.resource_version.is_some());

    // Optimistic concurrency: an update carrying a stale resourceVersion is refused.
    let mut fresh = cms.get("one").await.expect("get");
    fresh.data = Some([("k".to_owned(), "v2".to_owned())].into());
    let updated = cms
        .replace("one", &PostParams::default(), &fresh)
        .await
        .expect("replace");
    let err = cms
        .replace("one", &PostParams::default(), &fresh)
        .await
        .expect_err("stale");
    assert_eq!(status_code(&err), Some(409));
    assert_ne!(updated.resource_version(), fresh.resource_version());

    let merged = cms
        .patch(
            "one",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"extra": "1"}, "metadata": {"labels": {"tier": "gpu"}}})),
        )
        .await
        .expect("merge patch");
    assert_eq!(
        merged
            .data
            .as_ref()
            .and_then(|d| d.get("extra"))
            .map(String::as_str),
        Some("1")
    );
    let ops: json_patch::Patch =
        serde_json::from_value(json!([{"op": "replace", "path": "/data/k", "value": "v3"}]))
            .expect("ops");
    let patched = cms
        .patch("one", &PatchParams::default(), &Patch::<()>::Json(ops))
        .await
        .expect("json patch");
    assert_eq!(
        patched
            .data
            .as_ref()
            .and_then(|d| d.get("k"))
            .map(String::as_str),
        Some("v3")
    );
    let applied = cms
        .patch("three", &PatchParams::apply("test").force(), &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "three"}, "data": {"a": "b"}})))
        .await
        .expect("apply creates");
    assert_eq!(applied.name_any(), "three");

    cms.delete("one", &DeleteParams::default())
        .await
        .expect("delete");
    let err = cms.get("one").await.expect_err("gone");
    assert_eq!(status_code(&err), Some(404));
}

#[tokio::test]
async fn generate_name_limit_and_continue() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_cluster, client) = start(dir.path()).await;
    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    for _ in 0..5 {
        let mut c = cm("", json!({"batch": "x"}));
        c.metadata.name = None;
        c.metadata.generate_name = Some("gen-".into());
        let made = cms
            .create(&PostParams::default(), &c)
            .await
            .expect("create");
        assert!(
            made.name_any().starts_with("gen-") && made.name_any().len() == 9,
            "{}",
            made.name_any()
        );
    }
    let mut names = Vec::new();
    let mut params = ListParams::default().labels("batch=x").limit(2);
    loop {
        let page = cms.list(&params).await.expect("page");
        assert!(page.items.len() <= 2);
        names.extend(page.items.iter().map(ResourceExt::name_any));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => break,
        }
    }
    names.dedup();
    assert_eq!(names.len(), 5, "{names:?}");
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_cluster, client) = start(dir.path()).await;
    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    let mut c = cm("held", json!({}));
    c.metadata.finalizers = Some(vec!["vdi.dev/cleanup".into()]);
    cms.create(&PostParams::default(), &c)
        .await
        .expect("create");
    cms.delete("held", &DeleteParams::default())
        .await
        .expect("delete");
    let marked = cms.get("held").await.expect("still there");
    assert!(marked.metadata.deletion_timestamp.is_some());
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("clear");
    assert_eq!(
        status_code(&cms.get("held").await.expect_err("gone")),
        Some(404)
    );
}

#[tokio::test]
async fn owner_references_are_garbage_collected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_cluster, client) = start(dir.path()).await;
    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    let owner = cms
        .create(&PostParams::default(), &cm("owner", json!({})))
        .await
        .expect("owner");
    let reference = json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.uid(), "blockOwnerDeletion": true}]);
    let mut dep = cm("dependent", json!({}));
    dep.metadata.owner_references = Some(serde_json::from_value(reference.clone()).expect("refs"));
    cms.create(&PostParams::default(), &dep)
        .await
        .expect("dependent");
    cms.delete("owner", &DeleteParams::background())
        .await
        .expect("delete owner");
    assert_eq!(
        status_code(&cms.get("dependent").await.expect_err("collected")),
        Some(404)
    );

    // Foreground: the owner waits until its dependents are gone.
    let owner = cms
        .create(&PostParams::default(), &cm("owner2", json!({})))
        .await
        .expect("owner");
    let mut dep = cm("dependent2", json!({}));
    dep.metadata.owner_references = Some(serde_json::from_value(json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner2", "uid": owner.uid()}])).expect("refs"));
    dep.metadata.finalizers = Some(vec!["test/hold".into()]);
    cms.create(&PostParams::default(), &dep)
        .await
        .expect("dependent");
    cms.delete("owner2", &DeleteParams::foreground())
        .await
        .expect("delete owner");
    let waiting = cms.get("owner2").await.expect("owner waits");
    assert!(
        waiting
            .finalizers()
            .iter()
            .any(|f| f == "foregroundDeletion"),
        "{:?}",
        waiting.finalizers()
    );
    cms.patch(
        "dependent2",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("release");
    assert_eq!(
        status_code(&cms.get("dependent2").await.expect_err("gone")),
        Some(404)
    );
    assert_eq!(
        status_code(&cms.get("owner2").await.expect_err("gone")),
        Some(404)
    );
}

#[tokio::test]
async fn field_selectors_on_pods() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_cluster, client) = start(dir.path()).await;
    let pods: Api<Pod> = Api::default_namespaced(client);
    for (name, node) in [("a", "n1"), ("b", "n2"), ("c", "n1")] {
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i"}]}})).expect("pod");
        pods.create(&PostParams::default(), &pod)
            .await
            .expect("create pod");
    }
    let on_n1 = pods
        .list(&ListParams::default().fields("spec.nodeName=n1"))
        .await
        .expect("list");
    assert_eq!(
        on_n1
            .items
            .iter()
            .map(ResourceExt::name_any)
            .collect::<Vec<_>>(),
        ["a", "c"]
    );
    let not_a = pods
        .list(&ListParams::default().fields("metadata.name!=a,spec.nodeName=n1"))
        .await
        .expect("list");
    assert_eq!(not_a.items.len(), 1);
}

/// A custom resource like the platform's, to exercise CRD serving.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[kube(
    group = "test.vdi.dev",
    version = "v1",
    kind = "Widget",
    namespaced,
    status = "WidgetStatus",
    shortname = "wd"
)]
#[kube(printcolumn = r#"{"name":"Size","type":"integer","jsonPath":".spec.size"}"#)]
pub struct WidgetSpec {
    /// How big.
    #[schemars(range(min = 1, max = 10))]
    pub size: u32,
    /// What colour.
    pub colour: String,
}

/// Observed state.
#[derive(Serialize, Deserialize, Clone, Debug, JsonSchema, Default)]
pub struct WidgetStatus {
    /// Whether it is ready.
    pub ready: bool,
}

#[tokio::test]
async fn custom_resources_validate_and_keep_status_apart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_cluster, client) = start(dir.path()).await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &Widget::crd())
        .await
        .expect("create CRD");
    let established = await_condition(
        crds,
        "widgets.test.vdi.dev",
        conditions::is_crd_established(),
    );
    tokio::time::timeout(Duration::from_secs(10), established)
        .await
        .expect("in time")
        .expect("established");

    let widgets: Api<Widget> = Api::default_namespaced(client);
    let w = widgets
        .create(
            &PostParams::default(),
            &Widget::new(
                "w1",
                WidgetSpec {
                    size: 3,
                    colour: "red".into(),
                },
            ),
        )
        .await
        .expect("create widget");
    assert_eq!(w.metadata.generation, Some(1));

    // Invalid per the schema: 422 naming the field.
    let bad: Widget = serde_json::from_value(json!({"apiVersion": "test.vdi.dev/v1", "kind": "Widget", "metadata": {"name": "w2"}, "spec": {"size": 99, "colour": "blue"}})).expect("widget");
    match widgets
        .create(&PostParams::default(), &bad)
        .await
        .expect_err("invalid")
    {
        kube::Error::Api(s) => {
            assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
            assert!(s.message.contains("spec.size"), "{}", s.message);
        }
        other => panic!("expected 422, got {other:?}"),
    }

    // Status only through /status; generation only on spec changes.
    let with_status = widgets
        .patch_status(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"ready": true}})),
        )
        .await
        .expect("status");
    assert_eq!(with_status.status.as_ref().map(|s| s.ready), Some(true));
    assert_eq!(with_status.metadata.generation, Some(1));
    let main = widgets
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 4}, "status": {"ready": false}})),
        )
        .await
        .expect("spec patch");
    assert_eq!(main.metadata.generation, Some(2));
    assert_eq!(
        main.status.as_ref().map(|s| s.ready),
        Some(true),
        "status ignored on the main resource"
    );
    let relabelled = widgets
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .expect("label patch");
    assert_eq!(relabelled.metadata.generation, Some(2));
}

#[tokio::test]
async fn watches_resume_and_expire_across_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cluster, client) = start(dir.path()).await;
    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    let first = cms
        .create(&PostParams::default(), &cm("w-a", json!({})))
        .await
        .expect("create");
    let rv = first.resource_version().expect("rv");
    cms.create(&PostParams::default(), &cm("w-b", json!({})))
        .await
        .expect("create");

    // Resume from `rv`: exactly the later change arrives.
    let mut stream = cms
        .watch(&WatchParams::default().timeout(5), &rv)
        .await
        .expect("watch")
        .boxed();
    match stream.try_next().await.expect("event") {
        Some(WatchEvent::Added(c)) => assert_eq!(c.name_any(), "w-b"),
        other => panic!("expected ADDED w-b, got {other:?}"),
    }
    drop(stream);

    // After a restart every object is still there, versions keep growing, and the old version
    // is too old to resume from (410 Gone).
    cluster.stop().await;
    let (_cluster, client) = start(dir.path()).await;
    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    let kept = cms.list(&ListParams::default()).await.expect("list");
    assert_eq!(kept.items.len(), 2);
    let after = cms
        .create(&PostParams::default(), &cm("w-c", json!({})))
        .await
        .expect("create");
    assert!(
        after
            .resource_version()
            .expect("rv")
            .parse::<u64>()
            .expect("num")
            > rv.parse::<u64>().expect("num")
    );
    let mut stream = cms
        .watch(&WatchParams::default().timeout(5), &rv)
        .await
        .expect("watch")
        .boxed();
    match stream.try_next().await {
        Ok(Some(WatchEvent::Error(e))) => assert_eq!(e.code, 410),
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
}

#[tokio::test]
async fn runtime_watcher_and_controller_work_against_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_cluster, client) = start(dir.path()).await;
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());

    // A small controller: stamps every ConfigMap labelled reconcile=yes with an annotation.
    let controller_api = cms.clone();
    let controller = kube::runtime::Controller::new(
        cms.clone(),
        watcher::Config::default().labels("reconcile=yes"),
    )
    .run(
        move |obj: std::sync::Arc<ConfigMap>, api: std::sync::Arc<Api<ConfigMap>>| async move {
            if obj.annotations().get("reconciled").is_none() {
                api.patch(
                    &obj.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(json!({"metadata": {"annotations": {"reconciled": "true"}}})),
                )
                .await?;
            }
            Ok::<_, kube::Error>(kube::runtime::controller::Action::await_change())
        },
        |_obj, _err: &kube::Error, _ctx| {
            kube::runtime::controller::Action::requeue(Duration::from_secs(1))
        },
        std::sync::Arc::new(controller_api),
    )
    .for_each(|_| async {});
    let handle = tokio::spawn(controller);

    // And a plain watcher sees the objects appear.
    let names = watcher(cms.clone(), watcher::Config::default())
        .applied_objects()
        .scan(std::collections::BTreeSet::new(), |names, obj| {
            let obj = obj.expect("watch");
            names.insert(obj.name_any());
            futures::future::ready(Some(names.clone()))
        })
        .filter(|names| futures::future::ready(names.len() == 2))
        .boxed()
        .into_future();
    let seen = tokio::spawn(async move { names.await.0 });
    cms.create(
        &PostParams::default(),
        &cm("ctl-a", json!({"reconcile": "yes"})),
    )
    .await
    .expect("create");
    cms.create(&PostParams::default(), &cm("ctl-b", json!({})))
        .await
        .expect("create");

    let stamped = async {
        loop {
            let c = cms.get("ctl-a").await.expect("get");
            if c.annotations().get("reconciled").map(String::as_str) == Some("true") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), stamped)
        .await
        .expect("controller reconciled in time");
    let seen = tokio::time::timeout(Duration::from_secs(10), seen)
        .await
        .expect("in time")
        .expect("join")
        .expect("both seen");
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), ["ctl-a", "ctl-b"]);
    handle.abort();
}

/// Refuses ConfigMaps labelled `deny=yes`, labels every other one `admitted=yes`.
struct LabelPolicy;

impl vdi_cluster::AdmissionHook for LabelPolicy {
    fn handles(&self, rt: &vdi_cluster::ResourceType) -> bool {
        rt.plural == "configmaps"
    }

    fn admit(
        &self,
        _op: vdi_cluster::Operation,
        requester: &vdi_cluster::Requester,
        rt: &vdi_cluster::ResourceType,
        obj: &mut serde_json::Value,
        _old: Option<&serde_json::Value>,
    ) -> vdi_cluster::Result<()> {
        if obj["metadata"]["labels"]["deny"] == "yes" {
            return Err(vdi_cluster::ApiError::Forbidden(format!(
                "admission denied {} {:?}: denied by policy",
                rt.kind,
                obj["metadata"]["name"].as_str().unwrap_or_default()
            )));
        }
        obj["metadata"]["labels"]["admitted"] = json!("yes");
        obj["metadata"]["annotations"]["requested-by"] = json!(requester.user);
        Ok(())
    }
}

#[tokio::test]
async fn the_in_process_admission_hook_mutates_and_refuses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cluster, client) = start(dir.path()).await;
    cluster
        .store()
        .add_admission_hook(std::sync::Arc::new(LabelPolicy));
    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    let made = cms
        .create(&PostParams::default(), &cm("fine", json!({})))
        .await
        .expect("admitted");
    assert_eq!(
        made.labels().get("admitted").map(String::as_str),
        Some("yes")
    );
    match cms
        .create(&PostParams::default(), &cm("bad", json!({"deny": "yes"})))
        .await
        .expect_err("refused")
    {
        kube::Error::Api(s) => {
            assert_eq!((s.code, s.reason.as_str()), (403, "Forbidden"));
            assert_eq!(
                s.message,
                r#"admission denied ConfigMap "bad": denied by policy"#
            );
        }
        other => panic!("expected 403, got {other:?}"),
    }
    assert_eq!(
        status_code(&cms.get("bad").await.expect_err("nothing stored")),
        Some(404)
    );
}

#[tokio::test]
async fn a_reflector_mirrors_the_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_cluster, client) = start(dir.path()).await;
    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    cms.create(&PostParams::default(), &cm("r-a", json!({"mirror": "yes"})))
        .await
        .expect("create");
    let (reader, writer) = kube::runtime::reflector::store::<ConfigMap>();
    let stream = kube::runtime::reflector(
        writer,
        watcher(cms.clone(), watcher::Config::default().labels("mirror=yes")),
    );
    let task = tokio::spawn(stream.applied_objects().for_each(|_| async {}));
    cms.create(&PostParams::default(), &cm("r-b", json!({"mirror": "yes"})))
        .await
        .expect("create");
    cms.create(&PostParams::default(), &cm("r-c", json!({"mirror": "no"})))
        .await
        .expect("create");
    cms.delete("r-a", &DeleteParams::default())
        .await
        .expect("delete");
    let mirrored = async {
        loop {
            let mut names: Vec<String> = reader.state().iter().map(|c| c.name_any()).collect();
            names.sort();
            if names == ["r-b"] {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), mirrored)
        .await
        .expect("the reflector converges on [r-b]");
    task.abort();
}
