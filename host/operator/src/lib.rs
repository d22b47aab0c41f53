//! The VDI operator: turns `VDISession` objects into running desktops through the plugin hooks.
//!
//! It owns the controllers (sessions, plugins, the orphan sweep), the placement task, the
//! admission logic shared by the webhook and the embedded control plane's in-process hook,
//! leader election, and the operator's HTTP endpoints. It talks to Kubernetes only through
//! `kube::Client`, so it runs unchanged against a real cluster and the embedded control plane.
//! It does not run WebAssembly itself (that is `vdi-plugin-host`) nor decide phases (that is
//! the pure machine in `vdi-crd`).

pub mod activity;
pub mod admission;
mod calls;
pub mod connect;
mod context;
mod discovery;
mod error;
mod http;
pub mod inventory;
pub mod leader;
mod metrics;
pub mod modules;
mod objects;
pub mod pool;
pub mod registry;
pub mod scheduler;
pub mod session;
pub mod sweep;
pub mod webhook;
mod wit;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::runtime::controller::Controller;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Api, Client};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use vdi_crd::{SESSION_UID_LABEL, VDISession, VDITemplate};

pub use admission::{Admission, AdmissionSettings, AdmissionSources, Refusal, Requester};
pub use calls::admission_budget;
pub use error::{Error, Result};
pub use leader::LeaseSettings;
pub use metrics::OperatorMetrics;
pub use modules::{Fetcher, ModuleStore, Stored};
pub use registry::{PluginSet, Registry};
pub use session::SessionSettings;

/// How the operator runs.
#[derive(Debug, Clone)]
pub struct OperatorConfig {
    /// Session controller settings.
    pub session: SessionSettings,
    /// Who the admission webhooks trust to create sessions for other users.
    pub admission: AdmissionSettings,
    /// Leader election; `None` runs the controllers at once (a single replica).
    pub lease: Option<LeaseSettings>,
    /// Address of the HTTP endpoints (metrics, health, webhooks, uploads); none when `None`.
    pub http_listen: Option<SocketAddr>,
    /// PEM certificate and key for the HTTP endpoints (webhooks need TLS on real clusters).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Bearer token that allows module uploads; uploads are off without one.
    pub upload_token: Option<String>,
    /// How often the orphan sweep runs.
    pub sweep_every: Duration,
    /// Most session reconciles at once (0 = no limit). Bounded, sessions created in a burst
    /// finish in arrival order instead of all advancing a step at a time.
    pub concurrency: u16,
}

impl Default for OperatorConfig {
    fn default() -> Self {
        Self {
            session: SessionSettings {
                url_template: "https://localhost:8443/sessions/{namespace}/{name}/".into(),
                render_policy: vdi_plugin_host::RenderPolicy::default(),
            },
            admission: AdmissionSettings::default(),
            lease: None,
            http_listen: None,
            tls: None,
            upload_token: None,
            sweep_every: Duration::from_secs(60),
            concurrency: 64,
        }
    }
}

/// A running operator.
pub struct Operator {
    tasks: Vec<JoinHandle<()>>,
    leader_task: Option<JoinHandle<()>>,
    shutdown: watch::Sender<bool>,
    http_addr: Option<SocketAddr>,
    metrics: Arc<OperatorMetrics>,
    sessions: Store<VDISession>,
    leading: watch::Receiver<bool>,
}

fn cache<K>(api: Api<K>, config: watcher::Config) -> (Store<K>, JoinHandle<()>)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher(api, config)).default_backoff();
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(item) = stream.next().await {
            if let Err(e) = item {
                tracing::warn!(error = %e, "watch failed; retrying");
            }
        }
    });
    (reader, task)
}

impl Operator {
    /// Starts the plugin controller, the caches and the HTTP endpoints at once, and the session
    /// controller, placement task and orphan sweep once this replica leads.
    pub async fn start(
        client: Client,
        registry: Arc<Registry>,
        config: OperatorConfig,
    ) -> Result<Self> {
        let metrics = Arc::new(OperatorMetrics::default());
        let (shutdown, shutdown_rx) = watch::channel(false);
        // Without leader election this replica is the only one, so it leads from the start.
        let (leading_tx, leading) = watch::channel(config.lease.is_none());
        let mut tasks = vec![tokio::spawn(registry::run_plugin_controller(
            registry.clone(),
            client.clone(),
            leading.clone(),
        ))];
        let (sessions, t) = cache(
            Api::<VDISession>::all(client.clone()),
            watcher::Config::default(),
        );
        tasks.push(t);
        let (templates, t) = cache(
            Api::<VDITemplate>::all(client.clone()),
            watcher::Config::default(),
        );
        tasks.push(t);
        let (nodes, t) = cache(Api::<Node>::all(client.clone()), watcher::Config::default());
        tasks.push(t);

        let mut http_addr = None;
        if let Some(listen) = config.http_listen {
            let state = http::HttpState {
                registry: registry.clone(),
                metrics: metrics.clone(),
                sessions: sessions.clone(),
                templates: templates.clone(),
                upload_token: config.upload_token.as_deref().map(Arc::from),
                admission: Arc::new(config.admission.clone()),
            };
            let listen_error = |source| Error::Listen {
                addr: listen,
                source,
            };
            let listener = std::net::TcpListener::bind(listen).map_err(listen_error)?;
            listener.set_nonblocking(true).map_err(listen_error)?;
            http_addr = Some(listener.local_addr().map_err(listen_error)?);
            let app = http::router(state).into_make_service();
            let mut stop = shutdown_rx.clone();
            let handle = axum_server::Handle::new();
            let h = handle.clone();
            tasks.push(tokio::spawn(async move {
                let _ = stop.wait_for(|s| *s).await;
                h.graceful_shutdown(Some(Duration::from_secs(5)));
            }));
            let tls = config.tls.clone();
            tasks.push(tokio::spawn(async move {
                let served = match tls {
                    Some((cert, key)) => {
                        match axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key).await
                        {
                            Ok(tls) => match axum_server::from_tcp_rustls(listener, tls) {
                                Ok(s) => s.handle(handle).serve(app).await,
                                Err(e) => Err(e),
                            },
                            Err(e) => Err(e),
                        }
                    }
                    None => match axum_server::from_tcp(listener) {
                        Ok(s) => s.handle(handle).serve(app).await,
                        Err(e) => Err(e),
                    },
                };
                if let Err(e) = served {
                    tracing::error!(error = %e, "operator HTTP server stopped");
                }
            }));
        }

        let shared = Shared {
            client,
            registry,
            config,
            metrics: metrics.clone(),
            sessions: sessions.clone(),
            templates,
            nodes,
            leading: Arc::new(leading_tx),
        };
        let leader_task = tokio::spawn(lead(shared, shutdown_rx));
        Ok(Self {
            tasks,
            leader_task: Some(leader_task),
            shutdown,
            http_addr,
            metrics,
            sessions,
            leading,
        })
    }

    /// Whether this replica leads now (and so runs the controllers and writes plugin status).
    pub fn is_leading(&self) -> bool {
        *self.leading.borrow()
    }

    /// Where the HTTP endpoints listen.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// The operator's metrics.
    pub fn metrics(&self) -> &Arc<OperatorMetrics> {
        &self.metrics
    }

    /// The session cache.
    pub fn sessions(&self) -> &Store<VDISession> {
        &self.sessions
    }

    /// Stops gracefully: reconciles in flight finish, the lease is released.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(t) = self.leader_task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
        // Drop aborts the rest (caches, plugin controller, HTTP server).
    }

    /// Stops at once, as a crash would (nothing finishes, the lease is kept until it runs out).
    pub fn abort(self) {
        drop(self);
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if let Some(t) = self.leader_task.take() {
            t.abort();
        }
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// What the leader's controllers share: the client, the plugins, the caches and the settings.
#[derive(Clone)]
struct Shared {
    client: Client,
    registry: Arc<Registry>,
    config: OperatorConfig,
    metrics: Arc<OperatorMetrics>,
    sessions: Store<VDISession>,
    templates: Store<VDITemplate>,
    nodes: Store<Node>,
    /// Whether this replica leads (the plugin controller writes status only then).
    leading: Arc<watch::Sender<bool>>,
}

async fn lead(shared: Shared, mut shutdown: watch::Receiver<bool>) {
    let Shared {
        client,
        config,
        leading,
        ..
    } = shared.clone();
    loop {
        if let Some(lease) = &config.lease {
            tokio::select! {
                () = leader::acquire(&client, lease) => {}
                () = stopped(&mut shutdown) => return,
            }
        }
        leading.send_replace(true);
        let (stop_tx, stop_rx) = watch::channel(false);
        let run = run_controllers(shared.clone(), stop_rx);
        let mut run = std::pin::pin!(run);
        let lost = async {
            match &config.lease {
                Some(lease) => leader::hold(&client, lease).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = &mut run => return,
            () = lost => {
                tracing::warn!("leadership lost; stopping the controllers");
                leading.send_replace(false);
                let _ = stop_tx.send(true);
                run.await;
            }
            () = stopped(&mut shutdown) => {
                let _ = stop_tx.send(true);
                run.await;
                if let Some(lease) = &config.lease {
                    leading.send_replace(false);
                    leader::release(&client, lease).await;
                }
                return;
            }
        }
    }
}

async fn run_controllers(shared: Shared, stop: watch::Receiver<bool>) {
    let Shared {
        client,
        registry,
        config,
        metrics,
        sessions,
        templates,
        nodes,
        leading: _,
    } = shared;
    registry.wait_synced().await;
    let _ = sessions.wait_until_ready().await;
    let _ = templates.wait_until_ready().await;
    let _ = nodes.wait_until_ready().await;
    let (scheduler, scheduler_task) =
        scheduler::Scheduler::start(registry.clone(), nodes.clone(), sessions.clone());
    let (wake, wake_rx) = tokio::sync::mpsc::unbounded_channel();
    let keys = Arc::new(connect::PublishedKeys::default());
    let reporter = Reporter {
        controller: "vdi-operator".into(),
        instance: config.lease.as_ref().map(|l| l.identity.clone()),
    };
    let ctx = Arc::new(session::Context {
        client: client.clone(),
        registry: registry.clone(),
        scheduler,
        sessions: sessions.clone(),
        templates,
        recorder: Recorder::new(client.clone(), reporter),
        metrics,
        settings: config.session.clone(),
        discovery: discovery::Discovery::new(client.clone()),
        waiting: Mutex::default(),
        written: Mutex::default(),
        wake,
        keys: keys.clone(),
        activities: Arc::new(activity::Activities::default()),
        prober: activity::Prober::default(),
        pool_wake: Arc::default(),
        held: Default::default(),
    });
    // Rotated connect keys reach every session namespace.
    let keys_task = {
        let (client, sessions) = (client.clone(), sessions.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(connect::KEYS_RESYNC);
            loop {
                tick.tick().await;
                keys.resync(&client, &sessions).await;
            }
        })
    };
    let poller = tokio::spawn(activity::run_poller(ctx.clone()));
    // A plugin change may make waiting sessions placeable.
    let waker = {
        let ctx = ctx.clone();
        let mut changes = registry.subscribe();
        tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                ctx.wake_waiting();
            }
        })
    };
    let sweeper = {
        let client = client.clone();
        let every = config.sweep_every;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                sweep::sweep_once(&client, &sessions, sweep::MIN_AGE).await;
            }
        })
    };
    let pool = tokio::spawn(pool::run(
        client.clone(),
        ctx.templates.clone(),
        ctx.sessions.clone(),
        ctx.pool_wake.clone(),
    ));
    let mut stop_signal = stop.clone();
    let controller = Controller::new(
        Api::<VDISession>::all(client.clone()),
        watcher::Config::default(),
    )
    .owns(
        Api::<Pod>::all(client.clone()),
        watcher::Config::default().labels(SESSION_UID_LABEL),
    )
    .with_config(kube::runtime::controller::Config::default().concurrency(config.concurrency))
    .reconcile_all_on(tokio_stream::wrappers::UnboundedReceiverStream::new(
        wake_rx,
    ))
    .graceful_shutdown_on(async move {
        let _ = stop_signal.wait_for(|s| *s).await;
    })
    .run(session::reconcile, session::error_policy, ctx)
    .for_each(|_| std::future::ready(()));
    tracing::info!("session controller running");
    controller.await;
    waker.abort();
    pool.abort();
    sweeper.abort();
    keys_task.abort();
    poller.abort();
    scheduler_task.abort();
    tracing::info!("session controller stopped");
}
