//! The GraphQL API end to end over HTTPS: tokens from the real dev OpenID Provider, the API
//! acting as each user on the embedded control plane (RBAC and the admission plugins decide),
//! the operator running sessions on simulated nodes.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kube::{Api, ResourceExt as _};
use serde_json::{Value, json};
use vdi_crd::VDISession;
use vdi_operator::connect::ConnectKeys;

use common::{Env, WAIT, codes};

const LAUNCH: &str = "mutation($t: String!, $timeout: String) { launchSession(template: $t, timeout: $timeout) { id name namespace user phase } }";
const SESSION: &str = "query($id: ID!) { session(id: $id) { id name phase url node expiresAt decisions { plugin verdict } events { reason } } }";
const COUNT: &str = "{ sessions(first: 50) { totalCount } }";

async fn wait_running(env: &Env, token: &str, id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let answer = env.gql(token, SESSION, json!({"id": id})).await;
        if answer["data"]["session"]["phase"] == "RUNNING" {
            return answer["data"]["session"].clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never ran: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn users_act_through_the_api_as_themselves() {
    let env = Env::start().await;
    let [alice, bob, carol, admin] = [
        env.token("alice").await,
        env.token("bob").await,
        env.token("carol").await,
        env.token("admin").await,
    ];

    // No token: UNAUTHENTICATED, and nothing runs.
    let (status, answer) = env
        .post_raw(
            None,
            json!({"query": "{ me { user } }"}).to_string().into_bytes(),
        )
        .await;
    assert_eq!(status, 401, "{answer}");
    assert_eq!(codes(&answer), ["UNAUTHENTICATED"]);
    // Nobody signed in may send a module-sized body: refused as unauthenticated before more
    // than an ordinary request's worth of it is kept.
    let module_sized = vdi_testkit::wasm("vdi_quota");
    let upload_me = "mutation($file: Upload!) { uploadModule(file: $file) { sha256 } }";
    let (status, answer) = env
        .try_post_file(None, upload_me, &module_sized)
        .await
        .expect("the answer arrives after the upload");
    assert_eq!(status, 401, "{answer}");
    assert_eq!(codes(&answer), ["UNAUTHENTICATED"]);
    let (status, _) = env
        .post_raw(
            Some("not-a-jwt"),
            json!({"query": "{ me { user } }"}).to_string().into_bytes(),
        )
        .await;
    assert_eq!(status, 401);

    // alice's first launch gives her a namespace; `me` reports the quota plugin's limits.
    let first = env
        .gql(&alice, LAUNCH, json!({"t": "ubuntu-cpu", "timeout": "2h"}))
        .await;
    assert!(first["errors"].is_null(), "{first}");
    let launched = &first["data"]["launchSession"];
    assert_eq!(
        launched["user"], "oidc:alice",
        "spec.user comes from the token"
    );
    let first_id = launched["id"].as_str().unwrap().to_owned();
    let ns = launched["namespace"].as_str().unwrap().to_owned();
    let me = env
        .gql(&alice, "{ me { user groups namespace quota { enforced maxSessions maxGpuSlices allowedTemplates activeSessions } } }", json!({}))
        .await;
    let me = &me["data"]["me"];
    assert_eq!(me["user"], "oidc:alice", "{me}");
    assert_eq!(me["namespace"], ns.as_str());
    assert_eq!(me["quota"]["maxSessions"], 3, "{me}");
    assert_eq!(me["quota"]["maxGpuSlices"], 4);
    let allowed = me["quota"]["allowedTemplates"].as_array().unwrap();
    for t in ["ubuntu-cpu", "ubuntu-desktop"] {
        assert!(allowed.iter().any(|a| a == t), "{me}");
    }
    assert_eq!(me["quota"]["activeSessions"], 1);

    // Her subscription sees her second session go through every phase to Running.
    let mut sub = env
        .subscribe(
            &alice,
            "subscription { sessionEvents { type resourceVersion session { name phase } } }",
        )
        .await;
    let second = env.gql(&alice, LAUNCH, json!({"t": "ubuntu-cpu"})).await;
    let second_name = second["data"]["launchSession"]["name"]
        .as_str()
        .unwrap_or_else(|| panic!("{second}"))
        .to_owned();
    let second_id = second["data"]["launchSession"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut phases: Vec<String> = Vec::new();
    while phases.last().map(String::as_str) != Some("RUNNING") {
        let msg = sub.next_message().await;
        assert_eq!(msg["type"], "next", "{msg}");
        let event = &msg["payload"]["data"]["sessionEvents"];
        assert!(
            event["resourceVersion"]
                .as_str()
                .is_some_and(|v| !v.is_empty())
        );
        if event["session"]["name"] == second_name.as_str() {
            let phase = event["session"]["phase"].as_str().unwrap().to_owned();
            if phases.last() != Some(&phase) {
                phases.push(phase);
            }
        }
    }
    assert_eq!(
        phases.first().map(String::as_str),
        Some("PENDING"),
        "{phases:?}"
    );
    assert!(phases.len() >= 3, "the transitions were seen: {phases:?}");

    // Connect: a token the platform's keys verify for that session, its owner's.
    let running = wait_running(&env, &alice, &first_id).await;
    assert!(
        running["decisions"]
            .as_array()
            .is_some_and(|d| !d.is_empty()),
        "{running}"
    );
    let connect = env
        .gql(
            &alice,
            "mutation($id: ID!) { connectSession(id: $id) { url token expiresAt iceServers { urls } } }",
            json!({"id": first_id}),
        )
        .await;
    let info = &connect["data"]["connectSession"];
    assert_eq!(info["url"], running["url"], "{connect}");
    assert_eq!(info["iceServers"][0]["urls"][0], "stun:127.0.0.1:3478");
    let name = running["name"].as_str().unwrap();
    let keys = ConnectKeys::load_or_create(&env.platform.client)
        .await
        .unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = keys
        .verify(info["token"].as_str().unwrap(), &ns, name, now)
        .expect("the streamer's check accepts the token");
    let stored = Api::<VDISession>::namespaced(env.platform.client.clone(), &ns)
        .get(name)
        .await
        .unwrap();
    assert_eq!(claims.sub, "oidc:alice");
    assert_eq!(claims.sid, stored.uid().unwrap());
    assert!(
        keys.verify(info["token"].as_str().unwrap(), &ns, "other", now)
            .is_err()
    );

    // bob can neither see, connect to, extend nor terminate it: each a typed error.
    let by_bob = [
        (SESSION, json!({"id": first_id})),
        (
            "mutation($id: ID!) { connectSession(id: $id) { token } }",
            json!({"id": first_id}),
        ),
        (
            "mutation($id: ID!) { extendSession(id: $id, timeout: \"4h\") { id } }",
            json!({"id": first_id}),
        ),
        (
            "mutation($id: ID!) { terminateSession(id: $id) }",
            json!({"id": first_id}),
        ),
    ];
    for (query, vars) in by_bob {
        let answer = env.gql(&bob, query, vars).await;
        assert_eq!(codes(&answer), ["FORBIDDEN"], "{query}: {answer}");
        assert!(answer.to_string().contains("oidc:bob"), "{answer}");
    }
    // An admin (who may update sessions in every namespace) may connect to it.
    let by_admin = env
        .gql(
            &admin,
            "mutation($id: ID!) { connectSession(id: $id) { token } }",
            json!({"id": first_id}),
        )
        .await;
    assert!(
        by_admin["data"]["connectSession"]["token"].is_string(),
        "{by_admin}"
    );
    let mut spy = env
        .subscribe_with(
            &bob,
            "subscription($id: ID) { sessionEvents(id: $id) { type } }",
            json!({"id": first_id}),
        )
        .await;
    let refused = spy.next_message().await;
    assert_eq!(
        refused["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{refused}"
    );
    let garbled = env.gql(&bob, SESSION, json!({"id": "not-an-id"})).await;
    assert_eq!(codes(&garbled), ["BAD_USER_INPUT"], "{garbled}");
    assert_eq!(garbled["errors"][0]["extensions"]["field"], "id");
    let still = env.gql(&alice, SESSION, json!({"id": first_id})).await;
    assert_eq!(still["data"]["session"]["phase"], "RUNNING", "{still}");
    let bobs = env.gql(&bob, COUNT, json!({})).await;
    assert_eq!(bobs["data"]["sessions"]["totalCount"], 0, "{bobs}");
    let all = env
        .gql(
            &bob,
            "{ sessions(allUsers: true) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(codes(&all), ["FORBIDDEN"], "{all}");

    // carol's group may not use the GPU desktop: the quota plugin's reason.
    let denied = env
        .gql(&carol, LAUNCH, json!({"t": "ubuntu-desktop"}))
        .await;
    assert_eq!(codes(&denied), ["DENIED"], "{denied}");
    let reason = denied["errors"][0]["extensions"]["reason"]
        .as_str()
        .unwrap();
    assert!(
        reason.contains("template \"ubuntu-desktop\" is not allowed for user \"oidc:carol\""),
        "{reason}"
    );

    // An admin upserts a template; users see it, and may not do the same.
    let spec = json!({"displayName": "Test", "image": "example.invalid/test:1"});
    let upsert = "mutation($n: String!, $s: JSON!) { upsertTemplate(name: $n, spec: $s) }";
    let answer = env
        .gql(&admin, upsert, json!({"n": "test-tpl", "s": spec}))
        .await;
    assert_eq!(answer["data"]["upsertTemplate"], "test-tpl", "{answer}");
    let templates = env
        .gql(&alice, "{ templates { name displayName } }", json!({}))
        .await;
    assert!(
        templates["data"]["templates"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "test-tpl" && t["displayName"] == "Test"),
        "{templates}"
    );
    let answer = env
        .gql(&alice, upsert, json!({"n": "mine", "s": spec}))
        .await;
    assert_eq!(codes(&answer), ["FORBIDDEN"], "{answer}");
    let answer = env
        .gql(
            &admin,
            upsert,
            json!({"n": "broken", "s": {"displayName": "x"}}),
        )
        .await;
    assert_eq!(codes(&answer), ["BAD_USER_INPUT"], "{answer}");
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("image"),
        "{answer}"
    );
    let nodes = env
        .gql(
            &admin,
            "{ nodes { name gpus { slicesTotal slicesUsed sessions } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        nodes["data"]["nodes"].as_array().map(Vec::len),
        Some(2),
        "{nodes}"
    );

    // Bad requests get clear errors and change nothing.
    let before = env.gql(&alice, COUNT, json!({})).await;
    assert_eq!(before["data"]["sessions"]["totalCount"], 2, "{before}");
    let malformed = json!({"query": "mutation { launchSession(template: \"ubuntu-cpu\") { id "});
    let (status, answer) = env
        .post_raw(Some(&alice), malformed.to_string().into_bytes())
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(codes(&answer), ["GRAPHQL_VALIDATION_FAILED"]);
    let padded = format!(
        "{{\"query\": \"mutation {{ launchSession(template: \\\"ubuntu-cpu\\\") {{ id }} }}\", \"extensions\": {{\"pad\": \"{}\"}}}}",
        "x".repeat(32 * 1024)
    );
    let (status, answer) = env.post_raw(Some(&alice), padded.into_bytes()).await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(codes(&answer), ["PAYLOAD_TOO_LARGE"]);
    let deep = "query q { __schema { types { fields { type { ofType { ofType { ofType { name } } } } } } } }";
    let (status, answer) = env
        .post_raw(
            Some(&alice),
            json!({"query": deep}).to_string().into_bytes(),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer.to_string().contains("nested too deep"), "{answer}");
    let (status, answer) = env.post_raw(Some(&alice), b"{not json".to_vec()).await;
    assert_eq!(
        (status, codes(&answer)),
        (400, vec!["BAD_REQUEST".to_owned()])
    );
    let bad_timeout = env
        .gql(
            &alice,
            LAUNCH,
            json!({"t": "ubuntu-cpu", "timeout": "forever"}),
        )
        .await;
    assert_eq!(codes(&bad_timeout), ["BAD_USER_INPUT"], "{bad_timeout}");
    assert_eq!(bad_timeout["errors"][0]["extensions"]["field"], "timeout");
    let too_many = env
        .gql(&alice, "{ sessions(first: 51) { totalCount } }", json!({}))
        .await;
    assert_eq!(
        too_many["errors"][0]["extensions"]["field"], "first",
        "{too_many}"
    );
    let after = env.gql(&alice, COUNT, json!({})).await;
    assert_eq!(after["data"]["sessions"]["totalCount"], 2, "{after}");

    // Paging: one at a time, in order, without repeats.
    let page = "query($after: String) { sessions(first: 1, after: $after) { edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }";
    let p1 = env.gql(&alice, page, json!({})).await;
    let p1 = &p1["data"]["sessions"];
    assert_eq!(p1["pageInfo"]["hasNextPage"], true, "{p1}");
    let p2 = env
        .gql(&alice, page, json!({"after": p1["pageInfo"]["endCursor"]}))
        .await;
    let p2 = &p2["data"]["sessions"];
    assert_eq!(p2["pageInfo"]["hasNextPage"], false, "{p2}");
    assert_ne!(p1["edges"][0]["node"]["id"], p2["edges"][0]["node"]["id"]);

    // An admin uploads a module and upserts a plugin with it; `plugins` shows it Ready.
    // alice may do neither.
    let upload = "mutation($file: Upload!) { uploadModule(file: $file) { sha256 size new } }";
    let module = vdi_testkit::wasm("vdi_quota");
    let (status, answer) = env.post_file(&alice, upload, &module).await;
    assert_eq!(
        (status, codes(&answer)),
        (200, vec!["FORBIDDEN".to_owned()]),
        "{answer}"
    );
    let (status, answer) = env.post_file(&admin, upload, &module).await;
    assert_eq!(status, 200, "{answer}");
    let uploaded = &answer["data"]["uploadModule"];
    assert_eq!(uploaded["size"], module.len(), "{answer}");
    let sha256 = uploaded["sha256"].as_str().unwrap().to_owned();
    assert_eq!(sha256, vdi_plugin_host::Digest::of(&module).to_string());
    // Before saving, the module's own `configure` checks settings: normalised when accepted,
    // the refused field named otherwise; only for those who may create plugins.
    let check = "mutation($h: String!, $s: JSON!) { checkPluginSettings(sha256: $h, settings: $s) { valid hook normalized field message } }";
    let answer = env
        .gql(
            &alice,
            check,
            json!({"h": sha256, "s": {"maxSessionsPerUser": 10}}),
        )
        .await;
    assert_eq!(codes(&answer), ["FORBIDDEN"], "{answer}");
    let answer = env
        .gql(
            &admin,
            check,
            json!({"h": sha256, "s": {"maxSessionsPerUser": 10}}),
        )
        .await;
    let checked = &answer["data"]["checkPluginSettings"];
    assert_eq!(checked["valid"], true, "{answer}");
    assert_eq!(checked["hook"], "admission", "{answer}");
    assert_eq!(checked["normalized"]["maxSessionsPerUser"], 10, "{answer}");
    let answer = env
        .gql(
            &admin,
            check,
            json!({"h": sha256, "s": {"maxTimeoutSeconds": 0}}),
        )
        .await;
    let checked = &answer["data"]["checkPluginSettings"];
    assert_eq!(
        (&checked["valid"], &checked["field"]),
        (&json!(false), &json!("maxTimeoutSeconds")),
        "{answer}"
    );
    let answer = env
        .gql(
            &admin,
            check,
            json!({"h": format!("sha256:{}", "0".repeat(64)), "s": {}}),
        )
        .await;
    assert_eq!(codes(&answer), ["BAD_USER_INPUT"], "{answer}");
    let upsert_plugin = "mutation($n: String!, $s: JSON!) { upsertPlugin(name: $n, spec: $s) }";
    let plugin = json!({"hook": "admission", "source": {"upload": {}}, "sha256": sha256,
        "order": 50, "settings": {"maxSessionsPerUser": 10}});
    let answer = env
        .gql(
            &alice,
            upsert_plugin,
            json!({"n": "quota-uploaded", "s": plugin}),
        )
        .await;
    assert_eq!(codes(&answer), ["FORBIDDEN"], "{answer}");
    let answer = env
        .gql(
            &admin,
            upsert_plugin,
            json!({"n": "quota-uploaded", "s": plugin}),
        )
        .await;
    assert_eq!(answer["data"]["upsertPlugin"], "quota-uploaded", "{answer}");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let plugins = env
            .gql(
                &admin,
                "{ plugins { name phase sha256 message } }",
                json!({}),
            )
            .await;
        let ours = plugins["data"]["plugins"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == "quota-uploaded").cloned());
        if ours.as_ref().is_some_and(|p| p["phase"] == "Ready") {
            assert_eq!(ours.unwrap()["sha256"], sha256.as_str());
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never Ready: {plugins}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // alice ends her second session.
    let ended = env
        .gql(
            &alice,
            "mutation($id: ID!) { terminateSession(id: $id) }",
            json!({"id": second_id}),
        )
        .await;
    assert_eq!(
        ended["data"]["terminateSession"],
        second_id.as_str(),
        "{ended}"
    );
    env.stop();
}
