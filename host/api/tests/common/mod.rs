//! Shared by the API's tests: the platform with the dev OpenID Provider, the API served over
//! HTTPS with the control plane's certificate on a free loopback port, and a GraphQL client
//! (POST and graphql-transport-ws) that trusts only the cluster's CA.

#![allow(dead_code, reason = "each test file uses a different part")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use kube::config::{KubeConfigOptions, Kubeconfig};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use vdi_api::{ApiConfig, ApiState, KeySource};
use vdi_cluster::SimulatedNodes;
use vdi_operator::OperatorConfig;
use vdi_platform::{OidcConfig, Platform, PlatformOptions, mint_token};
use vdi_testkit::idp::{ALL_SCOPES, CLI_CLIENT};
use vdi_testkit::{DevIdp, compile_cache, guests};

/// How long a test waits for the platform to get somewhere.
pub const WAIT: Duration = Duration::from_secs(30);

/// The platform, the IdP and the API served over HTTPS.
pub struct Env {
    pub idp: DevIdp,
    pub platform: Platform,
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    handle: axum_server::Handle<SocketAddr>,
    _dir: tempfile::TempDir,
}

/// The limits the tests run with: small enough to hit.
pub fn api_config(idp: &DevIdp) -> ApiConfig {
    let mut config = ApiConfig::new(oidc(idp));
    config.max_depth = 6;
    config.max_body_bytes = 16 * 1024;
    config.max_page_size = 50;
    config.ice_servers = vec![vdi_api::IceServer {
        urls: vec!["stun:127.0.0.1:3478".into()],
        username: None,
        credential: None,
    }];
    config
}

fn oidc(idp: &DevIdp) -> OidcConfig {
    let mut oidc = OidcConfig::new(idp.issuer(), CLI_CLIENT);
    oidc.ca_pem = Some(idp.ca_pem().to_owned());
    oidc
}

impl Env {
    /// Starts everything; the API acts through the `vdi-system/vdi-api` service account with a
    /// TokenRequest token, under `deploy/rbac/api.yaml`.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// [`Self::start`] with the API's configuration changed by `tweak`.
    pub async fn start_with(tweak: impl FnOnce(&mut ApiConfig)) -> Self {
        let idp = DevIdp::start();
        let dir = tempfile::tempdir().unwrap();
        let platform = Platform::start(PlatformOptions {
            data_dir: dir.path().to_owned(),
            listen: "127.0.0.1:0".parse().unwrap(),
            nodes: SimulatedNodes {
                count: 2,
                slices_per_gpu: 8,
                start_delay: Duration::from_millis(300),
                ..SimulatedNodes::default()
            },
            plugins_dir: Some(guests().clone()),
            cache_dir: Some(compile_cache()),
            operator: Some(OperatorConfig {
                sweep_every: Duration::from_secs(3600),
                ..OperatorConfig::default()
            }),
            admission_hook: true,
            process_node: None,
            oidc: vec![oidc(&idp)],
        })
        .await
        .expect("start the platform");
        let token = mint_token(&platform.client, "vdi-system", "vdi-api", 3600)
            .await
            .unwrap();
        let kc = Kubeconfig::from_yaml(&platform.kubeconfig()).unwrap();
        let mut sa = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .unwrap();
        sa.auth_info = kube::config::AuthInfo {
            token: Some(token.into()),
            ..kube::config::AuthInfo::default()
        };
        let mut config = api_config(&idp);
        tweak(&mut config);
        let state = ApiState::new(config, sa, KeySource::Cluster).unwrap();
        assert!(state.prefetch().await, "the API reached the IdP");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let tls = axum_server::tls_rustls::RustlsConfig::from_config(platform.cluster.tls_config());
        let handle = axum_server::Handle::new();
        let server = axum_server::from_tcp_rustls(listener, tls)
            .unwrap()
            .handle(handle.clone());
        tokio::spawn(server.serve(vdi_api::router(state).into_make_service()));
        let http = reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(platform.cluster.ca_pem().as_bytes()).unwrap(),
            )
            .tls_built_in_root_certs(false)
            .build()
            .unwrap();
        Self {
            idp,
            platform,
            addr,
            http,
            handle,
            _dir: dir,
        }
    }

    /// An ID token of a demo user (password `<user>-password`).
    pub async fn token(&self, user: &str) -> String {
        self.idp
            .login(user, &format!("{user}-password"), CLI_CLIENT, ALL_SCOPES)
            .await
            .id_token
    }

    /// The API's URL (the certificate names `localhost`).
    pub fn url(&self) -> String {
        format!("https://localhost:{}/graphql", self.addr.port())
    }

    /// Posts `body` as is; returns the status and the JSON answer.
    pub async fn post_raw(&self, token: Option<&str>, body: Vec<u8>) -> (u16, Value) {
        let mut req = self
            .http
            .post(self.url())
            .header("content-type", "application/json")
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await.expect("the API answered");
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Runs `query` as a GraphQL multipart request (the spec's `operations`, `map` and one
    /// file part) with `file` as the variable `file`.
    pub async fn post_file(&self, token: &str, query: &str, file: &[u8]) -> (u16, Value) {
        self.try_post_file(Some(token), query, file)
            .await
            .expect("the API answered")
    }

    /// [`Self::post_file`], without a token when `token` is `None`; a transport error (the
    /// server may answer and close before the upload is sent) is returned.
    pub async fn try_post_file(
        &self,
        token: Option<&str>,
        query: &str,
        file: &[u8],
    ) -> Result<(u16, Value), reqwest::Error> {
        let boundary = "vdi-test-boundary-7d1e";
        let operations = json!({"query": query, "variables": {"file": null}});
        let mut body = format!(
            "--{boundary}\r\ncontent-disposition: form-data; name=\"operations\"\r\n\r\n{operations}\r\n\
             --{boundary}\r\ncontent-disposition: form-data; name=\"map\"\r\n\r\n{{\"0\": [\"variables.file\"]}}\r\n\
             --{boundary}\r\ncontent-disposition: form-data; name=\"0\"; filename=\"module.wasm\"\r\ncontent-type: application/wasm\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(file);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let mut req = self
            .http
            .post(self.url())
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req.send().await?;
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }

    /// Runs one operation as `token`.
    pub async fn gql(&self, token: &str, query: &str, variables: Value) -> Value {
        let body = json!({"query": query, "variables": variables}).to_string();
        let (status, answer) = self.post_raw(Some(token), body.into_bytes()).await;
        assert!(status == 200, "{status}: {answer}");
        answer
    }

    /// Opens `query` as a subscription over graphql-transport-ws, signed in with `token` in
    /// `connection_init`.
    pub async fn subscribe(&self, token: &str, query: &str) -> Subscription {
        self.subscribe_with(token, query, json!({})).await
    }

    /// [`Self::subscribe`] with variables.
    pub async fn subscribe_with(&self, token: &str, query: &str, variables: Value) -> Subscription {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(self.platform.cluster.ca_pem().as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        let stream = TlsConnector::from(Arc::new(tls))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        let mut request = format!("wss://localhost:{}/graphql/ws", self.addr.port())
            .into_client_request()
            .unwrap();
        request.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        let (mut ws, _) = tokio_tungstenite::client_async(request, stream)
            .await
            .expect("WebSocket handshake");
        let init = json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {token}")}});
        ws.send(Message::text(init.to_string())).await.unwrap();
        let sub = json!({"id": "1", "type": "subscribe", "payload": {"query": query, "variables": variables}});
        let mut s = Subscription { ws };
        let ack = s.next_message().await;
        assert_eq!(ack["type"], "connection_ack", "{ack}");
        s.ws.send(Message::text(sub.to_string())).await.unwrap();
        s
    }

    /// Stops the API server.
    pub fn stop(&self) {
        self.handle.shutdown();
    }
}

/// An open subscription.
pub struct Subscription {
    ws: tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>>,
}

impl Subscription {
    /// The next protocol message (pings answered), or a panic after [`WAIT`].
    pub async fn next_message(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a message within the wait")
                .expect("the socket stays open")
                .expect("a readable message");
            match msg {
                Message::Text(t) => {
                    let v: Value = serde_json::from_str(&t).unwrap();
                    if v["type"] == "ping" {
                        let pong = json!({"type": "pong"}).to_string();
                        self.ws.send(Message::text(pong)).await.unwrap();
                        continue;
                    }
                    return v;
                }
                Message::Close(frame) => panic!("the server closed the socket: {frame:?}"),
                _ => {}
            }
        }
    }
}

/// The error codes of a GraphQL answer.
pub fn codes(answer: &Value) -> Vec<String> {
    answer["errors"]
        .as_array()
        .map(|es| {
            es.iter()
                .map(|e| {
                    e["extensions"]["code"]
                        .as_str()
                        .unwrap_or("none")
                        .to_owned()
                })
                .collect()
        })
        .unwrap_or_default()
}
