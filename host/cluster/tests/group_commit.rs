//! Group commit in the store: concurrent writers share transactions, yet every acknowledged
//! write is durable, versions grow in commit order, watchers see each write once, and a failed
//! transaction fails its writes and leaves nothing behind.

use std::sync::Arc;

use serde_json::{Value, json};
use vdi_cluster::{EventType, Part, ResourceType, Store};

const WRITERS: usize = 16;
const WRITES_EACH: usize = 40;

fn configmaps(store: &Store) -> ResourceType {
    store
        .registry
        .find("", "v1", "configmaps")
        .expect("configmaps are served")
}

fn cm(name: &str, i: usize) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"i": i.to_string()}})
}

fn rv(obj: &Value) -> u64 {
    obj["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .expect("a numeric resourceVersion")
}

/// Many threads create and update at once; after the store is closed and opened again, every
/// acknowledged object is there with the version its writer was answered, the versions are
/// unique, and a watch saw every write exactly once, in increasing version order.
#[test]
fn concurrent_acknowledged_writes_are_all_durable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let acked = {
        let store = Arc::new(Store::open(dir.path()).expect("open"));
        let cm_t = configmaps(&store);
        let start = store
            .watch(&cm_t, None, Some(store.resource_version()))
            .expect("watch");
        let mut events = start.receiver;
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (store, cm_t) = (store.clone(), cm_t.clone());
                std::thread::spawn(move || {
                    let mut acked = Vec::new();
                    for i in 0..WRITES_EACH {
                        let name = format!("w{w}-{i}");
                        let made = store
                            .create(&cm_t, "default", cm(&name, i))
                            .expect("create");
                        acked.push((name.clone(), rv(&made)));
                        if i % 2 == 0 {
                            let mut changed = made;
                            changed["data"]["i"] = json!("changed");
                            let updated = store
                                .update(&cm_t, "default", &name, changed, Part::Main)
                                .expect("update");
                            assert!(rv(&updated) > acked.last().expect("acked").1);
                            acked.last_mut().expect("acked").1 = rv(&updated);
                        }
                    }
                    acked
                })
            })
            .collect();
        let acked: Vec<(String, u64)> = writers
            .into_iter()
            .flat_map(|w| w.join().expect("writer"))
            .collect();
        let writes = WRITERS * WRITES_EACH + WRITERS * WRITES_EACH.div_ceil(2);
        let mut seen = Vec::new();
        while let Ok(e) = events.try_recv() {
            seen.push((e.rv, e.kind));
        }
        assert_eq!(seen.len(), writes, "every write is published once");
        assert!(
            seen.windows(2).all(|p| p[0].0 < p[1].0),
            "events arrive in strictly increasing resourceVersion order"
        );
        assert_eq!(
            seen.iter().filter(|(_, k)| *k == EventType::Added).count(),
            WRITERS * WRITES_EACH
        );
        let mut versions: Vec<u64> = acked.iter().map(|(_, v)| *v).collect();
        versions.sort_unstable();
        versions.dedup();
        assert_eq!(versions.len(), acked.len(), "no two writes share a version");
        acked
    };
    let store = Store::open(dir.path()).expect("reopen");
    let cm_t = configmaps(&store);
    for (name, version) in &acked {
        let found = store
            .get(&cm_t, "default", name)
            .unwrap_or_else(|e| panic!("acknowledged {name} lost: {e}"));
        assert_eq!(rv(&found), *version, "{name} has the acknowledged version");
    }
    let highest = acked.iter().map(|(_, v)| *v).max().expect("writes");
    assert!(store.resource_version() >= highest);
}

/// A transaction that cannot commit (another connection holds the database) fails its write
/// with an error, and nothing of it is seen: not by reads, lists or watches, and the next
/// write gets a version after the failed one.
#[test]
fn a_failed_commit_fails_the_write_and_leaves_memory_unchanged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let cm_t = configmaps(&store);
    let before = store.resource_version();
    let start = store.watch(&cm_t, None, Some(before)).expect("watch");
    let mut events = start.receiver;

    let blocker =
        rusqlite::Connection::open(dir.path().join("cluster.db")).expect("second connection");
    blocker
        .busy_timeout(std::time::Duration::ZERO)
        .expect("busy timeout");
    blocker
        .execute_batch("BEGIN EXCLUSIVE")
        .expect("lock the database");
    let failed = store.create(&cm_t, "default", cm("lost", 0));
    assert!(
        failed.is_err(),
        "a write whose transaction failed is refused"
    );
    blocker.execute_batch("ROLLBACK").expect("unlock");

    assert!(
        store.get(&cm_t, "default", "lost").is_err(),
        "the failed write is not readable"
    );
    let (items, listed_at, _) = store.list(&cm_t, None, None, None, &|_| true);
    assert!(items.is_empty(), "nor listed: {items:?}");
    assert_eq!(listed_at, before);
    assert!(events.try_recv().is_err(), "nor published");

    let made = store
        .create(&cm_t, "default", cm("lost", 1))
        .expect("create after the failure");
    assert!(
        rv(&made) > before + 1,
        "the failed version is not given again"
    );
    drop(store);
    let store = Store::open(dir.path()).expect("reopen");
    assert_eq!(
        store.get(&cm_t, "default", "lost").map(|o| rv(&o)),
        Ok(rv(&made))
    );
}
