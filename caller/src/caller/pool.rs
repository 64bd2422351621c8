//! The worker pool behind `to_thread`.
//!
//! A worker is an ordinary caller on its own thread. `to_thread` takes an idle worker (or
//! starts one), schedules the job on it, and when the job's pending is done the worker
//! goes back to the idle list, stamped with the time — or is stopped if
//! [`PoolConfig::max_idle`] workers are idle already. Each idle worker has at most one
//! idle check scheduled on itself: when it fires, a worker idle for `idle_shutdown` leaves
//! the list and stops, one idle for less is checked again when its time is up, and a busy
//! one is checked again after its next job. No reaper thread, and no timer per job.

use std::collections::HashSet;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::{CallOptions, Caller, CallerState};
use crate::context::Trackers;
use crate::job::IntoJob;
use crate::pending::Pending;
use crate::sync::global::{AtomicU64, AtomicUsize};
use crate::sync::{lock, Mutex, Ordering};

static MAX_IDLE: AtomicUsize = AtomicUsize::new(Caller::MAX_IDLE_POOL_INSTANCES);
/// Milliseconds; `u64::MAX` means never.
static IDLE_SHUTDOWN_MS: AtomicU64 = AtomicU64::new(60_000);
static WORKER_NO: AtomicU64 = AtomicU64::new(0);

struct Idle {
    caller: Caller,
    since: Instant,
}

#[derive(Default)]
struct Pool {
    idle: Vec<Idle>,
    /// Workers with an idle check scheduled on them.
    checking: HashSet<crate::rt::CallerId>,
}

fn pool() -> &'static Mutex<Pool> {
    static POOL: OnceLock<Mutex<Pool>> = OnceLock::new();
    POOL.get_or_init(Default::default)
}

/// Settings of the `to_thread` worker pool (process-wide).
///
/// ```
/// use std::time::Duration;
/// use caller::PoolConfig;
/// PoolConfig::set_max_idle(4);
/// PoolConfig::set_idle_shutdown(Some(Duration::from_secs(5)));
/// assert_eq!(PoolConfig::max_idle(), 4);
/// assert_eq!(PoolConfig::idle_shutdown(), Some(Duration::from_secs(5)));
/// # PoolConfig::set_max_idle(caller::Caller::MAX_IDLE_POOL_INSTANCES);
/// # PoolConfig::set_idle_shutdown(Some(caller::Caller::IDLE_WORKER_SHUTDOWN_DURATION));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct PoolConfig;

impl PoolConfig {
    /// How many idle workers are kept (default [`Caller::MAX_IDLE_POOL_INSTANCES`]).
    pub fn max_idle() -> usize {
        MAX_IDLE.load(Ordering::Relaxed)
    }

    /// Keep at most `n` idle workers. Extra idle workers stop when they next finish a job.
    pub fn set_max_idle(n: usize) {
        MAX_IDLE.store(n, Ordering::Relaxed);
    }

    /// How long a worker stays idle before it stops; `None`: never (default
    /// [`Caller::IDLE_WORKER_SHUTDOWN_DURATION`]).
    pub fn idle_shutdown() -> Option<Duration> {
        match IDLE_SHUTDOWN_MS.load(Ordering::Relaxed) {
            u64::MAX => None,
            ms => Some(Duration::from_millis(ms)),
        }
    }

    /// Set how long an idle worker is kept; `None` keeps idle workers forever. Applies to
    /// workers that become idle from now on.
    pub fn set_idle_shutdown(d: Option<Duration>) {
        let ms = d.map_or(u64::MAX, |d| d.as_millis().min(u64::MAX as u128 - 1) as u64);
        IDLE_SHUTDOWN_MS.store(ms, Ordering::Relaxed);
    }

    /// The number of idle workers right now. A worker that stopped (or is stopping) is
    /// never counted: it leaves the idle list at once.
    pub fn idle_workers() -> usize {
        let mut p = lock(pool());
        prune_stopped(&mut p);
        p.idle.len()
    }

    /// Stop every worker of the pool now, idle and busy: their unfinished calls end
    /// cancelled with a reason (a sync call that is running ends when it returns), so every
    /// pending is done. Returns the workers asked to stop; await their
    /// [`stopped`](Caller::stopped) to know they are gone. The pool stays usable: the next
    /// `to_thread` starts a new worker. For tests and an orderly exit.
    ///
    /// ```
    /// # fn main() -> Result<(), caller::Error> {
    /// let mut stuck = caller::to_thread_async(std::future::pending::<()>);
    /// let workers = caller::PoolConfig::shutdown();
    /// assert!(!workers.is_empty());
    /// assert!(stuck.wait_sync(None).unwrap_err().is_cancelled());
    /// assert_eq!(caller::PoolConfig::idle_workers(), 0);
    /// assert_eq!(caller::to_thread(|| 1).wait_sync(None)?, 1);
    /// # Ok(()) }
    /// ```
    pub fn shutdown() -> Vec<Caller> {
        {
            let mut p = lock(pool());
            p.idle.clear();
            p.checking.clear();
        }
        let workers: Vec<Caller> = Caller::all_callers(false)
            .into_iter()
            .filter(|c| c.inner.pooled.load(Ordering::Acquire) && c.state() <= CallerState::Running)
            .collect();
        for w in &workers {
            w.stop(true);
        }
        workers
    }
}

/// Drop the idle entries of workers that stopped.
fn prune_stopped(p: &mut Pool) {
    let Pool { idle, checking } = p;
    idle.retain(|w| {
        let running = w.caller.state() <= CallerState::Running;
        if !running {
            checking.remove(&w.caller.id());
        }
        running
    });
}

fn acquire() -> Result<Caller, crate::Error> {
    {
        let mut p = lock(pool());
        while let Some(w) = p.idle.pop() {
            if w.caller.state() <= CallerState::Running {
                return Ok(w.caller);
            }
            p.checking.remove(&w.caller.id());
        }
    }
    let n = WORKER_NO.fetch_add(1, Ordering::Relaxed);
    let c = Caller::builder()
        .name(format!("caller-worker-{n}"))
        .spawn()?;
    c.inner.pooled.store(true, Ordering::Release);
    Ok(c)
}

fn release(worker: Caller) {
    if worker.state() > CallerState::Running {
        return;
    }
    let schedule_check = {
        let mut p = lock(pool());
        if p.idle.len() >= PoolConfig::max_idle() {
            p.checking.remove(&worker.id());
            drop(p);
            worker.stop(true);
            return;
        }
        p.idle.push(Idle {
            caller: worker.clone(),
            since: Instant::now(),
        });
        PoolConfig::idle_shutdown().filter(|_| p.checking.insert(worker.id()))
    };
    if let Some(after) = schedule_check {
        schedule_idle_check(worker, after);
    }
}

fn schedule_idle_check(worker: Caller, after: Duration) {
    let w = worker.clone();
    let _detached = worker.schedule_call(
        move || idle_check(w),
        CallOptions::new()
            .name("caller::pool::idle_check")
            .trackers(Trackers::NONE)
            .delay(after),
    );
}

/// On the worker itself: stop it if it has been idle long enough.
fn idle_check(worker: Caller) {
    let mut p = lock(pool());
    let Some(limit) = PoolConfig::idle_shutdown() else {
        p.checking.remove(&worker.id());
        return;
    };
    let Some(pos) = p.idle.iter().position(|i| i.caller == worker) else {
        // Busy: the next release schedules a new check.
        p.checking.remove(&worker.id());
        return;
    };
    let idle_for = p.idle[pos].since.elapsed();
    if idle_for >= limit {
        p.idle.swap_remove(pos);
        p.checking.remove(&worker.id());
        drop(p);
        tracing::debug!(worker = %worker.name(), "idle worker stopped");
        worker.stop(true);
    } else {
        drop(p);
        schedule_idle_check(worker, limit - idle_for);
    }
}

pub(super) fn to_thread<T, J>(job: J, options: CallOptions) -> Pending<T>
where
    T: Send + 'static,
    J: IntoJob<T>,
{
    let worker = match acquire() {
        Ok(w) => w,
        Err(e) => {
            let p = Pending::new();
            p.set_error(e);
            return p;
        }
    };
    let p = worker.schedule_job(job, options);
    let w = worker.clone();
    p.add_hook(move |_| release(w));
    p
}
