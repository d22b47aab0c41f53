//! A loaded plugin: its `InstancePre`, limits and settings, and one fresh `Store` per call.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::{Engine, ResourceLimiter, Store, Trap};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::admission::AdmissionPre;
use crate::bindings::scheduler::SchedulerPre;
use crate::bindings::template::TemplatePre;
use crate::bindings::{host, types as wit};
use crate::deadline::{CallClock, DeadlineExceeded};
use crate::digest::Digest;
use crate::error::{CallError, LoadError};
use crate::guestlog::{CallLog, LogGate, MAX_LOG_LINE, truncate};
use crate::metrics::PluginMetrics;
use crate::render::RenderPolicy;
use crate::stdio::{CappedOutput, Captured};
use crate::types::{
    AdmissionContext, Node, Placement, PlacementDecision, SessionRequest, TemplateInfo, Verdict,
};

/// Default time limit of one decision.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(100);
/// Default linear-memory limit of one instance.
pub const DEFAULT_MEMORY_BYTES: usize = 64 << 20;
/// Default cap on a deny reason or an unschedulable reason list.
pub const DEFAULT_MAX_REASON_BYTES: usize = 4 << 10;

/// Which decision a plugin makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Hook {
    /// `admission` world.
    Admission,
    /// `scheduler` world.
    Scheduler,
    /// `template` world.
    Template,
}

impl Hook {
    /// The world's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Admission => "admission",
            Self::Scheduler => "scheduler",
            Self::Template => "template",
        }
    }
}

/// Hard limits of one plugin's calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time of one call (instantiation included).
    pub timeout: Duration,
    /// Total linear memory of one instance, in bytes.
    pub memory_bytes: usize,
    /// Largest deny reason or unschedulable reason list, in bytes.
    pub max_reason_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            max_reason_bytes: DEFAULT_MAX_REASON_BYTES,
        }
    }
}

/// Store data of one call: a WASI context with no capabilities, the limiter, the call's
/// deadline (which clock subscriptions honour) and its log budget.
pub(crate) struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
    plugin: Arc<str>,
    gate: Arc<LogGate>,
    log: CallLog,
    /// When the call must be over.
    pub(crate) deadline: Instant,
    /// The zero of the guest's monotonic clock.
    pub(crate) clock_start: Instant,
}

impl State {
    pub(crate) fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wit::Host for State {}

impl host::Host for State {
    fn log(&mut self, level: host::LogLevel, message: String) {
        let plugin = &*self.plugin;
        let Some(message) = self.log.admit(&message) else {
            return;
        };
        if !self.gate.pass(plugin) {
            return;
        }
        match level {
            host::LogLevel::Trace => tracing::trace!(plugin, "{message}"),
            host::LogLevel::Debug => tracing::debug!(plugin, "{message}"),
            host::LogLevel::Info => tracing::info!(plugin, "{message}"),
            host::LogLevel::Warn => tracing::warn!(plugin, "{message}"),
            host::LogLevel::Error => tracing::error!(plugin, "{message}"),
        }
    }
}

/// Caps the total linear memory of an instance and remembers a refused growth, so that the
/// trap that follows is reported as [`CallError::MemoryLimit`].
struct MemoryLimiter {
    limit: usize,
    used: usize,
    refused: Option<usize>,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.used - current.min(self.used) + desired;
        if total > self.limit {
            self.refused = Some(total);
            return Ok(false);
        }
        self.used = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= crate::runtime::MAX_TABLE_ELEMENTS)
    }
}

pub(crate) enum HookPre {
    Admission(AdmissionPre<State>),
    Scheduler(SchedulerPre<State>),
    Template(TemplatePre<State>),
}

struct Inner {
    name: Arc<str>,
    digest: Digest,
    size: usize,
    limits: Limits,
    pre: HookPre,
    engine: Engine,
    metrics: PluginMetrics,
    gate: Arc<LogGate>,
}

/// A loaded, configured plugin. Cheap to clone; every call gets a fresh instance.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<Inner>,
    settings: Arc<str>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.inner.name)
            .field("digest", &self.inner.digest)
            .field("hook", &self.hook())
            .finish_non_exhaustive()
    }
}

/// What one call observed besides its result.
struct Outcome<R> {
    result: Result<R, CallError>,
    stdout: Captured,
    stderr: Captured,
    log_dropped: usize,
}

impl Plugin {
    pub(crate) fn new(
        name: &str,
        digest: Digest,
        size: usize,
        limits: Limits,
        pre: HookPre,
        engine: Engine,
        metrics: PluginMetrics,
    ) -> Self {
        let inner = Inner {
            name: name.into(),
            digest,
            size,
            limits,
            pre,
            engine,
            metrics,
            gate: Arc::default(),
        };
        Self {
            inner: Arc::new(inner),
            settings: "{}".into(),
        }
    }

    /// The plugin's name (its `VDIPlugin` name).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The module's digest.
    pub fn digest(&self) -> Digest {
        self.inner.digest
    }

    /// Size of the module in bytes.
    pub fn size(&self) -> usize {
        self.inner.size
    }

    /// The hook it implements.
    pub fn hook(&self) -> Hook {
        match self.inner.pre {
            HookPre::Admission(_) => Hook::Admission,
            HookPre::Scheduler(_) => Hook::Scheduler,
            HookPre::Template(_) => Hook::Template,
        }
    }

    /// Its limits.
    pub fn limits(&self) -> Limits {
        self.inner.limits
    }

    /// The normalised settings `configure` returned.
    pub fn settings(&self) -> &str {
        &self.settings
    }

    /// The same compiled plugin with other settings, validated by its `configure`.
    pub fn with_settings(&self, settings: &str) -> Result<Self, LoadError> {
        let settings = if settings.trim().is_empty() {
            "{}"
        } else {
            settings
        };
        let out = match &self.inner.pre {
            HookPre::Admission(p) => self.call("configure", |s| {
                p.instantiate(&mut *s)?.call_configure(s, settings)
            }),
            HookPre::Scheduler(p) => self.call("configure", |s| {
                p.instantiate(&mut *s)?.call_configure(s, settings)
            }),
            HookPre::Template(p) => self.call("configure", |s| {
                p.instantiate(&mut *s)?.call_configure(s, settings)
            }),
        };
        match out {
            Ok(Ok(normalised)) => Ok(Self {
                inner: self.inner.clone(),
                settings: normalised.into(),
            }),
            Ok(Err(e)) => Err(LoadError::Settings {
                field: e.field,
                reason: e.reason,
            }),
            Err(e) => Err(LoadError::Configure(Box::new(e))),
        }
    }

    /// Admission: reviews one request.
    pub fn review(
        &self,
        request: &SessionRequest,
        context: &AdmissionContext,
    ) -> Result<Verdict, CallError> {
        let HookPre::Admission(pre) = &self.inner.pre else {
            return Err(self.wrong_hook(Hook::Admission));
        };
        let settings = &*self.settings;
        let verdict = self.call("review", |s| {
            pre.instantiate(&mut *s)?
                .call_review(s, settings, request, context)
        })?;
        let verdict = verdict.map_err(CallError::Plugin)?;
        match &verdict {
            Verdict::Deny(reason) => self.check_reason_size(reason.len())?,
            Verdict::Mutate(spec) if spec.user != request.spec.user => {
                return Err(CallError::IdentityChanged {
                    from: request.spec.user.name.clone(),
                    to: spec.user.name.clone(),
                });
            }
            Verdict::Mutate(spec) if spec.template.is_empty() => {
                return Err(CallError::BadOutput {
                    reason: "mutated spec has an empty template".into(),
                });
            }
            _ => {}
        }
        Ok(verdict)
    }

    /// Scheduler: places one request on one of `nodes`. The host re-checks the placement.
    pub fn place(
        &self,
        request: &SessionRequest,
        nodes: &[Node],
    ) -> Result<PlacementDecision, CallError> {
        let mut decisions = self.place_batch(std::slice::from_ref(request), nodes)?;
        decisions.pop().ok_or_else(|| CallError::BadOutput {
            reason: "no decision".into(),
        })
    }

    /// Scheduler: places `requests` in order against one inventory snapshot, in one instance.
    /// The host re-checks every placement, counting the batch's earlier ones.
    pub fn place_batch(
        &self,
        requests: &[SessionRequest],
        nodes: &[Node],
    ) -> Result<Vec<PlacementDecision>, CallError> {
        let HookPre::Scheduler(pre) = &self.inner.pre else {
            return Err(self.wrong_hook(Hook::Scheduler));
        };
        let settings = &*self.settings;
        let decisions = self.call("place", |s| {
            pre.instantiate(&mut *s)?
                .call_place(s, settings, requests, nodes)
        })?;
        let decisions = decisions.map_err(CallError::Plugin)?;
        for d in &decisions {
            if let PlacementDecision::Unschedulable(reasons) = d {
                self.check_reason_size(reasons.iter().map(String::len).sum())?;
            }
        }
        crate::placement::check_batch(requests, nodes, &decisions)?;
        Ok(decisions)
    }

    /// Template: renders the session's objects and checks them against `policy`.
    pub fn render(
        &self,
        request: &SessionRequest,
        template: &TemplateInfo,
        placement: &Placement,
        policy: &RenderPolicy,
    ) -> Result<Vec<serde_json::Value>, CallError> {
        let HookPre::Template(pre) = &self.inner.pre else {
            return Err(self.wrong_hook(Hook::Template));
        };
        let settings = &*self.settings;
        let objects = self.call("render", |s| {
            pre.instantiate(&mut *s)?
                .call_render(s, settings, request, template, placement)
        })?;
        let objects = objects.map_err(CallError::Plugin)?;
        policy
            .check_placed(request, placement, objects)
            .map_err(|e| CallError::BadOutput {
                reason: e.to_string(),
            })
    }

    /// Builds a fresh instance exactly as a decision does (Store, WASI context, limits,
    /// instantiation) and drops it without calling it: the sandbox's own cost per decision,
    /// which `vdi plugin bench` reports next to the decision so the floor shows in one run.
    /// Not recorded in the plugin's metrics.
    pub fn instantiate_only(&self) -> Result<(), CallError> {
        let outcome = match &self.inner.pre {
            HookPre::Admission(p) => self.run_in_store(|s| p.instantiate(s).map(drop)),
            HookPre::Scheduler(p) => self.run_in_store(|s| p.instantiate(s).map(drop)),
            HookPre::Template(p) => self.run_in_store(|s| p.instantiate(s).map(drop)),
        };
        outcome.result
    }

    fn wrong_hook(&self, called: Hook) -> CallError {
        CallError::WrongHook {
            called: called.name(),
            actual: self.hook().name(),
        }
    }

    fn check_reason_size(&self, len: usize) -> Result<(), CallError> {
        let max = self.inner.limits.max_reason_bytes;
        if len > max {
            return Err(CallError::BadOutput {
                reason: format!("reason of {len} bytes exceeds the {max}-byte limit"),
            });
        }
        Ok(())
    }

    /// Runs `f` in a fresh store with this plugin's limits; records metrics and guest output.
    ///
    /// WASI's host calls must not run on a tokio worker (they drive futures of their own): a
    /// call made from inside a runtime moves to a scoped thread. Servers use a
    /// [`PluginPool`](crate::PluginPool), whose threads are never inside a runtime.
    fn call<R: Send>(
        &self,
        function: &'static str,
        f: impl FnOnce(&mut Store<State>) -> wasmtime::Result<R> + Send,
    ) -> Result<R, CallError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return std::thread::scope(|scope| {
                std::thread::Builder::new()
                    .name("plugin-call".into())
                    .spawn_scoped(scope, || self.call_here(function, f))
                    .map_err(|e| CallError::Instantiate(format!("cannot start a thread: {e}")))?
                    .join()
                    .unwrap_or_else(|_| {
                        Err(CallError::Trap {
                            message: "the host panicked during the call".into(),
                        })
                    })
            });
        }
        self.call_here(function, f)
    }

    fn call_here<R>(
        &self,
        function: &'static str,
        f: impl FnOnce(&mut Store<State>) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        let started = Instant::now();
        let outcome = self.run_in_store(f);
        let elapsed = started.elapsed();
        self.inner
            .metrics
            .observe(elapsed, outcome.result.as_ref().err());
        self.forward_output(function, &outcome.stdout, &outcome.stderr);
        if outcome.log_dropped > 0 {
            tracing::warn!(
                plugin = %self.inner.name,
                function,
                dropped_bytes = outcome.log_dropped,
                "plugin log over its per-call budget; the rest was dropped"
            );
        }
        if let Err(e) = &outcome.result {
            tracing::debug!(plugin = %self.inner.name, function, error = %e, "plugin call failed");
        }
        outcome.result
    }

    fn run_in_store<R>(
        &self,
        f: impl FnOnce(&mut Store<State>) -> wasmtime::Result<R>,
    ) -> Outcome<R> {
        let limits = self.inner.limits;
        let stdout = CappedOutput::default();
        let stderr = CappedOutput::default();
        let now = Instant::now();
        // No preopens, no environment, no arguments, no sockets, no name lookup.
        let wasi = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .monotonic_clock(CallClock { start: now })
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let state = State {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter {
                limit: limits.memory_bytes,
                used: 0,
                refused: None,
            },
            plugin: self.inner.name.clone(),
            gate: self.inner.gate.clone(),
            log: CallLog::default(),
            deadline: now + limits.timeout,
            clock_start: now,
        };
        let mut store = Store::new(&self.inner.engine, state);
        store.limiter(|s| &mut s.limiter);
        let ticks = limits
            .timeout
            .as_nanos()
            .div_ceil(crate::runtime::EPOCH_TICK.as_nanos());
        store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX).saturating_add(1));
        let result = f(&mut store);
        let (stdout, stderr) = (stdout.captured(), stderr.captured());
        let result = result.map_err(|e| classify(e, &store, limits, stderr.last()));
        Outcome {
            result,
            stdout,
            stderr,
            log_dropped: store.data().log.dropped(),
        }
    }

    /// Sends the guest's stdout (info) and stderr (warn) to the log, line by line, through the
    /// plugin's rate limit.
    fn forward_output(&self, function: &str, stdout: &Captured, stderr: &Captured) {
        let plugin = &*self.inner.name;
        for (stream, captured) in [("stdout", stdout), ("stderr", stderr)] {
            let text = captured.text();
            for line in text.lines().filter(|l| !l.is_empty()) {
                if !self.inner.gate.pass(plugin) {
                    continue;
                }
                let line = truncate(line, MAX_LOG_LINE);
                if stream == "stdout" {
                    tracing::info!(plugin, function, stream, "{line}");
                } else {
                    tracing::warn!(plugin, function, stream, "{line}");
                }
            }
        }
    }
}

/// Turns a wasmtime error into the typed error it stands for.
fn classify(e: wasmtime::Error, store: &Store<State>, limits: Limits, stderr: &[u8]) -> CallError {
    if let Some(requested) = store.data().limiter.refused {
        return CallError::MemoryLimit {
            limit: limits.memory_bytes,
            requested,
        };
    }
    if e.downcast_ref::<DeadlineExceeded>().is_some() {
        return CallError::Timeout {
            limit: limits.timeout,
        };
    }
    match e.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => CallError::Timeout {
            limit: limits.timeout,
        },
        Some(Trap::StackOverflow) => CallError::StackOverflow,
        Some(trap) => {
            let stderr = String::from_utf8_lossy(stderr);
            let last: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
            let tail = last[last.len().saturating_sub(3)..].join(" | ");
            let message = if tail.is_empty() {
                trap.to_string()
            } else {
                format!("{trap}; guest stderr: {}", truncate(&tail, MAX_LOG_LINE))
            };
            CallError::Trap { message }
        }
        None if format!("{e:#}").contains("concurrent") => CallError::Instantiate(format!("{e:#}")),
        None => CallError::Trap {
            message: format!("{e:#}"),
        },
    }
}
