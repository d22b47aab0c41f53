//! The bootstrap admin token: a static bearer token for `system:admin` in `system:masters`,
//! what the generated kubeconfig carries (kube-apiserver's `--token-auth-file` with one line).

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

use super::files;
use crate::error::{ApiError, Result};
use crate::rbac::{AUTHENTICATED_GROUP, MASTERS_GROUP, UserInfo};

/// The admin token's user name.
pub const ADMIN_USER: &str = "system:admin";

/// Random bytes in a generated token (256 bits).
const TOKEN_BYTES: usize = 32;

/// The bootstrap admin bearer token.
#[derive(Clone)]
pub struct AdminToken {
    value: String,
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

impl AdminToken {
    /// Reads the token from `path` (surrounding whitespace ignored), or creates the file with
    /// mode 0600 and a fresh token of 32 random bytes, base64url. Refuses a file that group or
    /// others can read, and an empty one.
    pub fn load_or_create(path: &Path) -> Result<Self> {
        let contents = files::load_or_create(path, || {
            Ok(format!(
                "{}\n",
                URL_SAFE_NO_PAD.encode(files::random_bytes(TOKEN_BYTES)?)
            ))
        })?;
        Self::from_value(contents.trim().to_owned()).map_err(|_| {
            ApiError::Internal(format!("{}: the admin token file is empty", path.display()))
        })
    }

    /// A configured token. Refuses an empty one (or one that is only whitespace, or contains
    /// whitespace: it could never arrive intact in a `Bearer` header).
    pub fn from_value(value: String) -> Result<Self> {
        if value.is_empty() || value.contains(char::is_whitespace) {
            return Err(ApiError::Internal(
                "the admin token must be non-empty and contain no whitespace".into(),
            ));
        }
        Ok(Self { value })
    }

    /// The token, for writing into a kubeconfig.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Whether `presented` is the token, in time independent of where they differ (only the
    /// lengths' equality leaks, and a generated token's length is public anyway).
    pub fn matches(&self, presented: &str) -> bool {
        self.value.as_bytes().ct_eq(presented.as_bytes()).into()
    }

    /// The identity the token grants: `system:admin` in `system:masters` and
    /// `system:authenticated`.
    pub fn user() -> UserInfo {
        UserInfo::new(ADMIN_USER, [MASTERS_GROUP, AUTHENTICATED_GROUP])
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn creates_a_random_token_readable_by_the_owner_only_and_reads_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pki/admin.token");
        let created = AdminToken::load_or_create(&path).unwrap();
        assert_eq!(mode(&path), 0o600);
        // 32 bytes base64url without padding.
        assert_eq!(created.value().len(), 43);
        assert!(
            created
                .value()
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        let loaded = AdminToken::load_or_create(&path).unwrap();
        assert_eq!(loaded.value(), created.value());
        let other = AdminToken::load_or_create(&dir.path().join("other.token")).unwrap();
        assert_ne!(other.value(), created.value(), "tokens must be random");
    }

    #[test]
    fn refuses_a_token_file_readable_by_group_or_others() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.token");
        std::fs::write(&path, "s3cret\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = AdminToken::load_or_create(&path).unwrap_err().to_string();
        assert!(err.contains("mode 644"), "{err}");
        assert!(err.contains("admin.token"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(AdminToken::load_or_create(&path).unwrap().value(), "s3cret");
    }

    #[test]
    fn refuses_an_empty_token_file_and_empty_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.token");
        files::create_private(&path, "\n").unwrap();
        assert!(AdminToken::load_or_create(&path).is_err());
        assert!(AdminToken::from_value(String::new()).is_err());
        assert!(AdminToken::from_value("a b".into()).is_err());
    }

    #[test]
    fn matches_only_the_exact_token() {
        let token = AdminToken::from_value("correct-horse".into()).unwrap();
        assert!(token.matches("correct-horse"));
        assert!(!token.matches("correct-hors"));
        assert!(!token.matches("correct-horsf"));
        assert!(!token.matches("correct-horse2"));
        assert!(!token.matches(""));
        assert_eq!(
            format!("{token:?}"),
            "AdminToken(..)",
            "never print the secret"
        );
    }
}
