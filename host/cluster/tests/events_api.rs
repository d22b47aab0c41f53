//! Events as one resource seen two ways: what kube-runtime's recorder writes through
//! `events.k8s.io/v1` is read through `core/v1` (as `kubectl describe` reads it), and back.

mod common;

use common::start;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Event as CoreEvent, ObjectReference};
use k8s_openapi::api::events::v1::Event;
use kube::api::{ListParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::events::{Event as Recorded, EventType, Recorder, Reporter};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

#[tokio::test]
async fn the_recorder_writes_what_core_readers_find_by_involved_object() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_cluster, client) = start(dir.path()).await;
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let subject: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "subject"}})).expect("cm");
    let subject = cms
        .create(&PostParams::default(), &subject)
        .await
        .expect("create");
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "vdi-operator".into(),
            instance: Some("vdi-operator-0".into()),
        },
    );
    let running = Recorded {
        type_: EventType::Normal,
        reason: "Running".into(),
        note: Some("it runs".into()),
        action: "Start".into(),
        secondary: None,
    };
    // The second publish of the same event is a merge patch adding a series.
    for _ in 0..2 {
        recorder
            .publish(&running, &subject.object_ref(&()))
            .await
            .expect("publish");
    }

    let core: Api<CoreEvent> = Api::default_namespaced(client.clone());
    let selector = format!(
        "involvedObject.name=subject,involvedObject.kind=ConfigMap,involvedObject.uid={}",
        subject.uid().expect("uid")
    );
    let found = core
        .list(&ListParams::default().fields(&selector))
        .await
        .expect("list core events");
    assert_eq!(found.items.len(), 1, "{found:?}");
    let e = &found.items[0];
    assert_eq!(e.reason.as_deref(), Some("Running"));
    assert_eq!(e.message.as_deref(), Some("it runs"));
    assert_eq!(e.reporting_component.as_deref(), Some("vdi-operator"));
    assert_eq!(
        e.source.as_ref().and_then(|s| s.component.as_deref()),
        Some("vdi-operator")
    );
    assert_eq!(e.series.as_ref().and_then(|s| s.count), Some(2));
    let other = core
        .list(&ListParams::default().fields("involvedObject.name=someone-else"))
        .await
        .expect("list");
    assert!(other.items.is_empty());

    // The same object through the view, found with the view's field labels.
    let view: Api<Event> = Api::default_namespaced(client);
    let same = view
        .list(
            &ListParams::default()
                .fields("regarding.name=subject,reportingController=vdi-operator"),
        )
        .await
        .expect("list view");
    assert_eq!(same.items.len(), 1);
    assert_eq!(same.items[0].name_any(), e.name_any());
    assert_eq!(same.items[0].note.as_deref(), Some("it runs"));
    assert_eq!(
        same.items[0]
            .regarding
            .as_ref()
            .and_then(|r| r.name.as_deref()),
        Some("subject")
    );
    let refused = view
        .list(&ListParams::default().fields("involvedObject.name=subject"))
        .await
        .expect_err("core labels are not the view's");
    assert!(
        matches!(&refused, kube::Error::Api(s) if s.code == 400 && s.message.contains("field label not supported: involvedObject.name")),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_core_event_reads_through_the_view_and_watches_see_both_versions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_cluster, client) = start(dir.path()).await;
    let core: Api<CoreEvent> = Api::default_namespaced(client.clone());
    let view: Api<Event> = Api::default_namespaced(client.clone());

    let written = CoreEvent {
        metadata: kube::api::ObjectMeta {
            name: Some("pulled".into()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            kind: Some("Pod".into()),
            name: Some("p".into()),
            ..Default::default()
        },
        message: Some("image pulled".into()),
        reason: Some("Pulled".into()),
        count: Some(3),
        type_: Some("Normal".into()),
        ..Default::default()
    };
    let created = core
        .create(&PostParams::default(), &written)
        .await
        .expect("create core");
    let read = view.get("pulled").await.expect("get through the view");
    assert_eq!(read.note.as_deref(), Some("image pulled"));
    assert_eq!(read.deprecated_count, Some(3));
    assert_eq!(
        read.regarding.as_ref().and_then(|r| r.kind.as_deref()),
        Some("Pod")
    );

    // A watch on core/v1 sees a write through events.k8s.io/v1, and the reverse.
    let rv = created.resource_version().expect("rv");
    let mut core_watch = core
        .watch(&WatchParams::default().timeout(5), &rv)
        .await
        .expect("watch core")
        .boxed();
    let mut view_watch = view
        .watch(&WatchParams::default().timeout(5), &rv)
        .await
        .expect("watch view")
        .boxed();
    let through_view: Event = serde_json::from_value(json!({
        "metadata": {"name": "scheduled"},
        "eventTime": "2026-01-01T00:00:00.000000Z",
        "regarding": {"kind": "Pod", "name": "p"},
        "note": "placed", "reason": "Scheduled", "type": "Normal", "action": "Schedule",
        "reportingController": "scheduler", "reportingInstance": "scheduler-0",
    }))
    .expect("event");
    view.create(&PostParams::default(), &through_view)
        .await
        .expect("create through the view");
    match core_watch.try_next().await.expect("core event") {
        Some(WatchEvent::Added(e)) => {
            assert_eq!(e.name_any(), "scheduled");
            assert_eq!(e.message.as_deref(), Some("placed"));
            assert_eq!(e.involved_object.name.as_deref(), Some("p"));
        }
        other => panic!("expected ADDED scheduled, got {other:?}"),
    }
    match view_watch.try_next().await.expect("view event") {
        Some(WatchEvent::Added(e)) => {
            assert_eq!(e.note.as_deref(), Some("placed"));
            assert_eq!(e.reporting_controller.as_deref(), Some("scheduler"));
        }
        other => panic!("expected ADDED scheduled, got {other:?}"),
    }
}

#[tokio::test]
async fn unsupported_field_labels_are_400() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_cluster, client) = start(dir.path()).await;
    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    let err = cms
        .list(&ListParams::default().fields("data.k=v"))
        .await
        .expect_err("configmaps support metadata fields only");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 400 && s.message == "field label not supported: data.k"),
        "{err:?}"
    );
}

#[tokio::test]
async fn events_stored_under_their_own_key_before_move_to_the_core_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cluster, _client) = start(dir.path()).await;
    cluster.stop().await;
    // A row as earlier versions stored an events.k8s.io Event.
    let legacy = json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "old", "namespace": "default", "uid": "u", "resourceVersion": "3",
            "creationTimestamp": "2026-01-01T00:00:00Z"},
        "regarding": {"kind": "Pod", "name": "p"}, "note": "from before", "reason": "Old",
        "eventTime": "2026-01-01T00:00:00.000000Z", "reportingController": "c",
        "reportingInstance": "c-0", "action": "A", "type": "Normal",
    });
    let db = rusqlite::Connection::open(dir.path().join("cluster.db")).expect("db");
    db.execute(
        "INSERT INTO objects (resource, namespace, name, rv, body) VALUES ('events.events.k8s.io', 'default', 'old', 3, ?1)",
        [legacy.to_string()],
    )
    .expect("insert");
    drop(db);

    let (cluster, client) = start(dir.path()).await;
    let core: Api<CoreEvent> = Api::default_namespaced(client.clone());
    let moved = core.get("old").await.expect("served as core/v1");
    assert_eq!(moved.message.as_deref(), Some("from before"));
    assert_eq!(moved.involved_object.name.as_deref(), Some("p"));
    core.delete("old", &Default::default())
        .await
        .expect("delete");
    cluster.stop().await;
    // Gone for good: the old row was moved, not copied.
    let (_cluster, client) = start(dir.path()).await;
    let view: Api<Event> = Api::default_namespaced(client);
    assert!(view.get("old").await.is_err());
}
