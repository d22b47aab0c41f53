//! Events: one resource seen two ways, as in Kubernetes. Every Event is stored once, in its
//! `core/v1` form under the storage key `events`; `events.k8s.io/v1` is a view of the same
//! objects, converted on the way out (reads, watches) and on the way in (create, update, every
//! kind of patch), with Kubernetes' field mapping (`pkg/apis/events/v1/conversion.go`). So what
//! kube-runtime's recorder writes through `events.k8s.io/v1` is what `kubectl describe` and
//! `kubectl get events` read through `core/v1`, and a watch on either version sees both.

use serde_json::{Map, Value, json};

use crate::resources::ResourceType;

/// The group of the converted view.
pub(crate) const GROUP: &str = "events.k8s.io";
/// The served version of the view.
const VIEW_API_VERSION: &str = "events.k8s.io/v1";

/// `(events.k8s.io/v1 field, core/v1 field)` pairs that only change their names.
const RENAMED: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("related", "related"),
    ("note", "message"),
    ("reason", "reason"),
    ("type", "type"),
    ("action", "action"),
    ("reportingController", "reportingComponent"),
    ("reportingInstance", "reportingInstance"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("eventTime", "eventTime"),
    ("series", "series"),
];

/// Field-selector labels of the view and the core field each reads (kube-apiserver's
/// `AddFieldLabelConversionsForEvent`): selectors are evaluated on the stored core object.
pub(crate) const FIELD_LABELS: &[(&str, &str)] = &[
    ("metadata.name", "metadata.name"),
    ("metadata.namespace", "metadata.namespace"),
    ("reason", "reason"),
    ("type", "type"),
    ("reportingController", "reportingComponent"),
    ("regarding.kind", "involvedObject.kind"),
    ("regarding.namespace", "involvedObject.namespace"),
    ("regarding.name", "involvedObject.name"),
    ("regarding.uid", "involvedObject.uid"),
    ("regarding.apiVersion", "involvedObject.apiVersion"),
    (
        "regarding.resourceVersion",
        "involvedObject.resourceVersion",
    ),
    ("regarding.fieldPath", "involvedObject.fieldPath"),
];

/// Whether `rt` is the `events.k8s.io` view of the core Events (whose storage key is theirs).
pub(crate) fn is_view(rt: &ResourceType) -> bool {
    rt.group == GROUP && rt.plural == "events"
}

/// Converts a stored (core/v1) Event into the form `rt` serves, in place; a no-op for every
/// other type and for an object already in the view's form.
pub(crate) fn present(obj: &mut Value, rt: &ResourceType) {
    if is_view(rt) && obj["apiVersion"] != VIEW_API_VERSION {
        *obj = to_view(obj);
    }
}

/// Converts an Event written through the view into its stored (core/v1) form, in place; a
/// no-op for every other type and for an object already in the core form.
pub(crate) fn to_storage(obj: &mut Value, rt: &ResourceType) {
    if is_view(rt) && obj["apiVersion"] == VIEW_API_VERSION {
        *obj = to_core(obj);
    }
}

/// The stored (core/v1) form of an Event in either form.
pub(crate) fn stored_form(obj: &Value) -> Value {
    if obj["apiVersion"] == VIEW_API_VERSION {
        to_core(obj)
    } else {
        obj.clone()
    }
}

/// The fields both forms share, and the kind.
fn envelope(obj: &Value, api_version: &str) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("apiVersion".into(), json!(api_version));
    out.insert("kind".into(), json!("Event"));
    if let Some(md) = obj.get("metadata") {
        out.insert("metadata".into(), md.clone());
    }
    out
}

/// core/v1 → events.k8s.io/v1.
fn to_view(core: &Value) -> Value {
    let mut out = envelope(core, VIEW_API_VERSION);
    for (view, stored) in RENAMED {
        if let Some(v) = core.get(*stored).filter(|v| !v.is_null()) {
            out.insert((*view).into(), v.clone());
        }
    }
    Value::Object(out)
}

/// events.k8s.io/v1 → core/v1. `involvedObject` is required in core; `source` is filled from
/// the reporting controller and instance when the writer set no deprecated source, so older
/// readers see who reported it.
fn to_core(view: &Value) -> Value {
    let mut out = envelope(view, "v1");
    for (from, stored) in RENAMED {
        if let Some(v) = view.get(*from).filter(|v| !v.is_null()) {
            out.insert((*stored).into(), v.clone());
        }
    }
    out.entry("involvedObject").or_insert_with(|| json!({}));
    if !out.contains_key("source") {
        let mut source = Map::new();
        for (field, from) in [
            ("component", "reportingController"),
            ("host", "reportingInstance"),
        ] {
            if let Some(v) = view.get(from).filter(|v| v.is_string()) {
                source.insert(field.into(), v.clone());
            }
        }
        if !source.is_empty() {
            out.insert("source".into(), Value::Object(source));
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view_type() -> ResourceType {
        crate::resources::Registry::default()
            .find(GROUP, "v1", "events")
            .expect("events.k8s.io/v1 events are served")
    }

    #[test]
    fn a_recorder_event_converts_to_core_and_back() {
        let written = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "s1.17f", "namespace": "team"},
            "eventTime": "2026-01-01T00:00:00.000000Z",
            "regarding": {"kind": "VDISession", "name": "s1", "namespace": "team", "uid": "u1"},
            "note": "session is running", "reason": "Running", "type": "Normal", "action": "Start",
            "reportingController": "vdi-operator", "reportingInstance": "vdi-operator-0",
            "series": {"count": 2, "lastObservedTime": "2026-01-01T00:00:05.000000Z"},
        });
        let rt = view_type();
        let mut stored = written.clone();
        to_storage(&mut stored, &rt);
        assert_eq!(stored["apiVersion"], "v1");
        assert_eq!(stored["involvedObject"]["name"], "s1");
        assert_eq!(stored["message"], "session is running");
        assert_eq!(stored["reportingComponent"], "vdi-operator");
        assert_eq!(
            stored["source"],
            json!({"component": "vdi-operator", "host": "vdi-operator-0"})
        );
        assert_eq!(stored["series"]["count"], 2);
        assert!(stored.get("note").is_none() && stored.get("regarding").is_none());
        // Converting twice changes nothing.
        let again = {
            let mut s = stored.clone();
            to_storage(&mut s, &rt);
            s
        };
        assert_eq!(again, stored);
        let mut read = stored;
        present(&mut read, &rt);
        let mut expected = written;
        expected["deprecatedSource"] =
            json!({"component": "vdi-operator", "host": "vdi-operator-0"});
        assert_eq!(read, expected);
    }

    #[test]
    fn a_core_event_reads_through_the_view_with_deprecated_fields() {
        let core = json!({
            "apiVersion": "v1", "kind": "Event", "metadata": {"name": "e", "namespace": "d"},
            "involvedObject": {"kind": "Pod", "name": "p"}, "message": "pulled",
            "source": {"component": "kubelet", "host": "n1"}, "count": 3,
            "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:01:00Z",
            "reportingComponent": "", "eventTime": null,
        });
        let mut read = core.clone();
        present(&mut read, &view_type());
        assert_eq!(read["apiVersion"], "events.k8s.io/v1");
        assert_eq!(read["regarding"]["kind"], "Pod");
        assert_eq!(read["note"], "pulled");
        assert_eq!(read["deprecatedCount"], 3);
        assert_eq!(read["deprecatedSource"]["component"], "kubelet");
        assert_eq!(read["deprecatedFirstTimestamp"], "2026-01-01T00:00:00Z");
        assert!(read.get("eventTime").is_none());
        // The core type is left alone.
        let core_t = crate::resources::Registry::default()
            .find("", "v1", "events")
            .expect("core events");
        let mut same = core.clone();
        present(&mut same, &core_t);
        assert_eq!(same, core);
    }
}
