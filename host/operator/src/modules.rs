//! Where plugin modules come from: the operator's content-addressed upload store (ConfigMaps in
//! the operator's namespace, see [`store`]), `https://` URLs (pinned by digest), ConfigMaps, and
//! OCI registries (see [`oci`]; pulled modules are kept in memory by repository and digest).
//! Every source's bytes are checked against the pinned digest before anything else looks at them.

pub mod oci;
pub mod store;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use vdi_crd::{OciSource, PluginSource};
use vdi_plugin_host::Digest;

pub use store::{ModuleStore, Stored};

use oci::{OciError, OciReference, OciRegistries, RegistryAuth};

use crate::Error;

/// Largest module any source may deliver.
pub const MAX_MODULE_BYTES: usize = 64 << 20;
/// How long an `https://` download may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes of modules pulled from OCI registries kept in memory (oldest dropped first), so a
/// reload (new settings, a restart of the plugin's spec) needs no registry.
pub const OCI_CACHE_BYTES: usize = 128 << 20;

/// Why a module could not be fetched. Fetching and the upload store answer with it (their
/// callers tell its cases apart); elsewhere it travels as [`Error::Fetch`].
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The source is not usable as written.
    #[error("{0}")]
    Invalid(String),
    /// Not in the upload store.
    #[error("module {0} is not in the upload store (upload it first)")]
    NotUploaded(String),
    /// Reading or writing the store failed.
    #[error("upload store: {0}")]
    Store(#[from] kube::Error),
    /// The store holds the module's manifest but not chunks that make it up.
    #[error("module {digest} in the upload store is damaged ({reason}); upload it again")]
    Damaged {
        /// The module's digest.
        digest: String,
        /// What is wrong.
        reason: String,
    },
    /// Download failed.
    #[error("download {url}: {reason}")]
    Download {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The ConfigMap or its key is missing.
    #[error("configMap {0}")]
    ConfigMap(String),
    /// The pull secret is missing or unusable.
    #[error("pull secret {0}")]
    PullSecret(String),
    /// Pulling from the OCI registry failed.
    #[error("OCI pull: {0}")]
    Oci(#[from] OciError),
    /// The bytes do not hash to the pinned digest.
    #[error("digest mismatch: spec.sha256 pins {expected}, the module is {actual}")]
    DigestMismatch {
        /// Pinned.
        expected: String,
        /// Found.
        actual: String,
    },
}

fn verify(expected: &Digest, bytes: &[u8]) -> Result<(), FetchError> {
    let actual = Digest::of(bytes);
    if actual != *expected {
        return Err(FetchError::DigestMismatch {
            expected: expected.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(())
}

/// Modules pulled from registries: (registry/repository, digest, bytes), newest last.
#[derive(Debug, Default)]
struct OciCache {
    entries: VecDeque<(String, Digest, Vec<u8>)>,
    bytes: usize,
}

impl OciCache {
    fn get(&self, repository: &str, digest: &Digest) -> Option<Vec<u8>> {
        self.entries
            .iter()
            .find(|(r, d, _)| r == repository && d == digest)
            .map(|(_, _, b)| b.clone())
    }

    fn put(&mut self, repository: String, digest: Digest, bytes: Vec<u8>) {
        if self.get(&repository, &digest).is_some() {
            return;
        }
        self.bytes += bytes.len();
        self.entries.push_back((repository, digest, bytes));
        while self.bytes > OCI_CACHE_BYTES {
            match self.entries.pop_front() {
                Some((_, _, old)) => self.bytes -= old.len(),
                None => break,
            }
        }
    }
}

/// Fetches modules from any source.
#[derive(Clone)]
pub struct Fetcher {
    store: ModuleStore,
    client: kube::Client,
    https: HttpClient<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>,
    oci: OciRegistries,
    oci_cache: Arc<Mutex<OciCache>>,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Fetcher {
    /// A fetcher over `store`, reading ConfigMaps through `client`, trusting the system's roots
    /// plus `extra_ca_pem` (PEM certificates) for downloads.
    pub fn new(
        store: ModuleStore,
        client: kube::Client,
        extra_ca_pem: Option<&[u8]>,
    ) -> crate::Result<Self> {
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_roots();
        roots.add_parsable_certificates(native);
        if let Some(pem) = extra_ca_pem {
            use rustls::pki_types::CertificateDer;
            use rustls::pki_types::pem::PemObject as _;
            let invalid = |e: &dyn std::fmt::Display| Error::Config(format!("extra CA: {e}"));
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| invalid(&e))?;
                roots.add(cert).map_err(|e| invalid(&e))?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Config(format!("TLS: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .build();
        let https = HttpClient::builder(TokioExecutor::new()).build(connector);
        let oci = OciRegistries::new(extra_ca_pem).map_err(|e| Error::Config(e.to_string()))?;
        Ok(Self {
            store,
            client,
            https,
            oci,
            oci_cache: Arc::default(),
        })
    }

    /// The upload store.
    pub fn store(&self) -> &ModuleStore {
        &self.store
    }

    /// Fetches the module `source` names and checks it against `digest`.
    pub async fn fetch(
        &self,
        source: &PluginSource,
        digest: &Digest,
    ) -> Result<Vec<u8>, FetchError> {
        source.validate().map_err(FetchError::Invalid)?;
        if source.upload.is_some() {
            return self.store.get(digest).await;
        }
        if let Some(oci) = &source.oci {
            return self.pull(oci, digest).await;
        }
        let bytes = if let Some(url) = &source.url {
            self.download(url).await?
        } else if let Some(cm) = &source.config_map {
            let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &cm.namespace);
            let what = format!("{}/{}", cm.namespace, cm.name);
            let map = api
                .get_opt(&cm.name)
                .await
                .map_err(|e| FetchError::ConfigMap(format!("{what}: {e}")))?
                .ok_or_else(|| FetchError::ConfigMap(format!("{what} does not exist")))?;
            match map.binary_data.as_ref().and_then(|d| d.get(&cm.key)) {
                Some(b) => b.0.clone(),
                None => {
                    return Err(FetchError::ConfigMap(format!(
                        "{what} has no binaryData key {:?}",
                        cm.key
                    )));
                }
            }
        } else {
            unreachable!("validate checked one source is set")
        };
        verify(digest, &bytes)?;
        Ok(bytes)
    }

    /// Whether a module pulled from `repository` (`registry/repository`) with `digest` is held
    /// in memory.
    pub fn oci_cached(&self, repository: &str, digest: &Digest) -> bool {
        self.oci_cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(repository, digest)
            .is_some()
    }

    /// Pulls from a registry (or the memory of an earlier pull) and verifies.
    async fn pull(&self, source: &OciSource, digest: &Digest) -> Result<Vec<u8>, FetchError> {
        let reference: OciReference = source
            .reference
            .parse()
            .map_err(|e| FetchError::Invalid(format!("spec.source.oci.reference: {e}")))?;
        let repository = format!("{}/{}", reference.registry(), reference.repository());
        let cached = self
            .oci_cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&repository, digest);
        if let Some(bytes) = cached {
            return Ok(bytes);
        }
        let auth = match &source.pull_secret {
            Some(name) => self.pull_secret(name, reference.registry()).await?,
            None => RegistryAuth::Anonymous,
        };
        let pulled = self.oci.pull(&reference, &auth, MAX_MODULE_BYTES).await?;
        verify(digest, &pulled.bytes)?;
        tracing::info!(
            %reference,
            manifest = %pulled.manifest_digest,
            bytes = pulled.bytes.len(),
            elapsed_ms = pulled.elapsed.as_millis(),
            "module pulled from the registry"
        );
        self.oci_cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .put(repository, *digest, pulled.bytes.clone());
        Ok(pulled.bytes)
    }

    /// The credentials for `registry` in the `kubernetes.io/dockerconfigjson` Secret `name` of
    /// the operator's namespace.
    async fn pull_secret(&self, name: &str, registry: &str) -> Result<RegistryAuth, FetchError> {
        let namespace = self.store.namespace();
        let what = format!("{namespace}/{name}");
        let secret = Api::<Secret>::namespaced(self.client.clone(), namespace)
            .get_opt(name)
            .await
            .map_err(|e| FetchError::PullSecret(format!("{what}: {e}")))?
            .ok_or_else(|| FetchError::PullSecret(format!("{what} does not exist")))?;
        let kind = secret.type_.as_deref().unwrap_or("Opaque");
        if kind != oci::auth::DOCKER_CONFIG_SECRET_TYPE {
            return Err(FetchError::PullSecret(format!(
                "{what} is of type {kind}, not {}",
                oci::auth::DOCKER_CONFIG_SECRET_TYPE
            )));
        }
        let config = secret
            .data
            .as_ref()
            .and_then(|d| d.get(oci::auth::DOCKER_CONFIG_KEY))
            .ok_or_else(|| {
                FetchError::PullSecret(format!("{what} has no {}", oci::auth::DOCKER_CONFIG_KEY))
            })?;
        oci::auth_for(&config.0, registry)
            .map_err(|e| FetchError::PullSecret(format!("{what}: {e}")))
    }

    async fn download(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let fail = |reason: String| FetchError::Download {
            url: url.to_owned(),
            reason,
        };
        let uri: http::Uri = url.parse().map_err(|e| fail(format!("{e}")))?;
        let request = http::Request::get(uri)
            .body(Empty::<Bytes>::new())
            .map_err(|e| fail(e.to_string()))?;
        let work = async {
            let response = self
                .https
                .request(request)
                .await
                .map_err(|e| fail(format!("{e:#}")))?;
            if !response.status().is_success() {
                return Err(fail(format!("HTTP {}", response.status())));
            }
            let body = Limited::new(response.into_body(), MAX_MODULE_BYTES)
                .collect()
                .await
                .map_err(|e| fail(e.to_string()))?;
            Ok(body.to_bytes().to_vec())
        };
        tokio::time::timeout(FETCH_TIMEOUT, work)
            .await
            .map_err(|_| fail(format!("timed out after {FETCH_TIMEOUT:?}")))?
    }
}

/// The system's trusted roots (none when they cannot be read: then only the extra CA works).
fn rustls_native_roots() -> Vec<rustls::pki_types::CertificateDer<'static>> {
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::debug!(error = %e, "reading a system root certificate failed");
    }
    found.certs
}
