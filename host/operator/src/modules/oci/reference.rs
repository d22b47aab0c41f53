//! `oci://host[:port]/repository[:tag][@sha256:<hex>]` references, parsed and checked before any
//! request (the registry is always named: there is no default registry).

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

/// The scheme every reference starts with.
pub const SCHEME: &str = "oci://";
/// The tag a reference without tag or digest names (as `docker pull` does).
pub const DEFAULT_TAG: &str = "latest";

/// A parsed reference. Displays as it parses (`oci://…`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OciReference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl OciReference {
    /// The registry, `host[:port]` (`[v6]:port` for IPv6 addresses).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path (`team/quota`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, when the reference has one (or none and no digest: [`DEFAULT_TAG`]).
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The manifest digest (`sha256:<hex>`) the reference pins, if any.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The same repository pinned to manifest `digest` (the tag dropped): the immutable name.
    pub fn with_digest(&self, digest: &str) -> Self {
        Self {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: None,
            digest: Some(digest.to_owned()),
        }
    }

    /// The same repository at `tag` (any digest dropped).
    pub fn with_tag(&self, tag: &str) -> Result<Self, String> {
        check_tag(tag)?;
        Ok(Self {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: Some(tag.to_owned()),
            digest: None,
        })
    }

    /// Whether the registry is this machine (`localhost`, `127.0.0.0/8`, `[::1]`): only those
    /// are spoken to over plain HTTP.
    pub fn is_loopback(&self) -> bool {
        let host = host_of(&self.registry);
        if host.eq_ignore_ascii_case("localhost") {
            return true;
        }
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }

    /// The reference as `oci-client` takes it.
    pub(crate) fn to_client(&self) -> oci_client::Reference {
        let (registry, repository) = (self.registry.clone(), self.repository.clone());
        match (&self.tag, &self.digest) {
            (Some(tag), Some(digest)) => oci_client::Reference::with_tag_and_digest(
                registry,
                repository,
                tag.clone(),
                digest.clone(),
            ),
            (None, Some(digest)) => {
                oci_client::Reference::with_digest(registry, repository, digest.clone())
            }
            (tag, None) => oci_client::Reference::with_tag(
                registry,
                repository,
                tag.clone().unwrap_or_else(|| DEFAULT_TAG.to_owned()),
            ),
        }
    }
}

impl fmt::Display for OciReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// The host of `host[:port]` or `[v6]:port` (brackets kept).
fn host_of(registry: &str) -> &str {
    if registry.starts_with('[') {
        return registry.find(']').map_or(registry, |end| &registry[..=end]);
    }
    registry.split_once(':').map_or(registry, |(host, _)| host)
}

impl FromStr for OciReference {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = |why: String| format!("OCI reference {s:?}: {why}");
        let rest = s.strip_prefix(SCHEME).ok_or_else(|| {
            bad(format!(
                "must start with {SCHEME} (e.g. {SCHEME}registry.example.com/team/quota:1.0)"
            ))
        })?;
        let (registry, path) = rest
            .split_once('/')
            .ok_or_else(|| bad("no repository after the registry".into()))?;
        check_registry(registry).map_err(bad)?;
        let (path, digest) = match path.split_once('@') {
            Some((p, d)) => (p, Some(d)),
            None => (path, None),
        };
        if let Some(d) = digest {
            check_digest(d).map_err(bad)?;
        }
        // A tag follows the last ':' of the last path component.
        let last_slash = path.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = match path[last_slash..].find(':') {
            Some(i) => (&path[..last_slash + i], Some(&path[last_slash + i + 1..])),
            None => (path, None),
        };
        check_repository(repository).map_err(bad)?;
        if let Some(t) = tag {
            check_tag(t).map_err(bad)?;
        }
        let tag = match (tag, digest) {
            (None, None) => Some(DEFAULT_TAG.to_owned()),
            (t, _) => t.map(str::to_owned),
        };
        Ok(Self {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            tag,
            digest: digest.map(str::to_owned),
        })
    }
}

fn check_registry(registry: &str) -> Result<(), String> {
    if registry.is_empty() {
        return Err("no registry host".into());
    }
    let (host, port) = if let Some(inner) = registry.strip_prefix('[') {
        let (v6, after) = inner
            .split_once(']')
            .ok_or("unclosed '[' in the registry")?;
        v6.parse::<Ipv6Addr>()
            .map_err(|_| format!("{v6:?} is not an IPv6 address"))?;
        match after {
            "" => ("", None),
            p => (
                "",
                Some(
                    p.strip_prefix(':')
                        .ok_or("junk after the IPv6 address in the registry")?,
                ),
            ),
        }
    } else {
        match registry.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (registry, None),
        }
    };
    if !registry.starts_with('[') {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if host.is_empty() || !host.split('.').all(label_ok) {
            return Err(format!(
                "registry host {host:?} is not a host name or address"
            ));
        }
    }
    if let Some(p) = port
        && p.parse::<u16>().map_or(true, |n| n == 0)
    {
        return Err(format!("registry port {p:?} is not a port number"));
    }
    Ok(())
}

fn check_repository(repository: &str) -> Result<(), String> {
    if repository.is_empty() {
        return Err("no repository after the registry".into());
    }
    if repository.len() > 255 {
        return Err("repository longer than 255 characters".into());
    }
    for component in repository.split('/') {
        let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        let bytes = component.as_bytes();
        let ok = bytes.first().copied().is_some_and(alnum)
            && bytes.last().copied().is_some_and(alnum)
            && bytes
                .iter()
                .all(|&b| alnum(b) || matches!(b, b'.' | b'_' | b'-'));
        if !ok {
            return Err(format!(
                "repository component {component:?} must be lowercase letters and digits, \
                 separated by '.', '_' or '-'"
            ));
        }
    }
    Ok(())
}

fn check_tag(tag: &str) -> Result<(), String> {
    let bytes = tag.as_bytes();
    let ok = (1..=128).contains(&bytes.len())
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "tag {tag:?} must be 1-128 letters, digits, '.', '_' or '-' (not starting with '.' or '-')"
        ))
    }
}

/// Checks `sha256:<64 lowercase hex>`.
pub(crate) fn check_digest(digest: &str) -> Result<(), String> {
    let ok = digest.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    if ok {
        Ok(())
    } else {
        Err(format!("digest {digest:?} is not sha256:<64 hex digits>"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn references_parse_and_display_as_written() {
        for s in [
            "oci://127.0.0.1:5000/team/quota:1.0",
            "oci://registry.example.com/quota:v1_2-rc.3",
            "oci://localhost/a/b/c:latest",
            "oci://[::1]:5000/quota:1",
        ] {
            let r: OciReference = s.parse().unwrap();
            assert_eq!(r.to_string(), s);
        }
        let pinned: OciReference = format!("oci://ghcr.io/o/quota@sha256:{HEX}")
            .parse()
            .unwrap();
        assert_eq!(pinned.tag(), None);
        assert_eq!(pinned.digest(), Some(format!("sha256:{HEX}").as_str()));
        let both: OciReference = format!("oci://ghcr.io/o/quota:1@sha256:{HEX}")
            .parse()
            .unwrap();
        assert_eq!((both.tag(), both.repository()), (Some("1"), "o/quota"));
        let bare: OciReference = "oci://r.example:8443/quota".parse().unwrap();
        assert_eq!(bare.tag(), Some(DEFAULT_TAG));
        assert_eq!(bare.registry(), "r.example:8443");
        assert_eq!(
            bare.with_digest(&format!("sha256:{HEX}")).to_string(),
            format!("oci://r.example:8443/quota@sha256:{HEX}")
        );
    }

    #[test]
    fn bad_references_say_what_is_wrong() {
        for (s, why) in [
            ("127.0.0.1:5000/quota:1", "must start with oci://"),
            ("https://r.example/quota", "must start with oci://"),
            ("oci://r.example", "no repository"),
            ("oci://r.example/", "no repository"),
            ("oci:///quota", "no registry host"),
            ("oci://r.example:99999/quota", "not a port number"),
            ("oci://r_x.example/quota", "not a host name"),
            ("oci://r.example/Quota:1", "lowercase"),
            ("oci://r.example/team//quota", "lowercase"),
            ("oci://r.example/quota:", "tag \"\""),
            ("oci://r.example/quota:-x", "tag \"-x\""),
            (
                "oci://r.example/quota@sha256:abc",
                "not sha256:<64 hex digits>",
            ),
            ("oci://r.example/quota@md5:x", "not sha256:<64 hex digits>"),
            ("oci://[::1/quota", "unclosed"),
        ] {
            let e = s.parse::<OciReference>().unwrap_err();
            assert!(e.contains(why), "{s}: {e}");
        }
    }

    #[test]
    fn only_this_machine_is_loopback() {
        for (s, loopback) in [
            ("oci://127.0.0.1:5000/q", true),
            ("oci://127.1.2.3/q", true),
            ("oci://localhost:5000/q", true),
            ("oci://[::1]:5000/q", true),
            ("oci://10.0.0.1:5000/q", false),
            ("oci://localhost.example.com/q", false),
            ("oci://ghcr.io/q", false),
        ] {
            let r: OciReference = s.parse().unwrap();
            assert_eq!(r.is_loopback(), loopback, "{s}");
        }
    }
}
