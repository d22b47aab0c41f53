//! The built-in groups over real HTTP with typed `kube::Api` clients: storage of their kinds,
//! validation and pruning against their k8s-openapi schemas, the `all` category, and a clean
//! 404 for what is not served.

mod common;

use std::fmt::Debug;

use common::start;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// Creates `obj` through `api` and reads it back.
async fn round_trip<K>(api: Api<K>, obj: Value) -> K
where
    K: Resource + Clone + Debug + Serialize + DeserializeOwned,
{
    let obj: K = serde_json::from_value(obj).expect("typed object");
    let name = obj.name_any();
    let created = api
        .create(&PostParams::default(), &obj)
        .await
        .unwrap_or_else(|e| panic!("create {name}: {e}"));
    assert_eq!(created.name_any(), name);
    api.get(&name).await.expect("get back")
}

fn api_error(e: kube::Error) -> Box<kube::core::Status> {
    match e {
        kube::Error::Api(s) => s,
        other => panic!("not an API error: {other}"),
    }
}

#[tokio::test]
async fn built_in_groups_store_their_kinds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_cluster, client) = start(dir.path()).await;
    let labels = json!({"app": "web"});
    let template = json!({"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}});

    let deploy = round_trip(
        Api::<Deployment>::namespaced(client.clone(), "default"),
        json!({"metadata": {"name": "web"}, "spec": {"replicas": 2, "selector": {"matchLabels": labels}, "template": template}}),
    )
    .await;
    assert_eq!(deploy.spec.replicas, Some(2));

    let mut job_template = template.clone();
    job_template["spec"]["restartPolicy"] = json!("Never");
    round_trip(
        Api::<Job>::namespaced(client.clone(), "default"),
        json!({"metadata": {"name": "once"}, "spec": {"template": job_template}}),
    )
    .await;
    let pc = round_trip(
        Api::<PriorityClass>::all(client.clone()),
        json!({"metadata": {"name": "high"}, "value": 1000, "description": "important"}),
    )
    .await;
    assert_eq!(pc.value, Some(1000));
    let pdb = round_trip(
        Api::<PodDisruptionBudget>::namespaced(client.clone(), "default"),
        json!({"metadata": {"name": "web"}, "spec": {"minAvailable": "50%", "selector": {"matchLabels": labels}}}),
    )
    .await;
    assert!(pdb.spec.and_then(|s| s.min_available).is_some());
    round_trip(
        Api::<StorageClass>::all(client.clone()),
        json!({"metadata": {"name": "fast"}, "provisioner": "example.com/fast", "parameters": {"tier": "1"}}),
    )
    .await;
    let slice = round_trip(
        Api::<EndpointSlice>::namespaced(client.clone(), "default"),
        json!({"metadata": {"name": "web-1", "labels": {"kubernetes.io/service-name": "web"}}, "addressType": "IPv4",
               "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": true}}], "ports": [{"name": "http", "port": 80}]}),
    )
    .await;
    assert_eq!(slice.endpoints.map(|e| e.len()), Some(1));
    round_trip(
        Api::<ValidatingWebhookConfiguration>::all(client.clone()),
        json!({"metadata": {"name": "check"}, "webhooks": [{"name": "check.example.com", "admissionReviewVersions": ["v1"], "sideEffects": "None",
               "clientConfig": {"service": {"namespace": "default", "name": "hook", "port": 443}},
               "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]}]}]}),
    )
    .await;
}

#[tokio::test]
async fn wrong_types_are_refused_and_unknown_fields_pruned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_cluster, client) = start(dir.path()).await;
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "default");

    // `data: [1]` is refused as kube-apiserver refuses it: 422 naming the field.
    let bad =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bad"}, "data": [1]});
    let request = http::Request::post("/api/v1/namespaces/default/configmaps")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&bad).expect("json"))
        .expect("request");
    let status = api_error(
        client
            .request::<Value>(request)
            .await
            .expect_err("data: [1] is refused"),
    );
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert!(status.message.contains("data"), "{}", status.message);

    // An unknown field is dropped (the default, fieldValidation=Warn/Ignore).
    let pods = Api::<Pod>::namespaced(client.clone(), "default");
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                     "spec": {"containers": [{"name": "c", "image": "i", "colour": "blue"}], "madeUp": 1}});
    let request = http::Request::post("/api/v1/namespaces/default/pods")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&pod).expect("json"))
        .expect("request");
    let created: Value = client.request(request).await.expect("pod created");
    assert!(created["spec"].get("madeUp").is_none(), "{created}");
    assert!(created["spec"]["containers"][0].get("colour").is_none());
    assert_eq!(created["spec"]["containers"][0]["image"], "i");
    let stored = pods.get("p").await.expect("pod");
    assert_eq!(stored.spec.map(|s| s.containers.len()), Some(1));

    // ... and a merge patch that adds one is pruned the same way.
    let patched = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "c"}, "data": {"k": "v"}}))
                .expect("cm"),
        )
        .await
        .expect("cm");
    assert_eq!(patched.data.map(|d| d.len()), Some(1));
    let patch = json!({"data": {"k2": "v2"}, "extra": {"x": 1}});
    let after: ConfigMap = cms
        .patch("c", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patched");
    assert_eq!(after.data.map(|d| d.len()), Some(2));
    let raw: Value = client
        .request(
            http::Request::get("/api/v1/namespaces/default/configmaps/c")
                .body(Vec::new())
                .expect("request"),
        )
        .await
        .expect("get");
    assert!(raw.get("extra").is_none(), "{raw}");

    // fieldValidation=Strict (kubectl's default) refuses it instead: 400.
    let strict = PatchParams {
        field_validation: Some(kube::api::ValidationDirective::Strict),
        ..PatchParams::default()
    };
    let status = api_error(
        cms.patch("c", &strict, &Patch::Merge(&patch))
            .await
            .expect_err("strict"),
    );
    assert_eq!(status.code, 400);
    assert!(
        status.message.contains("unknown field \"extra\""),
        "{}",
        status.message
    );
}

#[tokio::test]
async fn unknown_resources_are_a_clean_404() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_cluster, client) = start(dir.path()).await;
    for path in [
        "/apis/example.com/v1/widgets",
        "/apis/example.com/v1/namespaces/default/widgets",
        "/apis/apps/v1/namespaces/default/widgets",
        "/apis/apps/v9/deployments",
        "/api/v1/namespaces/default/widgets",
        "/api/v1/namespaces/default/nodes",
        "/apis/example.com",
        "/apis/example.com/v1",
        "/api/v1/namespaces/default/pods/p/nonsense",
    ] {
        let status = api_error(get(&client, path).await.expect_err("unknown resource"));
        assert_eq!(
            (status.code, status.reason.as_str(), status.message.as_str()),
            (
                404,
                "NotFound",
                "the server could not find the requested resource"
            ),
            "{path}"
        );
    }
    // A real miss still names the object.
    let status = api_error(
        get(&client, "/apis/apps/v1/namespaces/default/deployments/none")
            .await
            .expect_err("missing"),
    );
    assert_eq!(status.message, "deployments.apps \"none\" not found");
}

async fn get(client: &Client, path: &str) -> Result<Value, kube::Error> {
    client
        .request(http::Request::get(path).body(Vec::new()).expect("request"))
        .await
}

#[tokio::test]
async fn discovery_lists_the_all_category_and_short_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_cluster, client) = start(dir.path()).await;
    let mut in_all = Vec::new();
    let mut short = Vec::new();
    for gv in [
        "/api/v1",
        "/apis/apps/v1",
        "/apis/batch/v1",
        "/apis/policy/v1",
        "/apis/storage.k8s.io/v1",
    ] {
        let list = get(&client, gv).await.expect("discovery");
        for r in list["resources"].as_array().into_iter().flatten() {
            let name = r["name"].as_str().unwrap_or_default().to_owned();
            if r["categories"]
                .as_array()
                .is_some_and(|c| c.contains(&json!("all")))
            {
                in_all.push(name.clone());
            }
            for s in r["shortNames"].as_array().into_iter().flatten() {
                short.push((s.as_str().unwrap_or_default().to_owned(), name.clone()));
            }
        }
    }
    in_all.sort();
    assert_eq!(
        in_all,
        [
            "cronjobs",
            "daemonsets",
            "deployments",
            "jobs",
            "pods",
            "replicasets",
            "replicationcontrollers",
            "services",
            "statefulsets"
        ]
    );
    for (s, plural) in [
        ("deploy", "deployments"),
        ("rs", "replicasets"),
        ("sts", "statefulsets"),
        ("ds", "daemonsets"),
        ("cj", "cronjobs"),
        ("pdb", "poddisruptionbudgets"),
        ("sc", "storageclasses"),
        ("quota", "resourcequotas"),
        ("ep", "endpoints"),
        ("pv", "persistentvolumes"),
        ("rc", "replicationcontrollers"),
    ] {
        assert!(short.contains(&(s.to_owned(), plural.to_owned())), "{s}");
    }
    let groups = get(&client, "/apis").await.expect("groups");
    let names: Vec<&str> = groups["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|g| g["name"].as_str())
        .collect();
    for g in [
        "apps",
        "batch",
        "policy",
        "admissionregistration.k8s.io",
        "scheduling.k8s.io",
        "storage.k8s.io",
        "discovery.k8s.io",
    ] {
        assert!(names.contains(&g), "{g} not in {names:?}");
    }

    // The OpenAPI document carries the real schema, for `kubectl explain pods.spec.containers`.
    let doc = get(&client, "/openapi/v3/api/v1").await.expect("openapi");
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["io.k8s.api.core.v1.Pod"]["x-kubernetes-group-version-kind"][0]["kind"],
        "Pod"
    );
    assert!(
        schemas["io.k8s.api.core.v1.Container"]["properties"]["image"]["description"].is_string()
    );
}
