//! The upload store: modules chunked into ConfigMaps in the operator's namespace, so that every
//! replica reads what any replica stored (the API server is the only state they share).
//!
//! A module of digest `d` is `vdi-module-<first 40 hex of d>-<i>` for each chunk `i` (its
//! `binaryData.chunk`, at most [`CHUNK_BYTES`]) plus the manifest `vdi-module-<first 40 hex>`
//! (full digest, size, chunk count). All carry the label `vdi.dev/module-digest=<40 hex>`. The
//! manifest is written last, so a module whose manifest exists was written completely; a reader
//! reassembles the chunks and refuses them unless they hash to the full digest.
//!
//! Optionally the store is an OCI registry repository instead ([`oci_backend`]): then the
//! ConfigMaps hold nothing and every replica pointed at the repository sees every module.

mod oci_backend;

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams};
use vdi_crd::FIELD_MANAGER;
use vdi_plugin_host::Digest;

use super::oci::{OciReference, OciRegistries, RegistryAuth};
use super::{FetchError, MAX_MODULE_BYTES, verify};
use oci_backend::RegistryStore;

/// Bytes per chunk: a ConfigMap holds its `binaryData` base64-encoded, and the API server (etcd)
/// refuses objects over about 1.5 MiB; 768 KiB encodes to 1 MiB.
pub const CHUNK_BYTES: usize = 768 << 10;
/// Label on every object of a module: the first [`PREFIX_HEX`] hex digits of its digest.
pub const DIGEST_LABEL: &str = "vdi.dev/module-digest";
/// Label saying which part of a module an object is: `manifest` or `chunk`.
pub const PART_LABEL: &str = "vdi.dev/module-part";
/// Hex digits of the digest in names and labels (label values stop at 63 characters).
pub const PREFIX_HEX: usize = 40;
/// Chunks fetched or written at once.
const PARALLEL: usize = 4;
/// Smallest and largest chunk size a manifest may declare (bounds the chunk count).
const CHUNK_BYTES_RANGE: std::ops::RangeInclusive<usize> = (64 << 10)..=(1 << 20);
/// The chunk's key in `binaryData`.
const CHUNK_KEY: &str = "chunk";

/// What a manifest records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The module's full digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: usize,
    /// Bytes in every chunk but the last.
    pub chunk_bytes: usize,
    /// How many chunks hold it.
    pub chunks: usize,
}

impl Manifest {
    /// The manifest of `size` bytes with `digest`, in chunks of [`CHUNK_BYTES`].
    pub fn new(digest: Digest, size: usize) -> Self {
        Self {
            digest,
            size,
            chunk_bytes: CHUNK_BYTES,
            chunks: size.div_ceil(CHUNK_BYTES),
        }
    }

    fn to_data(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("sha256".to_owned(), self.digest.to_string()),
            ("size".to_owned(), self.size.to_string()),
            ("chunkBytes".to_owned(), self.chunk_bytes.to_string()),
            ("chunks".to_owned(), self.chunks.to_string()),
        ])
    }

    /// Reads a manifest's `data`, refusing what is inconsistent or over the limits.
    pub fn from_data(data: &BTreeMap<String, String>) -> Result<Self, String> {
        let field = |key: &str| {
            data.get(key)
                .ok_or_else(|| format!("manifest has no {key:?}"))
        };
        let number = |key: &str| -> Result<usize, String> {
            field(key)?
                .parse()
                .map_err(|_| format!("manifest {key:?} is not a number"))
        };
        let digest = field("sha256")?
            .parse()
            .map_err(|_| "manifest \"sha256\" is not a digest".to_owned())?;
        let manifest = Self {
            digest,
            size: number("size")?,
            chunk_bytes: number("chunkBytes")?,
            chunks: number("chunks")?,
        };
        if manifest.size == 0 || manifest.size > MAX_MODULE_BYTES {
            return Err(format!(
                "manifest size {} is outside 1..={MAX_MODULE_BYTES}",
                manifest.size
            ));
        }
        if !CHUNK_BYTES_RANGE.contains(&manifest.chunk_bytes) {
            return Err(format!(
                "manifest chunkBytes {} is outside {CHUNK_BYTES_RANGE:?}",
                manifest.chunk_bytes
            ));
        }
        if manifest.chunks != manifest.size.div_ceil(manifest.chunk_bytes) {
            return Err(format!(
                "manifest says {} chunks for {} bytes in chunks of {}",
                manifest.chunks, manifest.size, manifest.chunk_bytes
            ));
        }
        Ok(manifest)
    }

    /// How many bytes chunk `index` holds.
    fn chunk_len(&self, index: usize) -> usize {
        let start = index.saturating_mul(self.chunk_bytes);
        self.size.saturating_sub(start).min(self.chunk_bytes)
    }

    /// Joins the chunks (in order) and checks them against the manifest and its digest.
    pub fn assemble(
        &self,
        chunks: impl IntoIterator<Item = Vec<u8>>,
    ) -> Result<Vec<u8>, FetchError> {
        let mut out = Vec::with_capacity(self.size);
        let mut count = 0;
        for (index, chunk) in chunks.into_iter().enumerate() {
            let want = self.chunk_len(index);
            if index >= self.chunks || chunk.len() != want {
                return Err(self.damaged(format!(
                    "chunk {index} holds {} bytes, the manifest expects {want}",
                    chunk.len()
                )));
            }
            out.extend_from_slice(&chunk);
            count += 1;
        }
        if count != self.chunks {
            return Err(self.damaged(format!("{count} of {} chunks", self.chunks)));
        }
        verify(&self.digest, &out)?;
        Ok(out)
    }

    fn damaged(&self, reason: String) -> FetchError {
        FetchError::Damaged {
            digest: self.digest.to_string(),
            reason,
        }
    }
}

/// Name of the manifest of the module with `digest`.
pub fn manifest_name(digest: &Digest) -> String {
    format!("vdi-module-{}", prefix(digest))
}

/// Name of chunk `index` of the module with `digest`.
pub fn chunk_name(digest: &Digest, index: usize) -> String {
    format!("vdi-module-{}-{index}", prefix(digest))
}

/// The digest's value of [`DIGEST_LABEL`].
pub fn prefix(digest: &Digest) -> String {
    let mut hex = digest.hex();
    hex.truncate(PREFIX_HEX);
    hex
}

/// What [`ModuleStore::put`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// The module's digest.
    pub digest: Digest,
    /// Whether it was written now (`false`: it was already stored, intact).
    pub new: bool,
}

/// Modules by digest, in ConfigMaps of one namespace (or in a registry repository).
#[derive(Clone)]
pub struct ModuleStore {
    api: Api<ConfigMap>,
    namespace: String,
    registry: Option<Arc<RegistryStore>>,
}

impl std::fmt::Debug for ModuleStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModuleStore")
            .field("namespace", &self.namespace)
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

impl ModuleStore {
    /// A store in `namespace` (the operator's own), through `client`.
    pub fn new(client: kube::Client, namespace: impl Into<String>) -> Self {
        let namespace = namespace.into();
        Self {
            api: Api::namespaced(client, &namespace),
            namespace,
            registry: None,
        }
    }

    /// A store in the OCI repository `repository` (module `d` tagged `sha256-<hex of d>`),
    /// reached through `registries` with `auth`; `namespace` is still the operator's (pull
    /// secrets are read there).
    pub fn in_registry(
        client: kube::Client,
        namespace: impl Into<String>,
        repository: OciReference,
        registries: OciRegistries,
        auth: RegistryAuth,
    ) -> Result<Self, FetchError> {
        let registry = RegistryStore::new(repository, registries, auth)?;
        Ok(Self {
            registry: Some(Arc::new(registry)),
            ..Self::new(client, namespace)
        })
    }

    /// Where the module with `digest` is stored when the store is a registry.
    pub fn registry_reference(&self, digest: &Digest) -> Option<OciReference> {
        self.registry.as_ref().map(|r| r.reference(digest))
    }

    /// The namespace holding the modules.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Stores `bytes` and returns their digest. Storing a module again is cheap and changes
    /// nothing, unless its chunks were damaged: then they are written again.
    pub async fn put(&self, bytes: &[u8]) -> Result<Stored, FetchError> {
        check_size(bytes.len())?;
        self.put_digested(Digest::of(bytes), bytes).await
    }

    /// [`put`](Self::put) for bytes whose digest the caller computed.
    pub(crate) async fn put_digested(
        &self,
        digest: Digest,
        bytes: &[u8],
    ) -> Result<Stored, FetchError> {
        check_size(bytes.len())?;
        if let Some(registry) = &self.registry {
            return registry.put(digest, bytes).await;
        }
        let name = manifest_name(&digest);
        if let Some(existing) = self.manifest(&name).await? {
            if existing.as_ref().is_ok_and(|m| m.digest != digest) {
                return Err(FetchError::Invalid(format!(
                    "{name} holds another module whose digest starts alike"
                )));
            }
            match self.get(&digest).await {
                Ok(_) => return Ok(Stored { digest, new: false }),
                Err(e @ (FetchError::Damaged { .. } | FetchError::DigestMismatch { .. })) => {
                    tracing::warn!(%digest, error = %e, "stored module is damaged; writing it again");
                    // Readers see "not uploaded" rather than a mix of old and new chunks.
                    match self.api.delete(&name, &DeleteParams::default()).await {
                        Ok(_) => {}
                        Err(kube::Error::Api(e)) if e.code == 404 => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(e) => return Err(e),
            }
        }
        let manifest = Manifest::new(digest, bytes.len());
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let chunks: Vec<(String, ConfigMap)> = bytes
            .chunks(CHUNK_BYTES)
            .enumerate()
            .map(|(index, chunk)| {
                let name = chunk_name(&digest, index);
                let data = BTreeMap::from([(CHUNK_KEY.to_owned(), ByteString(chunk.to_vec()))]);
                (
                    name.clone(),
                    object(name, &digest, "chunk", None, Some(data)),
                )
            })
            .collect();
        futures::stream::iter(chunks)
            .map(|(name, map)| {
                let (api, params) = (self.api.clone(), params.clone());
                async move { api.patch(&name, &params, &Patch::Apply(&map)).await }
            })
            .buffer_unordered(PARALLEL)
            .try_for_each(|_| std::future::ready(Ok(())))
            .await?;
        let map = object(
            name.clone(),
            &digest,
            "manifest",
            Some(manifest.to_data()),
            None,
        );
        self.api.patch(&name, &params, &Patch::Apply(&map)).await?;
        Ok(Stored { digest, new: true })
    }

    /// The module with `digest`, reassembled and checked.
    pub async fn get(&self, digest: &Digest) -> Result<Vec<u8>, FetchError> {
        if let Some(registry) = &self.registry {
            return registry.get(digest).await;
        }
        let manifest = match self.manifest(&manifest_name(digest)).await? {
            None => return Err(FetchError::NotUploaded(digest.to_string())),
            Some(Err(reason)) => {
                return Err(FetchError::Damaged {
                    digest: digest.to_string(),
                    reason,
                });
            }
            Some(Ok(m)) if m.digest != *digest => {
                return Err(FetchError::NotUploaded(digest.to_string()));
            }
            Some(Ok(m)) => m,
        };
        let chunks: Vec<Vec<u8>> = futures::stream::iter(0..manifest.chunks)
            .map(|index| {
                let (api, manifest, digest) = (self.api.clone(), manifest.clone(), *digest);
                async move {
                    let name = chunk_name(&digest, index);
                    let map = api.get_opt(&name).await.map_err(FetchError::from)?;
                    map.and_then(|m| m.binary_data)
                        .and_then(|mut d| d.remove(CHUNK_KEY))
                        .map(|b| b.0)
                        .ok_or_else(|| {
                            manifest.damaged(format!(
                                "{name} (chunk {index} of {}) is missing",
                                manifest.chunks
                            ))
                        })
                }
            })
            .buffered(PARALLEL)
            .try_collect()
            .await?;
        manifest.assemble(chunks)
    }

    /// The manifest named `name`: absent, unreadable (why), or read.
    async fn manifest(&self, name: &str) -> Result<Option<Result<Manifest, String>>, FetchError> {
        let Some(map) = self.api.get_opt(name).await? else {
            return Ok(None);
        };
        let data = map.data.unwrap_or_default();
        Ok(Some(Manifest::from_data(&data)))
    }
}

fn check_size(len: usize) -> Result<(), FetchError> {
    if len == 0 {
        return Err(FetchError::Invalid("the module is empty".into()));
    }
    if len > MAX_MODULE_BYTES {
        return Err(FetchError::Invalid(format!(
            "module of {len} bytes exceeds the {MAX_MODULE_BYTES}-byte limit"
        )));
    }
    Ok(())
}

fn object(
    name: String,
    digest: &Digest,
    part: &str,
    data: Option<BTreeMap<String, String>>,
    binary_data: Option<BTreeMap<String, ByteString>>,
) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name),
            labels: Some(BTreeMap::from([
                (DIGEST_LABEL.to_owned(), prefix(digest)),
                (PART_LABEL.to_owned(), part.to_owned()),
                (
                    "app.kubernetes.io/managed-by".to_owned(),
                    "vdi-operator".to_owned(),
                ),
            ])),
            ..ObjectMeta::default()
        },
        data,
        binary_data,
        ..ConfigMap::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    fn split(bytes: &[u8]) -> Vec<Vec<u8>> {
        bytes.chunks(CHUNK_BYTES).map(<[u8]>::to_vec).collect()
    }

    #[test]
    fn a_module_splits_into_chunks_that_reassemble_to_its_digest() {
        let bytes = module(2 * CHUNK_BYTES + 5);
        let m = Manifest::new(Digest::of(&bytes), bytes.len());
        assert_eq!(m.chunks, 3);
        assert_eq!(Manifest::from_data(&m.to_data()), Ok(m.clone()));
        assert_eq!(m.assemble(split(&bytes)).unwrap(), bytes);
        let exact = module(CHUNK_BYTES);
        assert_eq!(Manifest::new(Digest::of(&exact), exact.len()).chunks, 1);
    }

    #[test]
    fn tampered_missing_or_extra_chunks_are_refused() {
        let bytes = module(2 * CHUNK_BYTES + 5);
        let m = Manifest::new(Digest::of(&bytes), bytes.len());
        let mut tampered = split(&bytes);
        if let Some(b) = tampered.get_mut(1).and_then(|c| c.get_mut(7)) {
            *b ^= 1;
        }
        assert!(matches!(
            m.assemble(tampered),
            Err(FetchError::DigestMismatch { .. })
        ));
        let mut missing = split(&bytes);
        missing.pop();
        assert!(matches!(
            m.assemble(missing),
            Err(FetchError::Damaged { .. })
        ));
        let mut extra = split(&bytes);
        extra.push(vec![0]);
        assert!(matches!(m.assemble(extra), Err(FetchError::Damaged { .. })));
        let mut short = split(&bytes);
        if let Some(c) = short.first_mut() {
            c.pop();
        }
        assert!(matches!(m.assemble(short), Err(FetchError::Damaged { .. })));
    }

    #[test]
    fn manifests_over_the_limits_or_inconsistent_are_refused() {
        let m = Manifest::new(Digest::of(b"x"), 1).to_data();
        for (key, value) in [
            ("size", (MAX_MODULE_BYTES + 1).to_string()),
            ("size", "0".into()),
            ("chunkBytes", "1".into()),
            ("chunks", "2".into()),
            ("sha256", "sha256:nope".into()),
            ("size", "-1".into()),
        ] {
            let mut bad = m.clone();
            bad.insert(key.into(), value.clone());
            assert!(Manifest::from_data(&bad).is_err(), "{key}={value}");
        }
        let mut absent = m;
        absent.remove("chunks");
        assert!(Manifest::from_data(&absent).is_err());
    }

    #[test]
    fn names_fit_kubernetes_limits() {
        let d = Digest::of(b"module");
        assert_eq!(prefix(&d).len(), PREFIX_HEX);
        assert!(chunk_name(&d, 99).len() <= 63);
        assert!(manifest_name(&d).starts_with("vdi-module-"));
    }
}
