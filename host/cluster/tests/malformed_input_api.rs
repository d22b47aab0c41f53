//! Malformed input, as a curious user sends it, over real HTTP: every case is answered with a 4xx
//! `Status` naming the field and the limit, no request handler panics, and the server goes on
//! serving. Malformed objects already in the store are skipped (and reported) when it reloads
//! and by the node agents.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::Method;
use http::header::CONTENT_TYPE;
use kube::Client;
use kube::core::Status;
use serde_json::{Value, json};
use vdi_cluster::{
    Cluster, ClusterConfig, MAX_BODY_BYTES, MAX_NESTING_DEPTH, MAX_STORED_DEPTH, SimulatedNodes,
};

const CMS: &str = "/api/v1/namespaces/default/configmaps";
const JSON: &str = "application/json";
const MERGE: &str = "application/merge-patch+json";
const JSON_PATCH: &str = "application/json-patch+json";
const STRATEGIC: &str = "application/strategic-merge-patch+json";
const APPLY: &str = "application/apply-patch+yaml";

/// Sends a raw request; the decoded answer, or the `Status` of a refusal.
async fn send(
    client: &Client,
    method: &str,
    path: &str,
    ctype: &str,
    body: Vec<u8>,
) -> Result<Value, Box<Status>> {
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header(CONTENT_TYPE, ctype)
        .body(body)
        .expect("request");
    match client.request_text(request).await {
        Ok(text) => Ok(serde_json::from_str(&text).expect("JSON answer")),
        Err(kube::Error::Api(status)) => Err(status),
        Err(e) => panic!("{method} {path}: no HTTP answer: {e}"),
    }
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("serialise")
}

/// `{"a": {"a": ... {}}}`, `levels` objects deep.
fn nested(levels: usize) -> Value {
    (1..levels).fold(json!({}), |inner, _| json!({ "a": inner }))
}

/// A writer that keeps what the log subscriber writes, for assertions.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    /// Captures this thread's log lines (a `#[tokio::test]` runs every task on it).
    fn capture(&self) -> tracing::subscriber::DefaultGuard {
        let logs = self.clone();
        tracing::subscriber::set_default(
            tracing_subscriber::fmt()
                .with_ansi(false)
                .with_writer(move || logs.clone())
                .finish(),
        )
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One malformed request and how it must be refused.
struct Case {
    what: &'static str,
    /// Method, path, content type, body.
    request: (Method, String, &'static str, Value),
    code: u16,
    /// What the `Status` message must contain.
    names: Vec<String>,
}

impl Case {
    fn new(what: &'static str, request: (Method, String, &'static str, Value)) -> Self {
        Self {
            what,
            request,
            code: 0,
            names: Vec::new(),
        }
    }

    fn refused(self, code: u16, names: &[&str]) -> Self {
        Self {
            code,
            names: names.iter().map(|n| (*n).to_owned()).collect(),
            ..self
        }
    }
}

/// The server still answers: a read of `target` and a fresh create both succeed.
async fn still_serves(client: &Client, case: &str, n: usize) {
    let got = send(client, "GET", &format!("{CMS}/target"), JSON, Vec::new())
        .await
        .unwrap_or_else(|s| panic!("after {case}: GET failed: {s:?}"));
    assert_eq!(got["metadata"]["name"], "target", "after {case}");
    assert_eq!(
        got["data"]["k"], "v",
        "after {case}: the target is unchanged"
    );
    let fresh = json!({"metadata": {"name": format!("after-{n}")}});
    send(client, "POST", CMS, JSON, bytes(&fresh))
        .await
        .unwrap_or_else(|s| panic!("after {case}: create failed: {s:?}"));
}

#[tokio::test]
async fn malformed_bodies_and_patches_are_refused_naming_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cluster, client) = common::start(dir.path()).await;
    let target = json!({"metadata": {"name": "target"}, "data": {"k": "v"}});
    send(&client, "POST", CMS, JSON, bytes(&target))
        .await
        .expect("target created");
    let at = format!("{CMS}/target");
    let metadata_as_string =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": "x", "data": {}});
    let post = |body| (Method::POST, CMS.to_owned(), JSON, body);
    let patch = |ctype, body| (Method::PATCH, at.clone(), ctype, body);
    let deep = nested(MAX_NESTING_DEPTH);
    let limit = format!("at most {MAX_NESTING_DEPTH} are allowed");
    let cases = [
        Case::new("POST []", post(json!([])))
            .refused(400, &["object: must be a JSON object, got an array"]),
        Case::new("POST metadata: 1", post(json!({"metadata": 1})))
            .refused(400, &["metadata: must be an object, got a number"]),
        Case::new(
            "POST a number label",
            post(json!({"metadata": {"name": "l", "labels": {"app": 1}}})),
        )
        .refused(
            400,
            &["metadata.labels.app: must be a string, got a number"],
        ),
        Case::new("POST a number name", post(json!({"metadata": {"name": 7}})))
            .refused(400, &["metadata.name: must be a string"]),
        Case::new(
            "PUT metadata: string",
            (Method::PUT, at.clone(), JSON, metadata_as_string.clone()),
        )
        .refused(400, &["metadata: must be an object, got a string"]),
        Case::new(
            "merge patch metadata: string",
            patch(MERGE, json!({"metadata": "x"})),
        )
        .refused(422, &["metadata: must be an object, got a string"]),
        Case::new(
            "JSON patch replacing /metadata",
            patch(
                JSON_PATCH,
                json!([{"op": "replace", "path": "/metadata", "value": "x"}]),
            ),
        )
        .refused(422, &["metadata: must be an object, got a string"]),
        Case::new(
            "strategic merge patch metadata: string",
            patch(STRATEGIC, json!({"metadata": "x"})),
        )
        .refused(422, &["metadata: must be an object, got a string"]),
        Case::new(
            "apply patch metadata: string",
            patch(APPLY, metadata_as_string),
        )
        .refused(400, &["metadata: must be an object, got a string"]),
        Case::new(
            "merge patch labels: list",
            patch(MERGE, json!({"metadata": {"labels": ["x"]}})),
        )
        .refused(
            422,
            &["metadata.labels: must be an object of strings, got an array"],
        ),
        Case::new(
            "strategic patch making the object an array",
            patch(STRATEGIC, json!([1])),
        )
        .refused(422, &["object: must be a JSON object, got an array"]),
        Case::new(
            "POST nested 101 deep",
            post(json!({"metadata": {"name": "deep"}, "spec": deep.clone()})),
        )
        .refused(400, &["spec: nested too deeply: 101 levels", &limit]),
        Case::new(
            "merge patch nested 101 deep",
            patch(MERGE, json!({"spec": deep.clone()})),
        )
        .refused(400, &["spec: nested too deeply: 101 levels", &limit]),
        Case::new(
            "JSON patch nesting the result 101 deep",
            patch(
                JSON_PATCH,
                json!([{"op": "add", "path": "/spec", "value": deep}]),
            ),
        )
        .refused(422, &["spec: nested too deeply: 101 levels", &limit]),
    ];
    for (n, case) in cases.iter().enumerate() {
        let (method, path, ctype, body) = &case.request;
        let status = send(&client, method.as_str(), path, ctype, bytes(body))
            .await
            .expect_err(case.what);
        assert_eq!(status.code, case.code, "{}: {status:?}", case.what);
        for name in &case.names {
            assert!(
                status.message.contains(name),
                "{}: {:?} does not name {name:?}",
                case.what,
                status.message
            );
        }
        still_serves(&client, case.what, n).await;
    }
    // A JSON patch that copies the object into itself doubles its depth with each operation;
    // it is stopped at the first operation past the stored limit, before the depth runs away.
    let mut path = String::from("/spec");
    let mut ops = vec![json!({"op": "add", "path": "/spec", "value": nested(40)})];
    for _ in 0..20 {
        path.push_str(&"/a".repeat(39));
        ops.push(json!({"op": "copy", "from": "/spec", "path": format!("{path}/b")}));
        path.push_str("/b");
    }
    let status = send(&client, "PATCH", &at, JSON_PATCH, bytes(&json!(ops)))
        .await
        .expect_err("copy bomb");
    assert_eq!(status.code, 422, "{status:?}");
    assert!(
        status
            .message
            .contains(&format!("at most {MAX_STORED_DEPTH}")),
        "{}",
        status.message
    );
    still_serves(&client, "a copying JSON patch", 100).await;
    assert_eq!(
        cluster.handler_panics(),
        0,
        "no case reached the panic layer"
    );
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_not_an_empty_body() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cluster, client) = common::start(dir.path()).await;
    // A valid object, padded past the limit with a long value.
    let mut body = br#"{"metadata":{"name":"big"},"data":{"k":""#.to_vec();
    body.resize(MAX_BODY_BYTES + 1, b'x');
    body.extend_from_slice(br#""}}"#);
    let status = send(&client, "POST", CMS, JSON, body)
        .await
        .expect_err("too large");
    assert_eq!(status.code, 413, "{status:?}");
    assert_eq!(status.reason, "RequestEntityTooLarge");
    assert!(
        status.message.contains(&MAX_BODY_BYTES.to_string()),
        "{}",
        status.message
    );
    // Nothing was created from it, and the server goes on.
    let missing = send(&client, "GET", &format!("{CMS}/big"), JSON, Vec::new())
        .await
        .expect_err("not created");
    assert_eq!(missing.code, 404);
    let small = json!({"metadata": {"name": "small"}, "data": {"k": "v"}});
    send(&client, "POST", CMS, JSON, bytes(&small))
        .await
        .expect("a small body is fine");
    assert_eq!(cluster.handler_panics(), 0);
}

/// Panics while admitting a ConfigMap named `boom`: a stand-in for a bug in a handler.
struct Boom;

impl vdi_cluster::AdmissionHook for Boom {
    fn handles(&self, rt: &vdi_cluster::ResourceType) -> bool {
        rt.plural == "configmaps"
    }

    fn admit(
        &self,
        _op: vdi_cluster::Operation,
        _requester: &vdi_cluster::Requester,
        _rt: &vdi_cluster::ResourceType,
        obj: &mut Value,
        _old: Option<&Value>,
    ) -> vdi_cluster::Result<()> {
        assert_ne!(obj["metadata"]["name"], "boom", "the hook fails on purpose");
        Ok(())
    }
}

#[tokio::test]
async fn a_panicking_handler_is_answered_with_a_500_status_and_logged() {
    let logs = Logs::default();
    let _guard = logs.capture();
    let dir = tempfile::tempdir().expect("tempdir");
    let (cluster, client) = common::start(dir.path()).await;
    cluster.store().add_admission_hook(Arc::new(Boom));
    let status = send(
        &client,
        "POST",
        CMS,
        JSON,
        bytes(&json!({"metadata": {"name": "boom"}})),
    )
    .await
    .expect_err("panicked");
    assert_eq!(status.code, 500, "{status:?}");
    assert_eq!(status.reason, "InternalError");
    assert_eq!(cluster.handler_panics(), 1);
    assert!(
        logs.text().contains("API request handler panicked"),
        "{}",
        logs.text()
    );
    send(
        &client,
        "POST",
        CMS,
        JSON,
        bytes(&json!({"metadata": {"name": "fine"}})),
    )
    .await
    .expect("the server goes on");
}

#[tokio::test]
async fn malformed_stored_objects_are_skipped_on_reload_and_by_the_node_agents() {
    let dir = tempfile::tempdir().expect("tempdir");
    Cluster::start(ClusterConfig::local(dir.path()))
        .await
        .expect("first start")
        .stop()
        .await;
    // Rows no API write could store now, as an older version or a hand edit could have left them.
    let pod = |name: &str, spec: Value, status: Value| {
        json!({"apiVersion": "v1", "kind": "Pod", "spec": spec, "status": status,
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "resourceVersion": "1"}})
        .to_string()
    };
    let container = json!([{"name": "c", "image": "i"}]);
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let rows = [
        ("not-json", "{oops".to_owned()),
        ("an-array", "[]".to_owned()),
        ("string-metadata", r#"{"metadata":"x"}"#.to_owned()),
        ("too-deep", deep),
        // On a simulated node: the agent would write into `status`.
        (
            "broken-status",
            pod(
                "broken-status",
                json!({"nodeName": "sim-gpu-000", "containers": container}),
                json!("broken"),
            ),
        ),
        // Placed by selector: the binder would write into `spec` and `status`.
        (
            "broken-unbound",
            pod(
                "broken-unbound",
                json!({"nodeSelector": {"kubernetes.io/hostname": "sim-gpu-001"}, "containers": container}),
                json!(7),
            ),
        ),
    ];
    {
        let db = rusqlite::Connection::open(dir.path().join("cluster.db")).expect("open db");
        for (name, body) in &rows {
            db.execute(
                "INSERT INTO objects (resource, namespace, name, rv, body) VALUES ('pods', 'default', ?1, 1, ?2)",
                rusqlite::params![name, body],
            )
            .expect("insert row");
        }
    }

    let logs = Logs::default();
    let _guard = logs.capture();
    let cluster = Cluster::start(ClusterConfig::local(dir.path()))
        .await
        .expect("a bad row does not keep the server from starting");
    let sim = SimulatedNodes {
        count: 2,
        ..SimulatedNodes::default()
    };
    sim.start(cluster.store().clone()).expect("nodes");
    let client = common::client_for(&cluster).await;
    let pods = "/api/v1/namespaces/default/pods";
    for (name, _) in &rows[..4] {
        let status = send(&client, "GET", &format!("{pods}/{name}"), JSON, Vec::new())
            .await
            .expect_err("not loaded");
        assert_eq!(status.code, 404, "{name}");
        assert!(
            logs.text().contains(&format!("pods/default/{name}")),
            "{name} not reported: {}",
            logs.text()
        );
    }

    // The agents met the malformed pods first (the watch's backlog) and are still at work.
    let good = json!({"metadata": {"name": "good"}, "spec": {"nodeName": "sim-gpu-000", "containers": [{"name": "c", "image": "i"}]}});
    send(&client, "POST", pods, JSON, bytes(&good))
        .await
        .expect("create");
    let running = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let p = send(&client, "GET", &format!("{pods}/good"), JSON, Vec::new()).await;
            if p.is_ok_and(|p| p["status"]["phase"] == "Running") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    })
    .await;
    assert!(running.is_ok(), "the node agent stopped: {}", logs.text());
    for name in ["broken-status", "broken-unbound"] {
        let kept = send(&client, "GET", &format!("{pods}/{name}"), JSON, Vec::new())
            .await
            .expect("loaded: its envelope is usable");
        assert!(
            kept["status"].is_string() || kept["status"].is_number(),
            "{name} untouched: {kept}"
        );
        assert!(
            logs.text().contains(&format!(
                "node agent skips a malformed stored object object=pods/default/{name}"
            )),
            "{name} not reported: {}",
            logs.text()
        );
    }
    assert_eq!(cluster.handler_panics(), 0);
}
