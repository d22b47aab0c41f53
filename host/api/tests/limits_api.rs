//! The API's limits and protocol details over HTTPS: the per-user mutation rate limit,
//! introspection switched off, CORS for the dashboard's origin only, GraphiQL, and a
//! subscription resumed from the last resourceVersion it delivered.

mod common;

use serde_json::json;

use common::{Env, codes};

const DASHBOARD: &str = "https://dashboard.example";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn limits_hold_and_subscriptions_resume() {
    let env = Env::start_with(|c| {
        c.mutation_burst = 3;
        c.mutations_per_minute = 0;
        c.introspection = false;
        c.dashboard_origin = Some(DASHBOARD.into());
    })
    .await;
    let alice = env.token("alice").await;
    let bob = env.token("bob").await;

    // A session, then watch it; the subscription's events carry the version to resume from.
    let launched = env
        .gql(
            &alice,
            "mutation { launchSession(template: \"ubuntu-cpu\") { id name } }",
            json!({}),
        )
        .await;
    let id = launched["data"]["launchSession"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{launched}"))
        .to_owned();
    let watch = "subscription($id: ID, $rv: String) { sessionEvents(id: $id, resourceVersion: $rv) { type resourceVersion session { phase } } }";
    let mut sub = env.subscribe_with(&alice, watch, json!({"id": id})).await;
    let first = sub.next_message().await;
    let event = &first["payload"]["data"]["sessionEvents"];
    assert_eq!(event["type"], "ADDED", "{first}");
    let mut last_rv = event["resourceVersion"].as_str().unwrap().to_owned();
    let mut phase = event["session"]["phase"].as_str().unwrap().to_owned();
    while phase != "RUNNING" {
        let msg = sub.next_message().await;
        let event = &msg["payload"]["data"]["sessionEvents"];
        assert_eq!(event["type"], "MODIFIED", "{msg}");
        last_rv = event["resourceVersion"].as_str().unwrap().to_owned();
        phase = event["session"]["phase"].as_str().unwrap().to_owned();
    }
    drop(sub);

    // While no one watches, it is terminated; resuming from the last version delivered sees
    // what happened since, and not the session's past.
    let ended = env
        .gql(
            &alice,
            "mutation($id: ID!) { terminateSession(id: $id) }",
            json!({"id": id}),
        )
        .await;
    assert!(ended["errors"].is_null(), "{ended}");
    let mut resumed = env
        .subscribe_with(&alice, watch, json!({"id": id, "rv": last_rv}))
        .await;
    // Every change after that version, in order, up to the termination; nothing before it.
    let mut previous: u64 = last_rv.parse().unwrap();
    loop {
        let next = resumed.next_message().await;
        let event = &next["payload"]["data"]["sessionEvents"];
        assert_ne!(event["type"], "ADDED", "{next}");
        let rv: u64 = event["resourceVersion"].as_str().unwrap().parse().unwrap();
        assert!(rv > previous, "{next} after {previous}");
        previous = rv;
        let phase = event["session"]["phase"].as_str().unwrap();
        if event["type"] == "DELETED" || phase == "TERMINATING" || phase == "TERMINATED" {
            break;
        }
    }

    // Two mutations spent the burst of three; the third passes, the fourth waits. bob has a
    // bucket of his own.
    let missing = json!({"id": vdi_api::session_id("u-alice-x", "gone")});
    let terminate = "mutation($id: ID!) { terminateSession(id: $id) }";
    let third = env.gql(&alice, terminate, missing.clone()).await;
    assert_ne!(codes(&third), ["RATE_LIMITED"], "{third}");
    let fourth = env.gql(&alice, terminate, missing.clone()).await;
    assert_eq!(codes(&fourth), ["RATE_LIMITED"], "{fourth}");
    assert_eq!(fourth["errors"][0]["extensions"]["retryAfterSeconds"], 60);
    let bobs = env.gql(&bob, terminate, missing).await;
    assert_ne!(codes(&bobs), ["RATE_LIMITED"], "{bobs}");
    // Queries are not limited.
    let me = env.gql(&alice, "{ me { user } }", json!({})).await;
    assert_eq!(me["data"]["me"]["user"], "oidc:alice", "{me}");

    // An admin's inventory follows placements: bob's GPU desktop takes a slice. bob may not
    // watch the inventory.
    let admin = env.token("admin").await;
    let inventory = "subscription { inventory { name gpus { slicesUsed sessions } } }";
    let used = |msg: &serde_json::Value| -> u64 {
        msg["payload"]["data"]["inventory"]
            .as_array()
            .unwrap_or_else(|| panic!("{msg}"))
            .iter()
            .flat_map(|n| n["gpus"].as_array().cloned().unwrap_or_default())
            .map(|g| g["slicesUsed"].as_u64().unwrap_or(0))
            .sum()
    };
    let mut watch_inventory = env.subscribe(&admin, inventory).await;
    let before = used(&watch_inventory.next_message().await);
    let gpu = env
        .gql(
            &bob,
            "mutation { launchSession(template: \"ubuntu-desktop\") { id } }",
            json!({}),
        )
        .await;
    assert!(gpu["errors"].is_null(), "{gpu}");
    let gpu_id = gpu["data"]["launchSession"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    loop {
        let msg = watch_inventory.next_message().await;
        if used(&msg) == before + 1 {
            assert!(msg.to_string().contains(&gpu_id), "{msg}");
            break;
        }
    }
    let mut refused = env.subscribe(&bob, inventory).await;
    let msg = refused.next_message().await;
    assert_eq!(
        msg["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{msg}"
    );

    // Introspection is off.
    let (status, answer) = env
        .post_raw(
            Some(&alice),
            json!({"query": "{ __schema { types { name } } }"})
                .to_string()
                .into_bytes(),
        )
        .await;
    assert!(
        status == 400 || answer["data"]["__schema"].is_null(),
        "{status}: {answer}"
    );
    assert!(answer.to_string().contains("__schema"), "{answer}");

    // CORS: the dashboard's origin only.
    let preflight = |origin: &'static str| {
        env.http
            .request(reqwest::Method::OPTIONS, env.url())
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
    };
    let ok = preflight(DASHBOARD).await.unwrap();
    assert_eq!(
        ok.headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some(DASHBOARD)
    );
    let other = preflight("https://evil.example").await.unwrap();
    assert!(
        other.headers().get("access-control-allow-origin").is_none(),
        "{:?}",
        other.headers()
    );

    // GraphiQL for humans; its queries need a token like any other.
    let page = env.http.get(env.url()).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("graphiql"));
    env.stop();
}
