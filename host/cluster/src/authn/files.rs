//! Secret files (the admin token, the service-account signing key): created readable by the
//! owner only, and refused when someone made them readable by anyone else.

use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::error::{ApiError, Result};

/// The permission bits a secret file must not have: any access by group or others.
const GROUP_OTHER_BITS: u32 = 0o077;

fn err(path: &Path, what: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(format!("{}: {what}", path.display()))
}

/// Reads the secret file at `path`, or returns `None` when there is none. Refuses a file that
/// group or others may access: the secret may have leaked, and a silent fix would hide that.
pub(crate) fn read_private(path: &Path) -> Result<Option<String>> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(path, e)),
    };
    if !meta.is_file() {
        return Err(err(path, "not a regular file"));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & GROUP_OTHER_BITS != 0 {
        return Err(err(
            path,
            format_args!(
                "refusing a secret file with mode {mode:o}: it must be readable by its owner \
                 only (chmod 600 it once you are sure it did not leak, or delete it)"
            ),
        ));
    }
    std::fs::read_to_string(path)
        .map(Some)
        .map_err(|e| err(path, e))
}

/// Creates `path` with mode 0600 (set at creation, so the secret is never readable by others,
/// not even briefly) and writes `contents`. Returns `false` without writing when the file
/// already exists (another process won the race; read it instead).
pub(crate) fn create_private(path: &Path, contents: &str) -> Result<bool> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| err(dir, e))?;
    }
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(err(path, e)),
    };
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| err(path, e))?;
    Ok(true)
}

/// Reads the secret at `path`, creating it with `generate` on first use.
pub(crate) fn load_or_create(
    path: &Path,
    generate: impl FnOnce() -> Result<String>,
) -> Result<String> {
    if let Some(existing) = read_private(path)? {
        return Ok(existing);
    }
    let fresh = generate()?;
    if create_private(path, &fresh)? {
        return Ok(fresh);
    }
    read_private(path)?.ok_or_else(|| err(path, "vanished while being created"))
}

/// `len` bytes from the operating system's random source.
pub(crate) fn random_bytes(len: usize) -> Result<Vec<u8>> {
    let mut buf = vec![0; len];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut buf)
        .map_err(|_| ApiError::Internal("the OS random source failed".into()))?;
    Ok(buf)
}
