//! One container's life: start its process group, log its output, probe it, restart it with
//! the kubelet's back-off, and end it (SIGTERM, grace, SIGKILL).

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::process::Signal;
use tokio::sync::watch;

use super::logs::{self, Writer};
use super::plan::{Launch, RestartPolicy};
use super::probe::{self, Thresholds};
use super::status::{State, Terminated};
use super::supervisor::PodRun;
use super::sys;

/// First back-off after a restart (kubelet's 10 s, doubling).
pub(crate) const BACKOFF_BASE: Duration = Duration::from_secs(10);
/// Longest back-off (kubelet's 5 min).
pub(crate) const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// An instance that ran this long resets the back-off.
const BACKOFF_RESET: Duration = Duration::from_secs(600);
/// How long an ended group's stragglers and pipes get after SIGKILL.
const REAP: Duration = Duration::from_secs(2);

/// The wait before restart number `crashes` (1 for the first restart, which is immediate).
pub(crate) fn backoff(crashes: u32) -> Duration {
    if crashes <= 1 {
        return Duration::ZERO;
    }
    let doublings = (crashes - 2).min(16);
    BACKOFF_BASE.saturating_mul(1 << doublings).min(BACKOFF_MAX)
}

/// Waits until group `pgid` has no live process, at most `limit`; true when it is empty.
async fn group_gone(pgid: i32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if sys::group_members(pgid).is_empty() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Ends a running group: SIGTERM, up to `grace` for every member to exit, then SIGKILL.
/// Returns the leader's exit status.
pub(crate) async fn terminate(
    pgid: i32,
    child: &mut tokio::process::Child,
    grace: Duration,
) -> Option<std::process::ExitStatus> {
    sys::signal_group(pgid, Signal::TERM);
    let deadline = Instant::now() + grace;
    let status = tokio::time::timeout(grace, child.wait())
        .await
        .ok()
        .and_then(Result::ok);
    let left = deadline.saturating_duration_since(Instant::now());
    if !group_gone(pgid, left).await {
        sys::signal_group(pgid, Signal::KILL);
    }
    let status = match status {
        Some(s) => Some(s),
        None => {
            sys::signal_group(pgid, Signal::KILL);
            child.wait().await.ok()
        }
    };
    group_gone(pgid, REAP).await;
    status
}

/// Runs container `index` of the pod until it ends for good or the pod stops.
pub(crate) async fn run(run: Arc<PodRun>, index: usize, launch: Launch, policy: RestartPolicy) {
    let mut stop = run.stop.clone();
    let name = run.container_name(index);
    if let Some(uid) = launch.run_as_user {
        tracing::info!(pod = %run.name, container = %name, uid, "runAsUser is recorded, not applied: processes run as the agent's user");
    }
    let mut crashes = 0u32;
    let mut instance = 0u32;
    loop {
        if *stop.borrow() {
            return;
        }
        let started = Instant::now();
        let started_at = crate::store::now();
        let ended = match start(&run, &name, instance, &launch).await {
            Err(message) => {
                tracing::warn!(pod = %run.name, container = %name, %message, "container did not start");
                Terminated {
                    exit_code: 128,
                    signal: None,
                    reason: "StartError".into(),
                    message: Some(message),
                    started_at: started_at.clone(),
                    finished_at: crate::store::now(),
                }
            }
            Ok(mut proc) => {
                run.update(index, |c| {
                    c.state = State::Running {
                        started_at: started_at.clone(),
                    };
                    c.ever_started = true;
                    c.restart_count = instance;
                    c.ready = launch.readiness.is_none();
                });
                let probes = spawn_probes(&run, index, &launch, proc.pgid);
                let status = tokio::select! {
                    s = proc.child.wait() => {
                        let s = s.ok();
                        // Stragglers of the group go with their leader, as with a container.
                        sys::signal_group(proc.pgid, Signal::KILL);
                        group_gone(proc.pgid, REAP).await;
                        s
                    }
                    _ = stopped(&mut stop) => {
                        terminate(proc.pgid, &mut proc.child, run.grace).await
                    }
                };
                for p in probes {
                    p.abort();
                }
                let oom = proc.cgroup.as_ref().is_some_and(sys::Cgroup::oom_killed);
                proc.finish(&run, &name).await;
                Terminated::new(
                    status.and_then(|s| s.code()),
                    status.and_then(|s| std::os::unix::process::ExitStatusExt::signal(&s)),
                    oom,
                    started_at.clone(),
                    crate::store::now(),
                )
            }
        };
        tracing::info!(pod = %run.name, container = %name, exit = ended.exit_code, reason = %ended.reason, "container ended");
        let stopping = *stop.borrow();
        if stopping || !policy.restarts(ended.exit_code) {
            run.update(index, |c| {
                c.state = State::Terminated(ended.clone());
                c.ready = false;
            });
            return;
        }
        if started.elapsed() >= BACKOFF_RESET {
            crashes = 0;
        }
        crashes += 1;
        let delay = backoff(crashes);
        let message = format!(
            "back-off {}s restarting failed container={name} pod={}",
            delay.as_secs(),
            run.name
        );
        run.update(index, |c| {
            c.last = Some(ended.clone());
            c.ready = false;
            c.state = if delay.is_zero() {
                State::Terminated(ended.clone())
            } else {
                State::Waiting {
                    reason: "CrashLoopBackOff".into(),
                    message: message.clone(),
                }
            };
        });
        if !delay.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stopped(&mut stop) => return,
            }
        }
        instance += 1;
    }
}

/// A started instance.
struct Proc {
    child: tokio::process::Child,
    pgid: i32,
    pumps: Vec<tokio::task::JoinHandle<()>>,
    writer: Arc<Writer>,
    cgroup: Option<sys::Cgroup>,
    pid_file: std::path::PathBuf,
}

impl Proc {
    /// Drains the output, marks the log complete, forgets the group.
    async fn finish(self, run: &PodRun, name: &str) {
        for p in self.pumps {
            let abort = p.abort_handle();
            if tokio::time::timeout(REAP, p).await.is_err() {
                abort.abort();
            }
        }
        self.writer.finish();
        run.forget_group(name);
        let _ = std::fs::remove_file(&self.pid_file);
    }
}

/// Spawns one instance in its own process group.
async fn start(run: &PodRun, name: &str, instance: u32, launch: &Launch) -> Result<Proc, String> {
    let writer =
        Writer::create(&run.dir, name, instance).map_err(|e| format!("log of {name}: {e}"))?;
    let mut cmd = tokio::process::Command::new(&launch.program);
    cmd.args(&launch.args)
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&launch.cwd)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(false);
    let mut cgroup = None;
    if let Some(limit) = launch.memory_limit {
        match run.cgroup_parent() {
            Some(parent) => {
                match sys::Cgroup::create(&parent, &format!("vdi-{}-{name}", run.uid), limit) {
                    Ok(g) => cgroup = Some(g),
                    Err(e) => {
                        tracing::warn!(error = %e, "cgroup not created; limiting RLIMIT_DATA instead");
                        sys::limit_data(&mut cmd, limit);
                    }
                }
            }
            None => sys::limit_data(&mut cmd, limit),
        }
    }
    let spawned = cmd
        .spawn()
        .map_err(|e| format!("cannot run {:?}: {e}", launch.program))
        .and_then(|child| {
            let pid = child
                .id()
                .ok_or("the process ended before it was recorded")?;
            let pgid = i32::try_from(pid).map_err(|_| format!("pid {pid} out of range"))?;
            Ok((child, pid, pgid))
        });
    let (mut child, pid, pgid) = match spawned {
        Ok(s) => s,
        Err(e) => {
            // Nothing will be written: a follower must not wait for more.
            writer.finish();
            return Err(e);
        }
    };
    if let Some(g) = &cgroup
        && let Err(e) = g.add(pid)
    {
        tracing::warn!(error = %e, "process not moved into its cgroup");
    }
    run.record_group(name, pgid);
    let pid_file = run.dir.join("pids").join(name);
    if let Err(e) = sys::write_pid_file(&pid_file, pgid) {
        tracing::warn!(error = %e, "pid file not written");
    }
    let mut pumps = Vec::new();
    if let Some(out) = child.stdout.take() {
        pumps.push(tokio::spawn(logs::pump(out, writer.clone())));
    }
    if let Some(err) = child.stderr.take() {
        pumps.push(tokio::spawn(logs::pump(err, writer.clone())));
    }
    Ok(Proc {
        child,
        pgid,
        pumps,
        writer,
        cgroup,
        pid_file,
    })
}

/// Readiness (sets `ready`) and liveness (ends the group on failure) probes.
fn spawn_probes(
    run: &Arc<PodRun>,
    index: usize,
    launch: &Launch,
    pgid: i32,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    if let Some(probe) = launch.readiness.clone() {
        let (run, env) = (run.clone(), launch.env.clone());
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(probe.initial_delay).await;
            let mut t = Thresholds::default();
            loop {
                let ok = probe::check(&probe, &env).await;
                if let Some(ready) = t.record(&probe, ok) {
                    run.update(index, |c| c.ready = ready);
                }
                tokio::time::sleep(probe.period).await;
            }
        }));
    }
    if let Some(probe) = launch.liveness.clone() {
        let (env, name, pod) = (
            launch.env.clone(),
            run.container_name(index),
            run.name.clone(),
        );
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(probe.initial_delay).await;
            let mut t = Thresholds::default();
            loop {
                let ok = probe::check(&probe, &env).await;
                if t.record(&probe, ok) == Some(false) {
                    tracing::info!(%pod, container = %name, "liveness probe failed; ending the container");
                    sys::signal_group(pgid, Signal::TERM);
                    return;
                }
                tokio::time::sleep(probe.period).await;
            }
        }));
    }
    tasks
}

/// A stop signal shared by a pod's tasks.
pub(crate) type Stop = watch::Receiver<bool>;

/// Resolves once the pod is told to stop (or its sender is gone).
pub(crate) async fn stopped(stop: &mut Stop) {
    let _ = stop.wait_for(|s| *s).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_immediate_then_doubles_from_ten_seconds_to_five_minutes() {
        let secs: Vec<u64> = (1..=9).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(secs, [0, 10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(backoff(u32::MAX), BACKOFF_MAX);
    }
}
