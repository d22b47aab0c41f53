//! The platform's one HTTPS origin: the dashboard's settings and assets (with the single-page
//! app's fallback), the GraphQL API acting for signed-in users of the dev OpenID Provider, and the
//! session proxy, all on one port.

mod common;

use serde_json::{Value, json};
use vdi_platform::front::{DashboardConfig, Front};
use vdi_testkit::DevIdp;
use vdi_testkit::idp::{ALL_SCOPES, CLI_CLIENT};

#[tokio::test(flavor = "multi_thread")]
async fn one_origin_serves_the_dashboard_its_settings_the_api_and_the_sessions() {
    let idp = DevIdp::start();
    let mut env = common::start_with(common::nodes(1, 8), None, false).await;
    let assets = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        assets.path().join("index.html"),
        "<!doctype html><title>vdi</title>",
    )
    .expect("index");
    std::fs::create_dir(assets.path().join("assets")).expect("assets dir");
    std::fs::write(assets.path().join("assets/app.js"), "console.log(1)").expect("app.js");

    let mut issuer = vdi_cluster::authn::OidcConfig::new(idp.issuer(), CLI_CLIENT);
    issuer.ca_pem = Some(idp.ca_pem().to_owned());
    let api = env
        .platform
        .api_state(vdi_api::ApiConfig::new(issuer))
        .await
        .expect("the API's state");
    let addr = env
        .platform
        .start_front(
            "127.0.0.1:0".parse().expect("addr"),
            Front {
                api: Some(api),
                dashboard: Some(DashboardConfig::new(idp.issuer(), "vdi-dashboard")),
                assets: Some(assets.path().to_owned()),
            },
        )
        .expect("serve");
    let http = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(env.platform.cluster.ca_pem().as_bytes()).expect("CA"),
        )
        .tls_built_in_root_certs(false)
        .build()
        .expect("client");
    let url = |path: &str| format!("https://localhost:{}{path}", addr.port());

    let config: Value = http
        .get(url("/config.json"))
        .send()
        .await
        .expect("config")
        .json()
        .await
        .expect("json");
    assert_eq!(
        config,
        json!({"issuer": idp.issuer(), "clientId": "vdi-dashboard", "graphql": "/graphql", "graphqlWs": "/graphql/ws"})
    );
    for (path, want) in [
        ("/", "<title>vdi</title>"),
        ("/sessions-page/deep/link", "<title>vdi</title>"),
        ("/assets/app.js", "console.log(1)"),
    ] {
        let res = http.get(url(path)).send().await.expect("asset");
        assert_eq!(res.status(), 200, "{path}");
        assert!(res.text().await.expect("body").contains(want), "{path}");
    }

    // The API: no token is UNAUTHENTICATED; alice's token reaches `me` as herself.
    let query = json!({"query": "{ me { user groups } }"});
    let anonymous: Value = http
        .post(url("/graphql"))
        .json(&query)
        .send()
        .await
        .expect("graphql")
        .json()
        .await
        .expect("json");
    assert_eq!(
        anonymous["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{anonymous}"
    );
    let token = idp
        .login("alice", "alice-password", CLI_CLIENT, ALL_SCOPES)
        .await
        .id_token;
    let me: Value = http
        .post(url("/graphql"))
        .bearer_auth(token)
        .json(&query)
        .send()
        .await
        .expect("graphql")
        .json()
        .await
        .expect("json");
    assert_eq!(me["data"]["me"]["user"], "oidc:alice", "{me}");

    // The session proxy answers on the same port.
    let res = http
        .get(url("/sessions/default/nothing-here/"))
        .send()
        .await
        .expect("proxy");
    assert_eq!(res.status(), 404);
}
