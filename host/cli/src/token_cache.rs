//! The CLI's token cache: one JSON file per issuer and client under `$XDG_CACHE_HOME/vdi/` (or
//! `~/.cache/vdi/`), readable by its owner only (the refresh token is a long-lived credential).

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What `vdi login` stores and `vdi token` reads and refreshes.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CachedTokens {
    /// The issuer the tokens are from.
    pub(crate) issuer: String,
    /// The client they were issued to.
    pub(crate) client_id: String,
    /// The ID token (the API server's bearer).
    pub(crate) id_token: String,
    /// The refresh token, when the provider issued one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) refresh_token: Option<String>,
}

/// `$XDG_CACHE_HOME/vdi`, or `$HOME/.cache/vdi` (a relative `XDG_CACHE_HOME` is ignored, as
/// the XDG spec says).
fn cache_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|d| d.is_absolute())
    {
        return Ok(dir.join("vdi"));
    }
    let home = std::env::var_os("HOME").context("neither XDG_CACHE_HOME nor HOME is set")?;
    Ok(PathBuf::from(home).join(".cache/vdi"))
}

/// The cache file of `issuer` and `client_id`.
pub(crate) fn path(issuer: &str, client_id: &str) -> Result<PathBuf> {
    let key = Sha256::digest(format!("{issuer}\n{client_id}").as_bytes());
    Ok(cache_dir()?.join(format!("oidc-{}.json", hex(&key[..8]))))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The cached tokens of `issuer` and `client_id`, if any.
pub(crate) fn load(issuer: &str, client_id: &str) -> Result<Option<CachedTokens>> {
    let path = path(issuer, client_id)?;
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
    };
    let tokens: CachedTokens = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a vdi token cache", path.display()))?;
    // Two issuers whose key collides must not swap tokens.
    Ok(Some(tokens).filter(|t| t.issuer == issuer && t.client_id == client_id))
}

/// Writes `tokens` atomically to their cache file, mode 0600 in a 0700 directory; returns the
/// path.
pub(crate) fn store(tokens: &CachedTokens) -> Result<PathBuf> {
    let path = path(&tokens.issuer, &tokens.client_id)?;
    let dir = path.parent().context("cache file without a directory")?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("create {}", dir.display()))?;
    write_private(&path, serde_json::to_string_pretty(tokens)?.as_bytes())?;
    Ok(path)
}

/// Replaces `path` with `contents` atomically; the file is readable by its owner only.
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // tempfile creates its files with mode 0600.
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("create a temporary file in {}", dir.display()))?;
    tmp.write_all(contents)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("write {}", tmp.path().display()))?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("chmod {}", tmp.path().display()))?;
    tmp.persist(path)
        .with_context(|| format!("write {}", path.display()))?;
    Ok(())
}
