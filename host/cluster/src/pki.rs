//! The server's certificates: a self-signed CA and a serving certificate for 127.0.0.1 and
//! localhost, kept in `<data dir>/pki` so a restarted server keeps its identity (and existing
//! kubeconfigs keep working).

use std::path::Path;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{ApiError, Result};

/// PEM of the CA and of the serving certificate and key.
pub struct Pki {
    /// The CA certificate (PEM), for kubeconfigs.
    pub ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

fn err(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(format!("certificates: {e}"))
}

impl Pki {
    /// Loads the certificates from `dir`, creating them on first use.
    pub fn load_or_create(dir: &Path) -> Result<Self> {
        let files = ["ca.crt", "server.crt", "server.key"].map(|f| dir.join(f));
        if files.iter().all(|f| f.exists()) {
            let [ca_pem, cert_pem, key_pem] =
                files.map(|f| std::fs::read_to_string(f).map_err(err));
            return Ok(Self {
                ca_pem: ca_pem?,
                cert_pem: cert_pem?,
                key_pem: key_pem?,
            });
        }
        std::fs::create_dir_all(dir).map_err(err)?;
        let ca_key = KeyPair::generate().map_err(err)?;
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        ca.distinguished_name
            .push(DnType::CommonName, "vdi-embedded-ca");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key).map_err(err)?;
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().map_err(err)?;
        let mut server =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .map_err(err)?;
        server
            .distinguished_name
            .push(DnType::CommonName, "vdi-apiserver");
        let cert = server.signed_by(&key, &issuer).map_err(err)?;
        let pki = Self {
            ca_pem: ca_cert.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        };
        std::fs::write(&files[0], &pki.ca_pem).map_err(err)?;
        std::fs::write(&files[1], &pki.cert_pem).map_err(err)?;
        std::fs::write(&files[2], &pki.key_pem).map_err(err)?;
        Ok(pki)
    }

    /// The rustls server configuration (HTTP/2 and HTTP/1.1).
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>> {
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(self.cert_pem.as_bytes())
                .collect::<Result<_, _>>()
                .map_err(err)?;
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).map_err(err)?;
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(err)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(err)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}
