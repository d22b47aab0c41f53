//! `vdi plugin push` and `vdi plugin pull` against a real Distribution registry on loopback:
//! the round trip by tag and by digest keeps bytes and digest, a missing tag, a pinned sha256 that
//! does not match and a file that is no component are refused with the reason.

use std::path::Path;
use std::process::{Command, Output};

use vdi_plugin_host::Digest;
use vdi_testkit::{DistributionRegistry, wasm};

const VDI: &str = env!("CARGO_BIN_EXE_vdi");

fn vdi(args: &[&str]) -> Output {
    Command::new(VDI).args(args).output().expect("run vdi")
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "vdi failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The value of the `key: value` line.
fn line<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(": ")))
        .unwrap_or_else(|| panic!("no {key:?} line in:\n{text}"))
}

fn failure(out: &Output) -> String {
    assert!(!out.status.success(), "vdi succeeded unexpectedly");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn push_and_pull_round_trip_by_tag_and_by_digest() {
    let registry = DistributionRegistry::start();
    let dir = tempfile::tempdir().unwrap();
    let module = wasm("vdi_quota");
    let file = dir.path().join("quota.wasm");
    std::fs::write(&file, &module).unwrap();
    let by_tag = registry.reference("team/quota:1.0");

    let pushed = stdout(&vdi(&["plugin", "push", path(&file), &by_tag]));
    let immutable = line(&pushed, "pushed");
    let sha = line(&pushed, "sha256");
    assert_eq!(sha, Digest::of(&module).to_string());
    let prefix = registry.reference("team/quota@sha256:");
    assert!(immutable.starts_with(&prefix), "{immutable}");

    for reference in [by_tag.as_str(), immutable] {
        let out = dir.path().join("pulled.wasm");
        let pulled = stdout(&vdi(&[
            "plugin",
            "pull",
            reference,
            "-o",
            path(&out),
            "--sha256",
            sha,
        ]));
        assert_eq!(line(&pulled, "sha256"), sha);
        assert_eq!(line(&pulled, "pulled"), immutable, "the same manifest");
        assert_eq!(std::fs::read(&out).unwrap(), module, "{reference}");
    }

    let missing = failure(&vdi(&[
        "plugin",
        "pull",
        &registry.reference("team/quota:2.0"),
        "-o",
        path(&dir.path().join("x.wasm")),
    ]));
    assert!(missing.contains("not found in the registry"), "{missing}");
    assert!(missing.contains("team/quota:2.0"), "{missing}");

    let other = Digest::of(b"another module").to_string();
    let mismatch = failure(&vdi(&[
        "plugin",
        "pull",
        &by_tag,
        "-o",
        path(&dir.path().join("y.wasm")),
        "--sha256",
        &other,
    ]));
    assert!(mismatch.contains("digest mismatch"), "{mismatch}");
    assert!(!dir.path().join("y.wasm").exists(), "nothing written");

    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not wasm").unwrap();
    let refused = failure(&vdi(&["plugin", "push", path(&text), &by_tag]));
    assert!(refused.contains("not a WebAssembly component"), "{refused}");

    let bad = failure(&vdi(&["plugin", "push", path(&file), "127.0.0.1/quota"]));
    assert!(bad.contains("must start with oci://"), "{bad}");
}
