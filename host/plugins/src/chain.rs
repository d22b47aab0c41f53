//! The ordered admission chain: failure policy per plugin, mutations applied in order and
//! re-checked.

use std::time::{Duration, Instant};

use crate::error::CallError;
use crate::plugin::Plugin;
use crate::types::{AdmissionContext, SessionRequest, SessionSpec, Verdict};

/// What a plugin's failure means for the request, as for Kubernetes admission webhooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum FailurePolicy {
    /// A failing plugin refuses the request (fail closed).
    #[default]
    Fail,
    /// A failing plugin is skipped.
    Ignore,
}

/// One plugin of the chain.
#[derive(Debug, Clone)]
pub struct ChainEntry {
    /// The admission plugin.
    pub plugin: Plugin,
    /// What its failure means.
    pub failure_policy: FailurePolicy,
}

/// What one plugin decided within a chain run.
#[derive(Debug, Clone, PartialEq)]
pub enum DecisionOutcome {
    /// Allowed unchanged.
    Allowed,
    /// Denied with this reason.
    Denied(String),
    /// Changed the spec.
    Mutated,
    /// Failed and was skipped (`Ignore`).
    Skipped(CallError),
    /// Failed and refused the request (`Fail`).
    Failed(CallError),
}

/// One plugin's decision, for the session's status and the logs.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Plugin name.
    pub plugin: String,
    /// Module digest (`sha256:...`).
    pub digest: String,
    /// What it decided.
    pub outcome: DecisionOutcome,
    /// How long it took.
    pub latency: Duration,
}

/// The chain's verdict.
#[derive(Debug, Clone, PartialEq)]
pub enum ChainVerdict {
    /// Admitted, with the final spec (changed when `mutated`).
    Allowed {
        /// The spec to store.
        spec: SessionSpec,
        /// Whether any plugin changed it.
        mutated: bool,
    },
    /// A plugin refused it.
    Denied {
        /// The plugin.
        plugin: String,
        /// Its reason, shown to the user.
        reason: String,
    },
    /// A plugin with `Fail` policy failed.
    Failed {
        /// The plugin.
        plugin: String,
        /// What went wrong.
        error: CallError,
    },
}

/// The verdict and every decision that led to it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainOutcome {
    /// The chain's verdict.
    pub verdict: ChainVerdict,
    /// Each plugin's decision, in order (the re-check pass included).
    pub decisions: Vec<Decision>,
}

/// An ordered list of admission plugins.
#[derive(Debug, Clone, Default)]
pub struct AdmissionChain {
    entries: Vec<ChainEntry>,
}

enum Pass {
    Done(SessionSpec, bool),
    Stop(ChainVerdict),
}

impl AdmissionChain {
    /// A chain of `entries` in this order.
    pub fn new(entries: Vec<ChainEntry>) -> Self {
        Self { entries }
    }

    /// The entries.
    pub fn entries(&self) -> &[ChainEntry] {
        &self.entries
    }

    /// Runs the chain. Each plugin sees the spec left by those before it. If any plugin mutated,
    /// the whole chain runs once more on the final spec: every plugin must then allow it as is
    /// (a plugin that mutates again does not converge, and counts as failed).
    pub fn review(&self, request: &SessionRequest, context: &AdmissionContext) -> ChainOutcome {
        let mut decisions = Vec::with_capacity(self.entries.len());
        let verdict = match self.pass(request.clone(), context, &mut decisions, false) {
            Pass::Stop(v) => v,
            Pass::Done(spec, false) => ChainVerdict::Allowed {
                spec,
                mutated: false,
            },
            Pass::Done(spec, true) => {
                let recheck = SessionRequest {
                    spec,
                    ..request.clone()
                };
                match self.pass(recheck, context, &mut decisions, true) {
                    Pass::Stop(v) => v,
                    Pass::Done(spec, _) => ChainVerdict::Allowed {
                        spec,
                        mutated: true,
                    },
                }
            }
        };
        ChainOutcome { verdict, decisions }
    }

    fn pass(
        &self,
        mut request: SessionRequest,
        context: &AdmissionContext,
        decisions: &mut Vec<Decision>,
        recheck: bool,
    ) -> Pass {
        let mut mutated = false;
        for entry in &self.entries {
            let plugin = &entry.plugin;
            let started = Instant::now();
            let result = plugin.review(&request, context).and_then(|v| match v {
                Verdict::Mutate(spec) if recheck && spec != request.spec => {
                    Err(CallError::BadOutput {
                        reason:
                            "mutated the spec again on re-check: its mutation does not converge"
                                .into(),
                    })
                }
                Verdict::Mutate(spec) if spec == request.spec => Ok(Verdict::Allow),
                v => Ok(v),
            });
            let mut record = |outcome| {
                decisions.push(Decision {
                    plugin: plugin.name().to_owned(),
                    digest: plugin.digest().to_string(),
                    outcome,
                    latency: started.elapsed(),
                });
            };
            match result {
                Ok(Verdict::Allow) => record(DecisionOutcome::Allowed),
                Ok(Verdict::Deny(reason)) => {
                    record(DecisionOutcome::Denied(reason.clone()));
                    return Pass::Stop(ChainVerdict::Denied {
                        plugin: plugin.name().to_owned(),
                        reason,
                    });
                }
                Ok(Verdict::Mutate(spec)) => {
                    record(DecisionOutcome::Mutated);
                    request.spec = spec;
                    mutated = true;
                }
                Err(error) => match entry.failure_policy {
                    FailurePolicy::Ignore => {
                        tracing::warn!(plugin = plugin.name(), %error, "admission plugin failed; skipped (Ignore)");
                        record(DecisionOutcome::Skipped(error));
                    }
                    FailurePolicy::Fail => {
                        tracing::warn!(plugin = plugin.name(), %error, "admission plugin failed; request refused (Fail)");
                        record(DecisionOutcome::Failed(error.clone()));
                        return Pass::Stop(ChainVerdict::Failed {
                            plugin: plugin.name().to_owned(),
                            error,
                        });
                    }
                },
            }
        }
        Pass::Done(request.spec, mutated)
    }
}
