//! The threads plugins run on: a fixed set of plain OS threads (never a tokio worker), reached
//! from async code through [`PluginPool::run`] and from blocking code through
//! [`PluginPool::run_blocking`].
//!
//! WASI host calls made by a guest (stdio, clocks) drive futures with a runtime of their own and
//! must not run on a tokio worker; a decision that blocks also must not stall the async server
//! that asked for it. The pool is bounded: at most `threads` decisions run at once and at most
//! `queue` wait; more callers wait for a slot (async) or are refused (blocking callers cannot
//! wait forever). A watchdog on the caller's side gives up after the job's time limit plus
//! [`WATCHDOG_GRACE`], even if a decision were stuck in a host call.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

/// Extra time past a job's own limit before the caller stops waiting for it.
pub const WATCHDOG_GRACE: Duration = Duration::from_millis(500);

/// Why the pool gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// Every thread is busy and the queue is full.
    #[error("plugin pool is saturated ({0} decisions running or queued)")]
    Saturated(usize),
    /// The job did not answer within its limit plus the grace.
    #[error("plugin call gave no answer within {0:?}")]
    Watchdog(Duration),
    /// The job panicked (a host bug, never a guest's doing).
    #[error("plugin call panicked: {0}")]
    Panicked(String),
    /// The pool's threads are gone.
    #[error("plugin pool is shut down")]
    Closed,
}

type Job = Box<dyn FnOnce() + Send>;

/// A bounded pool of plugin threads. Cheap to clone.
#[derive(Clone)]
pub struct PluginPool {
    jobs: SyncSender<Job>,
    slots: Arc<Semaphore>,
    capacity: usize,
    threads: usize,
}

impl std::fmt::Debug for PluginPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginPool")
            .field("threads", &self.threads)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl PluginPool {
    /// Starts `threads` plugin threads (at least one) with room for `queue` waiting jobs.
    pub fn new(threads: usize, queue: usize) -> std::io::Result<Self> {
        let threads = threads.max(1);
        let capacity = threads + queue;
        let (jobs, receiver) = sync_channel::<Job>(capacity);
        let receiver = Arc::new(Mutex::new(receiver));
        for i in 0..threads {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("plugin-{i}"))
                .spawn(move || work(&receiver))?;
        }
        Ok(Self {
            jobs,
            slots: Arc::new(Semaphore::new(capacity)),
            capacity,
            threads,
        })
    }

    /// A pool sized for this machine: one thread per CPU, four queued jobs per thread.
    pub fn for_this_machine() -> std::io::Result<Self> {
        let cpus = std::thread::available_parallelism().map_or(2, usize::from);
        Self::new(cpus, cpus * 4)
    }

    /// Runs `job` on a plugin thread; waits for a slot when the pool is full. `limit` is the
    /// job's own time limit (the watchdog waits that long plus [`WATCHDOG_GRACE`]).
    pub async fn run<R: Send + 'static>(
        &self,
        limit: Duration,
        job: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, PoolError> {
        let permit = self.slots.clone().acquire_owned().await;
        let permit = permit.map_err(|_| PoolError::Closed)?;
        let (tx, answer) = oneshot::channel();
        self.submit(permit, job, move |result| {
            // The caller may have given up (watchdog); nothing to do then.
            let _ = tx.send(result);
        })?;
        let wait = limit.saturating_add(WATCHDOG_GRACE);
        match tokio::time::timeout(wait, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(PoolError::Closed),
            Err(_) => Err(PoolError::Watchdog(wait)),
        }
    }

    /// Runs `job` on a plugin thread and blocks the calling thread until it answers; refuses
    /// at once when the pool is full. For synchronous callers (e.g. an admission hook).
    pub fn run_blocking<R: Send + 'static>(
        &self,
        limit: Duration,
        job: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, PoolError> {
        let permit = self.slots.clone().try_acquire_owned();
        let permit = permit.map_err(|_| PoolError::Saturated(self.capacity))?;
        let (tx, answer) = sync_channel(1);
        self.submit(permit, job, move |result| {
            let _ = tx.send(result);
        })?;
        let wait = limit.saturating_add(WATCHDOG_GRACE);
        match answer.recv_timeout(wait) {
            Ok(result) => result,
            Err(RecvTimeoutError::Timeout) => Err(PoolError::Watchdog(wait)),
            Err(RecvTimeoutError::Disconnected) => Err(PoolError::Closed),
        }
    }

    fn submit<R: Send + 'static>(
        &self,
        permit: OwnedSemaphorePermit,
        job: impl FnOnce() -> R + Send + 'static,
        reply: impl FnOnce(Result<R, PoolError>) + Send + 'static,
    ) -> Result<(), PoolError> {
        let wrapped: Job = Box::new(move || {
            let result = catch_unwind(AssertUnwindSafe(job)).map_err(|p| {
                let message = p
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                tracing::error!(%message, "plugin call panicked");
                PoolError::Panicked(message)
            });
            drop(permit);
            reply(result);
        });
        self.jobs.try_send(wrapped).map_err(|e| match e {
            TrySendError::Full(_) => PoolError::Saturated(self.capacity),
            TrySendError::Disconnected(_) => PoolError::Closed,
        })
    }
}

fn work(receiver: &Mutex<Receiver<Job>>) {
    loop {
        let job = receiver
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .recv();
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn jobs_run_off_the_runtime() {
        let pool = PluginPool::new(2, 2).expect("pool");
        let in_tokio = pool
            .run(Duration::from_secs(1), || {
                tokio::runtime::Handle::try_current().is_ok()
            })
            .await
            .expect("answer");
        assert!(
            !in_tokio,
            "a plugin thread must not be inside a tokio runtime"
        );
        let name = pool
            .run(Duration::from_secs(1), || {
                std::thread::current().name().map(str::to_owned)
            })
            .await
            .expect("answer");
        assert!(name.is_some_and(|n| n.starts_with("plugin-")));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_stuck_job_is_abandoned_by_the_watchdog() {
        let pool = PluginPool::new(1, 1).expect("pool");
        let err = pool
            .run(Duration::from_millis(10), || {
                std::thread::sleep(Duration::from_millis(1500));
            })
            .await
            .expect_err("watchdog");
        assert_eq!(
            err,
            PoolError::Watchdog(Duration::from_millis(10) + WATCHDOG_GRACE)
        );
    }

    #[test]
    fn a_full_pool_refuses_blocking_callers_and_a_panic_is_an_error() {
        let pool = PluginPool::new(1, 0).expect("pool");
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let busy = pool.clone();
        let holder = std::thread::spawn(move || {
            busy.run_blocking(Duration::from_secs(5), move || {
                started_tx.send(()).expect("signal");
                std::thread::sleep(Duration::from_millis(300));
            })
        });
        started_rx.recv().expect("job started");
        assert_eq!(
            pool.run_blocking(Duration::from_secs(1), || ()),
            Err(PoolError::Saturated(1))
        );
        assert_eq!(holder.join().expect("holder"), Ok(()));
        let err = pool
            .run_blocking(Duration::from_secs(1), || panic!("boom"))
            .expect_err("panic");
        assert_eq!(err, PoolError::Panicked("boom".into()));
        assert_eq!(pool.run_blocking(Duration::from_secs(1), || 7), Ok(7));
    }
}
