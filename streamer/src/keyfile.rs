//! The token public key file, watched for changes without a watcher thread: on Kubernetes it is a
//! mounted ConfigMap (key `keys.pem`) that the kubelet swaps atomically when the platform rotates
//! its signing key, so a running streamer must pick the new keys up. The file is looked at (its
//! modification time and length, through symlinks) at most once a second, when a token is
//! verified, and read only when either changed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// How often the file may be looked at.
pub const RECHECK_INTERVAL: Duration = Duration::from_secs(1);

/// What identifies one version of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
}

/// What a look at the file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Poll {
    /// Looked at less than [`RECHECK_INTERVAL`] ago.
    NotDue,
    /// Same modification time and length as the version read last.
    Unchanged,
    /// A new version, read whole.
    Changed(Vec<u8>),
    /// It cannot be read (the reason).
    Unreadable(String),
}

/// The key file and what was last seen of it.
#[derive(Debug)]
pub struct KeyFile {
    path: PathBuf,
    stamp: Option<Stamp>,
    checked: Instant,
    failing: bool,
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    let meta = std::fs::metadata(path)?;
    Ok(Stamp {
        modified: meta.modified().ok(),
        len: meta.len(),
    })
}

impl KeyFile {
    /// Reads the file for the first time; returns the watcher and the contents.
    pub fn open(path: &Path) -> Result<(Self, Vec<u8>), String> {
        let first = stamp(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok((
            Self {
                path: path.to_owned(),
                stamp: Some(first),
                checked: Instant::now(),
                failing: false,
            },
            pem,
        ))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Looks at the file if it is due at `now`; reads it when it changed.
    pub fn poll(&mut self, now: Instant) -> Poll {
        if now.saturating_duration_since(self.checked) < RECHECK_INTERVAL {
            return Poll::NotDue;
        }
        self.checked = now;
        let current = match stamp(&self.path) {
            Ok(s) => s,
            Err(e) => return Poll::Unreadable(e.to_string()),
        };
        if self.stamp == Some(current) {
            return Poll::Unchanged;
        }
        match std::fs::read(&self.path) {
            Ok(pem) => {
                self.stamp = Some(current);
                Poll::Changed(pem)
            }
            Err(e) => Poll::Unreadable(e.to_string()),
        }
    }

    /// Records a failure to use the file; true the first time since it last worked (log then).
    pub fn failed(&mut self) -> bool {
        !std::mem::replace(&mut self.failing, true)
    }

    /// Records that the file worked again.
    pub fn recovered(&mut self) {
        self.failing = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_read_once_and_only_when_due() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keys.pem");
        std::fs::write(&path, "one").expect("write");
        let (mut file, first) = KeyFile::open(&path).expect("open");
        assert_eq!(first, b"one");
        let start = Instant::now();
        std::fs::write(&path, "one two").expect("write");
        // Within the interval nothing is looked at, even though the file changed.
        assert_eq!(file.poll(start), Poll::NotDue);
        let later = start + RECHECK_INTERVAL * 2;
        assert_eq!(file.poll(later), Poll::Changed(b"one two".to_vec()));
        assert_eq!(file.poll(later + RECHECK_INTERVAL), Poll::Unchanged);
        std::fs::remove_file(&path).expect("remove");
        assert!(matches!(
            file.poll(later + RECHECK_INTERVAL * 2),
            Poll::Unreadable(_)
        ));
        assert!(file.failed(), "the first failure is logged");
        assert!(!file.failed(), "later ones are not");
        file.recovered();
        assert!(file.failed());
        assert!(KeyFile::open(&path).is_err());
    }
}
