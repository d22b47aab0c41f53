//! Placement: one task owns every GPU-slot decision, so no slot is ever given twice however many
//! sessions are reconciled at once. Requests that arrive together are placed in one batch
//! (one plugin call against one inventory snapshot). Placements not yet visible in the session
//! cache are held in a ledger, so a decision counts from the moment it is made.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Node as KubeNode;
use kube::ResourceExt as _;
use kube::runtime::reflector::Store;
use tokio::sync::{mpsc, oneshot};
use vdi_crd::{DecisionRecord, EffectiveResources, HookKind, Outcome, RUNTIME_LABEL, VDISession};
use vdi_plugin_host::Plugin;
use vdi_plugin_host::types::{PlacementDecision, SessionRequest};

use crate::calls::duration_micros;
use crate::inventory::{Holding, inventory};
use crate::registry::Registry;

/// Most requests placed in one plugin call.
pub const MAX_BATCH: usize = 64;
/// How long a ledger entry the session cache never confirms is kept.
const LEDGER_GRACE: Duration = Duration::from_secs(30);
/// How often the ledger forgets what the cache has caught up with while no job comes, so a
/// session placed, run and deleted between two batches does not hold its place for
/// [`LEDGER_GRACE`] after it is gone.
const LEDGER_TIDY: Duration = Duration::from_millis(250);

/// Drops the entries the cache has caught up with; an entry the cache never shows (its status
/// write was lost and the session went away) expires after [`LEDGER_GRACE`].
fn tidy_ledger(ledger: &mut HashMap<String, LedgerEntry>, cached: &HashMap<String, Holding>) {
    ledger.retain(|uid, e| match cached.get(uid) {
        Some(h) => *h != e.holding,
        None => e.at.elapsed() < LEDGER_GRACE,
    });
}

/// Where a session goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// Node.
    pub node: String,
    /// GPU index.
    pub gpu: Option<u32>,
    /// The plugin's reason.
    pub reason: String,
}

/// The answer to a placement request.
#[derive(Debug, Clone, PartialEq)]
pub enum Placement {
    /// Placed (or already placed earlier: the same answer again).
    Placed(Placed, Option<DecisionRecord>),
    /// Fits nowhere now.
    Unschedulable(String, DecisionRecord),
    /// No scheduler plugin can decide (none loaded, or it failed).
    Unavailable(String, Option<DecisionRecord>),
}

struct Job {
    uid: String,
    node_selector: BTreeMap<String, String>,
    request: SessionRequest,
    resources: EffectiveResources,
    reply: oneshot::Sender<Placement>,
}

/// Asks the placement task.
#[derive(Clone, Debug)]
pub struct Scheduler {
    tx: mpsc::Sender<Job>,
}

struct LedgerEntry {
    holding: Holding,
    reason: String,
    at: Instant,
}

impl Scheduler {
    /// Starts the placement task over the nodes and sessions caches.
    pub fn start(
        registry: Arc<Registry>,
        nodes: Store<KubeNode>,
        sessions: Store<VDISession>,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(4096);
        let task = tokio::spawn(run(registry, nodes, sessions, rx));
        (Self { tx }, task)
    }

    /// Places the session with `uid` on one of the nodes carrying every label of
    /// `node_selector` (idempotent: a session placed before gets the same place).
    pub async fn place(
        &self,
        uid: &str,
        request: SessionRequest,
        resources: EffectiveResources,
        node_selector: BTreeMap<String, String>,
    ) -> Placement {
        let (reply, rx) = oneshot::channel();
        let job = Job {
            uid: uid.to_owned(),
            node_selector,
            request,
            resources,
            reply,
        };
        if self.tx.send(job).await.is_err() {
            return Placement::Unavailable("the placement task stopped".into(), None);
        }
        rx.await
            .unwrap_or_else(|_| Placement::Unavailable("the placement task stopped".into(), None))
    }
}

/// What placed sessions hold, from the cache, by session uid.
fn cached_holdings(sessions: &Store<VDISession>) -> HashMap<String, Holding> {
    sessions
        .state()
        .iter()
        .filter_map(|s| {
            let st = s.status.as_ref()?;
            // A session the warm pool serves holds nothing itself: its pool session does.
            if !st.phase().holds_capacity() || st.served_by.is_some() {
                return None;
            }
            Some((
                s.uid()?,
                Holding {
                    node: st.node.clone()?,
                    gpu: st.gpu,
                    resources: st.admitted.as_ref()?.resources,
                },
            ))
        })
        .collect()
}

async fn run(
    registry: Arc<Registry>,
    nodes: Store<KubeNode>,
    sessions: Store<VDISession>,
    mut rx: mpsc::Receiver<Job>,
) {
    let mut ledger: HashMap<String, LedgerEntry> = HashMap::new();
    let mut tidy = tokio::time::interval(LEDGER_TIDY);
    tidy.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let first = tokio::select! {
            job = rx.recv() => match job {
                Some(job) => job,
                None => return,
            },
            _ = tidy.tick() => {
                if !ledger.is_empty() {
                    tidy_ledger(&mut ledger, &cached_holdings(&sessions));
                }
                continue;
            }
        };
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let cached = cached_holdings(&sessions);
        tidy_ledger(&mut ledger, &cached);
        // Sessions already placed get the same answer.
        let mut todo = Vec::new();
        for job in jobs {
            if let Some(h) = cached.get(&job.uid) {
                let placed = Placed {
                    node: h.node.clone(),
                    gpu: h.gpu,
                    reason: "placed earlier".into(),
                };
                let _ = job.reply.send(Placement::Placed(placed, None));
            } else if let Some(e) = ledger.get(&job.uid) {
                let placed = Placed {
                    node: e.holding.node.clone(),
                    gpu: e.holding.gpu,
                    reason: e.reason.clone(),
                };
                let _ = job.reply.send(Placement::Placed(placed, None));
            } else {
                todo.push(job);
            }
        }
        if todo.is_empty() {
            continue;
        }
        let set = registry.current();
        let Some(plugin) = set.scheduler().cloned() else {
            for job in todo {
                let _ = job.reply.send(Placement::Unavailable(
                    "no scheduler plugin is loaded".into(),
                    None,
                ));
            }
            continue;
        };
        // One plugin call per node selector, each against the nodes it selects; later groups
        // see the earlier groups' placements through the ledger.
        for (selector, group) in by_selector(todo) {
            place_group(
                &plugin,
                &registry,
                &nodes,
                &cached,
                &mut ledger,
                &selector,
                group,
            )
            .await;
        }
    }
}

/// Jobs grouped by node selector, in arrival order of each selector's first job.
fn by_selector(jobs: Vec<Job>) -> Vec<(BTreeMap<String, String>, Vec<Job>)> {
    let mut groups: Vec<(BTreeMap<String, String>, Vec<Job>)> = Vec::new();
    for job in jobs {
        match groups.iter_mut().find(|(s, _)| *s == job.node_selector) {
            Some((_, g)) => g.push(job),
            None => groups.push((job.node_selector.clone(), vec![job])),
        }
    }
    groups
}

/// Whether a node with `labels` carries every label of `selector`. A node that runs pods as
/// local processes (`vdi.dev/runtime=process`) is only for templates that ask for it by that
/// label: a desktop image meant for a container must not land there by chance.
pub fn selects(
    selector: &BTreeMap<String, String>,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    let process_node = labels
        .and_then(|l| l.get(RUNTIME_LABEL))
        .map(String::as_str)
        == Some(PROCESS_RUNTIME);
    if process_node && !selector.contains_key(RUNTIME_LABEL) {
        return false;
    }
    selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// The value of [`RUNTIME_LABEL`] on the local process node.
pub const PROCESS_RUNTIME: &str = "process";

/// Places one group of jobs with the same node selector in one plugin call.
async fn place_group(
    plugin: &Plugin,
    registry: &Registry,
    nodes: &Store<KubeNode>,
    cached: &HashMap<String, Holding>,
    ledger: &mut HashMap<String, LedgerEntry>,
    selector: &BTreeMap<String, String>,
    todo: Vec<Job>,
) {
    let node_state = nodes.state();
    let holdings: Vec<Holding> = cached
        .iter()
        .filter(|(uid, _)| !ledger.contains_key(*uid))
        .map(|(_, h)| h.clone())
        .chain(ledger.values().map(|e| e.holding.clone()))
        .collect();
    let selected = node_state
        .iter()
        .map(|n| &**n)
        .filter(|n| selects(selector, n.metadata.labels.as_ref()));
    let inv = inventory(selected, &holdings);
    let requests: Vec<SessionRequest> = todo.iter().map(|j| j.request.clone()).collect();
    let started = Instant::now();
    let call = registry
        .runtime()
        .pool()
        .run(plugin.limits().timeout, {
            let plugin = plugin.clone();
            move || plugin.place_batch(&requests, &inv)
        })
        .await;
    let latency = duration_micros(started.elapsed()) / todo.len().max(1) as u64;
    let record = |outcome: Outcome, message: String| {
        DecisionRecord::new(
            HookKind::Scheduler,
            plugin.name(),
            plugin.digest().to_string(),
            outcome,
            message,
            latency,
        )
    };
    let decisions = match call {
        Ok(Ok(d)) if d.len() == todo.len() => d,
        Ok(Ok(d)) => {
            let why = format!("returned {} decisions for {} requests", d.len(), todo.len());
            for job in todo {
                let r = record(Outcome::Failed, why.clone());
                let _ = job.reply.send(Placement::Unavailable(why.clone(), Some(r)));
            }
            return;
        }
        Ok(Err(e)) => {
            let why = format!("scheduler plugin {} failed: {e}", plugin.name());
            for job in todo {
                let r = record(Outcome::Failed, e.to_string());
                let _ = job.reply.send(Placement::Unavailable(why.clone(), Some(r)));
            }
            return;
        }
        Err(e) => {
            for job in todo {
                let _ = job.reply.send(Placement::Unavailable(e.to_string(), None));
            }
            return;
        }
    };
    for (job, decision) in todo.into_iter().zip(decisions) {
        let answer = match decision {
            PlacementDecision::Placed(p) => {
                ledger.insert(
                    job.uid.clone(),
                    LedgerEntry {
                        holding: Holding {
                            node: p.node.clone(),
                            gpu: p.gpu,
                            resources: job.resources,
                        },
                        reason: p.reason.clone(),
                        at: Instant::now(),
                    },
                );
                let r = record(Outcome::Placed, p.reason.clone());
                Placement::Placed(
                    Placed {
                        node: p.node,
                        gpu: p.gpu,
                        reason: p.reason,
                    },
                    Some(r),
                )
            }
            PlacementDecision::Unschedulable(reasons) => {
                let why = reasons.join("; ");
                Placement::Unschedulable(why.clone(), record(Outcome::Unschedulable, why))
            }
        };
        let _ = job.reply.send(answer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ledger_forgets_what_the_cache_shows_and_what_it_never_showed_after_the_grace() {
        let holding = |node: &str| Holding {
            node: node.into(),
            gpu: None,
            resources: EffectiveResources::default(),
        };
        let entry = |node: &str, age: Duration| LedgerEntry {
            holding: holding(node),
            reason: String::new(),
            at: Instant::now().checked_sub(age).unwrap_or_else(Instant::now),
        };
        let mut ledger = HashMap::from([
            ("caught-up".to_owned(), entry("local", Duration::ZERO)),
            ("moved".to_owned(), entry("local", Duration::ZERO)),
            (
                "in-flight".to_owned(),
                entry("local", Duration::from_secs(1)),
            ),
            (
                "lost".to_owned(),
                entry("local", LEDGER_GRACE + Duration::from_secs(1)),
            ),
        ]);
        let cached = HashMap::from([
            ("caught-up".to_owned(), holding("local")),
            ("moved".to_owned(), holding("other")),
        ]);
        tidy_ledger(&mut ledger, &cached);
        let mut left: Vec<&str> = ledger.keys().map(String::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["in-flight", "moved"]);
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_node_selector_needs_every_label() {
        let any = BTreeMap::new();
        assert!(selects(&any, None), "no selector matches every node");
        let local = labels(&[("vdi.dev/runtime", "process"), ("zone", "a")]);
        let node = labels(&[("vdi.dev/runtime", "process"), ("zone", "a"), ("x", "y")]);
        assert!(selects(&local, Some(&node)));
        let partial = labels(&[("vdi.dev/runtime", "process")]);
        assert!(!selects(&local, Some(&partial)), "a label missing");
        let other = labels(&[("vdi.dev/runtime", "kubelet"), ("zone", "a")]);
        assert!(!selects(&local, Some(&other)), "a different value");
        assert!(!selects(&local, None), "a node without labels");
        let process = labels(&[("vdi.dev/runtime", "process"), ("zone", "a")]);
        assert!(
            !selects(&labels(&[("zone", "a")]), Some(&process)),
            "the process node only for templates that ask for it"
        );
        assert!(!selects(&any, Some(&process)));
    }
}
