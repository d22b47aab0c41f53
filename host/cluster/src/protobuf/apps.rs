//! Workloads: Deployment (`apps/v1`), Job and CronJob (`batch/v1`).

use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::batch::v1 as batch;

use super::fields::{Converted, Obj};
use super::meta::{blank_status, label_selector, object, object_meta};
use super::pod::pod_template;

/// Deployment (`kubectl create deployment`).
pub(super) fn deployment(mut d: apps::Deployment) -> Converted {
    let mut o = object(d.metadata.take())?;
    o.obj("spec", &mut d.spec, |mut s| {
        let mut o = Obj::default();
        o.int("replicas", &mut s.replicas);
        o.obj("selector", &mut s.selector, label_selector)?;
        o.obj("template", &mut s.template, pod_template)?;
        o.obj("strategy", &mut s.strategy, |mut st| {
            let mut o = Obj::default();
            o.str("type", &mut st.r#type);
            o.obj("rollingUpdate", &mut st.rolling_update, |mut r| {
                let mut o = Obj::default();
                o.int_or_string("maxUnavailable", &mut r.max_unavailable);
                o.int_or_string("maxSurge", &mut r.max_surge);
                o.done(r, "RollingUpdateDeployment")
            })?;
            o.done(st, "DeploymentStrategy")
        })?;
        o.int0("minReadySeconds", &mut s.min_ready_seconds);
        o.int("revisionHistoryLimit", &mut s.revision_history_limit);
        o.flag0("paused", &mut s.paused);
        o.int("progressDeadlineSeconds", &mut s.progress_deadline_seconds);
        o.done(s, "DeploymentSpec")
    })?;
    blank_status(&mut d.status, "DeploymentStatus")?;
    o.done(d, "Deployment")
}

/// Job (`kubectl create job`, also `--from=cronjob/...`).
pub(super) fn job(mut j: batch::Job) -> Converted {
    let mut o = object(j.metadata.take())?;
    o.obj("spec", &mut j.spec, job_spec)?;
    blank_status(&mut j.status, "JobStatus")?;
    o.done(j, "Job")
}

/// CronJob (`kubectl create cronjob`).
pub(super) fn cron_job(mut c: batch::CronJob) -> Converted {
    let mut o = object(c.metadata.take())?;
    o.obj("spec", &mut c.spec, |mut s| {
        let mut o = Obj::default();
        o.str("schedule", &mut s.schedule);
        o.str("timeZone", &mut s.time_zone);
        o.int("startingDeadlineSeconds", &mut s.starting_deadline_seconds);
        o.str("concurrencyPolicy", &mut s.concurrency_policy);
        o.flag("suspend", &mut s.suspend);
        o.obj("jobTemplate", &mut s.job_template, |mut t| {
            let mut o = Obj::default();
            o.obj("metadata", &mut t.metadata, object_meta)?;
            o.obj("spec", &mut t.spec, job_spec)?;
            o.done(t, "JobTemplateSpec")
        })?;
        o.int(
            "successfulJobsHistoryLimit",
            &mut s.successful_jobs_history_limit,
        );
        o.int("failedJobsHistoryLimit", &mut s.failed_jobs_history_limit);
        o.done(s, "CronJobSpec")
    })?;
    blank_status(&mut c.status, "CronJobStatus")?;
    o.done(c, "CronJob")
}

/// A JobSpec. Not converted: `podFailurePolicy`, `successPolicy`.
fn job_spec(mut s: batch::JobSpec) -> Converted {
    let mut o = Obj::default();
    o.int("parallelism", &mut s.parallelism);
    o.int("completions", &mut s.completions);
    o.int("activeDeadlineSeconds", &mut s.active_deadline_seconds);
    o.int("backoffLimit", &mut s.backoff_limit);
    o.int("backoffLimitPerIndex", &mut s.backoff_limit_per_index);
    o.int("maxFailedIndexes", &mut s.max_failed_indexes);
    o.obj("selector", &mut s.selector, label_selector)?;
    o.flag("manualSelector", &mut s.manual_selector);
    o.obj("template", &mut s.template, pod_template)?;
    o.int("ttlSecondsAfterFinished", &mut s.ttl_seconds_after_finished);
    o.str("completionMode", &mut s.completion_mode);
    o.flag("suspend", &mut s.suspend);
    o.str("podReplacementPolicy", &mut s.pod_replacement_policy);
    o.str("managedBy", &mut s.managed_by);
    o.done(s, "JobSpec")
}
