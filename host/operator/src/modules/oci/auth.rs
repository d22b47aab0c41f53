//! Registry credentials from a Docker config (`~/.docker/config.json`, or the
//! `.dockerconfigjson` key of a `kubernetes.io/dockerconfigjson` Secret).

use std::collections::BTreeMap;

use base64::Engine as _;
use oci_client::secrets::RegistryAuth;
use serde::Deserialize;

/// The Secret type holding a Docker config.
pub const DOCKER_CONFIG_SECRET_TYPE: &str = "kubernetes.io/dockerconfigjson";
/// The key of that Secret's data.
pub const DOCKER_CONFIG_KEY: &str = ".dockerconfigjson";

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, Entry>,
}

#[derive(Deserialize)]
struct Entry {
    /// base64 of `user:password`.
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// The registry an `auths` key names: `https://host:port/v1/` and `host:port` alike.
fn registry_of(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    key.split('/').next().unwrap_or(key)
}

/// The credentials a Docker config (JSON) holds for `registry` (`host[:port]`); anonymous when
/// it has none. A config that cannot be read is an error (never silently anonymous).
pub fn auth_for(docker_config: &[u8], registry: &str) -> Result<RegistryAuth, String> {
    let config: DockerConfig = serde_json::from_slice(docker_config)
        .map_err(|e| format!("not a Docker config (JSON with \"auths\"): {e}"))?;
    let Some((key, entry)) = config
        .auths
        .iter()
        .find(|(k, _)| registry_of(k).eq_ignore_ascii_case(registry))
    else {
        return Ok(RegistryAuth::Anonymous);
    };
    if let Some(encoded) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| format!("auths.{key:?}.auth is not base64"))?;
        let decoded = String::from_utf8(decoded)
            .map_err(|_| format!("auths.{key:?}.auth is not UTF-8 user:password"))?;
        let (user, password) = decoded
            .split_once(':')
            .ok_or_else(|| format!("auths.{key:?}.auth is not user:password"))?;
        return Ok(RegistryAuth::Basic(user.to_owned(), password.to_owned()));
    }
    match (&entry.username, &entry.password) {
        (Some(user), Some(password)) => Ok(RegistryAuth::Basic(user.clone(), password.clone())),
        _ => Err(format!(
            "auths.{key:?} has neither auth nor username and password"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_found_by_registry() {
        let encoded = base64::engine::general_purpose::STANDARD.encode("bob:pa:ss");
        let config = serde_json::json!({"auths": {
            "https://r.example:5000/v1/": {"auth": encoded},
            "other.example": {"username": "alice", "password": "secret"},
        }})
        .to_string();
        assert_eq!(
            auth_for(config.as_bytes(), "r.example:5000").unwrap(),
            RegistryAuth::Basic("bob".into(), "pa:ss".into())
        );
        assert_eq!(
            auth_for(config.as_bytes(), "other.example").unwrap(),
            RegistryAuth::Basic("alice".into(), "secret".into())
        );
        assert_eq!(
            auth_for(config.as_bytes(), "r.example").unwrap(),
            RegistryAuth::Anonymous
        );
    }

    #[test]
    fn unreadable_configs_are_errors() {
        assert!(
            auth_for(b"{", "r")
                .unwrap_err()
                .contains("not a Docker config")
        );
        let bad = br#"{"auths": {"r": {"auth": "!!"}}}"#;
        assert!(auth_for(bad, "r").unwrap_err().contains("not base64"));
        let empty = br#"{"auths": {"r": {}}}"#;
        assert!(auth_for(empty, "r").unwrap_err().contains("neither"));
    }
}
