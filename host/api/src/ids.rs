//! Relay global IDs and cursors: opaque base64url strings, decoded strictly.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::{ApiError, Result};

/// Longest ID or cursor decoded (a namespace and name are at most 63 + 253 bytes).
const MAX_ENCODED: usize = 1024;

/// The global ID of the session `namespace/name`.
pub fn session_id(namespace: &str, name: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("VDISession:{namespace}/{name}"))
}

/// The session a global ID names, as `(namespace, name)`; `field` names the argument.
pub fn parse_session_id(id: &str, field: &str) -> Result<(String, String)> {
    let text = decode(id, field)?;
    let rest = text
        .strip_prefix("VDISession:")
        .ok_or_else(|| ApiError::bad_input(field, "not a session ID"))?;
    let (ns, name) = rest
        .split_once('/')
        .ok_or_else(|| ApiError::bad_input(field, "not a session ID"))?;
    if !is_dns_name(ns) || !is_dns_name(name) {
        return Err(ApiError::bad_input(field, "not a session ID"));
    }
    Ok((ns.to_owned(), name.to_owned()))
}

/// The cursor after the item whose sort key is `key`.
pub fn cursor(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("c:{key}"))
}

/// The sort key a cursor was made from; `field` names the argument.
pub fn parse_cursor(cursor: &str, field: &str) -> Result<String> {
    decode(cursor, field)?
        .strip_prefix("c:")
        .map(str::to_owned)
        .ok_or_else(|| ApiError::bad_input(field, "not a cursor"))
}

fn decode(text: &str, field: &str) -> Result<String> {
    if text.len() > MAX_ENCODED {
        return Err(ApiError::bad_input(field, "too long"));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| ApiError::bad_input(field, "not base64url"))?;
    String::from_utf8(bytes).map_err(|_| ApiError::bad_input(field, "not text"))
}

/// A Kubernetes object name (RFC 1123 subdomain: lower-case alphanumerics, `-` and `.`).
pub fn is_dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_round_trip_and_are_opaque() {
        let id = session_id("u-alice-0123456789", "desk-1");
        assert!(!id.contains("alice"));
        assert_eq!(
            parse_session_id(&id, "id").unwrap(),
            ("u-alice-0123456789".into(), "desk-1".into())
        );
    }

    #[test]
    fn malformed_ids_name_the_argument() {
        for bad in [
            "!!!".to_owned(),
            URL_SAFE_NO_PAD.encode("VDITemplate:x"),
            URL_SAFE_NO_PAD.encode("VDISession:nons"),
            URL_SAFE_NO_PAD.encode("VDISession:a/../b"),
            URL_SAFE_NO_PAD.encode("VDISession:A/b"),
            "a".repeat(2000),
        ] {
            let e = parse_session_id(&bad, "id").unwrap_err();
            assert!(
                matches!(&e, ApiError::BadInput { field, .. } if field == "id"),
                "{bad}: {e:?}"
            );
        }
    }

    #[test]
    fn cursors_round_trip() {
        assert_eq!(parse_cursor(&cursor("ns/a"), "after").unwrap(), "ns/a");
        assert!(parse_cursor(&session_id("a", "b"), "after").is_err());
    }
}
