//! Where the connect keys live: the Secret `vdi-system/vdi-connect-keys`, created once by
//! whoever first needs it and rotated in place. Writes carry the resourceVersion read, so two
//! replicas creating or rotating at once do not overwrite each other's keys.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};

use super::{ConnectError, ConnectKeys, KeyPem};
use crate::{Error, Result};

/// The namespace of the connect keys' Secret.
pub const KEYS_NAMESPACE: &str = "vdi-system";
/// The name of the connect keys' Secret.
pub const KEYS_SECRET: &str = "vdi-connect-keys";
/// The Secret's entry holding the current private key (PKCS#8 PEM).
pub const CURRENT_KEY: &str = "current-key.pem";
/// The Secret's entry holding the current public key (SPKI PEM).
pub const CURRENT_PUBLIC: &str = "current-public.pem";
/// The Secret's entry holding the previous private key, during a rotation.
pub const PREVIOUS_KEY: &str = "previous-key.pem";
/// The Secret's entry holding the previous public key, during a rotation.
pub const PREVIOUS_PUBLIC: &str = "previous-public.pem";

impl ConnectKeys {
    /// The platform's connect keys, creating the Secret with a fresh key if there is none.
    pub async fn load_or_create(client: &Client) -> Result<Self> {
        let api = secrets(client);
        if let Some(secret) = api.get_opt(KEYS_SECRET).await? {
            return from_secret(&secret);
        }
        let keys = Self::generate()?;
        match api
            .create(&PostParams::default(), &to_secret(&keys, None))
            .await
        {
            Ok(_) => Ok(keys),
            // Another replica created it first: use its keys.
            Err(kube::Error::Api(s)) if s.code == 409 => {
                Ok(from_secret(&api.get(KEYS_SECRET).await?)?)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Rotates the stored keys: a fresh current key, the current one kept as the previous
    /// (tokens it signed still verify), the old previous one dropped. Returns the new keys.
    pub async fn rotate(client: &Client) -> Result<Self> {
        let api = secrets(client);
        let secret = match api.get_opt(KEYS_SECRET).await? {
            Some(secret) => secret,
            None => {
                Self::load_or_create(client).await?;
                api.get(KEYS_SECRET).await?
            }
        };
        let keys = from_secret(&secret)?.rotated()?;
        let version = secret.metadata.resource_version;
        // A concurrent rotation makes this a 409 rather than a lost key.
        api.replace(
            KEYS_SECRET,
            &PostParams::default(),
            &to_secret(&keys, version),
        )
        .await?;
        Ok(keys)
    }
}

fn secrets(client: &Client) -> Api<Secret> {
    Api::namespaced(client.clone(), KEYS_NAMESPACE)
}

fn to_secret(keys: &ConnectKeys, resource_version: Option<String>) -> Secret {
    let mut data = BTreeMap::new();
    let mut put = |k: &str, v: &str| data.insert(k.to_owned(), ByteString(v.as_bytes().to_vec()));
    put(CURRENT_KEY, &keys.current.private_pem);
    put(CURRENT_PUBLIC, &keys.current.public_pem);
    if let Some(previous) = &keys.previous {
        put(PREVIOUS_KEY, &previous.private_pem);
        put(PREVIOUS_PUBLIC, &previous.public_pem);
    }
    Secret {
        metadata: ObjectMeta {
            name: Some(KEYS_SECRET.into()),
            namespace: Some(KEYS_NAMESPACE.into()),
            resource_version,
            ..ObjectMeta::default()
        },
        data: Some(data),
        ..Secret::default()
    }
}

fn from_secret(secret: &Secret) -> Result<ConnectKeys> {
    let data = secret.data.clone().unwrap_or_default();
    let text = |k: &str| -> Result<Option<String>> {
        data.get(k)
            .map(|v| {
                String::from_utf8(v.0.clone())
                    .map_err(|_| Error::from(ConnectError::Key(format!("{k} is not PEM text"))))
            })
            .transpose()
    };
    let pair = |key: &str, public: &str| -> Result<Option<KeyPem>> {
        match (text(key)?, text(public)?) {
            (Some(private_pem), Some(public_pem)) => Ok(Some(KeyPem {
                private_pem,
                public_pem,
            })),
            (None, None) => Ok(None),
            _ => Err(ConnectError::Key(format!("{key} and {public} must be set together")).into()),
        }
    };
    let current = pair(CURRENT_KEY, CURRENT_PUBLIC)?.ok_or_else(|| {
        Error::from(ConnectError::Key(format!(
            "{KEYS_NAMESPACE}/{KEYS_SECRET} has no {CURRENT_KEY}"
        )))
    })?;
    Ok(ConnectKeys {
        current,
        previous: pair(PREVIOUS_KEY, PREVIOUS_PUBLIC)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_survive_the_secret_round_trip() {
        let keys = ConnectKeys::generate().unwrap().rotated().unwrap();
        assert_eq!(from_secret(&to_secret(&keys, None)).unwrap(), keys);
        let mut secret = to_secret(&keys, None);
        secret.data.as_mut().unwrap().remove(PREVIOUS_PUBLIC);
        assert!(from_secret(&secret).is_err());
        secret.data = None;
        assert!(from_secret(&secret).is_err());
    }
}
