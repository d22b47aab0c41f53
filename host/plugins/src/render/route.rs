//! Confinement of a Traefik IngressRoute to the session's URL path and Services.
//!
//! A route's `match` is a conjunction (`&&`) of `Path`, `PathPrefix` and `Host` matchers, each
//! with one quoted literal; anything else (`||`, `!`, parentheses, `HostRegexp`, `Header`, …) is
//! refused rather than interpreted. At least one path matcher is required and every one must be
//! the session's path `<prefix>/<namespace>/<name>` or lie under it (no `..`, no `{…}`
//! placeholders); a conjunction cannot then match outside it. `Host` takes a literal name only, so
//! no wildcard captures other hosts' traffic. `priority` is refused: Traefik's `PathPrefix` is a
//! string prefix, so `/sessions/ns/desk` also matches `/sessions/ns/desk2`, and only the default
//! priority (longer rule first) lets `desk2`'s own route win there.
//!
//! Routes lead only to Services rendered in the same output (which select the session's pods),
//! in the session's namespace; a TLS secret must be one the template lists. Middlewares are not
//! checked: they only act on requests the confined rule already matched.

use serde_json::Value;

use super::confine::secret_ref;
use super::{RenderPolicy, Scope, Violation, list};

const ROUTE_MATCH: &str = "confine/route-match";
const ROUTE_PRIORITY: &str = "confine/route-priority";
const ROUTE_SERVICE: &str = "confine/route-service";

static NULL: Value = Value::Null;

/// Checks every route of `route` and its TLS secret.
pub(crate) fn ingress_route(
    policy: &RenderPolicy,
    scope: &Scope<'_>,
    route: &Value,
) -> Result<(), Violation> {
    let spec = route.get("spec").unwrap_or(&NULL);
    let base = format!(
        "{}/{}/{}",
        policy.session_path_prefix, scope.request.namespace, scope.request.name
    );
    for (i, r) in list(spec, "routes", "spec.")?.iter().enumerate() {
        let prefix = format!("spec.routes[{i}].");
        match r.get("kind") {
            None | Some(Value::Null) => {}
            Some(Value::String(k)) if k == "Rule" => {}
            Some(other) => {
                return Err(Violation::new(
                    format!("{prefix}kind"),
                    ROUTE_MATCH,
                    format!("must be unset or Rule, not {other}"),
                ));
            }
        }
        if r.get("priority").is_some_and(|p| !p.is_null()) {
            return Err(Violation::new(
                format!("{prefix}priority"),
                ROUTE_PRIORITY,
                "must be unset: a raised priority could take other sessions' paths",
            ));
        }
        let rule = r.get("match").and_then(Value::as_str).unwrap_or_default();
        confined_match(rule, &base)
            .map_err(|detail| Violation::new(format!("{prefix}match"), ROUTE_MATCH, detail))?;
        for (j, service) in list(r, "services", &prefix)?.iter().enumerate() {
            route_service(scope, service, &format!("{prefix}services[{j}]."))?;
        }
    }
    let tls = spec.get("tls").unwrap_or(&NULL);
    if let Some(name) = tls.get("secretName").filter(|n| !n.is_null()) {
        secret_ref(policy, Some(name), "spec.tls.secretName".into())?;
    }
    Ok(())
}

/// A route's backend: a Service of this output, in the session's namespace.
fn route_service(scope: &Scope<'_>, service: &Value, prefix: &str) -> Result<(), Violation> {
    match service.get("kind") {
        None | Some(Value::Null) => {}
        Some(Value::String(k)) if k == "Service" => {}
        Some(other) => {
            return Err(Violation::new(
                format!("{prefix}kind"),
                ROUTE_SERVICE,
                format!("must be unset or Service, not {other}"),
            ));
        }
    }
    match service.get("namespace") {
        None | Some(Value::Null) => {}
        Some(Value::String(ns)) if *ns == scope.request.namespace => {}
        Some(other) => {
            return Err(Violation::new(
                format!("{prefix}namespace"),
                ROUTE_SERVICE,
                format!(
                    "must be unset or the session's namespace {:?}, not {other}",
                    scope.request.namespace
                ),
            ));
        }
    }
    let name = service
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !scope.services.contains(name) {
        return Err(Violation::new(
            format!("{prefix}name"),
            ROUTE_SERVICE,
            format!("Service {name:?} is not rendered for this session"),
        ));
    }
    Ok(())
}

/// Whether `rule` only matches under `base`; the reason when not.
fn confined_match(rule: &str, base: &str) -> Result<(), String> {
    let mut paths = 0;
    for term in rule.split("&&").map(str::trim) {
        let Some((matcher, arg)) = parse_term(term) else {
            return Err(format!(
                "{term:?} is not Path, PathPrefix or Host with one quoted value; only those, joined by &&, are allowed"
            ));
        };
        if matcher == "Host" {
            let literal = !arg.is_empty()
                && arg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
            if !literal {
                return Err(format!("Host({arg:?}) must name one literal host"));
            }
            continue;
        }
        let under = arg == base
            || arg
                .strip_prefix(base)
                .is_some_and(|rest| rest.starts_with('/'));
        if !under || arg.contains("..") || arg.contains(['{', '}']) {
            return Err(format!(
                "{matcher}({arg:?}) is outside the session's path {base:?}"
            ));
        }
        paths += 1;
    }
    if paths == 0 {
        return Err(format!(
            "must include PathPrefix(`{base}`) or a Path under it"
        ));
    }
    Ok(())
}

/// `Matcher(`value`)` or `Matcher("value")` for the three matchers allowed.
fn parse_term(term: &str) -> Option<(&str, &str)> {
    let (matcher, rest) = term.split_once('(')?;
    if !matches!(matcher, "Path" | "PathPrefix" | "Host") {
        return None;
    }
    let inner = rest.strip_suffix(')')?.trim();
    let arg = inner
        .strip_prefix('`')
        .and_then(|s| s.strip_suffix('`'))
        .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')))?;
    if arg.contains(['`', '"', '(', ')', ',']) {
        return None;
    }
    Some((matcher, arg))
}

#[cfg(test)]
mod tests;
