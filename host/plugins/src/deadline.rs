//! The call deadline inside WASI: clock subscriptions end by the call's deadline or trap.
//!
//! Epoch interruption stops wasm code, not a guest blocked in a host call: `std::thread::sleep`
//! compiles to a `monotonic-clock` subscription and `poll`, which wasmtime-wasi would wait out
//! whatever the plugin's time limit. The runtime shadows the two subscription functions: a
//! subscription that would wake after the call's deadline traps at once with
//! [`DeadlineExceeded`] (reported as `CallError::Timeout`), one within it sleeps as asked. The
//! other pollables a plugin can reach (its stdio pipes, which never block) are always ready, so
//! no host call outlives the deadline.

use std::time::{Duration, Instant};

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::HostMonotonicClock;
use wasmtime_wasi::p2::{DynPollable, Pollable, subscribe};

use crate::plugin::State;

/// The instance wasmtime-wasi registers for `wasi:clocks/monotonic-clock` (the newest 0.2.x it
/// implements; guests importing older 0.2 versions resolve to it). The hostile-plugin tests fail
/// if an upgrade renames it, since a sleeping guest would then no longer be cut off.
const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";

/// A guest asked to wait past its call's deadline.
#[derive(Debug, thiserror::Error)]
#[error("the plugin waited on a clock past its call's deadline")]
pub(crate) struct DeadlineExceeded;

/// The guest's monotonic clock: nanoseconds since its call started.
pub(crate) struct CallClock {
    pub(crate) start: Instant,
}

impl HostMonotonicClock for CallClock {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        nanos(self.start.elapsed())
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Sleeps until `until`.
struct Sleep {
    until: tokio::time::Instant,
}

#[wasmtime_wasi::async_trait]
impl Pollable for Sleep {
    async fn ready(&mut self) {
        tokio::time::sleep_until(self.until).await;
    }
}

/// A pollable ready `after` from now, or the deadline error when that is past the call's end.
fn subscribe_after(
    mut store: StoreContextMut<'_, State>,
    after: Duration,
) -> wasmtime::Result<(Resource<DynPollable>,)> {
    let now = Instant::now();
    let wake = now
        .checked_add(after)
        .filter(|w| *w <= store.data().deadline)
        .ok_or_else(|| wasmtime::Error::new(DeadlineExceeded))?;
    let table = store.data_mut().table();
    let sleep = table.push(Sleep {
        until: tokio::time::Instant::from_std(wake),
    })?;
    Ok((subscribe(table, sleep)?,))
}

/// Replaces wasmtime-wasi's clock subscriptions in `linker` with deadline-aware ones.
pub(crate) fn shadow_clock_subscriptions(linker: &mut Linker<State>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut clock = linker.instance(MONOTONIC_CLOCK)?;
    clock.func_wrap("subscribe-duration", |store, (duration,): (u64,)| {
        subscribe_after(store, Duration::from_nanos(duration))
    })?;
    clock.func_wrap(
        "subscribe-instant",
        |store: StoreContextMut<'_, State>, (when,): (u64,)| {
            let now = nanos(store.data().clock_start.elapsed());
            subscribe_after(store, Duration::from_nanos(when.saturating_sub(now)))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}
