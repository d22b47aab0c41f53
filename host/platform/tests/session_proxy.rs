//! The session proxy in front of the assembled platform: requests to
//! `/sessions/{namespace}/{name}/…` reach the address the session's Service announces, bodies and
//! upgraded (WebSocket) connections pass both ways, and sessions that are unknown, unreachable or
//! named through `..` are refused.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use kube::Api;
use kube::api::{Patch, PatchParams};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use vdi_crd::SessionPhase;
use vdi_platform::proxy::LOCAL_ENDPOINT_ANNOTATION;

use common::{create, nodes, session, start, wait_phase};

/// Reads one request head (and its `content-length` body) from `s`.
async fn read_request(s: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let len = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = buf[end..].to_vec();
    while body.len() < len {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((head, body))
}

/// A stand-in streamer: answers each request with its head and body, and an
/// `Upgrade: websocket` request with 101 and then echoes every byte.
async fn upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let Some((head, body)) = read_request(&mut s).await else {
                    return;
                };
                if head.to_ascii_lowercase().contains("upgrade: websocket") {
                    let _ = s
                        .write_all(b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n")
                        .await;
                    let (mut r, mut w) = s.into_split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                    return;
                }
                let mut out = head.into_bytes();
                out.extend_from_slice(&body);
                let mut resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    out.len()
                )
                .into_bytes();
                resp.extend_from_slice(&out);
                let _ = s.write_all(&resp).await;
            });
        }
    });
    addr
}

/// An HTTP/1.1 connection over TLS to `addr`, trusting only the cluster's CA (`ca_pem`) and
/// checking the name `localhost`, as a browser opening `status.url` does.
async fn connect(ca_pem: &str, addr: SocketAddr) -> TlsStream<TcpStream> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = TcpStream::connect(addr).await.unwrap();
    TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

/// Sends `req` to `addr` and reads the whole answer (the request says `connection: close`).
async fn send(ca_pem: &str, addr: SocketAddr, req: &str) -> String {
    let mut s = connect(ca_pem, addr).await;
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    // The proxy may close without a TLS close_notify once the answer is complete.
    let _ = s.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_proxy_routes_sessions_to_their_streamers_and_refuses_the_rest() {
    let mut env = start(nodes(2, 8)).await;
    let proxy = env
        .platform
        .start_proxy("127.0.0.1:0".parse().unwrap())
        .unwrap();
    let ca = env.platform.cluster.ca_pem().to_owned();
    assert_eq!(env.platform.proxy_addr(), Some(proxy));
    for (name, user) in [("alice-desktop", "alice"), ("bob-desktop", "bob")] {
        create(
            &env,
            &session(name, user, &["staff"], "ubuntu-desktop", None),
        )
        .await
        .unwrap();
        wait_phase(&env, name, SessionPhase::Running).await;
    }
    let streamer = upstream().await;
    let services: Api<Service> = Api::namespaced(env.client(), "default");
    let annotate =
        json!({"metadata": {"annotations": {LOCAL_ENDPOINT_ANNOTATION: streamer.to_string()}}});
    services
        .patch(
            "alice-desktop",
            &PatchParams::default(),
            &Patch::Merge(&annotate),
        )
        .await
        .unwrap();

    // The whole path reaches the streamer (the IngressRoute strips no prefix), with the
    // end-to-end headers and without the hop-by-hop ones.
    let out = send(
        &ca,
        proxy,
        "GET /sessions/default/alice-desktop/app/index.html?x=1 HTTP/1.1\r\nhost: localhost\r\nx-probe: 7\r\nx-private: 1\r\nconnection: close, x-private\r\n\r\n",
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(
        out.contains("GET /sessions/default/alice-desktop/app/index.html?x=1 HTTP/1.1"),
        "{out}"
    );
    assert!(out.to_ascii_lowercase().contains("x-probe: 7"), "{out}");
    assert!(!out.to_ascii_lowercase().contains("x-private"), "{out}");

    let out = send(
        &ca,
        proxy,
        "POST /sessions/default/alice-desktop/api HTTP/1.1\r\nhost: localhost\r\ncontent-length: 11\r\nconnection: close\r\n\r\nhello proxy",
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(
        out.contains("POST /sessions/default/alice-desktop/api HTTP/1.1"),
        "{out}"
    );
    assert!(out.ends_with("hello proxy"), "{out}");

    // An upgraded connection is spliced both ways.
    let mut ws = connect(&ca, proxy).await;
    ws.write_all(b"GET /sessions/default/alice-desktop/ws HTTP/1.1\r\nhost: localhost\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = ws.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before the 101");
        got.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&got).into_owned();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    for msg in [&b"ping"[..], b"\x81\x05hello"] {
        ws.write_all(msg).await.unwrap();
        let mut echo = vec![0u8; msg.len()];
        ws.read_exact(&mut echo).await.unwrap();
        assert_eq!(echo, msg);
    }

    let out = send(&ca, proxy, &get("/sessions/default/nobody/")).await;
    assert!(out.starts_with("HTTP/1.1 404"), "{out}");
    assert!(out.contains("\"kind\":\"Status\""), "{out}");

    let out = send(&ca, proxy, &get("/sessions/default/bob-desktop/")).await;
    assert!(out.starts_with("HTTP/1.1 503"), "{out}");
    assert!(
        out.contains("the session's streamer is not reachable: it runs on simulated node sim-gpu-"),
        "{out}"
    );

    // A path naming one session never reaches another.
    for path in [
        "/sessions/default/bob-desktop/../alice-desktop/",
        "/sessions/default/bob-desktop/%2e%2e/alice-desktop/",
        "/sessions/default/../default/alice-desktop/",
    ] {
        let out = send(&ca, proxy, &get(path)).await;
        assert!(out.starts_with("HTTP/1.1 400"), "{path}: {out}");
    }

    // Only loopback endpoints are followed.
    let elsewhere =
        json!({"metadata": {"annotations": {LOCAL_ENDPOINT_ANNOTATION: "10.0.0.1:80"}}});
    services
        .patch(
            "alice-desktop",
            &PatchParams::default(),
            &Patch::Merge(&elsewhere),
        )
        .await
        .unwrap();
    let out = send(&ca, proxy, &get("/sessions/default/alice-desktop/")).await;
    assert!(out.starts_with("HTTP/1.1 503"), "{out}");
    assert!(out.contains("is not a loopback host:port"), "{out}");
    env.platform.stop().await;
}
