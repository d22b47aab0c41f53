//! `extendSession` end to end over HTTPS: the owner's call patches `spec.timeout` as her (RBAC
//! lets a user patch sessions in her namespace), quota clamps it, the operator re-admits the
//! session and `session(id).expiresAt` moves to the admission time plus the new lifetime;
//! another user's call is FORBIDDEN and changes nothing.

mod common;

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use common::{Env, WAIT, codes};

const LAUNCH: &str = "mutation($t: String!, $timeout: String) { launchSession(template: $t, timeout: $timeout) { id } }";
const SESSION: &str = "query($id: ID!) { session(id: $id) { phase timeout expiresAt timings { admitted } events { reason } } }";
const EXTEND: &str = "mutation($id: ID!, $timeout: String!) { extendSession(id: $id, timeout: $timeout) { id timeout } }";

/// Polls `session(id)` as `token` until `pred` holds; returns the session.
async fn wait_session(
    env: &Env,
    token: &str,
    id: &str,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let answer = env.gql(token, SESSION, json!({"id": id})).await;
        let session = &answer["data"]["session"];
        if pred(session) {
            return session.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never {what}: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn time(v: &Value) -> Timestamp {
    v.as_str()
        .unwrap_or_else(|| panic!("not a time: {v}"))
        .parse()
        .unwrap()
}

/// Waits until the session expires `hours` after its admission.
async fn wait_lifetime(env: &Env, token: &str, id: &str, hours: i64) -> Value {
    let what = format!("expiring {hours} h after admission");
    wait_session(env, token, id, &what, |s| {
        s["expiresAt"].is_string()
            && s["timings"]["admitted"].is_string()
            && time(&s["expiresAt"])
                == time(&s["timings"]["admitted"]) + SignedDuration::from_hours(hours)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_owner_extends_her_session_and_no_one_else_may() {
    let env = Env::start().await;
    let [alice, bob] = [env.token("alice").await, env.token("bob").await];
    let launched = env
        .gql(&alice, LAUNCH, json!({"t": "ubuntu-cpu", "timeout": "1h"}))
        .await;
    let id = launched["data"]["launchSession"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{launched}"))
        .to_owned();
    wait_session(&env, &alice, &id, "Running", |s| s["phase"] == "RUNNING").await;
    wait_lifetime(&env, &alice, &id, 1).await;

    // Hers to extend: the answer carries the new timeout, the expiry follows.
    let extended = env
        .gql(&alice, EXTEND, json!({"id": id, "timeout": "2h"}))
        .await;
    assert!(extended["errors"].is_null(), "{extended}");
    assert_eq!(extended["data"]["extendSession"]["timeout"], "2h");
    let s = wait_lifetime(&env, &alice, &id, 2).await;
    assert_eq!(s["phase"], "RUNNING", "{s}");
    wait_session(&env, &alice, &id, "showing an Extended event", |s| {
        s["events"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["reason"] == "Extended"))
    })
    .await;

    // Past the policy's maximum (quota: 4 h): clamped.
    let extended = env
        .gql(&alice, EXTEND, json!({"id": id, "timeout": "10h"}))
        .await;
    assert!(extended["errors"].is_null(), "{extended}");
    assert_eq!(extended["data"]["extendSession"]["timeout"], "4h");
    wait_lifetime(&env, &alice, &id, 4).await;

    // Not bob's: FORBIDDEN, and the session keeps its lifetime.
    let refused = env
        .gql(&bob, EXTEND, json!({"id": id, "timeout": "1h"}))
        .await;
    assert_eq!(codes(&refused), ["FORBIDDEN"], "{refused}");
    let s = env.gql(&alice, SESSION, json!({"id": id})).await;
    assert_eq!(s["data"]["session"]["timeout"], "4h", "{s}");

    // A malformed timeout is the caller's mistake, named.
    let bad = env
        .gql(&alice, EXTEND, json!({"id": id, "timeout": "forever"}))
        .await;
    assert_eq!(codes(&bad), ["BAD_USER_INPUT"], "{bad}");
    env.stop();
}
