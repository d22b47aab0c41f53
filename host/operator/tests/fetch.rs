//! Module downloads over real HTTPS (a local server with its own CA): the pinned digest decides,
//! untrusted servers and HTTP errors are refused with the reason.

use std::net::SocketAddr;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use axum_server::tls_rustls::RustlsConfig;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use vdi_crd::PluginSource;
use vdi_operator::modules::FetchError;
use vdi_operator::{Fetcher, ModuleStore};
use vdi_plugin_host::Digest;

const MODULE: &[u8] = b"\0asm pretend module bytes";

/// A CA and a server certificate for 127.0.0.1 signed by it: (ca pem, cert pem, key pem).
fn pki() -> (String, String, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

async fn serve(cert: &str, key: &str) -> (SocketAddr, axum_server::Handle<SocketAddr>) {
    let app = Router::new()
        .route("/module.wasm", get(|| async { MODULE }))
        .route(
            "/missing.wasm",
            get(|| async { (StatusCode::NOT_FOUND, "no") }),
        );
    let tls = RustlsConfig::from_pem(cert.as_bytes().to_vec(), key.as_bytes().to_vec())
        .await
        .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = axum_server::Handle::new();
    let server = axum_server::from_tcp_rustls(listener, tls)
        .unwrap()
        .handle(handle.clone());
    tokio::spawn(async move { server.serve(app.into_make_service()).await });
    (addr, handle)
}

/// A client that is never called (URL sources need no API server).
fn unused_client() -> kube::Client {
    let config = kube::Config::new("https://127.0.0.1:1".parse().unwrap());
    kube::Client::try_from(config).unwrap()
}

fn url(addr: SocketAddr, path: &str) -> PluginSource {
    PluginSource {
        url: Some(format!("https://{addr}{path}")),
        ..PluginSource::default()
    }
}

#[tokio::test]
async fn downloads_are_checked_against_the_pinned_digest_and_the_trusted_roots() {
    let (ca, cert, key) = pki();
    let (addr, handle) = serve(&cert, &key).await;
    let store = ModuleStore::new(unused_client(), "vdi-system");
    let trusting = Fetcher::new(store.clone(), unused_client(), Some(ca.as_bytes())).unwrap();

    let bytes = trusting
        .fetch(&url(addr, "/module.wasm"), &Digest::of(MODULE))
        .await
        .unwrap();
    assert_eq!(bytes, MODULE);

    let wrong = trusting
        .fetch(&url(addr, "/module.wasm"), &Digest::of(b"other"))
        .await
        .unwrap_err();
    assert!(
        matches!(wrong, FetchError::DigestMismatch { .. }),
        "{wrong}"
    );
    assert!(wrong.to_string().contains(&Digest::of(MODULE).to_string()));

    let missing = trusting
        .fetch(&url(addr, "/missing.wasm"), &Digest::of(MODULE))
        .await
        .unwrap_err();
    assert!(missing.to_string().contains("HTTP 404"), "{missing}");

    // Without the CA the server is not trusted.
    let strict = Fetcher::new(store, unused_client(), None).unwrap();
    let untrusted = strict
        .fetch(&url(addr, "/module.wasm"), &Digest::of(MODULE))
        .await
        .unwrap_err();
    assert!(
        matches!(untrusted, FetchError::Download { .. }),
        "{untrusted}"
    );

    // Plain HTTP is refused before any connection.
    let plain = PluginSource {
        url: Some(format!("http://{addr}/module.wasm")),
        ..PluginSource::default()
    };
    let refused = trusting
        .fetch(&plain, &Digest::of(MODULE))
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("must be an https:// URL"),
        "{refused}"
    );
    handle.shutdown();
}
