//! What the token authenticators share: peeking at an unverified payload to route a token to
//! its issuer, verifying a signature without jsonwebtoken's own claim checks, and the time and
//! audience checks (done here, against an explicit clock, so tests need no sleeping).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use super::Rejected;

/// A JWT's claims.
pub(crate) type Claims = Map<String, Value>;

/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds: go-jose's default leeway, which
/// kube-apiserver's service-account and OIDC validators both use.
pub(crate) const LEEWAY_SECONDS: i64 = 60;

/// The payload of a compact JWS, not verified: only for routing to the issuer that will verify
/// it. `None` when the token is not a JWT at all.
pub(crate) fn peek_claims(token: &str) -> Option<Claims> {
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(claims) => Some(claims),
        _ => None,
    }
}

/// The unverified `iss` of a token, if it is a JWT with a string issuer.
pub(crate) fn peek_issuer(token: &str) -> Option<String> {
    match peek_claims(token)?.remove("iss")? {
        Value::String(iss) => Some(iss),
        _ => None,
    }
}

/// Verifies the signature of `token` with `key` under `alg` and returns its claims. Claims are
/// not checked here (see [`check_times`], [`audiences`]).
pub(crate) fn verify(token: &str, key: &DecodingKey, alg: Algorithm) -> Result<Claims, Rejected> {
    let mut validation = Validation::new(alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    jsonwebtoken::decode::<Claims>(token, key, &validation)
        .map(|data| data.claims)
        .map_err(|e| Rejected::new(format!("signature: {e}")))
}

/// A NumericDate claim (seconds since the epoch; JSON may write it as a float).
fn numeric_date(claims: &Claims, name: &str) -> Result<Option<i64>, Rejected> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| {
                v.as_f64()
                    .filter(|f| f.is_finite() && f.abs() < 1e15)
                    .map(|f| f.floor() as i64)
            })
            .map(Some)
            .ok_or_else(|| Rejected::new(format!("{name}: not a NumericDate"))),
    }
}

/// Checks `exp` (required), `nbf` (optional) and `iat` (required when `require_iat`) against
/// `now`, with [`LEEWAY_SECONDS`] of skew either way.
pub(crate) fn check_times(claims: &Claims, now: i64, require_iat: bool) -> Result<(), Rejected> {
    let exp = numeric_date(claims, "exp")?.ok_or_else(|| Rejected::new("exp: missing"))?;
    if now > exp.saturating_add(LEEWAY_SECONDS) {
        return Err(Rejected::new(format!("token expired at {exp} (now {now})")));
    }
    if let Some(nbf) = numeric_date(claims, "nbf")?
        && nbf > now.saturating_add(LEEWAY_SECONDS)
    {
        return Err(Rejected::new(format!(
            "token not valid before {nbf} (now {now})"
        )));
    }
    match numeric_date(claims, "iat")? {
        None if require_iat => Err(Rejected::new("iat: missing")),
        Some(iat) if iat > now.saturating_add(LEEWAY_SECONDS) => Err(Rejected::new(format!(
            "token issued in the future at {iat} (now {now})"
        ))),
        _ => Ok(()),
    }
}

/// The `aud` claim: one string or an array of strings.
pub(crate) fn audiences(claims: &Claims) -> Result<Vec<&str>, Rejected> {
    match claims.get("aud") {
        Some(Value::String(aud)) => Ok(vec![aud.as_str()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|a| a.as_str().ok_or_else(|| Rejected::new("aud: not a string")))
            .collect(),
        None => Err(Rejected::new("aud: missing")),
        Some(_) => Err(Rejected::new("aud: neither a string nor an array")),
    }
}

/// A string claim, when present and a string.
pub(crate) fn string_claim<'a>(claims: &'a Claims, name: &str) -> Option<&'a str> {
    claims.get(name).and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn claims(v: Value) -> Claims {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn peeks_only_at_well_formed_compact_tokens() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"iss":"https://idp"}"#);
        assert_eq!(
            peek_issuer(&format!("h.{payload}.s")).as_deref(),
            Some("https://idp")
        );
        assert_eq!(peek_issuer(&format!("h.{payload}")), None);
        assert_eq!(peek_issuer(&format!("h.{payload}.s.x")), None);
        assert_eq!(peek_issuer("not-a-jwt"), None);
        let array = URL_SAFE_NO_PAD.encode(b"[1]");
        assert_eq!(peek_issuer(&format!("h.{array}.s")), None);
        let numeric = URL_SAFE_NO_PAD.encode(br#"{"iss":7}"#);
        assert_eq!(peek_issuer(&format!("h.{numeric}.s")), None);
    }

    #[test]
    fn times_allow_a_minute_of_skew() {
        let c = claims(json!({"exp": 1000, "nbf": 500, "iat": 500}));
        assert!(check_times(&c, 1000 + LEEWAY_SECONDS, true).is_ok());
        let late = check_times(&c, 1001 + LEEWAY_SECONDS, true).unwrap_err();
        assert!(late.0.contains("expired"), "{late:?}");
        assert!(check_times(&c, 500 - LEEWAY_SECONDS, true).is_ok());
        let early = check_times(&c, 499 - LEEWAY_SECONDS, true).unwrap_err();
        assert!(early.0.contains("not valid before"), "{early:?}");
        let no_iat = claims(json!({"exp": 1000}));
        assert!(check_times(&no_iat, 900, false).is_ok());
        assert_eq!(
            check_times(&no_iat, 900, true).unwrap_err().0,
            "iat: missing"
        );
        let no_exp = claims(json!({"iat": 1}));
        assert_eq!(
            check_times(&no_exp, 900, false).unwrap_err().0,
            "exp: missing"
        );
        let bad = claims(json!({"exp": "soon"}));
        assert!(check_times(&bad, 900, false).is_err());
        let float = claims(json!({"exp": 1000.5}));
        assert!(check_times(&float, 1000, false).is_ok());
    }

    #[test]
    fn audiences_are_a_string_or_strings() {
        assert_eq!(audiences(&claims(json!({"aud": "a"}))).unwrap(), ["a"]);
        assert_eq!(
            audiences(&claims(json!({"aud": ["a", "b"]}))).unwrap(),
            ["a", "b"]
        );
        assert!(audiences(&claims(json!({"aud": ["a", 1]}))).is_err());
        assert!(audiences(&claims(json!({"aud": {"a": 1}}))).is_err());
        assert!(audiences(&claims(json!({}))).is_err());
    }
}
