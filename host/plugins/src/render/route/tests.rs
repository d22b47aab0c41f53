//! IngressRoutes stay under the session's path and lead to its own Services.

use serde_json::{Value, json};

use super::confined_match;
use crate::render::tests::{assert_forbidden, passes, refused};

const ROUTE: usize = 3;
const BASE: &str = "/sessions/team/desk";

fn with_match(rule: &str) -> impl FnOnce(&mut Value) + '_ {
    move |r: &mut Value| r["spec"]["routes"][0]["match"] = json!(rule)
}

#[test]
fn refuses_paths_outside_the_session() {
    let err = refused(ROUTE, with_match("PathPrefix(`/sessions/team/other`)"));
    assert_forbidden(&err, "spec.routes[0].match", "confine/route-match");
    assert!(
        err.to_string()
            .contains(r#"outside the session's path "/sessions/team/desk""#),
        "{err}"
    );
}

#[test]
fn match_rules_must_be_a_conjunction_confined_to_the_session_path() {
    let outside = [
        "PathPrefix(`/`)",
        "PathPrefix(`/sessions/team`)",
        // A string prefix of the session's path that is not a path under it.
        "PathPrefix(`/sessions/team/desk2`)",
        "PathPrefix(`/sessions/team/desk/../other`)",
        "PathPrefix(`/sessions/team/desk/{rest:.*}`)",
        "PathPrefix(`/sessions/team/desk`) || PathPrefix(`/api`)",
        "!PathPrefix(`/sessions/team/desk`)",
        "(PathPrefix(`/sessions/team/desk`))",
        "Host(`vdi.example.com`)",
        "HostRegexp(`{any:.+}`) && PathPrefix(`/sessions/team/desk`)",
        "Host(`*.example.com`) && PathPrefix(`/sessions/team/desk`)",
        "Host(`a.example.com`, `b.example.com`) && PathPrefix(`/sessions/team/desk`)",
        "PathPrefix(`/sessions/team/desk`) && Header(`X`, `y`)",
        "",
    ];
    for rule in outside {
        assert!(confined_match(rule, BASE).is_err(), "{rule:?} was allowed");
    }
    let inside = [
        "PathPrefix(`/sessions/team/desk`)",
        "PathPrefix(\"/sessions/team/desk/\")",
        "Path(`/sessions/team/desk/healthz`) && Host(`vdi.example.com`)",
        "  Host(`vdi.example.com`)&&PathPrefix(`/sessions/team/desk/ws`) ",
    ];
    for rule in inside {
        assert_eq!(confined_match(rule, BASE), Ok(()), "{rule:?}");
    }
}

#[test]
fn the_session_path_prefix_is_the_policys() {
    let mut policy = crate::render::tests::policy();
    policy.session_path_prefix = "/desktops".into();
    let mut objects = crate::render::tests::session();
    objects[ROUTE]["spec"]["routes"][0]["match"] = json!("PathPrefix(`/desktops/team/desk`)");
    let out = policy.check_placed(
        &crate::render::tests::request(),
        &crate::render::tests::placement(),
        objects.iter().map(Value::to_string).collect(),
    );
    assert!(out.is_ok(), "{out:?}");
}

#[test]
fn refuses_a_raised_priority() {
    let err = refused(ROUTE, |r| {
        r["spec"]["routes"][0]["priority"] = json!(100_000)
    });
    assert_forbidden(&err, "spec.routes[0].priority", "confine/route-priority");
}

#[test]
fn routes_lead_only_to_the_sessions_own_services() {
    let err = refused(ROUTE, |r| {
        r["spec"]["routes"][0]["services"][0]["name"] = json!("api")
    });
    assert_forbidden(
        &err,
        "spec.routes[0].services[0].name",
        "confine/route-service",
    );
    let err = refused(ROUTE, |r| {
        r["spec"]["routes"][0]["services"][0]["namespace"] = json!("vdi-system");
    });
    assert_forbidden(
        &err,
        "spec.routes[0].services[0].namespace",
        "confine/route-service",
    );
    let err = refused(ROUTE, |r| {
        r["spec"]["routes"][0]["services"][0]["kind"] = json!("TraefikService");
    });
    assert_forbidden(
        &err,
        "spec.routes[0].services[0].kind",
        "confine/route-service",
    );
    passes(ROUTE, |r| {
        r["spec"]["routes"][0]["services"][0]["namespace"] = json!("team")
    });
}

#[test]
fn a_tls_secret_must_be_listed() {
    let err = refused(ROUTE, |r| {
        r["spec"]["tls"] = json!({"secretName": "wildcard-cert"})
    });
    assert_forbidden(&err, "spec.tls.secretName", "confine/secret-ref");
    passes(ROUTE, |r| r["spec"]["tls"] = json!({"secretName": "pull"}));
}
