//! The one `Engine` of a process: configuration, epoch ticker, compile cache and loading.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::bindings::admission::Admission;
use crate::digest::Digest;
use crate::error::LoadError;
use crate::metrics::Metrics;
use crate::plugin::{Hook, HookPre, Limits, Plugin, State};
use crate::pool::PluginPool;

/// How often the epoch advances; time limits are rounded up to whole ticks. A 1 ms tick
/// preempted about 2% of 20 µs decisions on a 2-core machine and showed up in their p99.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);
/// Instances (and so concurrent decisions) the pool holds.
pub const DEFAULT_POOL_INSTANCES: u32 = 256;
/// Largest linear memory any plugin may be given; per-plugin limits are at most this.
pub const MAX_MEMORY_BYTES: usize = 512 << 20;
/// Bytes of each pooled memory reset in place (dirty pages only) rather than decommitted.
pub const KEEP_RESIDENT_BYTES: usize = 4 << 20;
/// Table elements per table (Python components need many).
pub const MAX_TABLE_ELEMENTS: usize = 100_000;

/// Engine-wide settings.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Directory of compiled artefacts; `None` compiles every load.
    pub cache_dir: Option<PathBuf>,
    /// Concurrent instances the pooling allocator reserves.
    pub pool_instances: u32,
    /// Threads of the plugin pool; 0 means one per CPU.
    pub plugin_threads: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            cache_dir: None,
            pool_instances: DEFAULT_POOL_INSTANCES,
            plugin_threads: 0,
        }
    }
}

/// Where a component came from on load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Compiled now (and written to the cache if there is one).
    Compiled,
    /// Loaded precompiled from the on-disk cache.
    Cached,
}

/// What loading took, for `vdi plugin bench` and the logs.
#[derive(Debug, Clone, Copy)]
pub struct LoadStats {
    /// Compiled or read from the cache.
    pub outcome: CacheOutcome,
    /// Time to compile or deserialise.
    pub compile: Duration,
    /// Time to link and `configure`.
    pub link: Duration,
}

/// Facts about a component, without loading it as a plugin.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Inspection {
    /// The world it implements, if any.
    pub world: Option<&'static str>,
    /// `sha256:<hex>`.
    pub digest: String,
    /// Size of the component in bytes.
    pub size: usize,
    /// Import names.
    pub imports: Vec<String>,
    /// Export names.
    pub exports: Vec<String>,
}

/// The plugin runtime: one per process, shared by every plugin.
#[derive(Clone)]
pub struct Runtime {
    engine: Engine,
    linker: Arc<Linker<State>>,
    cache_dir: Option<PathBuf>,
    metrics: Arc<Metrics>,
    pool: PluginPool,
}

impl Runtime {
    /// Creates the engine (pooling allocator, epoch interruption) and starts its epoch ticker.
    pub fn new(config: RuntimeConfig) -> Result<Self, LoadError> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(config.pool_instances)
            .total_core_instances(config.pool_instances * 8)
            .total_memories(config.pool_instances * 2)
            .total_tables(config.pool_instances * 4)
            .total_stacks(config.pool_instances)
            .max_memory_size(MAX_MEMORY_BYTES)
            .table_elements(MAX_TABLE_ELEMENTS)
            .max_core_instance_size(4 << 20)
            .max_component_instance_size(4 << 20)
            // Reset only the pages an instance dirtied, with memset, instead of madvise-ing
            // whole memories: madvise costs a syscall, page faults on reuse and, with threads
            // on other cores, TLB shoot-downs. PAGEMAP_SCAN needs Linux 6.7; `Auto` falls back.
            .pagemap_scan(Enabled::Auto)
            .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
            .table_keep_resident(KEEP_RESIDENT_BYTES / 16);
        let mut wasm = Config::new();
        wasm.wasm_component_model(true)
            .epoch_interruption(true)
            .max_wasm_stack(512 << 10)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&wasm).map_err(|e| LoadError::Compile(format!("{e:#}")))?;
        spawn_epoch_ticker(&engine);

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .and_then(|()| crate::deadline::shadow_clock_subscriptions(&mut linker))
            .and_then(|()| Admission::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s))
            .map_err(|e| LoadError::Compile(format!("linker set-up: {e:#}")))?;
        let pool = match config.plugin_threads {
            0 => PluginPool::for_this_machine(),
            n => PluginPool::new(n, n * 4),
        }
        .map_err(|e| LoadError::Compile(format!("cannot start the plugin threads: {e}")))?;
        Ok(Self {
            engine,
            linker: Arc::new(linker),
            cache_dir: config.cache_dir,
            metrics: Arc::new(Metrics::default()),
            pool,
        })
    }

    /// The threads plugin calls (and compiles) run on, for async and server callers.
    pub fn pool(&self) -> &PluginPool {
        &self.pool
    }

    /// Per-plugin call counts, errors and latency histograms.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Loads a plugin: checks the digest, compiles (or reads the cache), links it against the
    /// host, and validates its settings through `configure`.
    pub fn load(
        &self,
        name: &str,
        bytes: &[u8],
        expected: Option<&Digest>,
        limits: Limits,
        settings: &str,
    ) -> Result<(Plugin, LoadStats), LoadError> {
        let digest = Digest::of(bytes);
        if let Some(expected) = expected.filter(|e| **e != digest) {
            return Err(LoadError::DigestMismatch {
                expected: expected.hex(),
                actual: digest.hex(),
            });
        }
        let started = Instant::now();
        let (component, outcome) = self.component(&digest, bytes)?;
        let compile = started.elapsed();
        let started = Instant::now();
        let hook = detect_hook(&self.engine, &component)?;
        let instance_pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(link_error)?;
        let exports = |e: wasmtime::Error| LoadError::Exports {
            world: hook.name(),
            reason: format!("{e:#}"),
        };
        let pre = match hook {
            Hook::Admission => HookPre::Admission(
                crate::bindings::admission::AdmissionPre::new(instance_pre).map_err(exports)?,
            ),
            Hook::Scheduler => HookPre::Scheduler(
                crate::bindings::scheduler::SchedulerPre::new(instance_pre).map_err(exports)?,
            ),
            Hook::Template => HookPre::Template(
                crate::bindings::template::TemplatePre::new(instance_pre).map_err(exports)?,
            ),
        };
        let plugin = Plugin::new(
            name,
            digest,
            bytes.len(),
            limits,
            pre,
            self.engine.clone(),
            self.metrics.for_plugin(name, hook),
        )
        .with_settings(settings)?;
        let stats = LoadStats {
            outcome,
            compile,
            link: started.elapsed(),
        };
        tracing::info!(
            plugin = name,
            digest = %plugin.digest(),
            hook = hook.name(),
            cache = ?outcome,
            compile_ms = compile.as_secs_f64() * 1e3,
            "plugin loaded"
        );
        Ok((plugin, stats))
    }

    /// Describes a component (world, digest, imports, exports) without linking it.
    pub fn inspect(&self, bytes: &[u8]) -> Result<Inspection, LoadError> {
        let digest = Digest::of(bytes);
        let (component, _) = self.component(&digest, bytes)?;
        let ty = component.component_type();
        Ok(Inspection {
            world: detect_hook(&self.engine, &component).ok().map(Hook::name),
            digest: digest.to_string(),
            size: bytes.len(),
            imports: ty
                .imports(&self.engine)
                .map(|(n, _)| n.to_owned())
                .collect(),
            exports: ty
                .exports(&self.engine)
                .map(|(n, _)| n.to_owned())
                .collect(),
        })
    }

    /// Compiles `bytes`, or deserialises the artefact cached for `digest` and this engine.
    fn component(
        &self,
        digest: &Digest,
        bytes: &[u8],
    ) -> Result<(Component, CacheOutcome), LoadError> {
        let Some(path) = self.cache_path(digest) else {
            let c = Component::new(&self.engine, bytes)
                .map_err(|e| LoadError::Compile(format!("{e:#}")))?;
            return Ok((c, CacheOutcome::Compiled));
        };
        // Read into memory rather than mmap the file: a mapped artefact that someone truncates
        // would crash the process (SIGBUS), a copied one cannot.
        if let Ok(artefact) = std::fs::read(&path) {
            // SAFETY: the file was written by `precompile_component` of an engine with the same
            // compatibility hash (it is in the path), into a cache directory that only the
            // platform writes. Wasmtime still checks the header and refuses foreign artefacts.
            #[expect(unsafe_code, reason = "deserialising our own precompiled artefact")]
            let loaded = unsafe { Component::deserialize(&self.engine, &artefact) };
            match loaded {
                Ok(c) => return Ok((c, CacheOutcome::Cached)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "discarding unusable cache entry")
                }
            }
        }
        let artefact = self
            .engine
            .precompile_component(bytes)
            .map_err(|e| LoadError::Compile(format!("{e:#}")))?;
        write_atomically(&path, &artefact).map_err(|source| LoadError::Cache {
            path: path.clone(),
            source,
        })?;
        #[expect(
            unsafe_code,
            reason = "deserialising the artefact this engine just produced"
        )]
        // SAFETY: `artefact` was produced by `precompile_component` of this very engine.
        let c = unsafe { Component::deserialize(&self.engine, &artefact) }
            .map_err(|e| LoadError::Compile(format!("{e:#}")))?;
        Ok((c, CacheOutcome::Compiled))
    }

    /// `<cache>/<engine compatibility hash>/<digest hex>.cwasm`
    fn cache_path(&self, digest: &Digest) -> Option<PathBuf> {
        let dir = self.cache_dir.as_ref()?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut h);
        Some(
            dir.join(format!("engine-{:016x}", h.finish()))
                .join(format!("{}.cwasm", digest.hex())),
        )
    }
}

/// Advances the engine's epoch every tick until the engine is gone.
fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("wasm-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .map(drop)
        .unwrap_or_else(|e| tracing::error!(error = %e, "cannot start the epoch ticker"));
}

/// Which hook a component implements, from its exports.
fn detect_hook(engine: &Engine, component: &Component) -> Result<Hook, LoadError> {
    let ty = component.component_type();
    let names: Vec<&str> = ty.exports(engine).map(|(n, _)| n).collect();
    [
        ("review", Hook::Admission),
        ("place", Hook::Scheduler),
        ("render", Hook::Template),
    ]
    .into_iter()
    .find(|(export, _)| names.contains(export))
    .map(|(_, hook)| hook)
    .ok_or_else(|| LoadError::UnknownWorld {
        exports: names.join(", "),
    })
}

/// Names the import the linker could not satisfy.
fn link_error(e: wasmtime::Error) -> LoadError {
    let text = format!("{e:#}");
    let import = text.split('`').nth(1).map_or(text.clone(), str::to_owned);
    LoadError::Link { import }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{}.{}.tmp", std::process::id(), rand_suffix()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}
