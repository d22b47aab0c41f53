//! Hostile plugins: each attack ends in its typed error within its limit, and the very next
//! call to a good plugin succeeds.

mod common;

use std::time::{Duration, Instant};

use common::{create, load, load_with, request, runtime, wasm};
use vdi_plugin_host::types::Verdict;
use vdi_plugin_host::{CallError, Limits, LoadError, Plugin, Runtime};

/// Loads the hostile guest in `mode`.
fn hostile(rt: &Runtime, mode: &str, limits: Limits) -> Plugin {
    load_with(
        rt,
        "vdi_hostile",
        &format!(r#"{{"mode":"{mode}"}}"#),
        limits,
    )
}

/// Runs `mode`, checks the error with `expect`, then checks a good plugin still answers.
fn attack(mode: &str, limits: Limits, expect: impl FnOnce(&CallError)) -> Duration {
    let rt = runtime();
    let bad = hostile(&rt, mode, limits);
    let good = load(&rt, "vdi_quota", "");
    let started = Instant::now();
    let err = bad
        .review(&request(), &create())
        .expect_err("the attack must fail");
    let took = started.elapsed();
    expect(&err);
    assert_eq!(
        good.review(&request(), &create()),
        Ok(Verdict::Allow),
        "a good plugin still answers after {mode}"
    );
    // And the hostile plugin itself gets a fresh instance next time: the same typed error again.
    let again = bad
        .review(&request(), &create())
        .expect_err("the attack fails again");
    assert_eq!(std::mem::discriminant(&again), std::mem::discriminant(&err));
    took
}

#[test]
fn infinite_loop_times_out_at_its_limit() {
    let limits = Limits {
        timeout: Duration::from_millis(50),
        ..Limits::default()
    };
    let took = attack("loop", limits, |e| {
        assert_eq!(
            *e,
            CallError::Timeout {
                limit: Duration::from_millis(50)
            }
        );
    });
    assert!(
        took >= Duration::from_millis(50),
        "stopped before its limit: {took:?}"
    );
    assert!(
        took < Duration::from_secs(2),
        "stopped long after its limit: {took:?}"
    );
}

#[test]
fn memory_bomb_hits_the_memory_limit() {
    let limits = Limits {
        memory_bytes: 16 << 20,
        ..Limits::default()
    };
    attack("memory-bomb", limits, |e| match e {
        CallError::MemoryLimit { limit, requested } => {
            assert_eq!(*limit, 16 << 20);
            assert!(*requested > 16 << 20, "requested {requested}");
        }
        other => panic!("expected MemoryLimit, got {other:?}"),
    });
}

#[test]
fn deep_recursion_overflows_the_stack() {
    attack("recursion", Limits::default(), |e| {
        assert_eq!(*e, CallError::StackOverflow)
    });
}

#[test]
fn panic_is_a_trap_carrying_the_panic_message() {
    attack("panic", Limits::default(), |e| match e {
        CallError::Trap { message } => {
            assert!(
                message.contains("hostile plugin panics on purpose"),
                "{message}"
            );
        }
        other => panic!("expected Trap, got {other:?}"),
    });
}

#[test]
fn huge_output_is_refused() {
    attack("huge-output", Limits::default(), |e| match e {
        CallError::BadOutput { reason } => {
            assert!(reason.contains("exceeds the 4096-byte limit"), "{reason}")
        }
        other => panic!("expected BadOutput, got {other:?}"),
    });
}

#[test]
fn reading_a_file_finds_no_file_system() {
    attack("read-file", Limits::default(), |e| match e {
        CallError::Trap { message } => assert!(message.contains("read /etc/passwd"), "{message}"),
        other => panic!("expected Trap, got {other:?}"),
    });
}

#[test]
fn opening_a_socket_is_denied() {
    attack("socket", Limits::default(), |e| match e {
        CallError::Trap { message } => assert!(message.contains("connect a socket"), "{message}"),
        other => panic!("expected Trap, got {other:?}"),
    });
}

#[test]
fn changing_the_users_identity_is_refused() {
    attack("change-identity", Limits::default(), |e| {
        assert_eq!(
            *e,
            CallError::IdentityChanged {
                from: "alice".into(),
                to: "root".into()
            }
        );
    });
}

#[test]
fn no_environment_arguments_or_working_directory_are_visible() {
    let rt = runtime();
    let p = hostile(&rt, "ambient", Limits::default());
    assert_eq!(p.review(&request(), &create()), Ok(Verdict::Allow));
}

#[test]
fn importing_an_unprovided_interface_fails_to_load_naming_it() {
    let rt = runtime();
    let err = rt
        .load(
            "evil",
            &wasm("vdi_hostile_import"),
            None,
            Limits::default(),
            "{}",
        )
        .expect_err("must not load");
    match err {
        LoadError::Link { import } => assert_eq!(import, "hostile:evil/secrets"),
        other => panic!("expected Link, got {other:?}"),
    }
    // The runtime is unaffected.
    let good = load(&rt, "vdi_quota", "");
    assert_eq!(good.review(&request(), &create()), Ok(Verdict::Allow));
}

/// 50 ms: the limit the blocking attacks run under.
const SHORT: Duration = Duration::from_millis(50);

fn short() -> Limits {
    Limits {
        timeout: SHORT,
        ..Limits::default()
    }
}

fn assert_timeout(e: &CallError) {
    assert_eq!(*e, CallError::Timeout { limit: SHORT });
}

#[test]
fn sleeping_past_the_deadline_ends_at_once_in_the_timeout_error() {
    // No wasm runs while the guest sleeps, so epoch interruption alone would wait an hour.
    let took = attack("sleep-forever", short(), assert_timeout);
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[test]
fn sleeping_then_spinning_is_cut_off_at_the_limit() {
    let took = attack("sleep-then-loop", short(), assert_timeout);
    assert!(took >= SHORT, "stopped before its limit: {took:?}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[test]
fn a_stdout_flood_is_truncated_and_the_plugin_still_decides() {
    let rt = runtime();
    let p = hostile(&rt, "stdout-flood", Limits::default());
    assert_eq!(p.review(&request(), &create()), Ok(Verdict::Allow));
}

#[test]
fn a_log_flood_is_capped_and_the_plugin_still_decides() {
    let rt = runtime();
    let p = hostile(&rt, "log-flood", Limits::default());
    assert_eq!(p.review(&request(), &create()), Ok(Verdict::Allow));
}

#[test]
fn a_panic_after_a_stderr_flood_still_reports_the_panic_message() {
    attack("stderr-panic", Limits::default(), |e| match e {
        CallError::Trap { message } => {
            assert!(
                message.contains("hostile plugin panics after a flood"),
                "{message}"
            );
            assert!(message.len() < 8 << 10, "{} bytes", message.len());
        }
        other => panic!("expected Trap, got {other:?}"),
    });
}

/// Every blocking or flooding attack, called from inside a tokio runtime (current-thread: the
/// flavour where wasmtime-wasi's `block_on` would panic) and through the plugin pool.
#[tokio::test(flavor = "current_thread")]
async fn blocking_attacks_inside_a_runtime_and_through_the_pool_end_in_their_errors() {
    let rt = runtime();
    let good = load(&rt, "vdi_quota", "");
    for (mode, limits, timeout) in [
        ("sleep-forever", short(), true),
        ("sleep-then-loop", short(), true),
        ("stdout-flood", Limits::default(), false),
        ("stderr-panic", Limits::default(), false),
        ("log-flood", Limits::default(), false),
    ] {
        let bad = hostile(&rt, mode, limits);
        // Directly, on the runtime's thread.
        let direct = bad.review(&request(), &create());
        // Through the pool, as servers call plugins.
        let pooled = rt
            .pool()
            .run(limits.timeout, {
                let bad = bad.clone();
                move || bad.review(&request(), &create())
            })
            .await
            .expect("the pool answers");
        for (how, result) in [("direct", direct), ("pool", pooled)] {
            match (mode, &result) {
                (_, Err(e)) if timeout => assert_timeout(e),
                ("stderr-panic", Err(CallError::Trap { message })) => {
                    assert!(message.contains("panics after a flood"), "{how}: {message}")
                }
                ("stdout-flood" | "log-flood", Ok(Verdict::Allow)) => {}
                _ => panic!("{mode} {how}: unexpected {result:?}"),
            }
        }
        let next = rt
            .pool()
            .run(Duration::from_secs(1), {
                let good = good.clone();
                move || good.review(&request(), &create())
            })
            .await
            .expect("the pool answers");
        assert_eq!(next, Ok(Verdict::Allow), "after {mode}");
    }
}
