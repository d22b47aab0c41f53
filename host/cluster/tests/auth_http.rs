//! Authentication and authorization over real HTTPS, on the paths where what RBAC sees and what
//! the handler does could part: server-side apply that creates, a percent-encoded `watch`,
//! TokenReview audiences, tokens of a deleted namespace, and a token bound to another
//! account's pod.

mod common;

use http::{Method, Request, StatusCode};
use kube::Client;
use serde_json::{Value, json};

/// Sends one request as `client`; returns the status and the JSON body (Null if none).
async fn send(
    client: &Client,
    method: Method,
    path: &str,
    ctype: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", ctype)
        .body(
            body.map(|b| b.to_string().into_bytes())
                .unwrap_or_default()
                .into(),
        )
        .expect("request");
    let res = client.send(req).await.expect("sent");
    let status = res.status();
    let bytes = http_body_util::BodyExt::collect(res.into_body())
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn post(client: &Client, path: &str, body: Value) -> Value {
    let (status, answer) = send(client, Method::POST, path, "application/json", Some(body)).await;
    assert!(status.is_success(), "POST {path}: {status} {answer}");
    answer
}

/// A client that sends `token`.
async fn with_token(cluster: &vdi_cluster::Cluster, token: &str) -> Client {
    let kc = kube::config::Kubeconfig::from_yaml(&cluster.kubeconfig()).expect("kubeconfig");
    let mut config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("config");
    config.auth_info = kube::config::AuthInfo {
        token: Some(token.to_owned().into()),
        ..Default::default()
    };
    Client::try_from(config).expect("client")
}

async fn token_for(admin: &Client, ns: &str, sa: &str, spec: Value) -> Result<String, Value> {
    let path = format!("/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token");
    let (status, answer) = send(
        admin,
        Method::POST,
        &path,
        "application/json",
        Some(json!({"spec": spec})),
    )
    .await;
    match answer["status"]["token"].as_str() {
        Some(t) if status.is_success() => Ok(t.to_owned()),
        _ => Err(answer),
    }
}

#[tokio::test]
async fn what_rbac_sees_is_what_the_handler_does() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cluster, admin) = common::start(dir.path()).await;
    post(
        &admin,
        "/api/v1/namespaces",
        json!({"metadata": {"name": "team"}}),
    )
    .await;
    post(
        &admin,
        "/api/v1/namespaces/team/serviceaccounts",
        json!({"metadata": {"name": "bot"}}),
    )
    .await;
    // bot may patch (not create) configmap x, and list (not watch) configmaps.
    post(&admin, "/apis/rbac.authorization.k8s.io/v1/namespaces/team/roles", json!({
        "metadata": {"name": "narrow"},
        "rules": [
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["patch", "get"], "resourceNames": ["x"]},
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]},
        ]})).await;
    post(
        &admin,
        "/apis/rbac.authorization.k8s.io/v1/namespaces/team/rolebindings",
        json!({
        "metadata": {"name": "narrow"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "narrow"},
        "subjects": [{"kind": "ServiceAccount", "name": "bot"}]}),
    )
    .await;
    let token = token_for(&admin, "team", "bot", json!({}))
        .await
        .expect("token");
    let bot = with_token(&cluster, &token).await;

    // Server-side apply of a missing object creates it: that takes `create`.
    let apply = "application/apply-patch+yaml";
    let (status, answer) = send(&bot, Method::PATCH, "/api/v1/namespaces/team/configmaps/x?fieldManager=bot", apply,
        Some(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "1"}}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .is_some_and(|m| m.contains("cannot create resource \"configmaps\"")),
        "{answer}"
    );
    post(
        &admin,
        "/api/v1/namespaces/team/configmaps",
        json!({"metadata": {"name": "x"}}),
    )
    .await;
    let (status, answer) = send(&bot, Method::PATCH, "/api/v1/namespaces/team/configmaps/x?fieldManager=bot", apply,
        Some(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "1"}}))).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "an existing object is patched: {answer}"
    );

    // `list` is granted, `watch` is not, however the query spells it.
    let (status, _) = send(
        &bot,
        Method::GET,
        "/api/v1/namespaces/team/configmaps",
        "application/json",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for query in ["watch=true", "watch=%74rue", "%77atch=1"] {
        let (status, answer) = send(
            &bot,
            Method::GET,
            &format!("/api/v1/namespaces/team/configmaps?{query}&timeoutSeconds=1"),
            "application/json",
            None,
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "?{query}: {answer}");
    }

    // TokenReview: for the server's audience yes; for another service's, no.
    let review = |audiences: Value| json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token, "audiences": audiences}});
    let ours = post(
        &admin,
        "/apis/authentication.k8s.io/v1/tokenreviews",
        review(Value::Null),
    )
    .await;
    assert_eq!(ours["status"]["authenticated"], true, "{ours}");
    assert_eq!(
        ours["status"]["user"]["username"],
        "system:serviceaccount:team:bot"
    );
    let vault = post(
        &admin,
        "/apis/authentication.k8s.io/v1/tokenreviews",
        review(json!(["vault"])),
    )
    .await;
    assert_eq!(vault["status"]["authenticated"], false, "{vault}");

    // A token bound to a pod is for the account that pod runs as.
    post(
        &admin,
        "/api/v1/namespaces/team/pods",
        json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}),
    )
    .await;
    let err = token_for(
        &admin,
        "team",
        "bot",
        json!({"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p"}}),
    )
    .await
    .expect_err("p runs as default");
    assert_eq!(err["code"], 422, "{err}");
    token_for(
        &admin,
        "team",
        "default",
        json!({"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p"}}),
    )
    .await
    .expect("default's token bound to p");

    // Deleting the namespace ends its accounts' tokens, even before it is gone.
    let (status, _) = send(
        &bot,
        Method::GET,
        "/api/v1/namespaces/team/configmaps",
        "application/json",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, answer) = send(
        &admin,
        Method::DELETE,
        "/api/v1/namespaces/team",
        "application/json",
        None,
    )
    .await;
    assert!(status.is_success(), "{answer}");
    let (status, _) = send(
        &bot,
        Method::GET,
        "/api/v1/namespaces/team/configmaps",
        "application/json",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(cluster.handler_panics(), 0);
    cluster.stop().await;
}
