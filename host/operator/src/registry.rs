//! The plugins in force, and the controller that loads them from `VDIPlugin` objects.
//!
//! The set of loaded plugins is an immutable snapshot behind an `Arc`: a decision takes the
//! snapshot when it starts and finishes on it, while a reload swaps in a new one atomically. A
//! `VDIPlugin` whose new spec fails to load (fetch, digest, compile, wrong hook, settings) keeps
//! its previous version serving and reports `Error` with the reason.
//!
//! Every replica loads the plugins (followers answer webhooks too), but only the leader writes
//! `VDIPlugin` status: a replica that becomes the leader writes whatever differs from what it
//! computed, so nothing a follower skipped is lost.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Api, ResourceExt as _};
use serde_json::json;
use tokio::sync::watch;
use vdi_crd::{FailurePolicy, HookKind, PluginMatch, PluginPhase, VDIPlugin, VDIPluginStatus};
use vdi_plugin_host::{AdmissionChain, ChainEntry, Digest, Hook, Limits, Plugin, Runtime};

use crate::modules::Fetcher;

/// How long after a failed load the same spec is tried again (downloads can fail briefly).
pub const RETRY_FAILED_AFTER: Duration = Duration::from_secs(30);

/// An admission plugin with its place in the chain.
#[derive(Debug, Clone)]
pub struct AdmissionPlugin {
    /// The plugin.
    pub plugin: Plugin,
    /// Its failure policy.
    pub failure_policy: FailurePolicy,
    /// Which sessions it judges.
    pub matcher: PluginMatch,
}

/// One consistent set of loaded plugins.
#[derive(Debug, Default)]
pub struct PluginSet {
    /// Admission plugins in chain order.
    pub admission: Vec<AdmissionPlugin>,
    /// Scheduler plugins, default first.
    pub schedulers: Vec<Plugin>,
    /// Template plugins by `VDIPlugin` name, and the default's name.
    pub templates: BTreeMap<String, Plugin>,
    /// The template plugin used when a template names none.
    pub default_template: Option<String>,
    /// Increases with every swap.
    pub version: u64,
}

impl PluginSet {
    /// The admission chain for a session of `template` in `namespace`.
    pub fn chain_for(&self, template: &str, namespace: &str) -> AdmissionChain {
        AdmissionChain::new(
            self.admission
                .iter()
                .filter(|a| a.matcher.matches(template, namespace))
                .map(|a| ChainEntry {
                    plugin: a.plugin.clone(),
                    failure_policy: match a.failure_policy {
                        FailurePolicy::Fail => vdi_plugin_host::FailurePolicy::Fail,
                        FailurePolicy::Ignore => vdi_plugin_host::FailurePolicy::Ignore,
                    },
                })
                .collect(),
        )
    }

    /// The scheduler in force.
    pub fn scheduler(&self) -> Option<&Plugin> {
        self.schedulers.first()
    }

    /// The renderer named `name`, or the default one.
    pub fn renderer(&self, name: Option<&str>) -> Result<&Plugin, String> {
        match name {
            Some(n) => self
                .templates
                .get(n)
                .ok_or_else(|| format!("template plugin {n:?} is not loaded")),
            None => self
                .default_template
                .as_ref()
                .and_then(|n| self.templates.get(n))
                .ok_or_else(|| "no template plugin is loaded".to_owned()),
        }
    }
}

#[derive(Debug, Clone)]
struct Loaded {
    uid: String,
    generation: i64,
    plugin: Plugin,
    hook: HookKind,
    order: i32,
    failure_policy: FailurePolicy,
    matcher: PluginMatch,
    loaded_at: String,
}

#[derive(Debug, Clone)]
struct Attempt {
    uid: String,
    generation: i64,
    at: Instant,
}

/// The plugins in force, and how to load more.
pub struct Registry {
    runtime: Arc<Runtime>,
    fetcher: Fetcher,
    current: RwLock<Arc<PluginSet>>,
    loaded: Mutex<HashMap<String, Loaded>>,
    failed: Mutex<HashMap<String, Attempt>>,
    /// The status each plugin should show, by name, with the uid it was computed for.
    statuses: Mutex<HashMap<String, (String, VDIPluginStatus)>>,
    synced: watch::Sender<u64>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

fn hook_of(kind: HookKind) -> Hook {
    match kind {
        HookKind::Admission => Hook::Admission,
        HookKind::Scheduler => Hook::Scheduler,
        HookKind::Template => Hook::Template,
    }
}

impl Registry {
    /// An empty registry loading through `runtime` from `fetcher`'s sources.
    pub fn new(runtime: Arc<Runtime>, fetcher: Fetcher) -> Self {
        Self {
            runtime,
            fetcher,
            current: RwLock::new(Arc::new(PluginSet::default())),
            loaded: Mutex::new(HashMap::new()),
            failed: Mutex::new(HashMap::new()),
            statuses: Mutex::new(HashMap::new()),
            synced: watch::channel(0).0,
        }
    }

    /// The plugin runtime.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// The module fetcher (and its upload store).
    pub fn fetcher(&self) -> &Fetcher {
        &self.fetcher
    }

    /// The snapshot in force now.
    pub fn current(&self) -> Arc<PluginSet> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Signals every sync (the value counts them).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.synced.subscribe()
    }

    /// Waits until the plugins present at start-up have been tried once.
    pub async fn wait_synced(&self) {
        let mut rx = self.synced.subscribe();
        let _ = rx.wait_for(|n| *n > 0).await;
    }

    /// Loads what changed among `plugins`, drops what is gone, swaps the snapshot, and returns
    /// the status each plugin should show.
    pub async fn sync(&self, plugins: &[Arc<VDIPlugin>]) -> Vec<(String, VDIPluginStatus)> {
        let mut statuses = Vec::new();
        for p in plugins {
            let name = p.name_any();
            let uid = p.uid().unwrap_or_default();
            let generation = p.metadata.generation.unwrap_or(0);
            let current = self.loaded_entry(&name);
            if current
                .as_ref()
                .is_some_and(|l| l.uid == uid && l.generation == generation)
            {
                continue;
            }
            let recently_failed = self
                .failed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(&name)
                .is_some_and(|a| {
                    a.uid == uid
                        && a.generation == generation
                        && a.at.elapsed() < RETRY_FAILED_AFTER
                });
            if recently_failed {
                continue;
            }
            let status = match self.load(p).await {
                Ok(loaded) => {
                    let status = VDIPluginStatus {
                        phase: Some(PluginPhase::Ready),
                        message: Some(format!("{} plugin serving", hook_of(loaded.hook).name())),
                        digest: Some(loaded.plugin.digest().to_string()),
                        loaded_at: Some(loaded.loaded_at.clone()),
                        observed_generation: Some(generation),
                    };
                    self.failed
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .remove(&name);
                    self.loaded
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .insert(name.clone(), loaded);
                    status
                }
                Err(reason) => {
                    tracing::warn!(plugin = %name, generation, %reason, "plugin not loaded");
                    self.failed
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .insert(
                            name.clone(),
                            Attempt {
                                uid: uid.clone(),
                                generation,
                                at: Instant::now(),
                            },
                        );
                    let serving = current.filter(|l| l.uid == uid);
                    let message = match &serving {
                        Some(l) => format!(
                            "{reason}; generation {} ({}) keeps serving",
                            l.generation,
                            l.plugin.digest()
                        ),
                        None => reason,
                    };
                    VDIPluginStatus {
                        phase: Some(PluginPhase::Error),
                        message: Some(message),
                        digest: serving.as_ref().map(|l| l.plugin.digest().to_string()),
                        loaded_at: serving.as_ref().map(|l| l.loaded_at.clone()),
                        observed_generation: Some(generation),
                    }
                }
            };
            self.statuses
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(name.clone(), (uid, status.clone()));
            statuses.push((name, status));
        }
        {
            let present: HashMap<String, String> = plugins
                .iter()
                .map(|p| (p.name_any(), p.uid().unwrap_or_default()))
                .collect();
            self.loaded
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .retain(|name, l| present.get(name) == Some(&l.uid));
            self.statuses
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .retain(|name, (uid, _)| present.get(name) == Some(uid));
        }
        self.swap();
        self.synced.send_modify(|n| *n += 1);
        statuses
    }

    /// The status the plugin `name` (with `uid`) should show, once it has been tried.
    pub fn status_of(&self, name: &str, uid: &str) -> Option<VDIPluginStatus> {
        self.statuses
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .filter(|(u, _)| u == uid)
            .map(|(_, s)| s.clone())
    }

    fn loaded_entry(&self, name: &str) -> Option<Loaded> {
        self.loaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    async fn load(&self, p: &VDIPlugin) -> Result<Loaded, String> {
        let name = p.name_any();
        let spec = &p.spec;
        let digest: Digest = spec.sha256.parse().map_err(|_| {
            format!(
                "spec.sha256: {:?} is not sha256:<64 hex digits>",
                spec.sha256
            )
        })?;
        let bytes = self
            .fetcher
            .fetch(&spec.source, &digest)
            .await
            .map_err(|e| e.to_string())?;
        let defaults = Limits::default();
        let limits = Limits {
            timeout: spec
                .timeout_ms
                .map_or(defaults.timeout, |ms| Duration::from_millis(u64::from(ms))),
            memory_bytes: spec
                .memory_mib
                .map_or(defaults.memory_bytes, |m| (m as usize) << 20),
            ..defaults
        };
        let settings = spec
            .settings
            .as_ref()
            .map_or_else(|| "{}".to_owned(), serde_json::Value::to_string);
        let runtime = self.runtime.clone();
        let plugin_name = name.clone();
        let plugin = crate::calls::on_pool(self, crate::calls::COMPILE_BUDGET, move || {
            runtime
                .load(&plugin_name, &bytes, Some(&digest), limits, &settings)
                .map(|(p, _)| p)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
        if plugin.hook() != hook_of(spec.hook) {
            return Err(format!(
                "spec.hook is {} but the module implements the {} world",
                hook_of(spec.hook).name(),
                plugin.hook().name()
            ));
        }
        Ok(Loaded {
            uid: p.uid().unwrap_or_default(),
            generation: p.metadata.generation.unwrap_or(0),
            plugin,
            hook: spec.hook,
            order: spec.order,
            failure_policy: spec.failure_policy,
            matcher: spec.match_.clone().unwrap_or_default(),
            loaded_at: jiff::Timestamp::now().to_string(),
        })
    }

    fn swap(&self) {
        let loaded = self
            .loaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let mut entries: Vec<(String, Loaded)> = loaded.into_iter().collect();
        entries.sort_by(|a, b| a.1.order.cmp(&b.1.order).then_with(|| a.0.cmp(&b.0)));
        let mut set = PluginSet {
            version: self.current().version + 1,
            ..PluginSet::default()
        };
        for (name, l) in entries {
            match l.hook {
                HookKind::Admission => set.admission.push(AdmissionPlugin {
                    plugin: l.plugin,
                    failure_policy: l.failure_policy,
                    matcher: l.matcher,
                }),
                HookKind::Scheduler => set.schedulers.push(l.plugin),
                HookKind::Template => {
                    if set.default_template.is_none() {
                        set.default_template = Some(name.clone());
                    }
                    set.templates.insert(name, l.plugin);
                }
            }
        }
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(set);
    }
}

/// Watches `VDIPlugin` objects and keeps `registry` in step with them until the stream ends;
/// writes their status while `leading` says this replica leads.
pub async fn run_plugin_controller(
    registry: Arc<Registry>,
    client: kube::Client,
    mut leading: watch::Receiver<bool>,
) {
    let api: Api<VDIPlugin> = Api::all(client);
    let (reader, writer) = reflector::store();
    let events = reflector::reflector(writer, watcher(api.clone(), watcher::Config::default()))
        .default_backoff();
    let mut events = std::pin::pin!(events);
    let mut retry = tokio::time::interval(RETRY_FAILED_AFTER);
    retry.tick().await;
    let mut initialised = false;
    loop {
        tokio::select! {
            event = events.next() => match event {
                Some(Ok(watcher::Event::InitDone)) => initialised = true,
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "VDIPlugin watch failed; retrying");
                    continue;
                }
                None => return,
            },
            _ = retry.tick() => {}
            changed = leading.changed() => {
                if changed.is_err() {
                    return; // The operator is gone.
                }
            }
        }
        if !initialised {
            continue;
        }
        // Let a burst of changes settle into one sync.
        while let Ok(Some(Ok(e))) =
            tokio::time::timeout(Duration::from_millis(20), events.next()).await
        {
            if matches!(e, watcher::Event::InitDone) {
                initialised = true;
            }
        }
        let lead = *leading.borrow_and_update();
        sync_once(&registry, &api, &reader, lead).await;
    }
}

async fn sync_once(
    registry: &Registry,
    api: &Api<VDIPlugin>,
    reader: &Store<VDIPlugin>,
    leading: bool,
) {
    let plugins = reader.state();
    registry.sync(&plugins).await;
    if !leading {
        return;
    }
    for p in &plugins {
        let name = p.name_any();
        let Some(status) = registry.status_of(&name, &p.uid().unwrap_or_default()) else {
            continue;
        };
        if p.status.as_ref() == Some(&status) {
            continue;
        }
        // Explicit nulls, so a merge patch clears what no longer applies.
        let patch = json!({ "status": {
            "phase": status.phase,
            "message": status.message,
            "digest": status.digest,
            "loadedAt": status.loaded_at,
            "observedGeneration": status.observed_generation,
        }});
        if let Err(e) = api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            tracing::warn!(plugin = %name, error = %e, "cannot write VDIPlugin status");
        }
    }
}
