//! One pod on the process node: prepares its directories, display and ports, starts a task per
//! container, writes the pod's status when it changes, and cleans everything up when the pod
//! goes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{Notify, watch};

use super::Agent;
use super::container::{self, Stop};
use super::plan::{self, PodContext, PodPlan, RestartPolicy, Waiting};
use super::status::{self, Container, State};
use super::sys;
use crate::error::ApiError;
use crate::store::Part;

/// A pod the node runs.
pub(crate) struct PodRun {
    agent: Arc<Agent>,
    pub ns: String,
    pub name: String,
    pub uid: String,
    pub dir: PathBuf,
    pub display: u32,
    pub grace: Duration,
    pub stop: Stop,
    restart: RestartPolicy,
    start_time: String,
    /// (container, containerPort) → loopback port.
    ports: HashMap<(String, u16), u16>,
    /// Running process groups by container (for a synchronous kill on drop).
    groups: Arc<Mutex<HashMap<String, i32>>>,
    containers: Mutex<Vec<Container>>,
    changed: Notify,
}

/// What the agent keeps of a pod it runs.
pub(crate) struct PodHandle {
    pub stop: watch::Sender<bool>,
    pub groups: Arc<Mutex<HashMap<String, i32>>>,
    pub dir: PathBuf,
    pub display: u32,
    pub task: tokio::task::JoinHandle<()>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl PodRun {
    pub(crate) fn container_name(&self, index: usize) -> String {
        lock(&self.containers)
            .get(index)
            .map(|c| c.name.clone())
            .unwrap_or_default()
    }

    /// Changes a container's state and wakes the status writer.
    pub(crate) fn update(&self, index: usize, f: impl FnOnce(&mut Container)) {
        if let Some(c) = lock(&self.containers).get_mut(index) {
            f(c);
        }
        self.changed.notify_one();
    }

    pub(crate) fn record_group(&self, container: &str, pgid: i32) {
        lock(&self.groups).insert(container.to_owned(), pgid);
    }

    pub(crate) fn forget_group(&self, container: &str) {
        lock(&self.groups).remove(container);
    }

    pub(crate) fn cgroup_parent(&self) -> Option<PathBuf> {
        self.agent.cgroup.clone()
    }

    /// Writes the pod's status if it differs from the last one written.
    fn write_status(&self, last: &mut Option<Value>) {
        let computed = {
            let containers = lock(&self.containers);
            status::pod_status(&containers, self.restart, &self.start_time)
        };
        if last.as_ref() == Some(&computed) {
            return;
        }
        for _ in 0..5 {
            let Ok(mut pod) = self
                .agent
                .store
                .get(&self.agent.pod_t, &self.ns, &self.name)
            else {
                return;
            };
            if pod["metadata"]["uid"] != self.uid.as_str() {
                return;
            }
            pod["status"] =
                status::with_times(computed.clone(), &pod["status"], &crate::store::now());
            match self.agent.store.update(
                &self.agent.pod_t,
                &self.ns,
                &self.name,
                pod,
                Part::Status,
            ) {
                Ok(_) => {
                    *last = Some(computed);
                    return;
                }
                Err(ApiError::Conflict { .. }) => continue,
                Err(e) => {
                    tracing::debug!(pod = %self.name, error = %e, "pod status not written");
                    return;
                }
            }
        }
    }
}

/// Allocates a free display number (recorded in the agent's set).
fn allocate_display(agent: &Agent) -> Option<u32> {
    let mut taken = lock(&agent.displays);
    let base = agent.config.display_base;
    let n = (base..base.saturating_add(super::config::DISPLAY_RANGE))
        .find(|n| !taken.contains(n) && sys::display_free(*n))?;
    taken.insert(n);
    Some(n)
}

/// The plan of `pod`, reading ConfigMaps and Secrets from the store.
fn make_plan(
    agent: &Agent,
    pod: &Value,
    ns: &str,
    dir: &Path,
    display: u32,
    ports: &HashMap<(String, u16), u16>,
) -> PodPlan {
    let lookup = |kind: &str, obj: &str| -> Option<Value> {
        let rt = agent.store.registry.find("", "v1", kind)?;
        agent.store.get(&rt, ns, obj).ok()
    };
    plan::plan(&PodContext {
        pod,
        node: &agent.config,
        pod_dir: dir,
        display,
        ports,
        lookup: &lookup,
    })
}

/// Creates the plan's directories and files; an error is every container's waiting reason.
fn prepare(dir: &Path, display: u32, plan: &PodPlan) -> Result<(), Waiting> {
    use std::os::unix::fs::PermissionsExt as _;
    let fail = |what: &Path, e: std::io::Error| {
        Waiting::config(format!("cannot prepare {}: {e}", what.display()))
    };
    for d in [dir.join("pids"), dir.join("logs")]
        .iter()
        .chain(&plan.dirs)
    {
        std::fs::create_dir_all(d).map_err(|e| fail(d, e))?;
    }
    std::fs::write(dir.join("display"), display.to_string())
        .map_err(|e| fail(&dir.join("display"), e))?;
    for f in &plan.files {
        if let Some(parent) = f.path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| fail(parent, e))?;
        }
        std::fs::write(&f.path, &f.contents).map_err(|e| fail(&f.path, e))?;
        std::fs::set_permissions(&f.path, std::fs::Permissions::from_mode(f.mode & 0o7777))
            .map_err(|e| fail(&f.path, e))?;
    }
    Ok(())
}

/// Announces `127.0.0.1:<port>` on the pod for the session proxy.
fn annotate(agent: &Agent, ns: &str, name: &str, uid: &str, endpoint: &str) {
    for _ in 0..5 {
        let Ok(mut pod) = agent.store.get(&agent.pod_t, ns, name) else {
            return;
        };
        if pod["metadata"]["uid"] != uid {
            return;
        }
        if !pod["metadata"]["annotations"].is_object() {
            pod["metadata"]["annotations"] = json!({});
        }
        pod["metadata"]["annotations"][vdi_crd::LOCAL_ENDPOINT_ANNOTATION] = json!(endpoint);
        match agent.store.update(&agent.pod_t, ns, name, pod, Part::Main) {
            Err(ApiError::Conflict { .. }) => continue,
            Err(e) => {
                tracing::warn!(pod = %name, error = %e, "endpoint annotation not written");
                return;
            }
            Ok(_) => return,
        }
    }
}

/// Starts running `pod`; returns what the agent keeps to stop it.
pub(crate) fn start(agent: &Arc<Agent>, pod: &Value) -> Option<PodHandle> {
    let ns = pod["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default")
        .to_owned();
    let name = pod["metadata"]["name"].as_str()?.to_owned();
    let uid = pod["metadata"]["uid"]
        .as_str()
        .filter(|u| !u.is_empty() && u.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))?;
    let Some(display) = allocate_display(agent) else {
        tracing::warn!(pod = %name, "no free X display number");
        return None;
    };
    let dir = agent.pods_dir().join(uid);
    let (stop_tx, stop_rx) = watch::channel(false);
    let groups = Arc::new(Mutex::new(HashMap::new()));
    let mut ports = HashMap::new();
    for key in plan::declared_ports(pod) {
        match sys::free_port() {
            Ok(p) => {
                ports.insert(key, p);
            }
            Err(e) => tracing::warn!(pod = %name, error = %e, "no free loopback port"),
        }
    }
    let mut plan = make_plan(agent, pod, &ns, &dir, display, &ports);
    if let Err(w) = prepare(&dir, display, &plan) {
        for c in &mut plan.containers {
            c.launch = Err(w.clone());
        }
    }
    if let Some(endpoint) = &plan.endpoint {
        annotate(agent, &ns, &name, uid, endpoint);
    }
    let containers = plan
        .containers
        .iter()
        .map(|c| {
            let mut s = Container::new(&c.name, &c.image);
            if let Err(w) = &c.launch {
                s.state = State::Waiting {
                    reason: w.reason.into(),
                    message: w.message.clone(),
                };
            }
            s
        })
        .collect();
    let run = Arc::new(PodRun {
        agent: agent.clone(),
        ns,
        name,
        uid: uid.to_owned(),
        dir: dir.clone(),
        display,
        grace: plan.grace,
        stop: stop_rx,
        restart: plan.restart,
        start_time: crate::store::now(),
        ports,
        groups: groups.clone(),
        containers: Mutex::new(containers),
        changed: Notify::new(),
    });
    let task = tokio::spawn(supervise(run, plan));
    Some(PodHandle {
        stop: stop_tx,
        groups,
        dir,
        display,
        task,
    })
}

/// Runs the containers and the status writer until the pod stops, then cleans up.
async fn supervise(run: Arc<PodRun>, plan: PodPlan) {
    let mut tasks = Vec::new();
    for (i, c) in plan.containers.into_iter().enumerate() {
        match c.launch {
            Ok(launch) => {
                tasks.push(tokio::spawn(container::run(
                    run.clone(),
                    i,
                    launch,
                    plan.restart,
                )));
            }
            Err(w) => {
                tracing::warn!(pod = %run.name, container = %c.name, reason = w.reason, message = %w.message, "container cannot start");
                // Like the kubelet, try again: the ConfigMap or Secret may appear.
                if w.reason == "CreateContainerConfigError" {
                    tasks.push(tokio::spawn(retry_config(run.clone(), i, c.name)));
                }
            }
        }
    }
    let mut stop = run.stop.clone();
    let mut last = None;
    run.changed.notify_one();
    loop {
        tokio::select! {
            _ = run.changed.notified() => run.write_status(&mut last),
            _ = container::stopped(&mut stop) => break,
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    cleanup(&run.agent, &run.dir, run.display);
    tracing::info!(pod = %run.name, "pod stopped and cleaned up");
}

/// How often a container waiting on its configuration is planned again.
const CONFIG_RETRY: Duration = Duration::from_secs(2);

/// Plans container `index` again until its configuration resolves, then runs it.
async fn retry_config(run: Arc<PodRun>, index: usize, name: String) {
    let mut stop = run.stop.clone();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(CONFIG_RETRY) => {}
            _ = container::stopped(&mut stop) => return,
        }
        let Ok(pod) = run.agent.store.get(&run.agent.pod_t, &run.ns, &run.name) else {
            return;
        };
        if pod["metadata"]["uid"] != run.uid.as_str() {
            return;
        }
        let plan = make_plan(&run.agent, &pod, &run.ns, &run.dir, run.display, &run.ports);
        let Some(c) = plan.containers.iter().find(|c| c.name == name) else {
            return;
        };
        let waiting = match c.launch.clone() {
            Ok(launch) => match prepare(&run.dir, run.display, &plan) {
                Ok(()) => {
                    container::run(run.clone(), index, launch, run.restart).await;
                    return;
                }
                Err(w) => w,
            },
            Err(w) => w,
        };
        let state = State::Waiting {
            reason: waiting.reason.into(),
            message: waiting.message,
        };
        let unchanged = lock(&run.containers)
            .get(index)
            .is_some_and(|c| c.state == state);
        if !unchanged {
            run.update(index, |c| c.state = state);
        }
    }
}

/// Removes a pod's directory and display files and frees its display number.
pub(crate) fn cleanup(agent: &Agent, dir: &Path, display: u32) {
    sys::remove_display(display);
    lock(&agent.displays).remove(&display);
    if let Err(e) = std::fs::remove_dir_all(dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(dir = %dir.display(), error = %e, "pod directory not removed");
    }
}
