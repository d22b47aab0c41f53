//! The plugin runtime with the real default plugins, built from source.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::{create, load, load_with, request, runtime, wasm};
use vdi_plugin_host::types::{Gpu, Node, Placement, PlacementDecision, TemplateInfo, Verdict};
use vdi_plugin_host::{
    CacheOutcome, CallError, Digest, Hook, Language, Limits, LoadError, RenderPolicy, Runtime,
    RuntimeConfig,
};

#[test]
fn inspect_reports_world_digest_and_imports() {
    let bytes = wasm("vdi_quota");
    let info = runtime().inspect(&bytes).expect("inspect");
    assert_eq!(info.world, Some("admission"));
    assert_eq!(info.digest, Digest::of(&bytes).to_string());
    assert_eq!(info.size, bytes.len());
    assert!(
        info.imports.iter().any(|i| i == "vdi:plugin/types@0.1.0"),
        "{:?}",
        info.imports
    );
    assert!(
        info.exports.iter().any(|e| e == "review"),
        "{:?}",
        info.exports
    );
}

#[test]
fn pinned_digest_must_match() {
    let rt = runtime();
    let bytes = wasm("vdi_quota");
    let wrong = Digest::of(b"something else");
    match rt.load("quota", &bytes, Some(&wrong), Limits::default(), "") {
        Err(LoadError::DigestMismatch { expected, actual }) => {
            assert_eq!(expected, wrong.hex());
            assert_eq!(actual, Digest::of(&bytes).hex());
        }
        other => panic!("expected DigestMismatch, got {other:?}"),
    }
    let right = Digest::of(&bytes);
    let (plugin, _) = rt
        .load("quota", &bytes, Some(&right), Limits::default(), "")
        .expect("load");
    assert_eq!(plugin.digest(), right);
    assert_eq!(plugin.hook(), Hook::Admission);
}

#[test]
fn not_a_component_is_a_compile_error() {
    let err = runtime()
        .load("junk", b"\0asm junk", None, Limits::default(), "")
        .expect_err("junk");
    assert!(matches!(err, LoadError::Compile(_)), "{err:?}");
}

#[test]
fn compiled_artefacts_are_cached_on_disk_by_digest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = RuntimeConfig {
        cache_dir: Some(dir.path().to_owned()),
        ..RuntimeConfig::default()
    };
    let bytes = wasm("vdi_gpu_binpack");
    let first = Runtime::new(config.clone()).expect("runtime");
    let (_, stats) = first
        .load("binpack", &bytes, None, Limits::default(), "")
        .expect("load");
    assert_eq!(stats.outcome, CacheOutcome::Compiled);
    // A second process (here: a second engine) finds the artefact.
    let second = Runtime::new(config.clone()).expect("runtime");
    let (plugin, stats) = second
        .load("binpack", &bytes, None, Limits::default(), "")
        .expect("load");
    assert_eq!(stats.outcome, CacheOutcome::Cached);
    assert_eq!(plugin.hook(), Hook::Scheduler);
    // A corrupt entry is discarded and recompiled.
    let entry = walk(dir.path())
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .expect("cache entry");
    assert!(entry.to_string_lossy().contains(&Digest::of(&bytes).hex()));
    std::fs::write(&entry, b"garbage").expect("corrupt");
    let third = Runtime::new(config).expect("runtime");
    let (_, stats) = third
        .load("binpack", &bytes, None, Limits::default(), "")
        .expect("load");
    assert_eq!(stats.outcome, CacheOutcome::Compiled);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn bad_settings_name_the_field() {
    let rt = runtime();
    let bytes = wasm("vdi_quota");
    match rt.load(
        "quota",
        &bytes,
        None,
        Limits::default(),
        r#"{"maxTimeoutSeconds": 0}"#,
    ) {
        Err(LoadError::Settings { field, reason }) => {
            assert_eq!(field, "maxTimeoutSeconds");
            assert!(reason.contains("greater than 0"), "{reason}");
        }
        other => panic!("expected Settings, got {other:?}"),
    }
    match rt.load(
        "quota",
        &bytes,
        None,
        Limits::default(),
        r#"{"maxSessions": 2}"#,
    ) {
        Err(LoadError::Settings { reason, .. }) => {
            assert!(reason.contains("unknown field `maxSessions`"), "{reason}")
        }
        other => panic!("expected Settings, got {other:?}"),
    }
}

#[test]
fn settings_are_normalised_with_defaults() {
    let p = load(&runtime(), "vdi_quota", r#"{"maxSessionsPerUser": 5}"#);
    let settings: serde_json::Value = serde_json::from_str(p.settings()).expect("json");
    assert_eq!(settings["maxSessionsPerUser"], 5);
    assert_eq!(settings["maxTimeoutSeconds"], 28800);
}

#[test]
fn calling_the_wrong_hook_is_a_typed_error() {
    let p = load(&runtime(), "vdi_quota", "");
    let err = p.place(&request(), &[]).expect_err("wrong hook");
    assert_eq!(
        err,
        CallError::WrongHook {
            called: "scheduler",
            actual: "admission"
        }
    );
}

#[test]
fn calls_errors_and_latency_are_metered_per_plugin() {
    let rt = runtime();
    let quota = load(&rt, "vdi_quota", "");
    let panicky = load(&rt, "vdi_hostile", r#"{"mode":"panic"}"#);
    for _ in 0..3 {
        quota.review(&request(), &create()).expect("review");
    }
    panicky.review(&request(), &create()).expect_err("panics");
    let m = rt.metrics();
    // configure counts as a call too
    assert_eq!(m.calls("vdi_quota", Hook::Admission), 4);
    assert_eq!(m.errors("vdi_hostile", Hook::Admission, "trap"), 1);
    assert_eq!(m.errors("vdi_quota", Hook::Admission, "trap"), 0);
    let text = m.encode();
    assert!(
        text.contains(r#"vdi_plugin_calls_total{plugin="vdi_quota",hook="admission"} 4"#),
        "{text}"
    );
    assert!(
        text.contains(
            r#"vdi_plugin_call_duration_seconds_count{plugin="vdi_quota",hook="admission"} 4"#
        ),
        "{text}"
    );
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn guest_log_stdout_and_stderr_go_to_tracing_with_the_plugin_name() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let p = load(&runtime(), "vdi_hostile", r#"{"mode":"allow"}"#);
        assert_eq!(p.review(&request(), &create()), Ok(Verdict::Allow));
    });
    let out = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf8");
    for needle in [
        "hostile plugin says hello through log",
        "hello on stdout",
        "hello on stderr",
    ] {
        let line = out
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle:?} missing in:\n{out}"));
        assert!(
            line.contains("plugin=\"vdi_hostile\"") || line.contains("plugin=vdi_hostile"),
            "{line}"
        );
    }
}

fn gpu_node(name: &str, used: u32) -> Node {
    Node {
        name: name.into(),
        labels: vec![],
        cpu_millis_free: 16_000,
        memory_mib_free: 65_536,
        gpus: vec![Gpu {
            index: 0,
            product: "NVIDIA-H100-80GB-HBM3".into(),
            memory_mib: 81_920,
            memory_used_mib: u64::from(used) * 4096,
            slices_total: 8,
            slices_used: used,
            encoder_sessions_total: 8,
            encoder_sessions_used: used,
        }],
    }
}

#[test]
fn scheduler_bin_packs_onto_the_fullest_gpu_that_fits() {
    let p = load(&runtime(), "vdi_gpu_binpack", "");
    let nodes = [gpu_node("a", 2), gpu_node("b", 7), gpu_node("c", 8)];
    match p.place(&request(), &nodes).expect("place") {
        PlacementDecision::Placed(Placement { node, gpu, .. }) => {
            assert_eq!((node.as_str(), gpu), ("b", Some(0)));
        }
        other => panic!("expected a placement, got {other:?}"),
    }
    let full = [gpu_node("c", 8)];
    match p.place(&request(), &full).expect("place") {
        PlacementDecision::Unschedulable(reasons) => {
            assert_eq!(reasons, vec!["1 GPU(s) have no free time-slice".to_owned()]);
        }
        other => panic!("expected unschedulable, got {other:?}"),
    }
}

#[test]
fn template_output_is_checked_and_labelled_by_the_host() {
    let p = load(&runtime(), "vdi_desktop", "");
    let template = TemplateInfo {
        name: "ubuntu".into(),
        display_name: "Ubuntu".into(),
        image: "ghcr.io/vdi/ubuntu:24.04".into(),
        settings: "{}".into(),
    };
    let placement = Placement {
        node: "gpu-1".into(),
        gpu: Some(0),
        reason: "test".into(),
    };
    let objects = p
        .render(&request(), &template, &placement, &RenderPolicy::default())
        .expect("render");
    let kinds: Vec<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        [
            "PersistentVolumeClaim",
            "Pod",
            "Service",
            "IngressRoute",
            "NetworkPolicy"
        ]
    );
    for o in &objects {
        assert_eq!(o["metadata"]["namespace"], "team-a");
        assert_eq!(o["metadata"]["labels"]["vdi.dev/session"], "desk-1");
    }
    let tight = RenderPolicy {
        max_objects: 2,
        ..RenderPolicy::default()
    };
    let err = p
        .render(&request(), &template, &placement, &tight)
        .expect_err("too many objects");
    assert!(
        matches!(&err, CallError::BadOutput { reason } if reason.contains("5 objects exceed the limit of 2")),
        "{err:?}"
    );
}

#[test]
fn concurrent_calls_each_get_their_own_instance() {
    let rt = runtime();
    // Isolation, not speed, is under test: a generous time limit keeps a loaded machine from
    // turning a slow call into a failure.
    let limits = Limits {
        timeout: std::time::Duration::from_secs(10),
        ..Limits::default()
    };
    let p = load_with(&rt, "vdi_quota", "", limits);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..100 {
                    assert_eq!(p.review(&request(), &create()), Ok(Verdict::Allow));
                }
            });
        }
    });
    assert_eq!(rt.metrics().calls("vdi_quota", Hook::Admission), 401);
}

#[test]
fn a_bare_instance_is_built_for_every_hook_and_is_not_metered() {
    let rt = runtime();
    for (name, hook) in [
        ("vdi_quota", Hook::Admission),
        ("vdi_gpu_binpack", Hook::Scheduler),
        ("vdi_desktop", Hook::Template),
    ] {
        let p = load(&rt, name, "");
        let configured = rt.metrics().calls(name, hook);
        p.instantiate_only().expect("instantiate");
        // The bench measures the sandbox's floor with it; a decision's metrics stay untouched.
        assert_eq!(rt.metrics().calls(name, hook), configured, "{name}");
        assert_eq!(Language::detect(&wasm(name)), Language::Rust, "{name}");
    }
}
