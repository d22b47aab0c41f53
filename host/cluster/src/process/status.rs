//! Container states and the pod status they make (pure): phase, conditions, container
//! statuses, as the kubelet reports them.

use serde_json::{Value, json};

use super::plan::RestartPolicy;

/// How a container instance ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Terminated {
    pub exit_code: i32,
    /// The signal that killed the process, if one did.
    pub signal: Option<i32>,
    /// `Completed`, `Error`, `OOMKilled`.
    pub reason: String,
    pub message: Option<String>,
    pub started_at: String,
    pub finished_at: String,
}

impl Terminated {
    /// The kubelet's reason and exit code for a process that exited with `code` or was killed
    /// by `signal`.
    pub(crate) fn new(
        code: Option<i32>,
        signal: Option<i32>,
        oom: bool,
        started_at: String,
        finished_at: String,
    ) -> Self {
        let exit_code = code.unwrap_or_else(|| 128 + signal.unwrap_or(0));
        let reason = if oom {
            "OOMKilled"
        } else if exit_code == 0 {
            "Completed"
        } else {
            "Error"
        };
        let message = signal.map(|s| format!("killed by signal {}", signal_name(s)));
        Self {
            exit_code,
            signal,
            reason: reason.to_owned(),
            message,
            started_at,
            finished_at,
        }
    }

    fn to_json(&self) -> Value {
        let mut t = json!({
            "exitCode": self.exit_code,
            "reason": self.reason,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
        });
        if let Some(s) = self.signal {
            t["signal"] = json!(s);
        }
        if let Some(m) = &self.message {
            t["message"] = json!(m);
        }
        t
    }
}

/// The name of a signal (`SIGKILL`), or `signal N`.
pub(crate) fn signal_name(signal: i32) -> String {
    let name = match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        _ => return format!("signal {signal}"),
    };
    name.to_owned()
}

/// A container's current state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum State {
    Waiting { reason: String, message: String },
    Running { started_at: String },
    Terminated(Terminated),
}

/// What the node knows of one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Container {
    pub name: String,
    pub image: String,
    pub state: State,
    pub last: Option<Terminated>,
    /// Starts after the first.
    pub restart_count: u32,
    pub ready: bool,
    /// Whether an instance ever started.
    pub ever_started: bool,
}

impl Container {
    pub(crate) fn new(name: &str, image: &str) -> Self {
        Self {
            name: name.to_owned(),
            image: image.to_owned(),
            state: State::Waiting {
                reason: "ContainerCreating".into(),
                message: String::new(),
            },
            last: None,
            restart_count: 0,
            ready: false,
            ever_started: false,
        }
    }

    fn to_json(&self) -> Value {
        let state = match &self.state {
            State::Waiting { reason, message } if message.is_empty() => {
                json!({"waiting": {"reason": reason}})
            }
            State::Waiting { reason, message } => {
                json!({"waiting": {"reason": reason, "message": message}})
            }
            State::Running { started_at } => json!({"running": {"startedAt": started_at}}),
            State::Terminated(t) => json!({"terminated": t.to_json()}),
        };
        let mut s = json!({
            "name": self.name,
            "image": self.image,
            "imageID": "",
            "containerID": format!("process://{}", self.name),
            "ready": self.ready,
            "started": matches!(self.state, State::Running { .. }),
            "restartCount": self.restart_count,
            "state": state,
        });
        if let Some(last) = &self.last {
            s["lastState"] = json!({"terminated": last.to_json()});
        }
        s
    }
}

/// The pod's phase (kubelet's `getPhase`).
pub(crate) fn phase(containers: &[Container], restart: RestartPolicy) -> &'static str {
    let (mut pending, mut running, mut succeeded, mut failed) = (0, 0, 0, 0);
    for c in containers {
        match &c.state {
            State::Running { .. } => running += 1,
            State::Terminated(t) if t.exit_code == 0 => succeeded += 1,
            State::Terminated(_) => failed += 1,
            // Backing off after an instance ran: the pod is still Running.
            State::Waiting { .. } if c.last.is_some() => running += 1,
            State::Waiting { .. } => pending += 1,
        }
    }
    if pending > 0 || containers.is_empty() {
        "Pending"
    } else if running > 0 {
        "Running"
    } else if restart == RestartPolicy::Always
        || (restart == RestartPolicy::OnFailure && failed > 0)
    {
        // They will start again.
        "Running"
    } else if failed > 0 {
        "Failed"
    } else {
        let _ = succeeded;
        "Succeeded"
    }
}

/// The pod's status without transition times (see [`with_times`]).
pub(crate) fn pod_status(
    containers: &[Container],
    restart: RestartPolicy,
    start_time: &str,
) -> Value {
    let phase = phase(containers, restart);
    let all_ready = !containers.is_empty() && containers.iter().all(|c| c.ready);
    let not_ready: Vec<&str> = containers
        .iter()
        .filter(|c| !c.ready)
        .map(|c| c.name.as_str())
        .collect();
    let ready = |t: &str| {
        if all_ready {
            json!({"type": t, "status": "True"})
        } else {
            let reason = if phase == "Succeeded" || phase == "Failed" {
                "PodCompleted"
            } else {
                "ContainersNotReady"
            };
            json!({"type": t, "status": "False", "reason": reason,
                "message": format!("containers with unready status: [{}]", not_ready.join(" "))})
        }
    };
    let mut status = json!({
        "phase": phase,
        "hostIP": "127.0.0.1",
        "hostIPs": [{"ip": "127.0.0.1"}],
        "podIP": "127.0.0.1",
        "podIPs": [{"ip": "127.0.0.1"}],
        "startTime": start_time,
        "qosClass": "BestEffort",
        "conditions": [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Initialized", "status": "True"},
            ready("ContainersReady"),
            ready("Ready"),
        ],
        "containerStatuses": containers.iter().map(Container::to_json).collect::<Vec<_>>(),
    });
    if phase == "Failed" {
        let failed: Vec<String> = containers
            .iter()
            .filter_map(|c| match &c.state {
                State::Terminated(t) if t.exit_code != 0 => Some(format!(
                    "container {} exited with {} ({})",
                    c.name, t.exit_code, t.reason
                )),
                _ => None,
            })
            .collect();
        status["reason"] = json!("Error");
        status["message"] = json!(failed.join("; "));
    }
    status
}

/// Adds `lastTransitionTime` to the conditions: kept from `previous` where a condition's status
/// is unchanged, `now` otherwise.
pub(crate) fn with_times(mut status: Value, previous: &Value, now: &str) -> Value {
    if let Some(conditions) = status["conditions"].as_array_mut() {
        for c in conditions {
            let kept = previous["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p["type"] == c["type"] && p["status"] == c["status"])
                .and_then(|p| p["lastTransitionTime"].as_str())
                .unwrap_or(now)
                .to_owned();
            c["lastTransitionTime"] = json!(kept);
        }
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(code: i32) -> Terminated {
        Terminated::new(Some(code), None, false, "a".into(), "b".into())
    }

    fn container(state: State, last: Option<Terminated>, ready: bool) -> Container {
        Container {
            state,
            last,
            ready,
            ..Container::new("c", "i")
        }
    }

    #[test]
    fn phases_follow_states_and_restart_policy() {
        let running = || State::Running {
            started_at: "t".into(),
        };
        let waiting = || State::Waiting {
            reason: "ContainerCreating".into(),
            message: String::new(),
        };
        use RestartPolicy::*;
        assert_eq!(
            phase(&[container(waiting(), None, false)], Always),
            "Pending"
        );
        assert_eq!(
            phase(
                &[
                    container(running(), None, true),
                    container(waiting(), None, false)
                ],
                Always
            ),
            "Pending"
        );
        assert_eq!(phase(&[container(running(), None, true)], Never), "Running");
        let backoff = container(
            State::Waiting {
                reason: "CrashLoopBackOff".into(),
                message: String::new(),
            },
            Some(term(1)),
            false,
        );
        assert_eq!(phase(&[backoff], Always), "Running");
        let failed = container(State::Terminated(term(137)), None, false);
        assert_eq!(phase(std::slice::from_ref(&failed), Never), "Failed");
        assert_eq!(phase(std::slice::from_ref(&failed), OnFailure), "Running");
        let done = container(State::Terminated(term(0)), None, false);
        assert_eq!(phase(std::slice::from_ref(&done), OnFailure), "Succeeded");
        assert_eq!(
            phase(&[done, container(running(), None, true)], Never),
            "Running"
        );
    }

    #[test]
    fn failed_pod_says_which_container_and_why() {
        let c = Container {
            name: "desktop".into(),
            ..container(State::Terminated(term(137)), None, false)
        };
        let s = pod_status(&[c], RestartPolicy::Never, "t0");
        assert_eq!(s["phase"], "Failed");
        assert_eq!(s["reason"], "Error");
        assert_eq!(s["message"], "container desktop exited with 137 (Error)");
        assert_eq!(
            s["containerStatuses"][0]["state"]["terminated"]["exitCode"],
            137
        );
        assert_eq!(s["conditions"][3]["reason"], "PodCompleted");
    }

    #[test]
    fn signals_oom_and_success_have_kubelet_reasons() {
        let t = Terminated::new(None, Some(9), false, "a".into(), "b".into());
        assert_eq!((t.exit_code, t.reason.as_str()), (137, "Error"));
        assert_eq!(t.message.as_deref(), Some("killed by signal SIGKILL"));
        assert_eq!(
            Terminated::new(None, Some(9), true, "a".into(), "b".into()).reason,
            "OOMKilled"
        );
        assert_eq!(term(0).reason, "Completed");
        assert_eq!(signal_name(64), "signal 64");
    }

    #[test]
    fn transition_times_are_kept_while_a_condition_holds() {
        let ready = container(
            State::Running {
                started_at: "t".into(),
            },
            None,
            true,
        );
        let first = with_times(
            pod_status(std::slice::from_ref(&ready), RestartPolicy::Always, "t0"),
            &Value::Null,
            "t1",
        );
        let again = with_times(
            pod_status(&[ready], RestartPolicy::Always, "t0"),
            &first,
            "t2",
        );
        assert_eq!(again["conditions"][3]["lastTransitionTime"], "t1");
        let unready = container(
            State::Running {
                started_at: "t".into(),
            },
            None,
            false,
        );
        let later = with_times(
            pod_status(&[unready], RestartPolicy::Always, "t0"),
            &again,
            "t3",
        );
        assert_eq!(later["conditions"][3]["lastTransitionTime"], "t3");
        assert_eq!(later["conditions"][0]["lastTransitionTime"], "t1");
    }
}
