//! The admission webhooks' answers to `AdmissionReview` v1 bodies shaped like the Kubernetes
//! documentation's example: the patch goes out base64-encoded, the uid is echoed, `spec.user`
//! is immutable, and only the trusted accounts listed in the settings may name another user.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use vdi_crd::{SessionPhase, VDISessionSpec, VDITemplateSpec};
use vdi_operator::webhook::answer_review;
use vdi_operator::{AdmissionSettings, AdmissionSources, PluginSet};

const UID: &str = "705ab4f5-6393-11e8-b7cc-42010a800002";
const API_SA: &str = "system:serviceaccount:vdi-system:vdi-api";
const OTHER_SA: &str = "system:serviceaccount:vdi-system:something-else";

/// One template, `ubuntu-desktop`, and no sessions.
struct Sources;

impl AdmissionSources for Sources {
    fn template(&self, name: &str) -> Option<VDITemplateSpec> {
        (name == "ubuntu-desktop").then(|| {
            serde_json::from_value(json!({"displayName": "Ubuntu", "image": "ubuntu:24.04"}))
                .unwrap()
        })
    }

    fn sessions_of(&self, _user: &str) -> Vec<(String, String, VDISessionSpec, SessionPhase)> {
        Vec::new()
    }
}

fn session(user: &str, groups: &[&str]) -> Value {
    json!({
        "apiVersion": "vdi.dev/v1alpha1",
        "kind": "VDISession",
        "metadata": {"name": "desk", "namespace": "default", "uid": "3c4d1f2e-0000-4000-8000-000000000001"},
        "spec": {"user": {"name": user, "groups": groups}, "template": "ubuntu-desktop"},
    })
}

/// An AdmissionReview as the API server sends it (the documentation's example's fields).
fn review(
    operation: &str,
    username: &str,
    groups: &[&str],
    object: &Value,
    old: Option<&Value>,
) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": UID,
            "kind": {"group": "vdi.dev", "version": "v1alpha1", "kind": "VDISession"},
            "resource": {"group": "vdi.dev", "version": "v1alpha1", "resource": "vdisessions"},
            "requestKind": {"group": "vdi.dev", "version": "v1alpha1", "kind": "VDISession"},
            "requestResource": {"group": "vdi.dev", "version": "v1alpha1", "resource": "vdisessions"},
            "name": "desk",
            "namespace": "default",
            "operation": operation,
            "userInfo": {"username": username, "uid": "014fbff9a07c", "groups": groups},
            "object": object,
            "oldObject": old,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    })
}

fn answer_with(settings: &AdmissionSettings, body: &Value, mutate: bool) -> Value {
    let set = PluginSet::default();
    let review = serde_json::from_value(body.clone()).expect("an AdmissionReview v1");
    let answer = answer_review(&set, &Sources, settings, review, mutate);
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(answer["kind"], "AdmissionReview");
    assert_eq!(answer["response"]["uid"], UID, "the request uid is echoed");
    answer["response"].clone()
}

fn answer(body: &Value, mutate: bool) -> Value {
    answer_with(&AdmissionSettings::default(), body, mutate)
}

fn assert_denied(response: &Value, code: u16, needle: &str) {
    assert_eq!(response["allowed"], false, "{response}");
    assert_eq!(response["status"]["code"], code, "{response}");
    let message = response["status"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(needle), "{message:?} lacks {needle:?}");
}

#[test]
fn the_mutating_webhook_stamps_the_requester_in_a_base64_json_patch() {
    let forged = session("alice", &["admins"]);
    let response = answer(
        &review("CREATE", "mallory", &["staff"], &forged, None),
        true,
    );
    assert_eq!(response["allowed"], true, "{response}");
    assert_eq!(response["patchType"], "JSONPatch");
    let encoded = response["patch"]
        .as_str()
        .expect("patch is a base64 string");
    let patch: json_patch::Patch =
        serde_json::from_slice(&STANDARD.decode(encoded).expect("valid base64")).unwrap();
    let mut patched = forged.clone();
    json_patch::patch(&mut patched, &patch).unwrap();
    assert_eq!(
        patched["spec"]["user"],
        json!({"name": "mallory", "groups": ["staff"]})
    );
}

#[test]
fn an_own_session_is_only_given_the_cleanup_finalizer() {
    let own = session("alice", &["staff"]);
    let response = answer(&review("CREATE", "alice", &["staff"], &own, None), true);
    assert_eq!(response["allowed"], true, "{response}");
    let encoded = response["patch"]
        .as_str()
        .expect("patch is a base64 string");
    let patch: json_patch::Patch =
        serde_json::from_slice(&STANDARD.decode(encoded).expect("valid base64")).unwrap();
    let mut patched = own.clone();
    json_patch::patch(&mut patched, &patch).unwrap();
    let mut expected = own.clone();
    expected["metadata"]["finalizers"] = json!(["vdi.dev/session-cleanup"]);
    assert_eq!(patched, expected, "nothing else changes");
    // An update that leaves spec and labels alone is not patched at all.
    let response = answer(
        &review("UPDATE", "alice", &["staff"], &own, Some(&own)),
        true,
    );
    assert_eq!(response["allowed"], true, "{response}");
    assert!(response.get("patch").is_none() && response.get("patchType").is_none());
}

#[test]
fn the_validating_webhook_denies_a_forged_user() {
    let forged = session("alice", &["staff"]);
    let response = answer(
        &review("CREATE", "mallory", &["staff"], &forged, None),
        false,
    );
    assert_denied(&response, 403, "spec.user");
    assert!(response.get("patch").is_none());
    // Naming oneself with other groups is forging too.
    let more_groups = session("mallory", &["admins"]);
    let response = answer(
        &review("CREATE", "mallory", &["staff"], &more_groups, None),
        false,
    );
    assert_denied(&response, 403, "spec.user");
    // One's own identity passes.
    let own = session("mallory", &["staff"]);
    let response = answer(&review("CREATE", "mallory", &["staff"], &own, None), false);
    assert_eq!(response["allowed"], true, "{response}");
}

#[test]
fn only_listed_service_accounts_may_create_for_others() {
    let for_alice = session("alice", &["staff"]);
    let response = answer(&review("CREATE", API_SA, &[], &for_alice, None), false);
    assert_eq!(
        response["allowed"], true,
        "the API's account is trusted: {response}"
    );
    let response = answer(&review("CREATE", OTHER_SA, &[], &for_alice, None), false);
    assert_denied(&response, 403, "spec.user");
    let response = answer(
        &review("CREATE", "bob", &["vdi:session-admins"], &for_alice, None),
        false,
    );
    assert_eq!(response["allowed"], true, "a trusted group: {response}");

    // The list is the settings', not a namespace's.
    let settings = AdmissionSettings {
        trusted_service_accounts: vec![OTHER_SA.into()],
        ..AdmissionSettings::default()
    };
    let response = answer_with(
        &settings,
        &review("CREATE", OTHER_SA, &[], &for_alice, None),
        false,
    );
    assert_eq!(response["allowed"], true, "{response}");
    let response = answer_with(
        &settings,
        &review("CREATE", API_SA, &[], &for_alice, None),
        false,
    );
    assert_denied(&response, 403, "spec.user");
}

#[test]
fn spec_user_cannot_change_on_update_whoever_asks() {
    let old = session("alice", &["staff"]);
    let changed = session("bob", &["staff"]);
    for (user, groups) in [
        ("alice", &["staff"][..]),
        (API_SA, &[][..]),
        ("root", &["system:masters"][..]),
    ] {
        for mutate in [true, false] {
            let response = answer(
                &review("UPDATE", user, groups, &changed, Some(&old)),
                mutate,
            );
            assert_denied(&response, 422, "spec.user is immutable");
        }
    }
}

#[test]
fn an_untrusted_requester_may_not_change_someone_elses_session() {
    let old = session("alice", &["staff"]);
    let mut longer = old.clone();
    longer["spec"]["timeout"] = json!("2h");
    for mutate in [true, false] {
        let response = answer(
            &review("UPDATE", "mallory", &["staff"], &longer, Some(&old)),
            mutate,
        );
        assert_denied(&response, 403, "spec.user");
        // The owner may, and is not re-stamped (the user stays as it was).
        let response = answer(
            &review(
                "UPDATE",
                "alice",
                &["staff", "new-group"],
                &longer,
                Some(&old),
            ),
            mutate,
        );
        assert_eq!(response["allowed"], true, "{response}");
        assert!(response.get("patch").is_none(), "{response}");
    }
}

/// `session` as the operator left it after admitting it.
fn admitted(mut s: Value) -> Value {
    s["status"] = json!({
        "phase": "Running",
        "admitted": {
            "template": "ubuntu-desktop",
            "resources": {"gpuSlices": 0, "gpuMemoryMib": 0, "cpuMillis": 2000,
                "memoryMib": 4096, "videoEncoder": false},
            "timeoutSeconds": 3600,
        },
    });
    s
}

#[test]
fn an_admitted_session_may_change_only_its_timeout() {
    let old = admitted(session("alice", &["staff"]));
    let mut longer = old.clone();
    longer["spec"]["timeout"] = json!("2h");
    let mut other_template = longer.clone();
    other_template["spec"]["template"] = json!("fedora");
    let mut more_cpu = old.clone();
    more_cpu["spec"]["resources"] = json!({"cpuMillis": 8000});
    let mut relabelled = old.clone();
    relabelled["metadata"]["labels"] = json!({"team": "a"});
    for mutate in [true, false] {
        for who in ["alice", "root"] {
            let groups: &[&str] = if who == "root" {
                &["system:masters"]
            } else {
                &["staff"]
            };
            let response = answer(&review("UPDATE", who, groups, &longer, Some(&old)), mutate);
            assert_eq!(response["allowed"], true, "{response}");
            for (changed, field) in [
                (&other_template, "spec.template"),
                (&more_cpu, "spec.resources"),
                (&relabelled, "metadata.labels"),
            ] {
                let response = answer(&review("UPDATE", who, groups, changed, Some(&old)), mutate);
                assert_denied(
                    &response,
                    422,
                    &format!("{field}: may not change once the session is admitted"),
                );
            }
        }
    }
    // Before admission the request may still change.
    let pending = session("alice", &["staff"]);
    let mut relabelled = pending.clone();
    relabelled["metadata"]["labels"] = json!({"team": "a"});
    let response = answer(
        &review("UPDATE", "alice", &["staff"], &relabelled, Some(&pending)),
        false,
    );
    assert_eq!(response["allowed"], true, "{response}");
}
