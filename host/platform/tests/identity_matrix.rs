//! Who may do what, end to end: users sign in at the real dev OpenID Provider (npm
//! `oidc-provider`, code + PKCE), the control plane authenticates their ID tokens, a service
//! account's TokenRequest token and the lack of any token, and RBAC from `deploy/` decides every
//! request over real HTTPS. The table is printed; docs/architecture.md carries it.

mod common;

use std::time::Duration;

use http::{Method, Request, StatusCode};
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};
use serde_json::{Value, json};
use vdi_crd::{SessionPhase, VDISession};
use vdi_platform::{OidcConfig, Platform, PlatformOptions, add_user, mint_token};
use vdi_testkit::idp::{ALL_SCOPES, CLI_CLIENT};
use vdi_testkit::{DevIdp, compile_cache, guests};

use common::{nodes, operator_config};

const OPS: [&str; 10] = [
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "status write",
    "pod logs",
    "impersonate",
];

/// A client of the platform that sends `token` (none: anonymous).
async fn client_as(platform: &Platform, token: Option<&str>) -> Client {
    let kc = Kubeconfig::from_yaml(&platform.kubeconfig()).unwrap();
    let mut config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    config.auth_info = kube::config::AuthInfo::default();
    if let Some(token) = token {
        config.auth_info.token = Some(token.to_owned().into());
    }
    Client::try_from(config).unwrap()
}

/// Sends one request and returns its status code and body.
async fn send(
    client: &Client,
    method: Method,
    path: &str,
    content_type: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    let res = client
        .send(req.body(body.into()).unwrap())
        .await
        .expect("the request reached the server");
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

fn session_body(name: &str, user: &str, groups: &[&str]) -> Value {
    json!({
        "apiVersion": "vdi.dev/v1alpha1",
        "kind": "VDISession",
        "metadata": {"name": name},
        "spec": {"user": {"name": user, "groups": groups}, "template": "ubuntu-desktop"},
    })
}

/// One request of a row: method, path, content type, body, extra headers.
type Probe<'a> = (
    Method,
    String,
    &'a str,
    Option<Value>,
    &'a [(&'a str, &'a str)],
);

/// Runs the ten operations as `client` (`who` names its objects) against alice's session
/// `desk` in `ns`, its pod `pod`; returns the status code of each.
async fn row(client: &Client, who: &str, ns: &str, pod: &str, admin: &Client) -> Vec<u16> {
    let sessions = format!("/apis/vdi.dev/v1alpha1/namespaces/{ns}/vdisessions");
    let desk = format!("{sessions}/desk");
    let json_ct = "application/json";
    let merge = "application/merge-patch+json";
    // The operator re-admits each extension (a status write): the update below must not race it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut current = loop {
        let current = send(admin, Method::GET, &desk, json_ct, None, &[]).await.1;
        if current["status"]["observedGeneration"] == current["metadata"]["generation"] {
            break current;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "desk never settled: {current}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Only the timeout of an admitted session may change (admission refuses anything else).
    current["spec"]["timeout"] = json!("2h");
    let impersonation = [
        ("impersonate-user", "oidc:alice"),
        ("impersonate-group", "oidc:staff"),
    ];
    let requests: [Probe<'_>; 10] = [
        (Method::GET, desk.clone(), json_ct, None, &[]),
        (Method::GET, sessions.clone(), json_ct, None, &[]),
        (
            Method::GET,
            format!("{sessions}?watch=true&timeoutSeconds=1"),
            json_ct,
            None,
            &[],
        ),
        (
            Method::POST,
            sessions.clone(),
            json_ct,
            Some(session_body(
                &format!("made-by-{who}"),
                "oidc:someone",
                &["oidc:staff"],
            )),
            &[],
        ),
        (Method::PUT, desk.clone(), json_ct, Some(current), &[]),
        (
            Method::PATCH,
            desk.clone(),
            merge,
            Some(json!({"spec": {"timeout": "3h"}})),
            &[],
        ),
        (
            Method::DELETE,
            format!("{sessions}/victim-{who}"),
            json_ct,
            None,
            &[],
        ),
        (
            Method::PATCH,
            format!("{desk}/status"),
            merge,
            Some(json!({"status": {}})),
            &[],
        ),
        (
            Method::GET,
            format!("/api/v1/namespaces/{ns}/pods/{pod}/log?container=desktop"),
            json_ct,
            None,
            &[],
        ),
        (Method::GET, sessions.clone(), json_ct, None, &impersonation),
    ];
    let mut codes = Vec::new();
    for (op, (method, path, ct, body, headers)) in OPS.iter().zip(requests) {
        let (status, answer) = send(client, method, &path, ct, body, headers).await;
        if status.is_client_error() {
            // Every refusal is a Kubernetes Status that says why.
            assert_eq!(answer["kind"], "Status", "{who} {op}: {answer}");
            assert_eq!(answer["code"], status.as_u16(), "{who} {op}: {answer}");
        }
        if status == StatusCode::BAD_REQUEST {
            // Only the logs of a pod on a simulated node: past authorization, no log to read.
            let message = answer["message"].as_str().unwrap_or_default();
            assert!(
                *op == "pod logs" && message.contains("simulated node"),
                "{who} {op}: {message}"
            );
        }
        if status == StatusCode::FORBIDDEN && *op != "update" && *op != "patch" {
            let message = answer["message"].as_str().unwrap_or_default();
            assert!(
                message.contains("is forbidden: User \"") && message.contains(" cannot "),
                "{who} {op}: {message}"
            );
        }
        codes.push(status.as_u16());
    }
    codes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_identity_gets_exactly_what_rbac_grants() {
    let idp = DevIdp::start();
    let dir = tempfile::tempdir().unwrap();
    let mut oidc = OidcConfig::new(idp.issuer(), CLI_CLIENT);
    oidc.ca_pem = Some(idp.ca_pem().to_owned());
    let platform = Platform::start(PlatformOptions {
        data_dir: dir.path().to_owned(),
        listen: "127.0.0.1:0".parse().unwrap(),
        nodes: nodes(2, 8),
        plugins_dir: Some(guests().clone()),
        cache_dir: Some(compile_cache()),
        operator: Some(operator_config()),
        admission_hook: true,
        process_node: None,
        oidc: vec![oidc],
    })
    .await
    .expect("start the platform");
    let admin_client = platform.client.clone();
    let ns = add_user(&admin_client, "oidc:alice").await.unwrap();
    add_user(&admin_client, "oidc:bob").await.unwrap();

    let mut tokens = Vec::new();
    for user in ["alice", "bob", "carol", "admin"] {
        let signed_in = idp
            .login(user, &format!("{user}-password"), CLI_CLIENT, ALL_SCOPES)
            .await;
        tokens.push((user.to_owned(), Some(signed_in.id_token)));
    }
    let api_token = mint_token(&admin_client, "vdi-system", "vdi-api", 3600)
        .await
        .unwrap();
    tokens.push(("sa:vdi-api".to_owned(), Some(api_token)));
    tokens.push(("anonymous".to_owned(), None));

    // alice makes her desktop herself; admin makes one victim per row for the delete column.
    let alice = client_as(&platform, tokens[0].1.as_deref()).await;
    let (status, made) = send(
        &alice,
        Method::POST,
        &format!("/apis/vdi.dev/v1alpha1/namespaces/{ns}/vdisessions"),
        "application/json",
        Some(session_body("desk", "root", &["admins"])),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(made["spec"]["user"]["name"], "oidc:alice", "{made}");
    for (i, (who, _)) in tokens.iter().enumerate() {
        let victim = session_body(
            &format!("victim-{who}").replace(':', "-"),
            &format!("oidc:victim-{i}"),
            &["oidc:staff"],
        );
        let (status, answer) = send(
            &admin_client,
            Method::POST,
            &format!("/apis/vdi.dev/v1alpha1/namespaces/{ns}/vdisessions"),
            "application/json",
            Some(victim),
            &[],
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
    }
    let sessions: Api<VDISession> = Api::namespaced(admin_client.clone(), &ns);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let pod = loop {
        let desk = sessions.get("desk").await.unwrap();
        let running = desk.status.as_ref().map(|s| s.phase()) == Some(SessionPhase::Running);
        let pods = Api::<Pod>::namespaced(admin_client.clone(), &ns)
            .list(&ListParams::default().labels("vdi.dev/session=desk"))
            .await
            .unwrap();
        let live = pods
            .items
            .into_iter()
            .find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"));
        if let (true, Some(pod)) = (running, live) {
            break pod.metadata.name.unwrap();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "desk never ran: {:?}",
            desk.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let mut table = Vec::new();
    for (who, token) in &tokens {
        let client = client_as(&platform, token.as_deref()).await;
        let name = who.replace(':', "-");
        table.push((
            who.clone(),
            row(&client, &name, &ns, &pod, &admin_client).await,
        ));
    }

    println!("alice's session in {ns}, over HTTPS:");
    println!("{:<12} {}", "", OPS.map(|o| format!("{o:>12}")).join(""));
    for (who, codes) in &table {
        let cells: String = codes.iter().map(|c| format!("{c:>12}")).collect();
        println!("{who:<12} {cells}");
    }
    let expected: [(&str, [u16; 10]); 6] = [
        // Pod logs: authorized, then 400 because a simulated node keeps no logs.
        // alice may extend her own session (update, patch of spec.timeout).
        ("alice", [200, 200, 200, 201, 200, 200, 200, 403, 400, 403]),
        ("bob", [403; 10]),
        ("carol", [403; 10]),
        ("admin", [200, 200, 200, 201, 200, 200, 200, 403, 400, 403]),
        (
            "sa:vdi-api",
            [403, 403, 403, 403, 403, 403, 403, 403, 403, 200],
        ),
        ("anonymous", [401; 10]),
    ];
    for ((who, codes), (want_who, want)) in table.iter().zip(expected) {
        assert_eq!(who, want_who);
        assert_eq!(codes.as_slice(), want.as_slice(), "{who}: {codes:?}");
    }
    // The templates are every signed-in user's to read, and no one else's.
    let templates = "/apis/vdi.dev/v1alpha1/vditemplates";
    for (who, token) in &tokens {
        let client = client_as(&platform, token.as_deref()).await;
        let (status, _) = send(
            &client,
            Method::GET,
            templates,
            "application/json",
            None,
            &[],
        )
        .await;
        let want = if token.is_none() { 401 } else { 200 };
        assert_eq!(status.as_u16(), want, "{who} listing templates");
    }
    // Plugins and the node inventory are the platform admins' only.
    for path in ["/apis/vdi.dev/v1alpha1/vdiplugins", "/api/v1/nodes"] {
        for (who, token) in &tokens {
            let client = client_as(&platform, token.as_deref()).await;
            let (status, _) = send(&client, Method::GET, path, "application/json", None, &[]).await;
            let want = match who.as_str() {
                "admin" => 200,
                "anonymous" => 401,
                _ => 403,
            };
            assert_eq!(status.as_u16(), want, "{who} listing {path}");
        }
    }
    platform.stop().await;
    drop(idp);
}
