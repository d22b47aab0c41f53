//! The built-in kinds' schemas: conversion from k8s-openapi, validation and pruning with them.

use serde_json::json;

use super::*;
use crate::error::ApiError;
use crate::resources::Registry;

fn rt(group: &str, plural: &str) -> ResourceType {
    Registry::default()
        .find(group, "v1", plural)
        .expect("served built-in kind")
}

#[test]
fn every_stored_builtin_kind_has_a_schema() {
    // The reviews are answered, never stored; metrics are read-only views.
    for t in Registry::default().all() {
        if t.create_only || t.group == "metrics.k8s.io" {
            continue;
        }
        assert!(structural(&t).is_some(), "{} has no schema", t.key());
        assert!(published(&t).is_some(), "{} is not published", t.key());
    }
}

#[test]
fn pod_schema_is_inlined_and_structural() {
    let pod = structural(&rt("", "pods")).expect("pod schema");
    let containers = &pod["properties"]["spec"]["properties"]["containers"];
    assert_eq!(containers["type"], "array");
    let container = &containers["items"];
    assert_eq!(container["properties"]["image"]["type"], "string");
    assert!(
        container["required"]
            .as_array()
            .is_some_and(|r| r.contains(&json!("name")))
    );
    // Quantities and IntOrString: integer or string.
    let limits = &container["properties"]["resources"]["properties"]["limits"];
    assert_eq!(
        limits["additionalProperties"]["x-kubernetes-int-or-string"],
        true
    );
    let port =
        &container["properties"]["livenessProbe"]["properties"]["httpGet"]["properties"]["port"];
    assert_eq!(port["x-kubernetes-int-or-string"], true);
    // No references, no descriptions, no metadata at the top.
    let text = pod.to_string();
    assert!(!text.contains("$ref") && !text.contains("\"description\""));
    assert!(pod["properties"].get("metadata").is_none());
    // Nested object metadata (a template's) keeps its schema; times are strings.
    let deploy = structural(&rt("apps", "deployments")).expect("deployment schema");
    let template = &deploy["properties"]["spec"]["properties"]["template"];
    assert_eq!(
        template["properties"]["metadata"]["properties"]["creationTimestamp"]["type"],
        "string"
    );
    assert!(
        deploy["properties"]["spec"]["required"]
            .as_array()
            .is_some_and(|r| r.contains(&json!("selector")))
    );
}

#[test]
fn arbitrary_json_preserves_unknown_fields() {
    let crd =
        structural(&rt("apiextensions.k8s.io", "customresourcedefinitions")).expect("crd schema");
    let version = &crd["properties"]["spec"]["properties"]["versions"]["items"];
    let props = &version["properties"]["schema"]["properties"]["openAPIV3Schema"];
    // JSONSchemaProps refers to itself: the inner reference accepts anything.
    assert_eq!(
        props["properties"]["properties"]["additionalProperties"]["x-kubernetes-preserve-unknown-fields"],
        true
    );
    assert_eq!(
        props["properties"]["default"]["x-kubernetes-preserve-unknown-fields"],
        true
    );
    let revision = structural(&rt("apps", "controllerrevisions")).expect("revision schema");
    assert_eq!(
        revision["properties"]["data"]["x-kubernetes-preserve-unknown-fields"],
        true
    );
}

#[test]
fn published_schema_keeps_references_and_descriptions() {
    let (name, defs) = published(&rt("", "pods")).expect("pod published");
    assert_eq!(name, "io.k8s.api.core.v1.Pod");
    let pod = &defs[&name];
    assert!(pod["description"].as_str().is_some_and(|d| !d.is_empty()));
    assert_eq!(
        pod["properties"]["spec"]["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.api.core.v1.PodSpec"
    );
    for needed in [
        "io.k8s.api.core.v1.PodSpec",
        "io.k8s.api.core.v1.Container",
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
    ] {
        assert!(defs.contains_key(needed), "{needed} missing");
    }
}

#[test]
fn wrong_type_names_the_field() {
    let cm = rt("", "configmaps");
    let bad =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": [1]});
    let err = crate::schema::validate(&cm, &bad).expect_err("data must be a map");
    assert!(
        matches!(&err, ApiError::Invalid { field, .. } if field == "data"),
        "{err:?}"
    );
    let bad_value = json!({"metadata": {"name": "c"}, "data": {"k": 1}});
    let err = crate::schema::validate(&cm, &bad_value).expect_err("values are strings");
    assert!(matches!(&err, ApiError::Invalid { field, .. } if field == "data.k"));
    let ok = json!({"metadata": {"name": "c"}, "data": {"k": "v"}, "binaryData": {"b": "AA=="}});
    crate::schema::validate(&cm, &ok).expect("valid config map");

    let deploy = rt("apps", "deployments");
    let bad = json!({"metadata": {"name": "d"}, "spec": {"replicas": "two", "selector": {}, "template": {}}});
    let err = crate::schema::validate(&deploy, &bad).expect_err("replicas is an integer");
    assert!(matches!(&err, ApiError::Invalid { field, .. } if field == "spec.replicas"));
}

#[test]
fn int_or_string_accepts_both() {
    let svc = rt("", "services");
    for target in [json!(8080), json!("http")] {
        let obj = json!({"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80, "targetPort": target}]}});
        crate::schema::validate(&svc, &obj).expect("int or string");
    }
    let obj =
        json!({"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80, "targetPort": 1.5}]}});
    let err = crate::schema::validate(&svc, &obj).expect_err("not int or string");
    assert!(matches!(&err, ApiError::Invalid { field, .. } if field == "spec.ports[0].targetPort"));
}

#[test]
fn prune_drops_unknown_fields_and_nulls() {
    let pod = rt("", "pods");
    let mut obj = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "managedFields": [{"manager": "m", "fieldsV1": {"f:spec": {}}}], "extra": 1},
        "spec": {
            "containers": [{"name": "c", "image": "i", "bogus": true, "resources": {"limits": {"cpu": "1", "nvidia.com/gpu": 1}}}],
            "nodeSelector": {"a": "b"},
            "hostname": null,
        },
        "status": {"phase": "Running", "madeUp": "x"},
        "topLevel": 1,
    });
    let unknown = crate::schema::prune(&pod, &mut obj);
    assert_eq!(
        unknown,
        vec!["spec.containers[0].bogus", "status.madeUp", "topLevel"]
    );
    assert!(obj.get("topLevel").is_none());
    assert!(obj["spec"]["containers"][0].get("bogus").is_none());
    assert!(obj["spec"].get("hostname").is_none());
    assert_eq!(obj["spec"]["nodeSelector"]["a"], "b");
    assert_eq!(
        obj["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"],
        1
    );
    // metadata is the server's: untouched.
    assert_eq!(obj["metadata"]["extra"], 1);
    crate::schema::validate(&pod, &obj).expect("pruned pod is valid");

    // Arbitrary JSON is kept whole.
    let revision = rt("apps", "controllerrevisions");
    let mut obj =
        json!({"metadata": {"name": "r"}, "revision": 1, "data": {"anything": {"x": [1]}}});
    assert!(crate::schema::prune(&revision, &mut obj).is_empty());
    assert_eq!(obj["data"]["anything"]["x"][0], 1);
}
