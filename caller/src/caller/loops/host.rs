//! A host-driven caller: for a thread that something else owns.
//!
//! A GUI toolkit, game or render loop owns its thread and must never be blocked. A host
//! caller runs on such a thread without a loop of its own: whenever work arrives (from any
//! thread) it calls the host's *wake hook*, and the host answers by calling
//! [`HostLoop::pump`] from its own loop, which runs everything ready and returns at once.
//!
//! The executor is a small local one: tasks live in a slab on the host thread (they need
//! not be `Send`); their wakers are `Send` and only push the task's id onto a shared
//! ready queue, then call the hook (once per batch) and unpark the thread.
//!
//! Futures that need tokio (timers, sockets) run through
//! [`Caller::call_using_backend`](crate::Caller::call_using_backend) with
//! [`Backend::Tokio`](crate::Backend::Tokio): each poll enters a shared background tokio
//! runtime, whose driver thread wakes the task when its timer or socket is ready.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Wake, Waker};
use std::time::Duration;

use super::{scheduler, LoopBackend, LoopRun};
use crate::caller::Caller;
use crate::rt::{LocalExecutor, Spawner};
use crate::sync::{lock, AtomicBool, Mutex, Ordering};
use crate::unwind::{drop_caught, message_of};

type LocalTask = Pin<Box<dyn Future<Output = ()>>>;

/// The part of the executor that other threads reach through wakers.
struct Remote {
    ready: Mutex<VecDeque<u64>>,
    notified: AtomicBool,
    hook: Box<dyn Fn() + Send + Sync>,
    thread: std::thread::Thread,
}

impl Remote {
    fn schedule(&self, id: u64) {
        lock(&self.ready).push_back(id);
        self.notify();
    }

    fn notify(&self) {
        if !self.notified.swap(true, Ordering::AcqRel) {
            (self.hook)();
        }
        self.thread.unpark();
    }
}

struct TaskWaker {
    remote: Arc<Remote>,
    id: u64,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.remote.schedule(self.id);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.remote.schedule(self.id);
    }
}

struct Slot {
    generation: u32,
    task: Option<LocalTask>,
    /// `false` once the task finished (or was never there): stale wakes are ignored.
    live: bool,
}

/// The host thread's executor.
pub(crate) struct Executor {
    remote: Arc<Remote>,
    slots: RefCell<Vec<Slot>>,
    free: RefCell<Vec<usize>>,
}

fn id_of(index: usize, generation: u32) -> u64 {
    ((generation as u64) << 32) | index as u64
}

impl Executor {
    fn spawn(&self, fut: LocalTask) {
        let index = match self.free.borrow_mut().pop() {
            Some(i) => i,
            None => {
                let mut slots = self.slots.borrow_mut();
                slots.push(Slot {
                    generation: 0,
                    task: None,
                    live: false,
                });
                slots.len() - 1
            }
        };
        let generation = {
            let mut slots = self.slots.borrow_mut();
            let slot = &mut slots[index];
            slot.generation = slot.generation.wrapping_add(1);
            slot.task = Some(fut);
            slot.live = true;
            slot.generation
        };
        self.remote.schedule(id_of(index, generation));
    }

    /// Poll task `id` once if it is live and not already being polled.
    fn poll(&self, id: u64) {
        let (index, generation) = ((id & 0xffff_ffff) as usize, (id >> 32) as u32);
        let task = {
            let mut slots = self.slots.borrow_mut();
            match slots.get_mut(index) {
                Some(s) if s.live && s.generation == generation => s.task.take(),
                _ => None,
            }
        };
        let Some(mut task) = task else { return };
        let waker = Waker::from(Arc::new(TaskWaker {
            remote: self.remote.clone(),
            id,
        }));
        // Tasks catch the panics of user code themselves; this is the last line, so that
        // nothing unwinds into the host's loop: a task that panicked is over.
        let polled = catch_unwind(AssertUnwindSafe(|| {
            task.as_mut().poll(&mut Context::from_waker(&waker))
        }));
        let done = match polled {
            Ok(poll) => poll.is_ready(),
            Err(payload) => {
                tracing::error!(
                    panic = %message_of(payload),
                    "a task of a host caller panicked; the panic was caught"
                );
                true
            }
        };
        let mut slots = self.slots.borrow_mut();
        let slot = &mut slots[index];
        if done {
            slot.live = false;
            drop(slots);
            drop_task(task);
            self.free.borrow_mut().push(index);
        } else {
            slot.task = Some(task);
        }
    }

    /// Drop every task (on this thread).
    fn clear(&self) {
        let tasks: Vec<LocalTask> = self
            .slots
            .borrow_mut()
            .iter_mut()
            .filter_map(|s| {
                s.live = false;
                s.task.take()
            })
            .collect();
        for task in tasks {
            drop_task(task);
        }
    }
}

/// Drop a task on the host's thread without letting a panicking `Drop` unwind into the
/// host's loop.
fn drop_task(task: LocalTask) {
    if let Some(message) = drop_caught(task) {
        tracing::error!(panic = %message, "a task of a host caller panicked in Drop; the panic was caught");
    }
}

impl LocalExecutor for Executor {
    fn spawn(&self, task: LocalTask) {
        Executor::spawn(self, task);
    }
}

/// The host backend: tasks go to the executor, which drops them when the loop stops.
struct HostBackend(Rc<Executor>);

impl LoopBackend for HostBackend {
    fn spawner(&self) -> Spawner {
        Spawner::Local(self.0.clone())
    }

    fn drop_tasks(&mut self) {
        self.0.clear();
        crate::state::clear();
    }
}

/// A caller driven by the loop of a thread that something else owns; see the module
/// docs and [`CallerBuilder::host`](crate::CallerBuilder::host).
///
/// The host calls [`pump`](Self::pump) from its loop whenever the wake hook has fired
/// (or on every iteration). `HostLoop` is not `Send`: it stays on the host's thread.
/// Dropping it stops the caller (unfinished calls are cancelled) and waits for its
/// children to stop.
///
/// ```
/// use std::sync::{Arc, atomic::{AtomicBool, Ordering}};
/// use caller::{Backend, Caller};
/// # fn main() -> Result<(), caller::Error> {
/// // The "GUI loop" below is a plain loop; a real one would post an event from the hook.
/// let woken = Arc::new(AtomicBool::new(false));
/// let w = woken.clone();
/// let host = Caller::builder()
///     .name("doc-gui")
///     .backend(Backend::Host)
///     .host(move || w.store(true, Ordering::SeqCst))?;
/// let gui = host.caller().clone();
/// let mut answer = std::thread::spawn(move || gui.call_soon(|| 40 + 2))
///     .join()
///     .unwrap();
/// while !answer.done() {
///     host.pump(); // the host's loop iteration
/// }
/// assert!(woken.load(Ordering::SeqCst));
/// assert_eq!(answer.wait_sync(None)?, 42);
/// # Ok(()) }
/// ```
#[must_use = "dropping the HostLoop stops its caller at once: keep it and call `pump` from the host's loop"]
pub struct HostLoop {
    caller: Caller,
    exec: Rc<Executor>,
    /// Until the loop stopped.
    run: std::cell::RefCell<Option<LoopRun<HostBackend>>>,
    scheduler_done: Rc<std::cell::Cell<bool>>,
    finished: std::cell::Cell<bool>,
}

impl HostLoop {
    pub(crate) fn start(caller: Caller, hook: Box<dyn Fn() + Send + Sync>) -> HostLoop {
        let exec = Rc::new(Executor {
            remote: Arc::new(Remote {
                ready: Mutex::new(VecDeque::new()),
                notified: AtomicBool::new(false),
                hook,
                thread: std::thread::current(),
            }),
            slots: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
        });
        let scheduler_done = Rc::new(std::cell::Cell::new(false));
        let done = scheduler_done.clone();
        let c = caller.clone();
        exec.spawn(Box::pin(async move {
            scheduler(c).await;
            done.set(true);
        }));
        let run = LoopRun::start(&caller, HostBackend(exec.clone()), true);
        HostLoop {
            caller,
            exec,
            run: std::cell::RefCell::new(Some(run)),
            scheduler_done,
            finished: std::cell::Cell::new(false),
        }
    }

    /// The caller this loop drives: clone it and hand it to other threads.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// Run everything that is ready, without blocking, and return how many task polls
    /// ran. Call it from the host's loop after the wake hook fired. A very busy caller
    /// yields back to the host after a budget of polls (the hook fires again).
    pub fn pump(&self) -> usize {
        const BUDGET: usize = 1024;
        let remote = &self.exec.remote;
        remote.notified.store(false, Ordering::Release);
        let mut polled = 0;
        while polled < BUDGET {
            let Some(id) = lock(&remote.ready).pop_front() else {
                break;
            };
            self.exec.poll(id);
            polled += 1;
        }
        if !lock(&remote.ready).is_empty() {
            remote.notify();
        }
        if self.scheduler_done.get() && !self.finished.get() {
            self.shutdown();
        }
        polled
    }

    /// Whether the caller has stopped (its loop ended).
    pub fn is_stopped(&self) -> bool {
        self.finished.get()
    }

    fn shutdown(&self) {
        self.finished.set(true);
        let run = self.run.borrow_mut().take();
        if let Some(run) = run {
            run.stop();
        }
    }
}

impl Drop for HostLoop {
    fn drop(&mut self) {
        if self.finished.get() {
            return;
        }
        self.caller.stop(true);
        // Let the loop finish its stop sequence (children first), parking between pumps;
        // wakes unpark this thread.
        while !self.finished.get() {
            if self.pump() == 0 && !self.finished.get() {
                std::thread::park_timeout(Duration::from_millis(50));
            }
        }
    }
}

impl fmt::Debug for HostLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostLoop")
            .field("caller", &self.caller)
            .field("ready", &lock(&self.exec.remote.ready).len())
            .finish()
    }
}
