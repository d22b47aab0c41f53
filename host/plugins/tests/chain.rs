//! The admission chain: order, mutations and their re-check, failure policies.

mod common;

use common::{create, load, request, runtime};
use vdi_plugin_host::{
    AdmissionChain, CallError, ChainEntry, ChainVerdict, DecisionOutcome, FailurePolicy, Plugin,
};

fn entry(plugin: Plugin, failure_policy: FailurePolicy) -> ChainEntry {
    ChainEntry {
        plugin,
        failure_policy,
    }
}

fn outcomes(o: &vdi_plugin_host::ChainOutcome) -> Vec<(String, DecisionOutcome)> {
    o.decisions
        .iter()
        .map(|d| (d.plugin.clone(), d.outcome.clone()))
        .collect()
}

#[test]
fn mutations_apply_in_order_and_are_rechecked() {
    let rt = runtime();
    let clamp_8h = load(&rt, "vdi_quota", "");
    let clamp_1h = load(
        &rt,
        "vdi_quota",
        r#"{"maxTimeoutSeconds": 3600, "defaultTimeoutSeconds": 600}"#,
    );
    let chain = AdmissionChain::new(vec![
        entry(clamp_8h, FailurePolicy::Fail),
        entry(clamp_1h, FailurePolicy::Fail),
    ]);
    let mut req = request();
    req.spec.timeout_seconds = 86_400;
    let out = chain.review(&req, &create());
    match &out.verdict {
        ChainVerdict::Allowed { spec, mutated } => {
            assert!(mutated);
            assert_eq!(spec.timeout_seconds, 3600);
            assert_eq!(spec.user, req.spec.user);
        }
        other => panic!("expected Allowed, got {other:?}"),
    }
    // Two mutations, then the re-check pass where both allow the final spec.
    let got: Vec<DecisionOutcome> = out.decisions.iter().map(|d| d.outcome.clone()).collect();
    assert_eq!(
        got,
        [
            DecisionOutcome::Mutated,
            DecisionOutcome::Mutated,
            DecisionOutcome::Allowed,
            DecisionOutcome::Allowed
        ]
    );
    assert!(
        out.decisions
            .iter()
            .all(|d| d.digest.starts_with("sha256:"))
    );
}

#[test]
fn a_deny_stops_the_chain_with_the_plugins_reason() {
    let rt = runtime();
    let strict = load(
        &rt,
        "vdi_quota",
        r#"{"templatesByGroup": {"admins": ["*"]}}"#,
    );
    let never_reached = load(&rt, "vdi_hostile", r#"{"mode":"panic"}"#);
    let chain = AdmissionChain::new(vec![
        entry(strict, FailurePolicy::Fail),
        entry(never_reached, FailurePolicy::Fail),
    ]);
    let out = chain.review(&request(), &create());
    assert_eq!(
        out.verdict,
        ChainVerdict::Denied {
            plugin: "vdi_quota".into(),
            reason: r#"template "ubuntu" is not allowed for user "alice" (groups: staff)"#.into(),
        }
    );
    assert_eq!(out.decisions.len(), 1);
}

#[test]
fn a_failing_plugin_with_fail_closes_and_with_ignore_is_skipped() {
    let rt = runtime();
    let quota = load(&rt, "vdi_quota", "");
    let panicky = load(&rt, "vdi_hostile", r#"{"mode":"panic"}"#);

    let closed = AdmissionChain::new(vec![
        entry(panicky.clone(), FailurePolicy::Fail),
        entry(quota.clone(), FailurePolicy::Fail),
    ]);
    let out = closed.review(&request(), &create());
    match &out.verdict {
        ChainVerdict::Failed {
            plugin,
            error: CallError::Trap { message },
        } => {
            assert_eq!(plugin, "vdi_hostile");
            assert!(message.contains("panics on purpose"), "{message}");
        }
        other => panic!("expected Failed, got {other:?}"),
    }

    let open = AdmissionChain::new(vec![
        entry(panicky, FailurePolicy::Ignore),
        entry(quota, FailurePolicy::Fail),
    ]);
    let out = open.review(&request(), &create());
    assert!(
        matches!(out.verdict, ChainVerdict::Allowed { mutated: false, .. }),
        "{:?}",
        out.verdict
    );
    let got = outcomes(&out);
    assert!(
        matches!(&got[0], (p, DecisionOutcome::Skipped(CallError::Trap { .. })) if p == "vdi_hostile"),
        "{got:?}"
    );
    assert_eq!(got[1], ("vdi_quota".to_owned(), DecisionOutcome::Allowed));
}

#[test]
fn a_plugin_may_not_change_the_users_identity() {
    let rt = runtime();
    let thief = load(&rt, "vdi_hostile", r#"{"mode":"change-identity"}"#);
    let chain = AdmissionChain::new(vec![entry(thief.clone(), FailurePolicy::Fail)]);
    let out = chain.review(&request(), &create());
    assert_eq!(
        out.verdict,
        ChainVerdict::Failed {
            plugin: "vdi_hostile".into(),
            error: CallError::IdentityChanged {
                from: "alice".into(),
                to: "root".into()
            },
        }
    );
    // Even with Ignore, its mutation is never applied.
    let chain = AdmissionChain::new(vec![entry(thief, FailurePolicy::Ignore)]);
    match chain.review(&request(), &create()).verdict {
        ChainVerdict::Allowed { spec, mutated } => {
            assert!(!mutated);
            assert_eq!(spec.user.name, "alice");
        }
        other => panic!("expected Allowed, got {other:?}"),
    }
}

#[test]
fn an_empty_chain_allows() {
    let out = AdmissionChain::default().review(&request(), &create());
    assert_eq!(
        out.verdict,
        ChainVerdict::Allowed {
            spec: request().spec,
            mutated: false
        }
    );
}
