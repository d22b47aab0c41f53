//! Modules as OCI artifacts, in the layout of the CNCF Wasm OCI artifact format: a config of
//! media type [`WASM_CONFIG_MEDIA_TYPE`] and one layer of [`WASM_LAYER_MEDIA_TYPE`] holding the
//! component. Pulls also accept Kubewarden's [`KUBEWARDEN_LAYER_MEDIA_TYPE`]; anything else (an
//! `application/octet-stream` layer, a container image) is refused before its bytes are read.
//!
//! Registries on this machine (`localhost`, `127.0.0.0/8`, `[::1]`) are spoken to over plain
//! HTTP, all others over HTTPS only. Every push and pull gets a client of its own, so the
//! credentials given for one never serve another (`oci-client` remembers a registry's first
//! credentials). Layers are read with a size cap and checked against their descriptor's digest.

pub mod auth;
pub mod reference;

use std::time::{Duration, Instant};

use futures::StreamExt as _;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::{OCI_IMAGE_MEDIA_TYPE, OciDescriptor, OciImageManifest};
pub use oci_client::secrets::RegistryAuth;
use serde_json::json;
use vdi_plugin_host::Digest;

pub use auth::auth_for;
pub use reference::OciReference;

/// Media type of the artifact's config (Wasm OCI artifact format).
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// Media type of the layer holding the component (Wasm OCI artifact format).
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";
/// Kubewarden's layer media type for policies, accepted on pull.
pub const KUBEWARDEN_LAYER_MEDIA_TYPE: &str = "application/vnd.wasm.content.layer.v1+wasm";
/// The layer media types a pull accepts.
pub const ACCEPTED_LAYER_MEDIA_TYPES: [&str; 2] =
    [WASM_LAYER_MEDIA_TYPE, KUBEWARDEN_LAYER_MEDIA_TYPE];
/// How long one push or pull may take in all.
pub const OCI_TIMEOUT: Duration = Duration::from_secs(60);
/// How long connecting to a registry may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a registry may stay silent mid-answer.
const READ_TIMEOUT: Duration = Duration::from_secs(20);

/// Why a push or pull failed.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// The reference is not usable as written.
    #[error("{0}")]
    Reference(String),
    /// Credentials or TLS roots could not be used.
    #[error("{0}")]
    Config(String),
    /// The registry has no such tag or digest (or no such repository).
    #[error("{reference}: not found in the registry ({reason})")]
    NotFound {
        /// What was asked for.
        reference: String,
        /// What the registry said.
        reason: String,
    },
    /// The registry refused the credentials (or their absence).
    #[error("{reference}: the registry refused access ({reason}); check the pull secret")]
    Unauthorized {
        /// What was asked for.
        reference: String,
        /// What the registry said.
        reason: String,
    },
    /// The artifact is not a module (media types, layer count).
    #[error("{reference} is not a Wasm module artifact: {reason}")]
    NotAModule {
        /// What was pulled.
        reference: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The module is over the size limit.
    #[error("{reference}: the module is over the {max}-byte limit ({size})")]
    TooLarge {
        /// What was pulled.
        reference: String,
        /// Bytes declared or read.
        size: String,
        /// The limit.
        max: usize,
    },
    /// The registry could not be reached, answered wrongly or went away.
    #[error("{reference}: {reason}")]
    Registry {
        /// What was asked for.
        reference: String,
        /// Why.
        reason: String,
    },
}

/// What a push stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// The immutable reference: the repository at the manifest's digest.
    pub reference: OciReference,
    /// The manifest's digest.
    pub manifest_digest: String,
    /// The module's digest (what `spec.sha256` pins).
    pub module_digest: Digest,
}

/// What a pull read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulled {
    /// The module's bytes.
    pub bytes: Vec<u8>,
    /// The manifest's digest.
    pub manifest_digest: String,
    /// The layer's media type.
    pub media_type: String,
    /// How long it took.
    pub elapsed: Duration,
}

/// Talks to OCI registries, trusting the system's roots plus extra CA certificates.
#[derive(Debug, Clone, Default)]
pub struct OciRegistries {
    extra_roots: Vec<Vec<u8>>,
}

impl OciRegistries {
    /// Registries trusted through the system's roots plus `extra_ca_pem` (PEM certificates).
    pub fn new(extra_ca_pem: Option<&[u8]>) -> Result<Self, OciError> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject as _;
        let mut extra_roots = Vec::new();
        if let Some(pem) = extra_ca_pem {
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| OciError::Config(format!("extra CA: {e}")))?;
                extra_roots.push(cert.to_vec());
            }
        }
        Ok(Self { extra_roots })
    }

    /// A client for one operation on `reference`'s registry.
    fn client(&self, reference: &OciReference) -> Result<oci_client::Client, OciError> {
        // reqwest is built without a crypto provider of its own (its default is aws-lc, a C
        // build): use ring, as the rest of the process does. Installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = ClientConfig {
            protocol: if reference.is_loopback() {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            extra_root_certificates: self
                .extra_roots
                .iter()
                .map(|der| Certificate {
                    encoding: CertificateEncoding::Der,
                    data: der.clone(),
                })
                .collect(),
            connect_timeout: Some(CONNECT_TIMEOUT),
            read_timeout: Some(READ_TIMEOUT),
            // A module is one artifact, never an index to resolve by platform.
            platform_resolver: None,
            ..ClientConfig::default()
        };
        oci_client::Client::try_from(config)
            .map_err(|e| OciError::Config(format!("OCI client: {}", chain(&e))))
    }

    /// Pushes `module` to `reference` as a Wasm artifact; returns its immutable reference.
    pub async fn push(
        &self,
        reference: &OciReference,
        module: &[u8],
        auth: &RegistryAuth,
    ) -> Result<Pushed, OciError> {
        if reference.digest().is_some() {
            return Err(OciError::Reference(format!(
                "{reference}: push to a tag, not a digest (the digest is the manifest's)"
            )));
        }
        let client = self.client(reference)?;
        let image = reference.to_client();
        let module_digest = Digest::of(module);
        let config = json!({
            "created": jiff::Timestamp::now().to_string(),
            "architecture": "wasm",
            "os": "wasip2",
            "layerDigests": [module_digest.to_string()],
        })
        .to_string()
        .into_bytes();
        let config_digest = Digest::of(&config).to_string();
        let manifest = OciImageManifest {
            schema_version: 2,
            media_type: Some(OCI_IMAGE_MEDIA_TYPE.to_owned()),
            config: descriptor(WASM_CONFIG_MEDIA_TYPE, &config_digest, config.len()),
            layers: vec![descriptor(
                WASM_LAYER_MEDIA_TYPE,
                &module_digest.to_string(),
                module.len(),
            )],
            ..OciImageManifest::default()
        };
        let body = serde_json::to_vec(&manifest)
            .map_err(|e| OciError::Config(format!("manifest: {e}")))?;
        let manifest_digest = Digest::of(&body).to_string();
        let work = async {
            client
                .store_auth_if_needed(image.resolve_registry(), auth)
                .await;
            client
                .push_blob(&image, module.to_vec(), &module_digest.to_string())
                .await?;
            client.push_blob(&image, config, &config_digest).await?;
            client
                .push_manifest_raw(
                    &image,
                    body,
                    http::HeaderValue::from_static(OCI_IMAGE_MEDIA_TYPE),
                )
                .await
        };
        run(reference, work).await?;
        Ok(Pushed {
            reference: reference.with_digest(&manifest_digest),
            manifest_digest,
            module_digest,
        })
    }

    /// Pulls the module at `reference`, refusing other artifacts and modules over `max_bytes`.
    pub async fn pull(
        &self,
        reference: &OciReference,
        auth: &RegistryAuth,
        max_bytes: usize,
    ) -> Result<Pulled, OciError> {
        let started = Instant::now();
        let client = self.client(reference)?;
        let image = reference.to_client();
        let (manifest, manifest_digest) =
            run(reference, client.pull_image_manifest(&image, auth)).await?;
        let layer = module_layer(reference, &manifest, max_bytes)?;
        let fail = |reason: String| OciError::Registry {
            reference: reference.to_string(),
            reason,
        };
        let read = async {
            let mut stream = client.pull_blob_stream(&image, &layer).await?;
            let mut bytes = Vec::with_capacity(usize::try_from(layer.size).unwrap_or(0));
            while let Some(piece) = stream.next().await {
                let piece = piece?;
                if bytes.len() + piece.len() > max_bytes {
                    return Ok(Err(OciError::TooLarge {
                        reference: reference.to_string(),
                        size: format!("more than {max_bytes} bytes read"),
                        max: max_bytes,
                    }));
                }
                bytes.extend_from_slice(&piece);
            }
            Ok(Ok(bytes))
        };
        let bytes = run(reference, read).await??;
        if i64::try_from(bytes.len()).ok() != Some(layer.size) {
            return Err(fail(format!(
                "the layer ended after {} of {} bytes (the registry went away?)",
                bytes.len(),
                layer.size
            )));
        }
        let actual = Digest::of(&bytes).to_string();
        if actual != layer.digest {
            return Err(fail(format!(
                "the layer's bytes are {actual}, its descriptor says {}",
                layer.digest
            )));
        }
        Ok(Pulled {
            bytes,
            manifest_digest,
            media_type: layer.media_type,
            elapsed: started.elapsed(),
        })
    }
}

fn descriptor(media_type: &str, digest: &str, size: usize) -> OciDescriptor {
    OciDescriptor {
        media_type: media_type.to_owned(),
        digest: digest.to_owned(),
        size: i64::try_from(size).unwrap_or(i64::MAX),
        ..OciDescriptor::default()
    }
}

/// The one module layer of `manifest`, checked before any of it is read.
fn module_layer(
    reference: &OciReference,
    manifest: &OciImageManifest,
    max_bytes: usize,
) -> Result<OciDescriptor, OciError> {
    let not_module = |reason: String| OciError::NotAModule {
        reference: reference.to_string(),
        reason,
    };
    let [layer] = manifest.layers.as_slice() else {
        return Err(not_module(format!(
            "it has {} layers, a module artifact has one",
            manifest.layers.len()
        )));
    };
    if !ACCEPTED_LAYER_MEDIA_TYPES.contains(&layer.media_type.as_str()) {
        return Err(not_module(format!(
            "its layer is {:?}; accepted: {}",
            layer.media_type,
            ACCEPTED_LAYER_MEDIA_TYPES.join(", ")
        )));
    }
    reference::check_digest(&layer.digest).map_err(not_module)?;
    match usize::try_from(layer.size) {
        Ok(size) if size <= max_bytes => Ok(layer.clone()),
        _ => Err(OciError::TooLarge {
            reference: reference.to_string(),
            size: format!("{} bytes declared", layer.size),
            max: max_bytes,
        }),
    }
}

/// Runs one registry exchange under [`OCI_TIMEOUT`], naming `reference` in its errors.
async fn run<T>(
    reference: &OciReference,
    work: impl Future<Output = Result<T, OciDistributionError>>,
) -> Result<T, OciError> {
    match tokio::time::timeout(OCI_TIMEOUT, work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(classify(reference, &e)),
        Err(_) => Err(OciError::Registry {
            reference: reference.to_string(),
            reason: format!("timed out after {OCI_TIMEOUT:?}"),
        }),
    }
}

/// Sorts a client error into what the caller can act on.
fn classify(reference: &OciReference, e: &OciDistributionError) -> OciError {
    let reference = reference.to_string();
    let reason = chain(e);
    let codes: Vec<&OciErrorCode> = match e {
        OciDistributionError::RegistryError { envelope, .. } => {
            envelope.errors.iter().map(|e| &e.code).collect()
        }
        _ => Vec::new(),
    };
    let not_found = matches!(e, OciDistributionError::ImageManifestNotFoundError(_))
        || matches!(e, OciDistributionError::ServerError { code: 404, .. })
        || codes.iter().any(|c| {
            matches!(
                c,
                OciErrorCode::ManifestUnknown
                    | OciErrorCode::NameUnknown
                    | OciErrorCode::BlobUnknown
                    | OciErrorCode::NotFound
            )
        });
    let unauthorized = matches!(
        e,
        OciDistributionError::UnauthorizedError { .. }
            | OciDistributionError::AuthenticationFailure(_)
            | OciDistributionError::ServerError {
                code: 401 | 403,
                ..
            }
    ) || codes
        .iter()
        .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied));
    if not_found {
        OciError::NotFound { reference, reason }
    } else if unauthorized {
        OciError::Unauthorized { reference, reason }
    } else {
        OciError::Registry { reference, reason }
    }
}

/// An error and its sources on one line (reqwest hides the cause, e.g. connection refused).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
