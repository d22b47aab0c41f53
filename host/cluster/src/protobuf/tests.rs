//! Protobuf bodies built with k8s-pb the way Go's encoder writes them (every plain field, zero
//! or not), wrapped in the envelope and converted; refused bodies; hostile bytes.

mod kinds;
mod workloads;

use axum::body::Bytes;
use axum::http::{HeaderValue, Method};
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use prost::Message;
use serde_json::{Value, json};

use super::{MAGIC, request_body, to_json};
use crate::error::ApiError;

/// The bytes a Go client sends for `message`.
pub(super) fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
        }),
        raw: Some(raw),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut out = MAGIC.to_vec();
    out.extend(unknown.encode_to_vec());
    out
}

/// `message` sent as protobuf and converted.
pub(super) fn convert(api_version: &str, kind: &str, message: &impl Message) -> Value {
    to_json(&envelope(api_version, kind, message.encode_to_vec())).expect("converted")
}

/// ObjectMeta as Go writes it for an object with only a name (and namespace).
pub(super) fn go_meta(name: &str, namespace: &str) -> Option<meta::ObjectMeta> {
    Some(meta::ObjectMeta {
        name: Some(name.into()),
        generate_name: Some(String::new()),
        namespace: Some(namespace.into()),
        self_link: Some(String::new()),
        uid: Some(String::new()),
        resource_version: Some(String::new()),
        generation: Some(0),
        creation_timestamp: Some(meta::Time::default()),
        ..Default::default()
    })
}

fn refused_415(body: &[u8]) -> String {
    match to_json(body) {
        Err(ApiError::UnsupportedMediaType(message)) => message,
        other => panic!("expected 415, got {other:?}"),
    }
}

#[test]
fn a_field_no_converter_reads_makes_the_body_415_naming_kind_and_type() {
    let mut pod = core::PodSpec {
        containers: vec![core::Container {
            name: Some("c".into()),
            ..Default::default()
        }],
        affinity: Some(core::Affinity::default()),
        ..Default::default()
    };
    let deployment = |spec: core::PodSpec| k8s_pb::api::apps::v1::Deployment {
        metadata: go_meta("d", "team"),
        spec: Some(k8s_pb::api::apps::v1::DeploymentSpec {
            template: Some(core::PodTemplateSpec {
                metadata: None,
                spec: Some(spec),
            }),
            ..Default::default()
        }),
        status: None,
    };
    let body = |spec| envelope("apps/v1", "Deployment", deployment(spec).encode_to_vec());
    let message = refused_415(&body(pod.clone()));
    assert!(
        message.contains("apps/v1 Deployment") && message.contains("PodSpec"),
        "{message}"
    );
    assert!(message.contains("kubectl create -f"), "{message}");

    pod.affinity = None;
    assert!(to_json(&body(pod.clone())).is_ok());

    // Deeper: a volume source no converter reads, and a status that holds something.
    pod.volumes = vec![core::Volume {
        name: Some("disk".into()),
        volume_source: Some(core::VolumeSource {
            gce_persistent_disk: Some(core::GcePersistentDiskVolumeSource::default()),
            ..Default::default()
        }),
    }];
    assert!(refused_415(&body(pod)).contains("VolumeSource"));
    let namespace = core::Namespace {
        metadata: go_meta("x", ""),
        spec: None,
        status: Some(core::NamespaceStatus {
            phase: Some("Terminating".into()),
            conditions: vec![],
        }),
    };
    let message = refused_415(&envelope("v1", "Namespace", namespace.encode_to_vec()));
    assert!(message.contains("NamespaceStatus"), "{message}");
}

#[test]
fn other_kinds_are_415_listing_what_is_accepted() {
    let template = core::PodTemplate::default();
    let message = refused_415(&envelope("v1", "PodTemplate", template.encode_to_vec()));
    assert!(
        message.contains("v1 PodTemplate is not accepted in protobuf"),
        "{message}"
    );
    assert!(
        message.contains("application/json")
            && message.contains("v1 ConfigMap")
            && message.contains("apps/v1 Deployment"),
        "{message}"
    );
    // The right kind in the wrong group version is another kind.
    refused_415(&envelope("v2", "ConfigMap", vec![]));
}

#[test]
fn broken_and_hostile_bodies_are_400_without_panic() {
    let bad = |body: &[u8]| matches!(to_json(body), Err(ApiError::BadRequest(_)));
    assert!(bad(b"{}"));
    assert!(bad(b""));
    assert!(bad(b"k8s"));
    assert!(bad(b"K8S\0"));
    // A length prefix far beyond the body, at the envelope and inside the object.
    let mut huge = MAGIC.to_vec();
    huge.extend([0x22, 0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert!(bad(&huge));
    assert!(bad(&envelope(
        "v1",
        "ConfigMap",
        vec![0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]
    )));
    // Truncated everywhere: 400 (or 415), or where the cut falls between two fields (protobuf
    // has no end marker) a shorter object; never a panic.
    let full = envelope(
        "v1",
        "ConfigMap",
        core::ConfigMap {
            metadata: go_meta("c", "team"),
            data: [("a".to_owned(), "1".to_owned())].into(),
            ..Default::default()
        }
        .encode_to_vec(),
    );
    assert!(to_json(&full).is_ok());
    let mut refused = 0;
    for len in MAGIC.len()..full.len() {
        match full.get(..len).map(to_json) {
            Some(Err(ApiError::BadRequest(_) | ApiError::UnsupportedMediaType(_))) => refused += 1,
            Some(Ok(_)) => {}
            other => panic!("{len}: {other:?}"),
        }
    }
    assert!(refused > full.len() / 2, "{refused} of {}", full.len());
    // Compressed raw data is not read.
    let mut unknown = Unknown::decode(full.get(MAGIC.len()..).expect("envelope")).expect("unknown");
    unknown.content_encoding = Some("gzip".into());
    let mut gz = MAGIC.to_vec();
    gz.extend(unknown.encode_to_vec());
    assert!(bad(&gz));
    // Pseudo-random bytes after the magic: any answer but a panic.
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..2000 {
        let mut body = MAGIC.to_vec();
        for _ in 0..(seed % 64) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            body.push(seed.to_le_bytes().first().copied().unwrap_or_default());
        }
        let _ = to_json(&body);
        let _ = to_json(&envelope("apps/v1", "Deployment", body));
    }
}

#[test]
fn bodies_are_json_or_protobuf_and_anything_else_is_415() {
    let json_body = Bytes::from_static(b"{\"kind\":\"ConfigMap\"}");
    let ct = |v: &'static str| Some(HeaderValue::from_static(v));
    let post = Method::POST;
    for ok in [
        None,
        ct("application/json"),
        ct("Application/JSON; charset=utf-8"),
    ] {
        let got = request_body(&post, ok.as_ref(), json_body.clone()).expect("accepted");
        assert_eq!(got, json_body);
    }
    for refused in ["text/plain", "application/cbor", "application/yaml"] {
        match request_body(&post, ct(refused).as_ref(), json_body.clone()) {
            Err(ApiError::UnsupportedMediaType(m)) => {
                assert!(m.contains(refused), "{m}");
                assert!(
                    m.contains(
                        "application/json, application/vnd.kubernetes.protobuf (for v1 Namespace"
                    ),
                    "{m}"
                );
            }
            other => panic!("{refused}: {other:?}"),
        }
    }
    // No body: nothing to refuse (GET, DELETE); PATCH bodies are the patch handler's.
    let empty = request_body(&Method::DELETE, ct("text/plain").as_ref(), Bytes::new());
    assert!(empty.is_ok_and(|b| b.is_empty()));
    assert!(request_body(&Method::PATCH, ct("text/plain").as_ref(), json_body.clone()).is_ok());
    // Protobuf becomes the JSON object.
    let cm = core::ConfigMap {
        metadata: go_meta("c", "team"),
        ..Default::default()
    };
    let body = Bytes::from(envelope("v1", "ConfigMap", cm.encode_to_vec()));
    let got = request_body(
        &post,
        ct("application/vnd.kubernetes.protobuf").as_ref(),
        body,
    )
    .expect("converted");
    let v: Value = serde_json::from_slice(&got).expect("json");
    assert_eq!(
        v,
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "team"}})
    );
}
